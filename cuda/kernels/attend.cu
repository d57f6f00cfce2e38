// Decode attention straight on a cache layer's packed blocks, split over the
// context: tq_attend_partial computes, for one (split, KV head, query), the
// softmax statistics and weighted value sums of a chunk of tokens;
// tq_attend_reduce merges the splits. cuda/model.go is the Go model of both
// and follows the same thread decomposition and reduction order.
#include "codes.cuh"

#define NT 128   // threads per block; the host launches exactly this many
#define MAX_G 16 // query heads per KV head (GQA group)

// Where token pos of KV head h lives: the fp16 sinks, a compressed block,
// or the fp16 window ring. Returns the key bytes and sets *val and *raw.
static __device__ __forceinline__ const u8 *locate(int pos, int h, int H, int d, int B, int ksize, int vsize,
                                                   const u64 *blocks, const u8 *sink, int nsink, const u8 *win,
                                                   int win_start, int win_cap, int compressed, const u8 **val,
                                                   int *raw) {
	if (pos < nsink || pos >= nsink + compressed) {
		const u8 *base = sink;
		int slot = pos;
		if (pos >= nsink) {
			base = win;
			slot = (win_start + pos - nsink - compressed) % win_cap;
		}
		const u8 *k = base + (size_t)(slot * H + h) * 2 * d * 2;
		*val = k + 2 * d;
		*raw = 1;
		return k;
	}
	int c = pos - nsink;
	const u8 *blk = (const u8 *)blocks[c / B];
	int j = c % B;
	*val = blk + (size_t)H * B * ksize + (size_t)(h * B + j) * vsize;
	*raw = 0;
	return blk + (size_t)(h * B + j) * ksize;
}

// drift_codes: KV head h's key and value drift codes of compressed block b
// (BlockCenter): after the value codes, each head's key drift code (ksd
// bytes), then each head's value drift code (vsd bytes); a side whose size
// is 0 has none (null).
static __device__ __forceinline__ void drift_codes(const u64 *blocks, int b, int h, int H, int B, int ksize,
                                                   int vsize, int ksd, int vsd, const u8 **kd, const u8 **vd) {
	const u8 *blk = (const u8 *)blocks[b] + (size_t)H * B * (ksize + vsize);
	*kd = ksd > 0 ? blk + (size_t)h * ksd : 0;
	*vd = vsd > 0 ? blk + (size_t)H * ksd + (size_t)h * vsd : 0;
}

// add_drift adds block b's value drift code of KV head h, with the block's
// summed weights bw (then cleared), to coordinate j of the compressed sums.
static __device__ __forceinline__ void add_drift(const u64 *blocks, int b, int h, int H, int B, int ksize, int vsize, int ksd,
                                 int vsd, const int *lv, const float *cs, int j, int g, float *bw, float *ac) {
	const u8 *kd, *vd;
	drift_codes(blocks, b, h, H, B, ksize, vsize, ksd, vsd, &kd, &vd);
	float f;
	float c = value_coord(vd, lv, cs, j, &f);
#pragma unroll
	for (int gi = 0; gi < MAX_G; gi++) {
		if (gi < g) {
			ac[gi] = ac[gi] + (bw[gi] * f) * c;
			bw[gi] = 0.0f;
		}
	}
}

// Tree reductions over NT values in red[]: at each step thread i < s
// combines red[i] and red[i+s], s = NT/2 … 1. Every thread returns red[0].
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

