// msl_host.h: enough of the Metal Shading Language for the kernels in
// ../kernels to compile and run as C++ on Linux (clang++-16, -std=c++20),
// so their every line runs in CI without a Mac.
//
//   - Address spaces: device, constant and threadgroup are distinct clang
//     address spaces (checked like MSL's), all ordinary host memory.
//   - Attributes ([[buffer(i)]], [[thread_position_in_threadgroup]], …) are
//     unknown to clang and ignored (-Wno-unknown-attributes); the driver
//     passes the position arguments itself.
//   - Each threadgroup runs as cooperative fibers (ucontext), one per
//     thread: threadgroup_barrier switches to the scheduler, which resumes
//     the threads once every live thread has reached the barrier (in
//     ascending order, then descending, alternately: see run_group);
//     a thread that exits while others wait at a barrier is reported as a
//     divergent barrier.
//   - simd_sum / simd_max run as two barriers over a slot per thread,
//     folding the 32 lanes of the caller's simdgroup in lane order (Apple
//     hardware's order is unspecified: the Go tests allow for it).
//   - half is _Float16 (IEEE binary16, round to nearest even).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <csetjmp>
#include <functional>
#include <ucontext.h>
#include <vector>

#define TQ_HOST 1

typedef unsigned char uchar;
typedef unsigned short ushort;
typedef unsigned int uint;
typedef unsigned long ulong; // as <sys/types.h> has it (64 bits on LP64 Linux)
typedef _Float16 half;

struct uint3 {
	uint x, y, z;
};

template <class T, class U> static inline T as_type(U u) {
	static_assert(sizeof(T) == sizeof(U), "as_type: sizes differ");
	return __builtin_bit_cast(T, u);
}

using std::exp;
using std::fma;
using std::ldexp;
using std::sqrt;
static inline int clz(ulong x) { return x ? __builtin_clzll(x) : 64; }

namespace tqhost {

// A fiber is entered the first time through its ucontext and afterwards
// with _longjmp, which (unlike swapcontext) saves no signal mask and so
// makes no system call per switch.
struct Fiber {
	ucontext_t ctx;
	jmp_buf jb;
	int state; // 0 runnable, 1 waiting at a barrier, 2 finished
	bool started;
	char *stack; // 64 KiB, malloc'd: untouched pages cost nothing
};

constexpr size_t fiber_stack = 64 << 10;
inline ucontext_t scheduler;
inline jmp_buf scheduler_jb;
inline std::vector<Fiber> fibers;
inline int current, live;
inline std::vector<float> slots;
inline std::function<void(uint)> body;

inline void barrier() {
	fibers[current].state = 1;
	if (!_setjmp(fibers[current].jb)) _longjmp(scheduler_jb, 1);
}

inline void trampoline(int i) {
	body(uint(i));
	fibers[i].state = 2;
	_longjmp(scheduler_jb, 1);
}

// run_group runs body(tid) for tid in [0, n) as one threadgroup.
inline void run_group(int n, std::function<void(uint)> f) {
	body = std::move(f);
	if ((int)fibers.size() < n) fibers.resize(n, Fiber{});
	slots.assign(n, 0.0f);
	live = n;
	for (int i = 0; i < n; i++) {
		Fiber &fb = fibers[i];
		if (!fb.stack) fb.stack = (char *)malloc(fiber_stack);
		getcontext(&fb.ctx);
		fb.ctx.uc_stack.ss_sp = fb.stack;
		fb.ctx.uc_stack.ss_size = fiber_stack;
		fb.ctx.uc_link = &scheduler;
		makecontext(&fb.ctx, (void (*)())trampoline, 1, i);
		fb.state = 0;
		fb.started = false;
	}
	// Between two barriers the threads run one after another, in ascending
	// order on even phases and descending on odd ones: a thread that reads
	// what another writes in the same phase (a race on a GPU) then sees a
	// different value in some phase than the GPU ordering would give, and
	// the results stop matching the CPU codec.
	for (int phase = 0;; phase++) {
		int waiting = 0, done = 0;
		for (int k = 0; k < n; k++) {
			int i = phase & 1 ? n - 1 - k : k;
			if (fibers[i].state == 2) continue;
			fibers[i].state = 0;
			current = i;
			if (!_setjmp(scheduler_jb)) {
				if (!fibers[i].started) {
					fibers[i].started = true;
					swapcontext(&scheduler, &fibers[i].ctx);
				} else {
					_longjmp(fibers[i].jb, 1);
				}
			}
		}
		for (int i = 0; i < n; i++) {
			waiting += fibers[i].state == 1;
			done += fibers[i].state == 2;
		}
		if (done == n) return;
		if (done > 0) {
			fprintf(stderr, "divergent barrier: %d of %d threads exited while %d wait\n", done, n, waiting);
			exit(3);
		}
	}
}

// The emulated simdgroup width (Apple GPUs'); the driver passes lane and
// simdgroup indices consistent with it.
constexpr uint simd_width = 32;

inline uint lane_base() { return uint(current) / simd_width * simd_width; }

} // namespace tqhost

namespace mem_flags {
enum flags { mem_none, mem_device, mem_threadgroup };
}
static inline void threadgroup_barrier(mem_flags::flags) { tqhost::barrier(); }

static inline float simd_sum(float x) {
	tqhost::slots[tqhost::current] = x;
	tqhost::barrier();
	uint b = tqhost::lane_base(), e = b + tqhost::simd_width < tqhost::slots.size() ? b + tqhost::simd_width : tqhost::slots.size();
	float s = tqhost::slots[b];
	for (uint i = b + 1; i < e; i++) s = s + tqhost::slots[i];
	tqhost::barrier();
	return s;
}

static inline float simd_max(float x) {
	tqhost::slots[tqhost::current] = x;
	tqhost::barrier();
	uint b = tqhost::lane_base(), e = b + tqhost::simd_width < tqhost::slots.size() ? b + tqhost::simd_width : tqhost::slots.size();
	float m = tqhost::slots[b];
	for (uint i = b + 1; i < e; i++) m = tqhost::slots[i] > m ? tqhost::slots[i] : m;
	tqhost::barrier();
	return m;
}

// The address spaces and the kernel qualifier, last: the standard headers
// above must not see these macros. device, constant and threadgroup are
// distinct clang address spaces, so a pointer passed across address spaces
// without a cast is a compile error here as it is in MSL (x86 code
// generation treats them all as ordinary memory); thread is the default
// address space.
#define kernel
#define device __attribute__((address_space(1)))
#define constant __attribute__((address_space(2)))
#define threadgroup __attribute__((address_space(3)))
#define thread
