// codes.cuh: reading TurboQuant codes and cache tokens on the device. The
// layout of a code is described by a small int array built on the host
// (internal/gpucode/layout.go) from turboquant's code layout.
#pragma once
#include "shim.h"

// Part kinds.
#define KIND_MSE 0
#define KIND_PROD 1
#define KIND_F16 2
#define KIND_F32 3

// Layout array: [0] parts, [1] code bytes, then LAYOUT_PART ints per part.
#define LAYOUT_PART 16
#define MAX_PARTS 2
#define LAYOUT_INTS (2 + MAX_PARTS * LAYOUT_PART)
#define P_KIND 0
#define P_DIM 1
#define P_BITS 2
#define P_PREC 3
#define P_CORR 4
#define P_OFF_CODE 5
#define P_OFF_NORM 6
#define P_OFF_CORR 7
#define P_OFF_IDX 8
#define P_OFF_SIGNS 9
#define P_OFF_GAMMA 10
#define P_ROWS 11
#define P_CENT 12
#define P_ROT 13
#define P_PROJ 14
#define P_QJL_SCALE 15

static __device__ __forceinline__ float load_scalar(const u8 *p, int prec) {
	return prec ? load_f32(p) : half_to_float(load_u16(p));
}

// Index j of a packed LSB-first stream of `bits`-wide indices. The second
// byte is read only when the index straddles into it, so the read never
// passes the stream's last byte.
static __device__ __forceinline__ u32 load_index(const u8 *idx, int j, int bits) {
	u32 bit = (u32)j * (u32)bits, byte = bit >> 3, shift = bit & 7;
	u32 w = idx[byte];
	if (shift + bits > 8) w |= (u32)idx[byte + 1] << 8;
	return (w >> shift) & ((1u << bits) - 1);
}

// The scalar a part's centroids are multiplied by: norm × correction.
static __device__ __forceinline__ float part_factor(const u8 *code, const int *p) {
	float f = load_scalar(code + p[P_OFF_NORM], p[P_PREC]);
	if (p[P_CORR]) f = f * load_scalar(code + p[P_OFF_CORR], p[P_PREC]);
	return f;
}

// score_code is ⟨q, x̃⟩ for one code: per part, Σ_j q′[j]·c[idx_j] summed in
// j order, plus for Prod γ·scale·Σ_i proj[i]·(±1), times norm×correction;
// raw parts are a plain dot product. q is the part-concatenated rotated
// query, proj the concatenated sketch projections, cent the centroid table.
static __device__ float score_code(const u8 *code, const int *lay, const float *q, const float *proj,
                                   const float *cent) {
	float total = 0.0f;
	for (int pi = 0; pi < lay[0]; pi++) {
		const int *p = lay + 2 + pi * LAYOUT_PART;
		const u8 *c = code + p[P_OFF_CODE];
		const float *qp = q + p[P_ROT];
		int dim = p[P_DIM], kind = p[P_KIND];
		float s = 0.0f;
		if (kind == KIND_F16) {
			for (int j = 0; j < dim; j++) s = s + qp[j] * half_to_float(load_u16(c + 2 * j));
			total = total + s;
			continue;
		}
		if (kind == KIND_F32) {
			for (int j = 0; j < dim; j++) s = s + qp[j] * load_f32(c + 4 * j);
			total = total + s;
			continue;
		}
		int bits = p[P_BITS];
		if (bits > 0) {
			const float *cb = cent + p[P_CENT];
			const u8 *idx = c + p[P_OFF_IDX];
			for (int j = 0; j < dim; j++) s = s + qp[j] * cb[load_index(idx, j, bits)];
		}
		if (kind == KIND_PROD) {
			const float *pr = proj + p[P_PROJ];
			const u8 *sg = c + p[P_OFF_SIGNS];
			float e = 0.0f;
			for (int i = 0; i < p[P_ROWS]; i++) e = (sg[i >> 3] >> (i & 7) & 1) ? e + pr[i] : e - pr[i];
			float g = load_scalar(c + p[P_OFF_GAMMA], p[P_PREC]);
			s = s + (g * __builtin_bit_cast(float, p[P_QJL_SCALE])) * e;
		}
		total = total + part_factor(c, p) * s;
	}
	return total;
}

// value_coord is coordinate j (in the part-concatenated rotated domain) of
// the value a code decodes to, before the norm: it returns the centroid (or
// the raw value) and sets *factor to the part's norm×correction (1 for raw
// parts). Prod values are refused on the host.
static __device__ __forceinline__ float value_coord(const u8 *code, const int *lay, const float *cent, int j,
                                                    float *factor) {
	int pi = 0;
	if (lay[0] > 1 && j >= lay[2 + LAYOUT_PART + P_ROT]) pi = 1;
	const int *p = lay + 2 + pi * LAYOUT_PART;
	const u8 *c = code + p[P_OFF_CODE];
	int jj = j - p[P_ROT];
	switch (p[P_KIND]) {
	case KIND_F16:
		*factor = 1.0f;
		return half_to_float(load_u16(c + 2 * jj));
	case KIND_F32:
		*factor = 1.0f;
		return load_f32(c + 4 * jj);
	}
	*factor = part_factor(c, p);
	if (p[P_BITS] == 0) return 0.0f;
	return cent[p[P_CENT] + load_index(c + p[P_OFF_IDX], jj, p[P_BITS])];
}