// Shared memory (dynamic, floats): rotated queries [g][d], raw queries
// [g][d], sketch projections [g][P], centroids [ncent], logits [g][chunk],
// reduction scratch [NT], and with key drift codes the split's blocks'
// drift scores [chunk/B + 2][g].
//
// Output per (query t, query head, split), 4 + 2d floats: max logit m, Σ
// e^(x−m), Σ e^(x−m) over compressed tokens, 0, then Σ w·x̃ over compressed
// tokens in the value codec's rotated domain [d], then Σ w·v over fp16
// tokens [d].
extern "C" __global__ void tq_attend_partial(const int *klay, const int *vlay, const float *cent, int ncent,
                                             const u64 *blocks, int B, int H, int ksize, int vsize, int ksd,
                                             int vsd, const u8 *sink,
                                             int nsink, const u8 *win, int win_start, int win_cap, int win_len,
                                             int compressed, const float *qrot, const float *qproj,
                                             const float *qraw, const float *qmu, int T, int g, int d, int P,
                                             float scale, int chunk, int nsplit, float *out) {
	extern __shared__ float smem[];
	__shared__ int lk[LAYOUT_INTS], lv[LAYOUT_INTS];
	int tid = threadIdx.x, split = blockIdx.x, h = blockIdx.y, t = blockIdx.z;
	int QH = H * g;
	float *qs = smem, *qr = qs + g * d, *qp = qr + g * d, *cs = qp + g * P, *lg = cs + ncent, *red = lg + g * chunk;
	float *ds = red + NT;

	for (int i = tid; i < LAYOUT_INTS; i += NT) {
		lk[i] = klay[i];
		lv[i] = vlay[i];
	}
	for (int i = tid; i < g * d; i += NT) {
		qs[i] = qrot[(size_t)(t * QH + h * g) * d + i];
		qr[i] = qraw[(size_t)(t * QH + h * g) * d + i];
	}
	for (int i = tid; i < g * P; i += NT) qp[i] = qproj[(size_t)(t * QH + h * g) * P + i];
	for (int i = tid; i < ncent; i += NT) cs[i] = cent[i];
	__syncthreads();

	int n = nsink + compressed + win_len;
	int limit = n - T + t + 1; // causal: query t sees tokens [0, limit)
	int start = split * chunk, end = start + chunk < limit ? start + chunk : limit;
	int len = end > start ? end - start : 0;

	// Phase 0: the key drift score of each block the split's compressed
	// tokens fall in, per query head, once.
	int b0 = 0;
	if (ksd > 0) {
		int c0 = start - nsink > 0 ? start - nsink : 0;
		int c1 = end - nsink < compressed ? end - nsink : compressed;
		int nb = 0;
		if (c1 > c0) {
			b0 = c0 / B;
			nb = (c1 - 1) / B - b0 + 1;
		}
		for (int i = tid; i < nb * g; i += NT) {
			const u8 *kd, *vd;
			drift_codes(blocks, b0 + i / g, h, H, B, ksize, vsize, ksd, vsd, &kd, &vd);
			int gi = i % g;
			ds[i] = score_code(kd, lk, qs + gi * d, qp + gi * P, cs);
		}
		__syncthreads();
	}

	// Phase 1: one thread per token (strided), g logits each.
	for (int i = tid; i < len; i += NT) {
		const u8 *val;
		int raw;
		const u8 *k = locate(start + i, h, H, d, B, ksize, vsize, blocks, sink, nsink, win, win_start, win_cap,
		                     compressed, &val, &raw);
		for (int gi = 0; gi < g; gi++) {
			float x;
			if (raw) {
				float s = 0.0f;
				const float *q = qr + gi * d;
				for (int j = 0; j < d; j++) s = s + q[j] * half_to_float(load_u16(k + 2 * j));
				x = s;
			} else {
				x = score_code(k, lk, qs + gi * d, qp + gi * P, cs) + qmu[t * QH + h * g + gi];
				if (ksd > 0) x = x + ds[((start + i - nsink) / B - b0) * g + gi];
			}
			lg[gi * chunk + i] = x * scale;
		}
	}
	__syncthreads();

	// Phase 2: per query head, the split's max, then weights e^(x−m) in
	// place, their sum and their sum over compressed tokens.
	float m[MAX_G], l[MAX_G], wc[MAX_G];
	for (int gi = 0; gi < g; gi++) {
		float *row = lg + gi * chunk;
		float mx = neg_inf();
		for (int i = tid; i < len; i += NT) mx = row[i] > mx ? row[i] : mx;
		m[gi] = block_max(red, mx);
		float s = 0.0f, sc = 0.0f;
		for (int i = tid; i < len; i += NT) {
			float e = fast_exp(row[i] - m[gi]);
			row[i] = e;
			s = s + e;
			int pos = start + i;
			if (pos >= nsink && pos < nsink + compressed) sc = sc + e;
		}
		l[gi] = block_sum(red, s);
		wc[gi] = block_sum(red, sc);
	}

	// Phase 3: one thread per coordinate (strided), tokens in order; each
	// code is read once for the whole group. A block's value drift is added
	// with the block's summed weights when the walk leaves the block.
	size_t stride = 4 + 2 * (size_t)d;
	for (int j = tid; j < d; j += NT) {
		float ac[MAX_G], ar[MAX_G], bw[MAX_G];
#pragma unroll
		for (int gi = 0; gi < MAX_G; gi++) ac[gi] = ar[gi] = bw[gi] = 0.0f;
		int cur = -1; // the block whose weights bw sums
		for (int i = 0; i < len; i++) {
			const u8 *val;
			int raw;
			locate(start + i, h, H, d, B, ksize, vsize, blocks, sink, nsink, win, win_start, win_cap, compressed,
			       &val, &raw);
			int b = !raw && vsd > 0 ? (start + i - nsink) / B : -1;
			if (b != cur) {
				if (cur >= 0) add_drift(blocks, cur, h, H, B, ksize, vsize, ksd, vsd, lv, cs, j, g, bw, ac);
				cur = b;
			}
			if (raw) {
				float v = half_to_float(load_u16(val + 2 * j));
#pragma unroll
				for (int gi = 0; gi < MAX_G; gi++)
					if (gi < g) ar[gi] = ar[gi] + lg[gi * chunk + i] * v;
			} else {
				float f;
				float c = value_coord(val, lv, cs, j, &f);
#pragma unroll
				for (int gi = 0; gi < MAX_G; gi++)
					if (gi < g) ac[gi] = ac[gi] + (lg[gi * chunk + i] * f) * c;
				if (cur >= 0) {
#pragma unroll
					for (int gi = 0; gi < MAX_G; gi++)
						if (gi < g) bw[gi] = bw[gi] + lg[gi * chunk + i];
				}
			}
		}
		if (cur >= 0) add_drift(blocks, cur, h, H, B, ksize, vsize, ksd, vsd, lv, cs, j, g, bw, ac);
#pragma unroll
		for (int gi = 0; gi < MAX_G; gi++) {
			if (gi < g) {
				float *o = out + ((size_t)(t * QH + h * g + gi) * nsplit + split) * stride;
				o[4 + j] = ac[gi];
				o[4 + d + j] = ar[gi];
			}
		}
	}
	if (tid == 0) {
		for (int gi = 0; gi < g; gi++) {
			float *o = out + ((size_t)(t * QH + h * g + gi) * nsplit + split) * stride;
			o[0] = m[gi];
			o[1] = l[gi];
			o[2] = wc[gi];
			o[3] = 0.0f;
		}
	}
}

