// Decode attention straight on a cache layer's packed blocks, in three
// dispatches (cuda/kernels/attend.cu fuses the first two):
//   tq_logits: one thread per token, the scaled logits of the whole GQA
//     group (g query heads) from one read of each key code;
//   tq_attend_partial: per (split, KV head, query), softmax statistics of a
//     chunk of tokens and the weighted value sums (P·V in the rotated
//     domain), each value code read once for the group;
//   tq_attend_reduce: merges the splits in split order.
// Blocks are found through a block table, so a layer's blocks may differ in
// layout: the guard's upgraded heads have codes of other codecs (scored
// with their own prepared query, summed apart and rotated back apart), and
// BlockCenter's blocks carry a key and a value drift code per head (a
// logit offset per block, and the block's summed weights times its value
// drift). Partial and reduced rows have cuda's format, plus the upgraded
// codes' sum with the guard, and the host finishes them the same way
// (rotate back, add the value mean, divide by Σe).

struct AttendArgs {
	int B, H, nsink, win_start, win_cap, win_len, compressed;
	int T, g, d, P, chunk, nsplit, n, nacc, drift;
	float scale;
};

// The block table: per (compressed block, KV head) BT_INTS ints, arena byte
// offsets of the head's key codes and value codes, of its key and value
// drift codes (BlockCenter; −1: none), and which layout its codes have (0:
// the base codecs, 1: the guard's upgraded ones, at LAYOUT_INTS in the
// layout arrays).
#define BT_K 0
#define BT_V 1
#define BT_KD 2
#define BT_VD 3
#define BT_UP 4
#define BT_INTS 5

