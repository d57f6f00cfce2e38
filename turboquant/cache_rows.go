package turboquant

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/turboquant-go/tq/internal/simd"
)

// The row path of attention: each run of tokens (the sinks, one block, a
// piece of the window ring) is decoded into a small buffer of float32 rows
// in the codec's domain (rotated, norm applied) that stays in cache, then
// scored against all the group's queries and accumulated with their softmax
// weights by the internal/simd kernels. Keys and values are each read once
// per query group. Codecs without a row form (PolarQuant, QJL, corrected or
// fp32-norm codes) use the per-code path in cache_attend.go.

// rowOverride forces the row path on (1) or off (−1); 0 leaves the choice
// to rowKernels. Tests force both paths.
var rowOverride int

// rowKernels reports whether the row path runs where the codecs allow it:
// when vector kernels are active. The generic twins are slower than the
// per-code lookup tables, so without SIMD the per-code path stays.
func rowKernels() bool {
	if rowOverride != 0 {
		return rowOverride > 0
	}
	return simd.Active() != simd.Generic
}

// rowChunk is the most rows decoded at once: 64 rows of d=128 are 32 KiB.
const rowChunk = 64

// rowCodec is implemented by codecs with a row form. Scores and weighted
// sums are added to what out and acc hold; q and acc have rows of HeadDim.
type rowCodec interface {
	// rowForm reports whether the other methods are available.
	rowForm() bool
	// queryRow writes y mapped into the codec's domain to dst (len dim);
	// tmp is scratch of len dim.
	queryRow(dst, y, tmp []float32)
	// scoreRun adds ⟨q_i, code t⟩ to out[i*outStride+t] for the g query
	// rows and the n codes (code t at codes[t*stride:]); buf is scratch of
	// rowChunk rows.
	scoreRun(out []float32, outStride int, q []float32, g int, codes []byte, stride, n int, buf []float32)
	// accumulateRun adds Σ_t w[i*wStride+t]·code t to acc row i.
	accumulateRun(acc, w []float32, wStride, g int, codes []byte, stride, n int, buf []float32)
}

func (c quantCodec) rowForm() bool {
	for _, p := range c.q.parts {
		if p.method != MSE || p.corr != NoCorrection || p.prec != FP16 || p.kern == nil {
			return false
		}
	}
	return true
}

func (c quantCodec) queryRow(dst, y, tmp []float32) {
	q := c.q
	if q.channels == nil {
		q.parts[0].rot.Forward(dst, y)
		return
	}
	off := 0
	for i, p := range q.parts {
		sub := gather(tmp, y, q.channels[i])
		p.rot.Forward(dst[off:off+p.dim], sub)
		off += p.dim
	}
}

// Codes of up to 4 bits run through the fused kernels (unpack and multiply
// in registers); 8-bit codes are decoded into rows first (a gather each).

func (c quantCodec) scoreRun(out []float32, outStride int, q []float32, g int, codes []byte, stride, n int, buf []float32) {
	d, off, coff := c.q.cfg.Dim, 0, 0
	for _, p := range c.q.parts {
		if p.bits <= 4 {
			simd.DotCodes(out, outStride, q[off:], d, g, p.kern, codes[coff:], stride, p.offIdx, p.offNorm, n, p.dim)
		} else {
			simd.DecodeCodes(buf, p.dim, p.kern, codes[coff:], stride, p.offIdx, p.offNorm, n, p.dim)
			for i := range g {
				simd.Dot(out[i*outStride:], outStride, q[i*d+off:i*d+off+p.dim], buf, n, p.dim, p.dim)
			}
		}
		off += p.dim
		coff += p.size
	}
}

