// driver.cpp runs one kernel of ../kernels over a whole grid on the host
// (msl_host.h) for the Go tests (harness_test.go).
//
// Every buffer and threadgroup allocation ends exactly at an inaccessible
// guard page, so a read or write past its end crashes the run instead of
// passing silently. (Its start is then aligned to the largest power of two
// dividing its size, which covers its element type: float and int buffers
// are whole numbers of 4 bytes, ulong ones of 8; byte buffers are read
// byte by byte.)
//
// stdin: the kernel name and a newline; then int32s gx gy gz threads nbind
// ntg; nbind bindings (int64 size, bytes), the Metal buffer indices 0…;
// ntg threadgroup memory sizes (int64). stdout: every binding's bytes after
// the run, in order.
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

int main() {
	std::string name;
	for (int c; (c = getchar()) != '\n';) {
		if (c == EOF) return 2;
		name.push_back(char(c));
	}
	int32_t hdr[6];
	read_exact(hdr, sizeof hdr);
	int gx = hdr[0], gy = hdr[1], gz = hdr[2], nt = hdr[3], nb = hdr[4], ntg = hdr[5];
	std::vector<uchar *> bufs(nb);
	std::vector<int64_t> sizes(nb);
	for (int i = 0; i < nb; i++) {
		read_exact(&sizes[i], 8);
		bufs[i] = guarded(sizes[i]);
		read_exact(bufs[i], sizes[i]);
	}
	std::vector<int64_t> tgsize(ntg);
	if (ntg) read_exact(tgsize.data(), 8 * ntg);
	std::vector<uchar *> tg(ntg);
	for (int i = 0; i < ntg; i++) tg[i] = guarded(tgsize[i]);
	auto B = [&](int i) { return bufs.at(i); };
	auto T = [&](int i) { return tg.at(i); };

	std::function<void(uint3, uint)> call;
	if (name == "tq_encode_mse")
		call = [&](uint3 g, uint tid) {
			tq_encode_mse((device uchar *)B(0), *(constant EncodeArgs *)B(1), (device float *)B(2),
			              (device float *)B(3), (device uchar *)B(4), (device int *)B(5), (threadgroup float *)T(0),
			              (threadgroup uchar *)T(1), (threadgroup ulong *)T(2), (threadgroup float *)T(3), tid, g.x);
		};
	else if (name == "tq_logits")
		call = [&](uint3 g, uint tid) {
			tq_logits(*(constant AttendArgs *)B(0), (device int *)B(1), (device float *)B(2), (device uchar *)B(3),
			          (device uchar *)B(4), (device uchar *)B(5), (device float *)B(6), (device float *)B(7),
			          (device float *)B(8), (device float *)B(9), (device float *)B(10), (threadgroup float *)T(0),
			          (threadgroup float *)T(1), (threadgroup float *)T(2), tid, g);
		};
	else if (name == "tq_attend_partial")
		call = [&](uint3 g, uint tid) {
			tq_attend_partial(*(constant AttendArgs *)B(0), (device int *)B(1), (device float *)B(2),
			                  (device uchar *)B(3), (device uchar *)B(4), (device uchar *)B(5), (device float *)B(6),
			                  (device float *)B(7), (threadgroup float *)T(0), (threadgroup float *)T(1), tid, g,
			                  tid % tqhost::simd_width, tid / tqhost::simd_width, (uint(nt) + tqhost::simd_width - 1) / tqhost::simd_width);
		};
	else if (name == "tq_attend_reduce")
		call = [&](uint3 g, uint tid) {
			tq_attend_reduce(*(constant AttendArgs *)B(0), (device float *)B(1), (device float *)B(2), tid, g.x);
		};
	else {
		fprintf(stderr, "unknown kernel %s\n", name.c_str());
		return 2;
	}
	for (int z = 0; z < gz; z++)
		for (int y = 0; y < gy; y++)
			for (int x = 0; x < gx; x++) {
				// Fresh threadgroup memory per group, filled with NaN bytes so
				// that a read before a write shows.
				for (int i = 0; i < ntg; i++) memset(tg[i], 0xFF, size_t(tgsize[i]));
				uint3 g{uint(x), uint(y), uint(z)};
				tqhost::run_group(nt, [&](uint tid) { call(g, tid); });
			}
	for (int i = 0; i < nb; i++) fwrite(bufs[i], 1, sizes[i], stdout);
	return 0;
}