// token says where position pos of KV head h lives: −1 for an fp16 token
// (sinks or window ring; *raw is its key, its value follows at 2d bytes),
// else the layout of its codes (0 base, 1 upgraded), with *e its block's
// table entry and *j its index in the block.
static int token(constant AttendArgs &a, int pos, int h, device const int *btab, device const uchar *sink,
                 device const uchar *win, device const uchar *thread *raw, device const int *thread *e, thread int *j) {
	if (pos < a.nsink || pos >= a.nsink + a.compressed) {
		device const uchar *base = sink;
		int slot = pos;
		if (pos >= a.nsink) {
			base = win;
			slot = (a.win_start + pos - a.nsink - a.compressed) % a.win_cap;
		}
		*raw = base + ulong(slot * a.H + h) * ulong(4 * a.d);
		return -1;
	}
	int c = pos - a.nsink;
	*e = btab + (ulong(c / a.B) * ulong(a.H) + ulong(h)) * BT_INTS;
	*j = c % a.B;
	return (*e)[BT_UP];
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
// sees [0, n − T + t + 1)) are −∞. qrot, qraw, qup: [T][QH][d] (qup: the
// query prepared for the guard's upgraded key codec, when nacc is 3);
// qproj [T][QH][P]; qmu [T][QH] (q·μ_k for centred keys). Threadgroup
// memory: qs, qr [g·d], qp [g·P], qu [g·d] (guard), ds [g·(NT/B + 2)]
// (drift: the key drift scores of the blocks the threadgroup's tokens fall
// in, each computed once).
kernel void tq_logits(constant AttendArgs &a [[buffer(0)]], device const int *klay [[buffer(1)]],
                      device const float *cent [[buffer(2)]], device const uchar *blocks [[buffer(3)]],
                      device const int *btab [[buffer(4)]], device const uchar *sink [[buffer(5)]],
                      device const uchar *win [[buffer(6)]], device const float *qrot [[buffer(7)]],
                      device const float *qproj [[buffer(8)]], device const float *qraw [[buffer(9)]],
                      device const float *qup [[buffer(10)]], device const float *qmu [[buffer(11)]],
                      device float *logits [[buffer(12)]], threadgroup float *qs [[threadgroup(0)]],
                      threadgroup float *qr [[threadgroup(1)]], threadgroup float *qp [[threadgroup(2)]],
                      threadgroup float *qu [[threadgroup(3)]], threadgroup float *ds [[threadgroup(4)]],
                      uint tid [[thread_position_in_threadgroup]], uint3 tg [[threadgroup_position_in_grid]]) {
	int h = int(tg.y), t = int(tg.z), g = a.g, d = a.d, QH = a.H * g;
	ulong q0 = ulong(t * QH + h * g);
	for (int i = int(tid); i < g * d; i += NT) {
		qs[i] = qrot[q0 * ulong(d) + ulong(i)];
		qr[i] = qraw[q0 * ulong(d) + ulong(i)];
		if (a.nacc == 3) qu[i] = qup[q0 * ulong(d) + ulong(i)];
	}
	for (int i = int(tid); i < g * a.P; i += NT) qp[i] = qproj[q0 * ulong(a.P) + ulong(i)];
	threadgroup_barrier(mem_flags::mem_threadgroup);
	int first = int(tg.x) * NT;
	int b0 = 0;
	if (a.drift) {
		int c0 = first - a.nsink, c1 = first + NT - a.nsink;
		c0 = c0 > 0 ? c0 : 0;
		c1 = c1 < a.compressed ? c1 : a.compressed;
		int nb = 0;
		if (c1 > c0) {
			b0 = c0 / a.B;
			nb = (c1 - 1) / a.B - b0 + 1;
		}
		for (int i = int(tid); i < nb * g; i += NT) {
			int bi = i / g, gi = i % g;
			device const int *e = btab + (ulong(b0 + bi) * ulong(a.H) + ulong(h)) * BT_INTS;
			ds[i] = e[BT_KD] >= 0 ? score_code(blocks + e[BT_KD], klay, qs + gi * d, qp + gi * a.P, cent) : 0.0f;
		}
		threadgroup_barrier(mem_flags::mem_threadgroup);
	}
	int pos = first + int(tid);
	if (pos >= a.n) return;
	int limit = a.n - a.T + t + 1;
	device float *out = logits + q0 * ulong(a.n) + ulong(pos);
	if (pos >= limit) {
		for (int gi = 0; gi < g; gi++) out[ulong(gi) * ulong(a.n)] = -INFINITY;
		return;
	}
	device const uchar *raw;
	device const int *e;
	int j;
	int sel = token(a, pos, h, btab, sink, win, &raw, &e, &j);
	device const int *lay = klay + (sel > 0 ? LAYOUT_INTS : 0);
	device const uchar *k = sel < 0 ? raw : blocks + ulong(e[BT_K]) + ulong(j) * ulong(lay[1]);
	for (int gi = 0; gi < g; gi++) {
		float x;
		if (sel < 0) {
			float s = 0.0f;
			threadgroup const float *q = qr + gi * d;
			for (int jj = 0; jj < d; jj++) s = s + q[jj] * half_bits(load_u16(k + 2 * jj));
			x = s;
		} else if (sel == 0) {
			x = score_code(k, lay, qs + gi * d, qp + gi * a.P, cent) + qmu[q0 + ulong(gi)];
			if (a.drift) x = x + ds[((pos - a.nsink) / a.B - b0) * g + gi];
		} else {
			x = score_code(k, lay, qu + gi * d, qp, cent) + qmu[q0 + ulong(gi)];
		}
		out[ulong(gi) * ulong(a.n)] = x * a.scale;
	}
}

// add_drift adds a block's value drift code, with the block's summed
// weights bw (then cleared), to coordinate j of the compressed sums ac.
static void add_drift(device const uchar *code, device const int *vlay, device const float *cent, int j, int g,
                      thread float *bw, thread float *ac) {
	float f;
	float c = value_coord(code, vlay, cent, j, &f);
	for (int gi = 0; gi < g; gi++) {
		ac[gi] = ac[gi] + (bw[gi] * f) * c;
		bw[gi] = 0.0f;
	}
}

// out: per (query t, query head, split) 4 + nacc·d floats: max logit m,
// Σe^(x−m), the same over compressed tokens, 0, then Σw·x̃ over base codes
// (value codec's rotated domain, block drift codes included) [d], Σw·v over
// fp16 tokens [d], and with the guard (nacc 3) Σw·x̃ over upgraded codes
// (their codec's rotated domain) [d]. Threadgroup memory: w [g·chunk], red
// [NT] floats.
kernel void tq_attend_partial(constant AttendArgs &a [[buffer(0)]], device const int *vlay [[buffer(1)]],
                              device const float *cent [[buffer(2)]], device const uchar *blocks [[buffer(3)]],
                              device const int *btab [[buffer(4)]], device const uchar *sink [[buffer(5)]],
                              device const uchar *win [[buffer(6)]], device const float *logits [[buffer(7)]],
                              device float *out [[buffer(8)]], threadgroup float *w [[threadgroup(0)]],
                              threadgroup float *red [[threadgroup(1)]], uint tid [[thread_position_in_threadgroup]],
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

	ulong stride = ulong(4 + a.nacc * d);
	for (int j = int(tid); j < d; j += NT) {
		float ac[MAX_G], ar[MAX_G], au[MAX_G], bw[MAX_G];
		for (int gi = 0; gi < MAX_G; gi++) ac[gi] = ar[gi] = au[gi] = bw[gi] = 0.0f;
		int vd = -1; // the value drift code of the block whose weights bw sums
		for (int i = 0; i < len; i++) {
			device const uchar *raw;
			device const int *e;
			int jj;
			int sel = token(a, start + i, h, btab, sink, win, &raw, &e, &jj);
			int nvd = sel == 0 ? e[BT_VD] : -1;
			if (nvd != vd) {
				if (vd >= 0) add_drift(blocks + vd, vlay, cent, j, g, bw, ac);
				vd = nvd;
			}
			if (sel < 0) {
				float v = half_bits(load_u16(raw + 2 * d + 2 * j));
				for (int gi = 0; gi < g; gi++) ar[gi] = ar[gi] + w[gi * chunk + i] * v;
				continue;
			}
			device const int *lay = vlay + (sel > 0 ? LAYOUT_INTS : 0);
			float f;
			float c = value_coord(blocks + ulong(e[BT_V]) + ulong(jj) * ulong(lay[1]), lay, cent, j, &f);
			if (sel == 0) {
				for (int gi = 0; gi < g; gi++) ac[gi] = ac[gi] + (w[gi * chunk + i] * f) * c;
				if (vd >= 0)
					for (int gi = 0; gi < g; gi++) bw[gi] = bw[gi] + w[gi * chunk + i];
			} else {
				for (int gi = 0; gi < g; gi++) au[gi] = au[gi] + (w[gi * chunk + i] * f) * c;
			}
		}
		if (vd >= 0) add_drift(blocks + vd, vlay, cent, j, g, bw, ac);
		for (int gi = 0; gi < g; gi++) {
			device float *o = out + ((q0 + ulong(gi)) * ulong(a.nsplit) + ulong(split)) * stride;
			o[4 + j] = ac[gi];
			o[4 + d + j] = ar[gi];
			if (a.nacc == 3) o[4 + 2 * d + j] = au[gi];
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
// sum is Σ_s f_s·(split sum) in split order. Output 4 + nacc·d floats: Σe,
// Σe over compressed tokens, 0, 0, then the value sums.
kernel void tq_attend_reduce(constant AttendArgs &a [[buffer(0)]], device const float *part [[buffer(1)]],
                             device float *out [[buffer(2)]], uint tid [[thread_position_in_threadgroup]],
                             uint row [[threadgroup_position_in_grid]]) {
	int d = a.d, nsplit = a.nsplit;
	ulong stride = ulong(4 + a.nacc * d);
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
	for (int j = int(tid); j < a.nacc * d; j += NT) {
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
