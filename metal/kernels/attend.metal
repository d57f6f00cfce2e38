// Decode attention straight on a cache layer's packed blocks, in three
// dispatches (cuda/kernels/attend.cu fuses the first two):
//   tq_logits: one thread per token, the scaled logits of the whole GQA
//     group (g query heads) from one read of each key code;
//   tq_attend_partial: per (split, KV head, query), softmax statistics of a
//     chunk of tokens and the weighted value sums (P·V in the rotated
//     domain), each value code read once for the group;
//   tq_attend_reduce: merges the splits in split order.
// Partial and reduced rows have cuda's format, so the host finishes them
// the same way (rotate back, add the value mean, divide by Σe).

struct AttendArgs {
	int B, H, ksize, vsize, block_bytes, nsink, win_start, win_cap, win_len, compressed;
	int T, g, d, P, chunk, nsplit, n;
	float scale;
};

// Where token pos of KV head h lives: the fp16 sinks, a compressed block
// (block i at i·block_bytes of the arena), or the fp16 window ring.
static device const uchar *locate(constant AttendArgs &a, int pos, int h, device const uchar *blocks,
                                  device const uchar *sink, device const uchar *win, device const uchar *thread *val,
                                  thread int *raw) {
	if (pos < a.nsink || pos >= a.nsink + a.compressed) {
		device const uchar *base = sink;
		int slot = pos;
		if (pos >= a.nsink) {
			base = win;
			slot = (a.win_start + pos - a.nsink - a.compressed) % a.win_cap;
		}
		device const uchar *k = base + ulong(slot * a.H + h) * ulong(4 * a.d);
		*val = k + 2 * a.d;
		*raw = 1;
		return k;
	}
	int c = pos - a.nsink;
	device const uchar *blk = blocks + ulong(c / a.B) * ulong(a.block_bytes);
	int j = c % a.B;
	*val = blk + ulong(a.H * a.B) * ulong(a.ksize) + ulong(h * a.B + j) * ulong(a.vsize);
	*raw = 0;
	return blk + ulong(h * a.B + j) * ulong(a.ksize);
}

// Threadgroup-wide max and sum: simdgroup reductions, then the simdgroups'
// partials folded in simdgroup order by every thread. The simdgroup width
// is the device's (32 on Apple GPUs, others on Intel and AMD Macs), so red
// has room for NT partials.
static float tg_max(threadgroup float *red, float x, uint lane, uint sg, uint nsg) {
	float r = simd_max(x);
	if (lane == 0) red[sg] = r;
	threadgroup_barrier(mem_flags::mem_threadgroup);
	float m = red[0];
	for (uint i = 1; i < nsg; i++) m = red[i] > m ? red[i] : m;
	threadgroup_barrier(mem_flags::mem_threadgroup);
	return m;
}

static float tg_sum(threadgroup float *red, float x, uint lane, uint sg, uint nsg) {
	float r = simd_sum(x);
	if (lane == 0) red[sg] = r;
	threadgroup_barrier(mem_flags::mem_threadgroup);
	float s = red[0];
	for (uint i = 1; i < nsg; i++) s = s + red[i];
	threadgroup_barrier(mem_flags::mem_threadgroup);
	return s;
}

