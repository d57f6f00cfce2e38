// common.metal: what every kernel shares. The Go side concatenates
// common.metal, encode.metal and attend.metal into one source for
// newLibraryWithSource (MSL has no include path at run time); on Linux the
// same three files compile as C++ behind testdata/msl_host.h.
//
// Code layouts are cuda/kernels/codes.cuh's: the int array built on the host
// from turboquant's code layout (internal/gpucode/layout.go), so one spec describes
// the codes on both GPUs.
#ifndef TQ_HOST
#include <metal_stdlib>
using namespace metal;
#endif

#define KIND_MSE 0
#define KIND_PROD 1
#define KIND_F16 2
#define KIND_F32 3

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

#define NT 128   // threads per threadgroup of the attention kernels
#define MAX_G 16 // query heads per KV head

// Input element types of the encode kernel.
#define IN_F32 0
#define IN_F16 1
#define IN_BF16 2

// IEEE half and bfloat16 bits to float: exact.
static inline float half_bits(uint h) { return float(as_type<half>(ushort(h))); }
static inline float bf16_bits(uint b) { return as_type<float>(b << 16); }
// float to IEEE half bits, round to nearest even.
static inline uint half_from(float f) { return uint(as_type<ushort>(half(f))); }

// Little-endian loads from byte addresses of any alignment.
static inline uint load_u16(device const uchar *p) { return uint(p[0]) | uint(p[1]) << 8; }
static inline float load_f32(device const uchar *p) {
	return as_type<float>(uint(p[0]) | uint(p[1]) << 8 | uint(p[2]) << 16 | uint(p[3]) << 24);
}
static inline float load_scalar(device const uchar *p, int prec) { return prec ? load_f32(p) : half_bits(load_u16(p)); }

// Index j of a packed LSB-first stream of `bits`-wide indices; the second
// byte is read only when the index straddles into it.
static inline uint load_index(device const uchar *idx, int j, int bits) {
	uint bit = uint(j) * uint(bits), byte = bit >> 3, shift = bit & 7;
	uint w = idx[byte];
	if (shift + uint(bits) > 8) w |= uint(idx[byte + 1]) << 8;
	return (w >> shift) & ((1u << bits) - 1);
}

static inline float part_factor(device const uchar *code, device const int *p) {
	float f = load_scalar(code + p[P_OFF_NORM], p[P_PREC]);
	if (p[P_CORR]) f = f * load_scalar(code + p[P_OFF_CORR], p[P_PREC]);
	return f;
}

// score_code is ⟨q, x̃⟩ for one code, as codes.cuh's score_code: per part
// Σ_j q′[j]·c[idx_j] in j order, plus for Prod γ·scale·Σ_i proj[i]·(±1),
// times norm×correction; raw parts are a plain dot product.
static float score_code(device const uchar *code, device const int *lay, threadgroup const float *q,
                        threadgroup const float *proj, device const float *cent) {
	float total = 0.0f;
	for (int pi = 0; pi < lay[0]; pi++) {
		device const int *p = lay + 2 + pi * LAYOUT_PART;
		device const uchar *c = code + p[P_OFF_CODE];
		threadgroup const float *qp = q + p[P_ROT];
		int dim = p[P_DIM], kind = p[P_KIND];
		float s = 0.0f;
		if (kind == KIND_F16) {
			for (int j = 0; j < dim; j++) s = s + qp[j] * half_bits(load_u16(c + 2 * j));
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
			device const float *cb = cent + p[P_CENT];
			device const uchar *idx = c + p[P_OFF_IDX];
			for (int j = 0; j < dim; j++) s = s + qp[j] * cb[load_index(idx, j, bits)];
		}
		if (kind == KIND_PROD) {
			threadgroup const float *pr = proj + p[P_PROJ];
			device const uchar *sg = c + p[P_OFF_SIGNS];
			float e = 0.0f;
			for (int i = 0; i < p[P_ROWS]; i++) e = ((sg[i >> 3] >> (i & 7)) & 1) ? e + pr[i] : e - pr[i];
			float g = load_scalar(c + p[P_OFF_GAMMA], p[P_PREC]);
			s = s + (g * as_type<float>(p[P_QJL_SCALE])) * e;
		}
		total = total + part_factor(c, p) * s;
	}
	return total;
}

// value_coord is coordinate j (part-concatenated rotated domain) of the
// value a code decodes to, before its part's factor (norm×correction, 1 for
// raw parts), which it stores in *factor. Prod values are refused on the host.
static float value_coord(device const uchar *code, device const int *lay, device const float *cent, int j,
                         thread float *factor) {
	int pi = 0;
	if (lay[0] > 1 && j >= lay[2 + LAYOUT_PART + P_ROT]) pi = 1;
	device const int *p = lay + 2 + pi * LAYOUT_PART;
	device const uchar *c = code + p[P_OFF_CODE];
	int jj = j - p[P_ROT];
	if (p[P_KIND] == KIND_F16) {
		*factor = 1.0f;
		return half_bits(load_u16(c + 2 * jj));
	}
	if (p[P_KIND] == KIND_F32) {
		*factor = 1.0f;
		return load_f32(c + 4 * jj);
	}
	*factor = part_factor(c, p);
	if (p[P_BITS] == 0) return 0.0f;
	return cent[p[P_CENT] + load_index(c + p[P_OFF_IDX], jj, p[P_BITS])];
}