func (c quantCodec) accumulateRun(acc, w []float32, wStride, g int, codes []byte, stride, n int, buf []float32) {
	d, off, coff := c.q.cfg.Dim, 0, 0
	for _, p := range c.q.parts {
		if p.bits <= 4 {
			simd.AxpyCodes(acc[off:], d, w, wStride, g, p.kern, codes[coff:], stride, p.offIdx, p.offNorm, n, p.dim)
		} else {
			simd.DecodeCodes(buf, p.dim, p.kern, codes[coff:], stride, p.offIdx, p.offNorm, n, p.dim)
			for i := range g {
				simd.Axpy(acc[i*d+off:i*d+off+p.dim], w[i*wStride:], wStride, buf, n, p.dim, p.dim)
			}
		}
		off += p.dim
		coff += p.size
	}
}

func (c fp16Codec) rowForm() bool { return true }

func (c fp16Codec) queryRow(dst, y, _ []float32) { copy(dst, y) }

func (c fp16Codec) scoreRun(out []float32, outStride int, q []float32, g int, codes []byte, stride, n int, buf []float32) {
	simd.DecodeF16(buf, c.dim, codes, stride, n, c.dim)
	simd.Dot(out, outStride, q[:g*c.dim], buf, n, c.dim, c.dim)
}

func (c fp16Codec) accumulateRun(acc, w []float32, wStride, g int, codes []byte, stride, n int, buf []float32) {
	simd.DecodeF16(buf, c.dim, codes, stride, n, c.dim)
	simd.Axpy(acc[:g*c.dim], w, wStride, buf, n, c.dim, c.dim)
}

func (c fp32Codec) rowForm() bool { return true }

func (c fp32Codec) queryRow(dst, y, _ []float32) { copy(dst, y) }

func (c fp32Codec) scoreRun(out []float32, outStride int, q []float32, g int, codes []byte, stride, n int, buf []float32) {
	rows, rs := c.rows(buf, codes, stride, n)
	simd.Dot(out, outStride, q[:g*c.dim], rows, n, c.dim, rs)
}

func (c fp32Codec) accumulateRun(acc, w []float32, wStride, g int, codes []byte, stride, n int, buf []float32) {
	rows, rs := c.rows(buf, codes, stride, n)
	simd.Axpy(acc[:g*c.dim], w, wStride, rows, n, c.dim, rs)
}

// littleEndian is true on the platforms whose float32 memory layout is the
// codes' byte order, where fp32 rows are read in place.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// rows returns the n codes as float32 rows and their stride: a view of the
// codes where the layout allows, else a copy in buf.
func (c fp32Codec) rows(buf []float32, codes []byte, stride, n int) ([]float32, int) {
	need := (n-1)*stride + 4*c.dim
	if littleEndian && stride%4 == 0 && uintptr(unsafe.Pointer(&codes[0]))%4 == 0 {
		return unsafe.Slice((*float32)(unsafe.Pointer(&codes[0])), need/4), stride / 4
	}
	for t := range n {
		row := buf[t*c.dim : (t+1)*c.dim]
		for j := range row {
			row[j] = math.Float32frombits(binary.LittleEndian.Uint32(codes[t*stride+4*j:]))
		}
	}
	return buf, c.dim
}

// usesRows reports whether the head's codecs take the row path.
func usesRows(hc headCodecs) bool {
	if !rowKernels() {
		return false
	}
	k, okK := hc.k.(rowCodec)
	v, okV := hc.v.(rowCodec)
	if !okK || !okV || !k.rowForm() || !v.rowForm() {
		return false
	}
	if hc.uk != nil {
		uk, okK := hc.uk.(rowCodec)
		uv, okV := hc.uv.(rowCodec)
		return okK && okV && uk.rowForm() && uv.rowForm()
	}
	return true
}

// run is a contiguous stretch of one KV head's tokens: n tokens from
// position pos whose keys and values sit at k and v, stride bytes apart.
// raw runs are the fp16 sinks and window; the others are codes of the
// head's codecs, or of the guard's upgraded codecs when up.
type run struct {
	pos, n           int
	k, v             []byte
	kStride, vStride int
	raw, up          bool
}