// logits: [T][QH][n], scaled; tokens a query may not see (causal: query t
// sees [0, n − T + t + 1)) are −∞. qrot, qraw: [T][QH][d]; qproj [T][QH][P];
// qmu [T][QH] (q·μ_k for centred keys). Threadgroup memory: qs [g·d],
// qr [g·d], qp [g·P] floats.
kernel void tq_logits(constant AttendArgs &a [[buffer(0)]], device const int *klay [[buffer(1)]],
                      device const float *cent [[buffer(2)]], device const uchar *blocks [[buffer(3)]],
                      device const uchar *sink [[buffer(4)]], device const uchar *win [[buffer(5)]],
                      device const float *qrot [[buffer(6)]], device const float *qproj [[buffer(7)]],
                      device const float *qraw [[buffer(8)]], device const float *qmu [[buffer(9)]],
                      device float *logits [[buffer(10)]], threadgroup float *qs [[threadgroup(0)]],
                      threadgroup float *qr [[threadgroup(1)]], threadgroup float *qp [[threadgroup(2)]],
                      uint tid [[thread_position_in_threadgroup]], uint3 tg [[threadgroup_position_in_grid]]) {
	int h = int(tg.y), t = int(tg.z), g = a.g, d = a.d, QH = a.H * g;
	ulong q0 = ulong(t * QH + h * g);
	for (int i = int(tid); i < g * d; i += NT) {
		qs[i] = qrot[q0 * ulong(d) + ulong(i)];
		qr[i] = qraw[q0 * ulong(d) + ulong(i)];
	}
	for (int i = int(tid); i < g * a.P; i += NT) qp[i] = qproj[q0 * ulong(a.P) + ulong(i)];
	threadgroup_barrier(mem_flags::mem_threadgroup);
	int pos = int(tg.x) * NT + int(tid);
	if (pos >= a.n) return;
	int limit = a.n - a.T + t + 1;
	device float *out = logits + q0 * ulong(a.n) + ulong(pos);
	if (pos >= limit) {
		for (int gi = 0; gi < g; gi++) out[ulong(gi) * ulong(a.n)] = -INFINITY;
		return;
	}
	device const uchar *val;
	int raw;
	device const uchar *k = locate(a, pos, h, blocks, sink, win, &val, &raw);
	for (int gi = 0; gi < g; gi++) {
		float x;
		if (raw) {
			float s = 0.0f;
			threadgroup const float *q = qr + gi * d;
			for (int j = 0; j < d; j++) s = s + q[j] * half_bits(load_u16(k + 2 * j));
			x = s;
		} else {
			x = score_code(k, klay, qs + gi * d, qp + gi * a.P, cent) + qmu[q0 + ulong(gi)];
		}
		out[ulong(gi) * ulong(a.n)] = x * a.scale;
	}
}

