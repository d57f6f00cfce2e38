/* A stand-in for libcuda.so.1 used by the binding's tests: no GPU, no CUDA.
 * "Device memory" is host memory, kernels are recorded instead of run.
 * Behaviour is chosen at compile time:
 *   -DINIT_RESULT=n     cuInit returns n (100 = CUDA_ERROR_NO_DEVICE)
 *   -DDEVICE_COUNT=n    cuDeviceGetCount reports n devices
 *   -DCC_MAJOR=n        compute capability major
 *   -DMODULE_RESULT=n   cuModuleLoadData returns n (218 = CUDA_ERROR_INVALID_PTX)
 *   -DOMIT_MEMALLOC     leave out cuMemAlloc_v2 (a driver missing a symbol)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef INIT_RESULT
#define INIT_RESULT 0
#endif
#ifndef DEVICE_COUNT
#define DEVICE_COUNT 1
#endif
#ifndef CC_MAJOR
#define CC_MAJOR 9
#endif
#ifndef MODULE_RESULT
#define MODULE_RESULT 0
#endif

typedef int CUresult;

static const char *err_name(int c) {
	switch (c) {
	case 0: return "CUDA_SUCCESS";
	case 1: return "CUDA_ERROR_INVALID_VALUE";
	case 2: return "CUDA_ERROR_OUT_OF_MEMORY";
	case 100: return "CUDA_ERROR_NO_DEVICE";
	case 218: return "CUDA_ERROR_INVALID_PTX";
	}
	return 0;
}

CUresult cuGetErrorName(CUresult c, const char **s) {
	*s = err_name(c);
	return *s ? 0 : 1;
}
CUresult cuGetErrorString(CUresult c, const char **s) {
	*s = err_name(c) ? "stub driver error" : 0;
	return *s ? 0 : 1;
}

static int inited;
CUresult cuInit(unsigned flags) {
	if (flags != 0) return 1;
	if (INIT_RESULT == 0) inited = 1;
	return INIT_RESULT;
}
CUresult cuDriverGetVersion(int *v) { *v = 12040; return 0; }
CUresult cuDeviceGetCount(int *n) { if (!inited) return 3; *n = DEVICE_COUNT; return 0; }
CUresult cuDeviceGet(int *d, int ord) { if (ord >= DEVICE_COUNT) return 101; *d = ord; return 0; }
CUresult cuDeviceGetName(char *name, int n, int dev) { strncpy(name, "Stub GPU", n); return 0; }
CUresult cuDeviceTotalMem_v2(size_t *b, int dev) { *b = (size_t)1 << 30; return 0; }
CUresult cuDeviceGetAttribute(int *v, int attr, int dev) {
	switch (attr) {
	case 16: *v = 4; return 0;
	case 75: *v = CC_MAJOR; return 0;
	case 76: *v = 0; return 0;
	}
	return 1;
}
static int ctx_current;
CUresult cuCtxCreate_v2(void **ctx, unsigned flags, int dev) { *ctx = (void *)0x1000; ctx_current = 1; return 0; }
CUresult cuCtxDestroy_v2(void *ctx) { return ctx == (void *)0x1000 ? 0 : 201; }
CUresult cuCtxSetCurrent(void *ctx) { ctx_current = ctx == (void *)0x1000; return ctx_current ? 0 : 201; }
CUresult cuCtxSynchronize(void) { return 0; }

static char ptx_head[16];
CUresult cuModuleLoadData(void **mod, const void *image) {
	memcpy(ptx_head, image, sizeof ptx_head - 1);
	if (MODULE_RESULT) return MODULE_RESULT;
	*mod = (void *)0x2000;
	return 0;
}
CUresult cuModuleUnload(void *mod) { return 0; }
static char fn_names[16][64];
static int n_fns;
CUresult cuModuleGetFunction(void **fn, void *mod, const char *name) {
	if (n_fns == 16) return 500;
	strncpy(fn_names[n_fns], name, 63);
	*fn = (void *)(uintptr_t)(0x3000 + n_fns);
	n_fns++;
	return 0;
}

/* The last launch: function index, grid, block, shared bytes and the first
 * eight parameter slots read as 8 bytes each. */
static uint64_t last_launch[16];
CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, void *stream, void **params, void **extra) {
	if (!ctx_current) return 201;
	memset(last_launch, 0, sizeof last_launch);
	last_launch[0] = (uintptr_t)f - 0x3000;
	last_launch[1] = gx; last_launch[2] = gy; last_launch[3] = gz;
	last_launch[4] = bx; last_launch[5] = by; last_launch[6] = bz;
	last_launch[7] = shared;
	for (int i = 0; params && i < 8; i++) {
		if (!params[i]) break;
		memcpy(&last_launch[8 + i], params[i], 8);
	}
	return 0;
}
void stub_last_launch(uint64_t *out) { memcpy(out, last_launch, sizeof last_launch); }
void stub_ptx_head(char *out) { memcpy(out, ptx_head, sizeof ptx_head); }
const char *stub_function_name(int i) { return i < n_fns ? fn_names[i] : ""; }

#ifndef OMIT_MEMALLOC
CUresult cuMemAlloc_v2(uint64_t *p, size_t n) {
	if (n > ((size_t)1 << 30)) return 2;
	void *m = malloc(n);
	if (!m) return 2;
	*p = (uintptr_t)m;
	return 0;
}
#endif
CUresult cuMemFree_v2(uint64_t p) { free((void *)(uintptr_t)p); return 0; }
CUresult cuMemGetInfo_v2(size_t *f, size_t *t) { *f = (size_t)1 << 29; *t = (size_t)1 << 30; return 0; }
CUresult cuMemcpyHtoD_v2(uint64_t d, const void *s, size_t n) { memcpy((void *)(uintptr_t)d, s, n); return 0; }
CUresult cuMemcpyDtoH_v2(void *d, uint64_t s, size_t n) { memcpy(d, (void *)(uintptr_t)s, n); return 0; }
CUresult cuMemcpyDtoD_v2(uint64_t d, uint64_t s, size_t n) { memmove((void *)(uintptr_t)d, (void *)(uintptr_t)s, n); return 0; }
CUresult cuMemsetD8_v2(uint64_t d, unsigned char v, size_t n) { memset((void *)(uintptr_t)d, v, n); return 0; }
CUresult cuStreamCreate(void **s, unsigned flags) { *s = (void *)0x4000; return 0; }
CUresult cuStreamDestroy_v2(void *s) { return 0; }
CUresult cuStreamSynchronize(void *s) { return 0; }
static int n_events;
CUresult cuEventCreate(void **e, unsigned flags) { *e = (void *)(uintptr_t)(0x5000 + ++n_events); return 0; }
CUresult cuEventDestroy_v2(void *e) { return 0; }
CUresult cuEventRecord(void *e, void *s) { return 0; }
CUresult cuEventSynchronize(void *e) { return 0; }
CUresult cuEventElapsedTime(float *ms, void *a, void *b) { *ms = 1.5f; return 0; }
