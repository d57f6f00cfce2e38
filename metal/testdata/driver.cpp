// driver.cpp runs one command buffer of the kernels in ../kernels on the
// host (msl_host.h) for the Go tests (harness_test.go): its dispatches in
// order, each over its whole grid, threadgroup after threadgroup.
//
// Every buffer and threadgroup allocation ends exactly at an inaccessible
// guard page, so a read or write past its end crashes the run instead of
// passing silently. (Its start is then aligned to the largest power of two
// dividing its size, which covers its element type: float and int buffers
// are whole numbers of 4 bytes, ulong ones of 8; byte buffers are read
// byte by byte.)
//
// stdin, little-endian: int32 nbuf, then per buffer int64 size and its
// bytes; int32 ndispatch, then per dispatch int32 name length, the kernel
// name, int32s gx gy gz threads nbind, nbind int32 buffer numbers (the
// Metal buffer indices 0…), int32 ntg, ntg int64 threadgroup memory sizes.
// stdout: every buffer's bytes after the last dispatch, in order.
#include "msl_host.h"

#include "../kernels/common.metal"
#include "../kernels/encode.metal"
#include "../kernels/attend.metal"

#include <string>
#include <sys/mman.h>
#include <unistd.h>

// guarded returns n bytes (zeroed) that end just before a PROT_NONE page.
static uchar *guarded(int64_t n) {
	size_t page = size_t(sysconf(_SC_PAGESIZE));
	size_t body = size_t(n);
	size_t len = (body + page - 1) / page * page;
	if (len == 0) len = page;
	uchar *base = (uchar *)mmap(nullptr, len + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED || mprotect(base + len, page, PROT_NONE) != 0) {
		perror("guarded allocation");
		exit(2);
	}
	return base + len - body;
}

static void read_exact(void *p, size_t n) {
	if (fread(p, 1, n, stdin) != n) {
		fprintf(stderr, "short input\n");
		exit(2);
	}
}

static int32_t read_i32() {
	int32_t v;
	read_exact(&v, 4);
	return v;
}

static int64_t read_i64() {
	int64_t v;
	read_exact(&v, 8);
	return v;
}

struct Dispatch {
	std::string name;
	int gx, gy, gz, nt;
	std::vector<int> binds;
	std::vector<int64_t> tgsize;
};

// run runs one dispatch over its grid.
static void run(const Dispatch &d, std::vector<uchar *> &bufs) {
	std::vector<uchar *> tg(d.tgsize.size());
	for (size_t i = 0; i < tg.size(); i++) tg[i] = guarded(d.tgsize[i]);
	auto B = [&](int i) { return bufs.at(d.binds.at(i)); };
	auto T = [&](int i) { return tg.at(i); };
	uint nt = uint(d.nt), w = tqhost::simd_width;
	std::function<void(uint3, uint)> call;
	if (d.name == "tq_encode_mse")
		call = [&](uint3 g, uint tid) {
			tq_encode_mse((device uchar *)B(0), *(constant EncodeArgs *)B(1), (device float *)B(2),
			              (device float *)B(3), (device uchar *)B(4), (device int *)B(5), (threadgroup float *)T(0),
			              (threadgroup uchar *)T(1), (threadgroup ulong *)T(2), (threadgroup float *)T(3), tid, g.x);
		};
	else if (d.name == "tq_logits")
		call = [&](uint3 g, uint tid) {
			tq_logits(*(constant AttendArgs *)B(0), (device int *)B(1), (device float *)B(2), (device uchar *)B(3),
			          (device int *)B(4), (device uchar *)B(5), (device uchar *)B(6), (device float *)B(7),
			          (device float *)B(8), (device float *)B(9), (device float *)B(10), (device float *)B(11),
			          (device float *)B(12), (threadgroup float *)T(0), (threadgroup float *)T(1),
			          (threadgroup float *)T(2), (threadgroup float *)T(3), (threadgroup float *)T(4), tid, g);
		};
	else if (d.name == "tq_attend_partial")
		call = [&](uint3 g, uint tid) {
			tq_attend_partial(*(constant AttendArgs *)B(0), (device int *)B(1), (device float *)B(2),
			                  (device uchar *)B(3), (device int *)B(4), (device uchar *)B(5), (device uchar *)B(6),
			                  (device float *)B(7), (device float *)B(8), (threadgroup float *)T(0),
			                  (threadgroup float *)T(1), tid, g, tid % w, tid / w, (nt + w - 1) / w);
		};
	else if (d.name == "tq_attend_reduce")
		call = [&](uint3 g, uint tid) {
			tq_attend_reduce(*(constant AttendArgs *)B(0), (device float *)B(1), (device float *)B(2), tid, g.x);
		};
	else {
		fprintf(stderr, "unknown kernel %s\n", d.name.c_str());
		exit(2);
	}
	for (int z = 0; z < d.gz; z++)
		for (int y = 0; y < d.gy; y++)
			for (int x = 0; x < d.gx; x++) {
				// Fresh threadgroup memory per group, filled with NaN bytes so
				// that a read before a write shows.
				for (size_t i = 0; i < tg.size(); i++) memset(tg[i], 0xFF, size_t(d.tgsize[i]));
				uint3 g{uint(x), uint(y), uint(z)};
				tqhost::run_group(d.nt, [&](uint tid) { call(g, tid); });
			}
}

int main() {
	int nb = read_i32();
	std::vector<uchar *> bufs(nb);
	std::vector<int64_t> sizes(nb);
	for (int i = 0; i < nb; i++) {
		sizes[i] = read_i64();
		bufs[i] = guarded(sizes[i]);
		read_exact(bufs[i], size_t(sizes[i]));
	}
	int nd = read_i32();
	for (int k = 0; k < nd; k++) {
		Dispatch d;
		d.name.resize(size_t(read_i32()));
		read_exact(d.name.data(), d.name.size());
		d.gx = read_i32(), d.gy = read_i32(), d.gz = read_i32(), d.nt = read_i32();
		d.binds.resize(size_t(read_i32()));
		for (int &b : d.binds) {
			b = read_i32();
			if (b < 0 || b >= nb) {
				fprintf(stderr, "%s: buffer %d of %d\n", d.name.c_str(), b, nb);
				return 2;
			}
		}
		d.tgsize.resize(size_t(read_i32()));
		for (int64_t &t : d.tgsize) t = read_i64();
		run(d, bufs);
	}
	for (int i = 0; i < nb; i++) fwrite(bufs[i], 1, size_t(sizes[i]), stdout);
	return 0;
}