// out: per (query t, query head, split) 4 + 2d floats: max logit m,
// Σe^(x−m), the same over compressed tokens, 0, then Σw·x̃ over compressed
// tokens (value codec's rotated domain) [d], then Σw·v over fp16 tokens [d].
// Threadgroup memory: w [g·chunk], red [NT] floats.
kernel void tq_attend_partial(constant AttendArgs &a [[buffer(0)]], device const int *vlay [[buffer(1)]],
                              device const float *cent [[buffer(2)]], device const uchar *blocks [[buffer(3)]],
                              device const uchar *sink [[buffer(4)]], device const uchar *win [[buffer(5)]],
                              device const float *logits [[buffer(6)]], device float *out [[buffer(7)]],
                              threadgroup float *w [[threadgroup(0)]], threadgroup float *red [[threadgroup(1)]],
                              uint tid [[thread_position_in_threadgroup]],
                              uint3 tg [[threadgroup_position_in_grid]], uint lane [[thread_index_in_simdgroup]],
                              uint sg [[simdgroup_index_in_threadgroup]],
                              uint nsg [[simdgroups_per_threadgroup]]) {
	int split = int(tg.x), h = int(tg.y), t = int(tg.z), g = a.g, d = a.d, chunk = a.chunk;
	int QH = a.H * g;
	ulong q0 = ulong(t * QH + h * g);
	int limit = a.n - a.T + t + 1;
	int start = split * chunk, end = start + chunk < limit ? start + chunk : limit;
	int len = end > start ? end - start : 0;

	float m[MAX_G], l[MAX_G], wc[MAX_G];
	for (int gi = 0; gi < g; gi++) {
		device const float *row = logits + (q0 + ulong(gi)) * ulong(a.n) + ulong(start);
		threadgroup float *wr = w + gi * chunk;
		float mx = -INFINITY;
		for (int i = int(tid); i < len; i += NT) mx = row[i] > mx ? row[i] : mx;
		m[gi] = tg_max(red, mx, lane, sg, nsg);
		float s = 0.0f, sc = 0.0f;
		for (int i = int(tid); i < len; i += NT) {
			float e = exp(row[i] - m[gi]);
			wr[i] = e;
			s = s + e;
			int pos = start + i;
			if (pos >= a.nsink && pos < a.nsink + a.compressed) sc = sc + e;
		}
		l[gi] = tg_sum(red, s, lane, sg, nsg);
		wc[gi] = tg_sum(red, sc, lane, sg, nsg);
	}
	threadgroup_barrier(mem_flags::mem_threadgroup);

	ulong stride = ulong(4 + 2 * d);
	for (int j = int(tid); j < d; j += NT) {
		float ac[MAX_G], ar[MAX_G];
		for (int gi = 0; gi < MAX_G; gi++) ac[gi] = ar[gi] = 0.0f;
		for (int i = 0; i < len; i++) {
			device const uchar *val;
			int raw;
			locate(a, start + i, h, blocks, sink, win, &val, &raw);
			if (raw) {
				float v = half_bits(load_u16(val + 2 * j));
				for (int gi = 0; gi < g; gi++) ar[gi] = ar[gi] + w[gi * chunk + i] * v;
			} else {
				float f;
				float c = value_coord(val, vlay, cent, j, &f);
				for (int gi = 0; gi < g; gi++) ac[gi] = ac[gi] + (w[gi * chunk + i] * f) * c;
			}
		}
		for (int gi = 0; gi < g; gi++) {
			device float *o = out + ((q0 + ulong(gi)) * ulong(a.nsplit) + ulong(split)) * stride;
			o[4 + j] = ac[gi];
			o[4 + d + j] = ar[gi];
		}
	}
	if (tid == 0) {
		for (int gi = 0; gi < g; gi++) {
			device float *o = out + ((q0 + ulong(gi)) * ulong(a.nsplit) + ulong(split)) * stride;
			o[0] = m[gi];
			o[1] = l[gi];
			o[2] = wc[gi];
			o[3] = 0.0f;
		}
	}
}

// tq_attend_reduce merges the splits of one (query, query head) row: with M
// the largest split max and f_s = e^(m_s − M) (0 for an empty split), every
// sum is Σ_s f_s·(split sum) in split order. Output 4 + 2d floats: Σe, Σe
// over compressed tokens, 0, 0, then the two value sums.
kernel void tq_attend_reduce(constant AttendArgs &a [[buffer(0)]], device const float *part [[buffer(1)]],
                             device float *out [[buffer(2)]], uint tid [[thread_position_in_threadgroup]],
                             uint row [[threadgroup_position_in_grid]]) {
	int d = a.d, nsplit = a.nsplit;
	ulong stride = ulong(4 + 2 * d);
	device const float *p = part + ulong(row) * ulong(nsplit) * stride;
	float M = -INFINITY;
	for (int s = 0; s < nsplit; s++)
		if (p[ulong(s) * stride + 1] > 0.0f && p[ulong(s) * stride] > M) M = p[ulong(s) * stride];
	float l = 0.0f, wc = 0.0f;
	for (int s = 0; s < nsplit; s++) {
		device const float *q = p + ulong(s) * stride;
		float f = q[1] > 0.0f ? exp(q[0] - M) : 0.0f;
		l = l + q[1] * f;
		wc = wc + q[2] * f;
	}
	device float *o = out + ulong(row) * stride;
	for (int j = int(tid); j < 2 * d; j += NT) {
		float acc = 0.0f;
		for (int s = 0; s < nsplit; s++) {
			device const float *q = p + ulong(s) * stride;
			float f = q[1] > 0.0f ? exp(q[0] - M) : 0.0f;
			acc = acc + q[4 + j] * f;
		}
		o[4 + j] = acc;
	}
	if (tid == 0) {
		o[0] = l;
		o[1] = wc;
		o[2] = 0.0f;
		o[3] = 0.0f;
	}
}