// runs calls f for the runs covering positions [0, limit), in order, each
// at most rowChunk tokens.
func (ts tokenSource) runs(limit int, f func(r run)) {
	cfg := ts.s.pool.cfg
	l, h, d, H, B := ts.l, ts.h, cfg.HeadDim, cfg.KVHeads, cfg.BlockTokens
	fpStride := H * 4 * d // one slot of the sink or window buffer: [H][2][d] fp16
	emit := func(r run) {
		for off := 0; off < r.n; off += rowChunk {
			c := r
			c.pos, c.n = r.pos+off, min(rowChunk, r.n-off)
			c.k, c.v = r.k[off*r.kStride:], r.v[off*r.vStride:]
			f(c)
		}
	}
	raw := func(buf []byte, slot, pos, n int) {
		base := (slot*H + h) * 4 * d
		emit(run{pos: pos, n: n, k: buf[base:], v: buf[base+2*d:], kStride: fpStride, vStride: fpStride, raw: true})
	}
	pos := 0
	if n := min(l.nSink, limit); n > 0 {
		raw(l.sink, 0, 0, n)
		pos = n
	}
	end := min(limit, l.nSink+l.compressed)
	for pos < end { // one block at a time: its layout says where the head's codes are
		c := pos - l.nSink
		b := l.blocks[c/B]
		lay, j := b.lay, c%B
		n := min(B-j, end-pos)
		ks, vs := lay.kSize[h], lay.vSize[h]
		emit(run{pos: pos, n: n, k: b.data[lay.kOff[h]+j*ks:], v: b.data[lay.vOff[h]+j*vs:],
			kStride: ks, vStride: vs, up: lay.upgraded(h)})
		pos += n
	}
	for pos < limit { // the window ring, in at most two pieces
		i := pos - l.nSink - l.compressed
		slot := ts.s.winSlot(l, i)
		n := min(limit-pos, l.winCap-slot)
		raw(l.win, slot, pos, n)
		pos += n
	}
}

// rowState is the working memory of the row path for one query group.
type rowState struct {
	g, d   int
	qk, qr []float32 // queries × scale in the key codec's domain and raw, [g][d]
	qu     []float32 // queries × scale in the upgraded key codec's domain (guard)
	accU   []float32 // [g][d], upgraded value codec domain (guard)
	qmu    []float32 // scale·q·μ_k per query head
	logits []float32 // [g][stride]
	stride int
	accK   []float32 // [g][d], value codec domain
	accR   []float32 // [g][d], raw tokens, original domain
	rawW   []float64
	sum    []float32
	rows   []float32 // rowChunk × d
	tmp    []float32
}

func newRowState(g, d, n int) *rowState {
	return &rowState{g: g, d: d, qk: make([]float32, g*d), qr: make([]float32, g*d), qmu: make([]float32, g),
		qu: make([]float32, g*d), accU: make([]float32, g*d),
		accK: make([]float32, g*d), accR: make([]float32, g*d), rawW: make([]float64, g), sum: make([]float32, g),
		rows: make([]float32, rowChunk*d), tmp: make([]float32, d)}
}

// fit sizes the logit matrix for n tokens.
func (rs *rowState) fit(n int) {
	if rs.stride < n {
		rs.stride = n + n/4
		rs.logits = make([]float32, rs.g*rs.stride)
	}
}

// prepare maps the group's queries (len g·d) for scoring.
func (rs *rowState) prepare(hc headCodecs, q []float32, scale float32) {
	d := rs.d
	kc := hc.k.(rowCodec)
	for gi := range rs.g {
		y := q[gi*d : (gi+1)*d]
		qk, qr := rs.qk[gi*d:(gi+1)*d], rs.qr[gi*d:(gi+1)*d]
		kc.queryRow(qk, y, rs.tmp)
		for j, v := range y {
			qk[j] *= scale
			qr[j] = v * scale
		}
		if hc.uk != nil {
			qu := rs.qu[gi*d : (gi+1)*d]
			hc.uk.(rowCodec).queryRow(qu, y, rs.tmp)
			for j := range qu {
				qu[j] *= scale
			}
		}
		rs.qmu[gi] = 0
		if hc.muK != nil {
			rs.qmu[gi] = scale * float32(dot32(y, hc.muK))
		}
	}
}

