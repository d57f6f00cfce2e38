// shim.h stands in for the CUDA headers, so the kernels compile with clang
// alone (-nocudainc -nocudalib): the execution-space attributes, the
// built-in index variables, and the few device helpers the kernels use,
// written as inline PTX.
#pragma once

#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#define __forceinline__ __attribute__((always_inline)) inline

#include <__clang_cuda_builtin_vars.h>

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef __SIZE_TYPE__ size_t;

// IEEE half <-> float, exactly as the CPU's internal/half (round to nearest
// even on the way in).
static __device__ __forceinline__ float half_to_float(u16 h) {
	float f;
	asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
	return f;
}

static __device__ __forceinline__ u16 float_to_half(float f) {
	u16 h;
	asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
	return h;
}

// exp(x) as 2^(x·log2 e) with the hardware's ex2.approx (max 2 ulp): the
// one operation whose rounding the Go model does not reproduce bit for bit.
static __device__ __forceinline__ float fast_exp(float x) {
	float y = x * 1.4426950408889634f, r;
	asm("ex2.approx.f32 %0, %1;" : "=f"(r) : "f"(y));
	return r;
}

static __device__ __forceinline__ float neg_inf() { return __builtin_huge_valf() * -1.0f; }

// Little-endian loads from byte addresses of any alignment.
static __device__ __forceinline__ u32 load_u16(const u8 *p) { return (u32)p[0] | (u32)p[1] << 8; }

static __device__ __forceinline__ float load_f32(const u8 *p) {
	u32 u = (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24;
	return __builtin_bit_cast(float, u);
}
