// Batched encode of MSE codes for power-of-two dims: one block per vector,
// one thread per coordinate. Byte-identical to turboquant's CPU encoder:
// the norm is summed in float64 (squares of floats are exact there), the
// rotation runs the same butterflies with the same sign and scale constants
// (float32, no fused multiply-adds), the index is the count of boundaries
// strictly below the coordinate, and bits are packed LSB-first.
// cuda/model.go's EncodeModel follows the same steps.
#include "shim.h"

// x: [n][d] float32 inputs. signs: [rounds][d] the rotation's per-round sign
// (±1, or ±2^-k where a normalisation is folded in), final: the last
// normalisation. bounds: the codebook's 2^bits − 1 float32 boundaries.
// codes: [n][code_size] with the norm (fp16 if prec is 0, else fp32) at
// byte 0 and the indices at off_idx. status[i] is set to 1 when vector i's
// norm does not fit the norm's precision (its code is then not written).
extern "C" __global__ void tq_encode_mse(const float *x, int n, int d, int bits, int prec, int rounds,
                                         const float *signs, float final_scale, const float *bounds, u8 *codes,
                                         int code_size, int off_idx, int *status) {
	extern __shared__ double dsm[];
	double *ss = dsm;             // [d]
	float *u = (float *)(ss + d); // [d]
	u8 *idx = (u8 *)(u + d);      // [d]
	int j = threadIdx.x, v = blockIdx.x;
	if (v >= n) return;
	float xj = x[(size_t)v * d + j];
	ss[j] = (double)xj * (double)xj;
	u[j] = xj;
	__syncthreads();
	for (int s = d / 2; s > 0; s >>= 1) {
		if (j < s) ss[j] = ss[j] + ss[j + s];
		__syncthreads();
	}
	double nrm = __builtin_sqrt(ss[0]);
	u8 *code = codes + (size_t)v * code_size;
	int fits = prec ? nrm <= 3.4028234663852886e38 : nrm < 65520.0;
	if (!fits) {
		if (j == 0) status[v] = 1;
		return;
	}
	float inv = nrm > 0.0 ? (float)(1.0 / nrm) : 0.0f;
	for (int r = 0; r < rounds; r++) {
		u[j] = u[j] * signs[r * d + j];
		__syncthreads();
		for (int h = 1; h < d; h <<= 1) {
			if ((j & h) == 0) {
				float a = u[j], b = u[j + h];
				u[j] = a + b;
				u[j + h] = a - b;
			}
			__syncthreads();
		}
	}
	float y = nrm > 0.0 ? u[j] * (final_scale * inv) : 0.0f;
	int nb = (1 << bits) - 1, k = 0;
	for (int i = 0; i < nb; i++) k += bounds[i] < y;
	idx[j] = (u8)k;
	__syncthreads();
	int nbytes = (d * bits + 7) / 8;
	for (int b = j; b < nbytes; b += d) {
		u32 acc = 0;
		int lo = (8 * b) / bits, hi = (8 * b + 7) / bits;
		for (int c = lo; c <= hi && c < d; c++) {
			int shift = c * bits - 8 * b; // may be negative for an index straddling in
			u32 w = idx[c];
			acc |= shift >= 0 ? w << shift : w >> -shift;
		}
		code[off_idx + b] = (u8)acc;
	}
	if (j == 0) {
		status[v] = 0;
		float f = (float)nrm;
		if (prec) {
			u32 w = __builtin_bit_cast(u32, f);
			code[0] = w, code[1] = w >> 8, code[2] = w >> 16, code[3] = w >> 24;
		} else {
			u16 hf = float_to_half(f);
			code[0] = hf, code[1] = hf >> 8;
		}
	}
}
