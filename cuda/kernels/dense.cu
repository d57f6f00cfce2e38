// Baseline attention over plain fp16 or fp32 keys and values, laid out
// [tokens][KV heads][d], with the same split structure and output format as
// tq_attend_partial (the compressed-token sums hold everything; the fp16
// sums and the compressed weight are 0), so tq_attend_reduce merges it. It
// is what the compressed kernels' speed is compared against.
#include "shim.h"

#define NT 128
#define MAX_G 16

static __device__ float block_max(float *red, float x) {
	int tid = threadIdx.x;
	red[tid] = x;
	__syncthreads();
	for (int s = NT / 2; s > 0; s >>= 1) {
		if (tid < s) red[tid] = red[tid + s] > red[tid] ? red[tid + s] : red[tid];
		__syncthreads();
	}
	float r = red[0];
	__syncthreads();
	return r;
}

static __device__ float block_sum(float *red, float x) {
	int tid = threadIdx.x;
	red[tid] = x;
	__syncthreads();
	for (int s = NT / 2; s > 0; s >>= 1) {
		if (tid < s) red[tid] = red[tid] + red[tid + s];
		__syncthreads();
	}
	float r = red[0];
	__syncthreads();
	return r;
}

template <typename E> static __device__ __forceinline__ float elem(const E *p);
template <> __device__ __forceinline__ float elem<u16>(const u16 *p) { return half_to_float(*p); }
template <> __device__ __forceinline__ float elem<float>(const float *p) { return *p; }

// Shared memory (dynamic, floats): queries [g][d], logits [g][chunk],
// reduction scratch [NT].
template <typename E>
static __device__ void dense_partial(const E *K, const E *V, int n, int H, const float *q, int T, int g, int d,
                                     float scale, int chunk, int nsplit, float *out) {
	extern __shared__ float smem[];
	int tid = threadIdx.x, split = blockIdx.x, h = blockIdx.y, t = blockIdx.z;
	int QH = H * g;
	float *qs = smem, *lg = qs + g * d, *red = lg + g * chunk;
	for (int i = tid; i < g * d; i += NT) qs[i] = q[(size_t)(t * QH + h * g) * d + i];
	__syncthreads();
	int limit = n - T + t + 1;
	int start = split * chunk, end = start + chunk < limit ? start + chunk : limit;
	int len = end > start ? end - start : 0;

	for (int i = tid; i < len; i += NT) {
		const E *k = K + ((size_t)(start + i) * H + h) * d;
		for (int gi = 0; gi < g; gi++) {
			float s = 0.0f;
			for (int j = 0; j < d; j++) s = s + qs[gi * d + j] * elem(k + j);
			lg[gi * chunk + i] = s * scale;
		}
	}
	__syncthreads();

	float m[MAX_G], l[MAX_G];
	for (int gi = 0; gi < g; gi++) {
		float *row = lg + gi * chunk;
		float mx = neg_inf();
		for (int i = tid; i < len; i += NT) mx = row[i] > mx ? row[i] : mx;
		m[gi] = block_max(red, mx);
		float s = 0.0f;
		for (int i = tid; i < len; i += NT) {
			float e = fast_exp(row[i] - m[gi]);
			row[i] = e;
			s = s + e;
		}
		l[gi] = block_sum(red, s);
	}

	size_t stride = 4 + 2 * (size_t)d;
	for (int j = tid; j < d; j += NT) {
		float ac[MAX_G];
#pragma unroll
		for (int gi = 0; gi < MAX_G; gi++) ac[gi] = 0.0f;
		for (int i = 0; i < len; i++) {
			float v = elem(V + ((size_t)(start + i) * H + h) * d + j);
#pragma unroll
			for (int gi = 0; gi < MAX_G; gi++)
				if (gi < g) ac[gi] = ac[gi] + lg[gi * chunk + i] * v;
		}
#pragma unroll
		for (int gi = 0; gi < MAX_G; gi++) {
			if (gi < g) {
				float *o = out + ((size_t)(t * QH + h * g + gi) * nsplit + split) * stride;
				o[4 + j] = ac[gi];
				o[4 + d + j] = 0.0f;
			}
		}
	}
	if (tid == 0) {
		for (int gi = 0; gi < g; gi++) {
			float *o = out + ((size_t)(t * QH + h * g + gi) * nsplit + split) * stride;
			o[0] = m[gi];
			o[1] = l[gi];
			o[2] = 0.0f;
			o[3] = 0.0f;
		}
	}
}

extern "C" __global__ void dense_attend_partial_f16(const u16 *K, const u16 *V, int n, int H, const float *q, int T,
                                                    int g, int d, float scale, int chunk, int nsplit, float *out) {
	dense_partial<u16>(K, V, n, H, q, T, g, d, scale, chunk, nsplit, out);
}

extern "C" __global__ void dense_attend_partial_f32(const float *K, const float *V, int n, int H, const float *q,
                                                    int T, int g, int d, float scale, int chunk, int nsplit,
                                                    float *out) {
	dense_partial<float>(K, V, n, H, q, T, g, d, scale, chunk, nsplit, out);
}