// tq_attend_reduce merges the splits of one (query, query head) row: with
// M the largest split max and f_s = e^(m_s − M) (0 for an empty split),
// every sum is Σ_s f_s·(split sum), in split order. Output 4 + 2d floats:
// Σe, Σe over compressed tokens, 0, 0, then the two value sums; the host
// rotates the compressed sum back, adds the value mean if centred, and
// divides by Σe.
extern "C" __global__ void tq_attend_reduce(const float *part, int nsplit, int d, float *out) {
	int tid = threadIdx.x, row = blockIdx.x;
	size_t stride = 4 + 2 * (size_t)d;
	const float *p = part + (size_t)row * nsplit * stride;
	float M = neg_inf();
	for (int s = 0; s < nsplit; s++)
		if (p[s * stride + 1] > 0.0f && p[s * stride] > M) M = p[s * stride];
	float l = 0.0f, wc = 0.0f;
	for (int s = 0; s < nsplit; s++) {
		const float *q = p + s * stride;
		float f = q[1] > 0.0f ? fast_exp(q[0] - M) : 0.0f;
		l = l + q[1] * f;
		wc = wc + q[2] * f;
	}
	float *o = out + (size_t)row * stride;
	for (int j = tid; j < 2 * d; j += NT) {
		float a = 0.0f;
		for (int s = 0; s < nsplit; s++) {
			const float *q = p + s * stride;
			float f = q[1] > 0.0f ? fast_exp(q[0] - M) : 0.0f;
			a = a + q[4 + j] * f;
		}
		o[4 + j] = a;
	}
	if (tid == 0) {
		o[0] = l;
		o[1] = wc;
		o[2] = 0.0f;
		o[3] = 0.0f;
	}
}