// score writes the scaled logits of positions [0, limit) to rs.logits.
func (rs *rowState) score(ts tokenSource, hc headCodecs, limit int) {
	g, L, N := rs.g, rs.logits, rs.stride
	kc := hc.k.(rowCodec)
	var uc rowCodec
	if hc.uk != nil {
		uc = hc.uk.(rowCodec)
	}
	ts.runs(limit, func(r run) {
		for gi := range g { // compressed keys are stored minus μ_k (Center)
			init := rs.qmu[gi]
			if r.raw {
				init = 0
			}
			row := L[gi*N+r.pos : gi*N+r.pos+r.n]
			for t := range row {
				row[t] = init
			}
		}
		switch {
		case r.raw:
			ts.fp16.scoreRun(L[r.pos:], N, rs.qr, g, r.k, r.kStride, r.n, rs.rows)
		case r.up:
			uc.scoreRun(L[r.pos:], N, rs.qu, g, r.k, r.kStride, r.n, rs.rows)
		default:
			kc.scoreRun(L[r.pos:], N, rs.qk, g, r.k, r.kStride, r.n, rs.rows)
		}
	})
}

// attend computes the group's outputs (len g·d) over positions [0, limit).
func (rs *rowState) attend(ts tokenSource, hc headCodecs, q, out []float32, limit int, scale float32) {
	g, d, N := rs.g, rs.d, rs.stride
	rs.prepare(hc, q, scale)
	rs.score(ts, hc, limit)
	for gi := range g {
		row := rs.logits[gi*N : gi*N+limit]
		m := row[0]
		for _, x := range row[1:] {
			m = max(m, x)
		}
		rs.sum[gi] = simd.ExpSum(row, m)
		rs.rawW[gi] = 0
	}
	clear(rs.accK)
	clear(rs.accR)
	vc := hc.v.(rowCodec)
	var uc rowCodec
	if hc.uv != nil {
		uc = hc.uv.(rowCodec)
	}
	codes := false    // whether any compressed token was seen (only they carry μ_v)
	upgraded := false // whether any was the guard's upgraded codes
	ts.runs(limit, func(r run) {
		if r.raw {
			ts.fp16.accumulateRun(rs.accR, rs.logits[r.pos:], N, g, r.v, r.vStride, r.n, rs.rows)
			for gi := range g {
				for _, w := range rs.logits[gi*N+r.pos : gi*N+r.pos+r.n] {
					rs.rawW[gi] += float64(w)
				}
			}
			return
		}
		codes = true
		if r.up {
			if !upgraded {
				clear(rs.accU)
				upgraded = true
			}
			uc.accumulateRun(rs.accU, rs.logits[r.pos:], N, g, r.v, r.vStride, r.n, rs.rows)
			return
		}
		vc.accumulateRun(rs.accK, rs.logits[r.pos:], N, g, r.v, r.vStride, r.n, rs.rows)
	})
	for gi := range g {
		o := out[gi*d : (gi+1)*d]
		hc.v.finish(rs.tmp, rs.accK[gi*d:(gi+1)*d])
		if upgraded { // the upgraded codes' sum, mapped back on its own
			u := rs.accU[gi*d : (gi+1)*d]
			hc.uv.finish(u, u)
			for j, x := range u {
				rs.tmp[j] += x
			}
		}
		if hc.muV != nil && codes { // compressed values are stored minus μ_v
			wc := float32(float64(rs.sum[gi]) - rs.rawW[gi])
			for j, m := range hc.muV {
				rs.tmp[j] += wc * m
			}
		}
		inv := 1 / rs.sum[gi]
		accR := rs.accR[gi*d : (gi+1)*d]
		for j := range o {
			o[j] = (rs.tmp[j] + accR[j]) * inv
		}
	}
}
