package kvcache

import (
	"encoding/binary"
	"math"
	"sync"
	"unsafe"

	"github.com/turboquant-go/tq/internal/half"
	"github.com/turboquant-go/tq/internal/simd"
	"github.com/turboquant-go/tq/internal/vec"
	"github.com/turboquant-go/tq/turboquant"
)

// The row path of attention: each run of tokens (the sinks, one block, a
// piece of the window ring) is decoded into a small buffer of float32 rows
// in the storage's domain (rotated, norm applied) that stays in cache, then
// scored against all the group's queries and accumulated with their softmax
// weights by the internal/simd kernels. Keys and values are each read once
// per query group. Storages without a row form (PolarQuant, QJL, fp32-norm
// codes) use the per-code path in attend_codes.go.

// rowOverride forces the row path on (1) or off (−1); 0 leaves the choice
// to rowKernels. Tests force both paths.
var rowOverride int

// rowKernels reports whether the row path runs where the storages allow it:
// when vector kernels are active. The generic twins are slower than the
// per-code lookup tables, so without SIMD the per-code path stays.
func rowKernels() bool {
	if rowOverride != 0 {
		return rowOverride > 0
	}
	return simd.Active() != simd.Generic
}

// rowChunk is the most rows decoded into scratch at once: 32 rows of
// d=128 are 16 KiB, half of a typical L1 data cache. Runs are cut to it
// only where rows are decoded or scores and weights scaled in scratch; the
// fused kernels take a block's run whole, which halves their per-call
// set-up against 32-token pieces.
const rowChunk = 32

// inPieces calls f(lo, m) over [0, n) in pieces of at most rowChunk when
// scratch says the work goes through the scratch rows, else once.
func inPieces(n int, scratch bool, f func(lo, m int)) {
	if !scratch {
		f(0, n)
		return
	}
	for lo := 0; lo < n; lo += rowChunk {
		f(lo, min(rowChunk, n-lo))
	}
}

// scratch reports whether a part of the storage is scored or accumulated
// through the scratch rows: decoded 8-bit rows, or corrected codes. Parts
// that q8 scores with integers (q8[i].G == g; nil for none) do not.
func (c *quantStore) scratch(q8 []simd.QueryQ8, g int) bool {
	for i := range c.parts {
		p := &c.parts[i]
		if (p.Bits > 4 || p.Correction != turboquant.NoCorrection) && (q8 == nil || q8[i].G != g) {
			return true
		}
	}
	return false
}

// rowStore is implemented by storages with a row form. Scores and weighted
// sums are added to what out and acc hold; q and acc have rows of HeadDim.
type rowStore interface {
	// rowForm reports whether the other methods are available.
	rowForm() bool
	// queryRow writes y mapped into the storage's domain to dst (len dim);
	// tmp is scratch of len dim.
	queryRow(dst, y, tmp []float32)
	// scoreRun adds ⟨q_i, code t⟩ to out[i*outStride+t] for the g query
	// rows and the n codes (code t at codes[t*stride:]), or, with init (len
	// g), sets it to init[i] + ⟨q_i, code t⟩; buf is scratch of
	// rowScratch(d, g) floats. q8, when not nil, holds q quantized by
	// prepareQ8 for the parts that score with integers. ahead (nil for
	// none) is what the walk reads next, which the vector kernels
	// prefetch a few lines per row or token as they go.
	scoreRun(out []float32, outStride int, init, q []float32, q8 []simd.QueryQ8, g int, codes []byte, stride, n int, buf []float32, ahead []byte)
	// accumulateRun adds Σ_t w[i*wStride+t]·code t to acc row i,
	// prefetching ahead as scoreRun. w8, when not nil, is the working
	// memory of the parts that sum with integers (Config.IntValues).
	accumulateRun(acc, w []float32, wStride, g int, codes []byte, stride, n int, buf []float32, w8 *simd.WeightsQ8, ahead []byte)
}

func (c *quantStore) rowForm() bool { return c.kerns != nil }

// queryRow rotates y part by part, parts side by side: the domain the row
// kernels score codes in. y was checked finite by Attend or Logits.
func (c *quantStore) queryRow(dst, y, _ []float32) { _ = c.q.PrepareKernelQuery(dst, nil, y) }

// rowScratch is the scratch floats the row kernels take: rowChunk rows,
// and rowChunk scores or weights per query row for corrected codes.
func rowScratch(d, g int) int { return rowChunk * (d + g) }

// Codes of up to 4 bits run through the fused kernels (unpack and multiply
// in registers); 8-bit codes are decoded into rows first (a gather each).
// A part's correction scalar (turboquant.Unbiased, Renormalize) multiplies
// its norm: the fused kernels score into scratch that is then scaled code by
// code, or take weights scaled code by code; decoded rows are scaled.

// prepareQ8 quantizes the g query rows q (rows of HeadDim) for the parts
// that score with integers (Config.IntScores: uncorrected parts for which
// simd.Codebook.Q8Kernels holds) into dst, one per part (G = 0 for the others), and reports
// whether any does.
func (c *quantStore) prepareQ8(dst *[]simd.QueryQ8, q []float32, g int) bool {
	if len(*dst) < len(c.parts) {
		*dst = make([]simd.QueryQ8, len(c.parts))
	}
	d, off, any := c.q.Dim(), 0, false
	for i := range c.parts {
		p := &c.parts[i]
		(*dst)[i].G = 0
		if p.Correction == turboquant.NoCorrection && c.kerns[i].Q8Kernels(p.Dim) {
			(*dst)[i].Quantize(q[off:], d, g, p.Dim, p.Bits)
			any = true
		}
		off += p.Dim
	}
	return any
}

// Codes are not prefetched in one burst: asking for a run's ahead (a few
// KiB) at once stalled the core on the requests in flight, up to 1.2× slower
// steps for tq3, tq4 and their +i8 forms (BENCHMARKS.md, session 12). The
// four-row code kernels ask for it a line or two per token as they go.

func (c *quantStore) scoreRun(out []float32, outStride int, init, q []float32, q8 []simd.QueryQ8, g int, codes []byte, stride, n int, buf []float32, ahead []byte) {
	if !c.scratch(q8, g) { // whole: no closure, no divisions
		c.scoreCodes(out, outStride, init, q, q8, g, codes, stride, n, buf, ahead)
		return
	}
	inPieces(n, true, func(lo, m int) {
		c.scoreCodes(out[lo:], outStride, init, q, q8, g, codes[lo*stride:], stride, m, buf, ahead[lo*len(ahead)/n:(lo+m)*len(ahead)/n])
	})
}

// scoreCodes is scoreRun for at most rowChunk codes when they go through
// the scratch rows. The integer key kernels set the rows to init + score
// themselves; every other kernel adds to rows filled first.
func (c *quantStore) scoreCodes(out []float32, outStride int, init, q []float32, q8 []simd.QueryQ8, g int, codes []byte, stride, n int, buf []float32, ahead []byte) {
	if len(c.parts) == 2 && q8 != nil && q8[0].G == g && q8[1].G == g { // tq3.5, split keys: both parts in one pass
		a, b := &c.parts[0], &c.parts[1]
		simd.DotCodesQ8Pair(out, outStride, init, &q8[0], &q8[1], c.kerns[0], c.kerns[1], codes, stride,
			a.Offset+a.IndexOffset, a.Offset+a.NormOffset, b.Offset+b.IndexOffset, b.Offset+b.NormOffset, n, ahead)
		return
	}
	d, off, at := c.q.Dim(), 0, 0
	for i := range c.parts {
		p := &c.parts[i]
		coff, pa := p.Offset, partAhead(ahead, at, p.Size, stride)
		corr := p.Correction != turboquant.NoCorrection
		if init != nil && (q8 == nil || q8[i].G != g) {
			simd.FillRows(out, outStride, init, n)
			init = nil
		}
		switch {
		case q8 != nil && q8[i].G == g: // uncorrected codes (prepareQ8)
			simd.DotCodesQ8(out, outStride, init, &q8[i], c.kerns[i], codes[coff:], stride, p.IndexOffset, p.NormOffset, n, pa)
			init = nil
		case p.Bits <= 4 && corr:
			s := buf[:g*n]
			clear(s)
			simd.DotCodes(s, n, q[off:], d, g, c.kerns[i], codes[coff:], stride, p.IndexOffset, p.NormOffset, n, p.Dim, pa)
			for t := range n {
				f := correction(codes[t*stride+coff+p.CorrectionOffset:])
				for gi := range g {
					out[gi*outStride+t] += s[gi*n+t] * f
				}
			}
		case p.Bits <= 4:
			simd.DotCodes(out, outStride, q[off:], d, g, c.kerns[i], codes[coff:], stride, p.IndexOffset, p.NormOffset, n, p.Dim, pa)
		default:
			c.decodeRows(buf, p, i, codes, stride, n, pa)
			if p.Dim == d { // one part: the g query rows are contiguous, so Dot reads each row once for four of them
				simd.Dot(out, outStride, q[:g*d], buf, n, d, d, nil)
				break
			}
			for i := range g {
				simd.Dot(out[i*outStride:], outStride, q[i*d+off:i*d+off+p.Dim], buf, n, p.Dim, p.Dim, nil)
			}
		}
		off, at = off+p.Dim, at+p.Size
	}
}

func (c *quantStore) accumulateRun(acc, w []float32, wStride, g int, codes []byte, stride, n int, buf []float32, w8 *simd.WeightsQ8, ahead []byte) {
	if !c.scratch(nil, g) { // as scoreRun
		c.accumulateCodes(acc, w, wStride, g, codes, stride, n, buf, w8, ahead)
		return
	}
	inPieces(n, true, func(lo, m int) {
		c.accumulateCodes(acc, w[lo:], wStride, g, codes[lo*stride:], stride, m, buf, w8, ahead[lo*len(ahead)/n:(lo+m)*len(ahead)/n])
	})
}

// accumulateCodes is accumulateRun for at most rowChunk codes when they go
// through the scratch rows.
func (c *quantStore) accumulateCodes(acc, w []float32, wStride, g int, codes []byte, stride, n int, buf []float32, w8 *simd.WeightsQ8, ahead []byte) {
	if len(c.parts) == 2 && w8 != nil && c.valuesQ8(0) && c.valuesQ8(1) { // tq3.5, split values: the parts' weights in one call
		a, b := &c.parts[0], &c.parts[1]
		simd.AxpyCodesQ8Pair(acc, c.q.Dim(), w, wStride, g, c.kerns[0], c.kerns[1], codes, stride,
			a.Offset+a.IndexOffset, a.Offset+a.NormOffset, b.Offset+b.IndexOffset, b.Offset+b.NormOffset, n, a.Dim, b.Dim, w8, ahead)
		return
	}
	if c.floatPair() && (w8 == nil || !c.valuesQ8(0) && !c.valuesQ8(1)) { // two parts, each piece of codes in turn
		a, b := &c.parts[0], &c.parts[1]
		simd.AxpyCodesPair(acc, c.q.Dim(), w, wStride, g, c.kerns[0], c.kerns[1], codes, stride,
			a.Offset+a.IndexOffset, a.Offset+a.NormOffset, b.Offset+b.IndexOffset, b.Offset+b.NormOffset, n, a.Dim, b.Dim, ahead)
		return
	}
	d, off, at := c.q.Dim(), 0, 0
	for i := range c.parts {
		p := &c.parts[i]
		coff, pa := p.Offset, partAhead(ahead, at, p.Size, stride)
		switch {
		case w8 != nil && c.valuesQ8(i):
			simd.AxpyCodesQ8(acc[off:], d, w, wStride, g, c.kerns[i], codes[coff:], stride, p.IndexOffset, p.NormOffset, n, p.Dim, w8, pa)
		case p.Bits <= 4 && p.Correction != turboquant.NoCorrection:
			ws := buf[:g*n]
			for t := range n {
				f := correction(codes[t*stride+coff+p.CorrectionOffset:])
				for gi := range g {
					ws[gi*n+t] = w[gi*wStride+t] * f
				}
			}
			simd.AxpyCodes(acc[off:], d, ws, n, g, c.kerns[i], codes[coff:], stride, p.IndexOffset, p.NormOffset, n, p.Dim, pa)
		case p.Bits <= 4:
			simd.AxpyCodes(acc[off:], d, w, wStride, g, c.kerns[i], codes[coff:], stride, p.IndexOffset, p.NormOffset, n, p.Dim, pa)
		default:
			c.decodeRows(buf, p, i, codes, stride, n, pa)
			if p.Dim == d { // one part: as in scoreRun
				simd.Axpy(acc[:g*d], w, wStride, buf, n, d, d, nil)
				break
			}
			for i := range g {
				simd.Axpy(acc[i*d+off:i*d+off+p.Dim], w[i*wStride:], wStride, buf, n, p.Dim, p.Dim, nil)
			}
		}
		off, at = off+p.Dim, at+p.Size
	}
}

// floatPair reports whether the codes have two parts that the float code
// kernels take (no correction scalar, at most 4 bits).
func (c *quantStore) floatPair() bool {
	if len(c.parts) != 2 {
		return false
	}
	for _, p := range c.parts {
		if p.Bits > 4 || p.Correction != turboquant.NoCorrection {
			return false
		}
	}
	return true
}

// valuesQ8 reports whether part i's values go through the integer value
// kernels (with Config.IntValues).
func (c *quantStore) valuesQ8(i int) bool {
	p := &c.parts[i]
	return p.Bits <= 4 && p.Correction == turboquant.NoCorrection && c.kerns[i].ValuesQ8Kernels(p.Dim)
}

// partAhead is a part's share of the region ahead that the kernels
// prefetch as they go, as large as the part's share of a code, so that
// each part's kernel asks for lines while it runs. With the whole region
// on the first part, tq3.5+i8 took 1.2–1.3× as long per step (BENCHMARKS.md,
// session 15). The part's bytes start at byte at of a code: the Sizes of
// the parts before it (a split code's tail shares its head's Offset).
func partAhead(ahead []byte, at, size, stride int) []byte {
	if at == 0 && size == stride { // the only part: no divisions
		return ahead
	}
	n := len(ahead)
	return ahead[min(n, n*at/stride):min(n, n*(at+size)/stride)]
}

// decodeRows decodes part i of n codes into buf as rows of p.Dim, each
// scaled by its correction scalar when the part has one, prefetching
// ahead as the code kernels do.
func (c *quantStore) decodeRows(buf []float32, p *turboquant.Part, i int, codes []byte, stride, n int, ahead []byte) {
	simd.DecodeCodes(buf, p.Dim, c.kerns[i], codes[p.Offset:], stride, p.IndexOffset, p.NormOffset, n, p.Dim, ahead)
	if p.Correction == turboquant.NoCorrection {
		return
	}
	for t := range n {
		simd.Scale(buf[t*p.Dim:(t+1)*p.Dim], correction(codes[t*stride+p.Offset+p.CorrectionOffset:]))
	}
}

// correction reads a code's fp16 correction scalar (row forms have fp16
// norms, and the correction has the norm's precision).
func correction(b []byte) float32 { return half.ToFloat32(uint16(b[0]) | uint16(b[1])<<8) }

func (c fp16Store) rowForm() bool { return true }

func (c fp16Store) queryRow(dst, y, _ []float32) { copy(dst, y) }

// fp16 rows are converted as the dot and axpy kernels load them (F16C).

func (c fp16Store) scoreRun(out []float32, outStride int, init, q []float32, _ []simd.QueryQ8, g int, codes []byte, stride, n int, _ []float32, ahead []byte) {
	simd.FillRows(out, outStride, init, n)
	simd.DotF16(out, outStride, q[:g*c.dim], codes[:(n-1)*stride+2*c.dim], n, c.dim, stride/2, ahead)
}

func (c fp16Store) accumulateRun(acc, w []float32, wStride, g int, codes []byte, stride, n int, _ []float32, _ *simd.WeightsQ8, ahead []byte) {
	simd.AxpyF16(acc[:g*c.dim], w, wStride, codes[:(n-1)*stride+2*c.dim], n, c.dim, stride/2, ahead)
}

func (c fp32Store) rowForm() bool { return true }

func (c fp32Store) queryRow(dst, y, _ []float32) { copy(dst, y) }

func (c fp32Store) scoreRun(out []float32, outStride int, init, q []float32, _ []simd.QueryQ8, g int, codes []byte, stride, n int, buf []float32, ahead []byte) {
	simd.FillRows(out, outStride, init, n)
	inPieces(n, !c.inPlace(codes, stride), func(lo, m int) {
		rows, rs := c.rows(buf, codes[lo*stride:], stride, m)
		simd.Dot(out[lo:], outStride, q[:g*c.dim], rows, m, c.dim, rs, ahead[lo*len(ahead)/n:(lo+m)*len(ahead)/n])
	})
}

func (c fp32Store) accumulateRun(acc, w []float32, wStride, g int, codes []byte, stride, n int, buf []float32, _ *simd.WeightsQ8, ahead []byte) {
	inPieces(n, !c.inPlace(codes, stride), func(lo, m int) {
		rows, rs := c.rows(buf, codes[lo*stride:], stride, m)
		simd.Axpy(acc[:g*c.dim], w[lo:], wStride, rows, m, c.dim, rs, ahead[lo*len(ahead)/n:(lo+m)*len(ahead)/n])
	})
}

// littleEndian is true on the platforms whose float32 memory layout is the
// codes' byte order, where fp32 rows are read in place.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// inPlace reports whether codes can be read as float32 rows where they are.
func (c fp32Store) inPlace(codes []byte, stride int) bool {
	return littleEndian && stride%4 == 0 && uintptr(unsafe.Pointer(&codes[0]))%4 == 0
}

// rows returns the n codes as float32 rows and their stride: a view of the
// codes where the layout allows, else a copy in buf (n ≤ rowChunk).
func (c fp32Store) rows(buf []float32, codes []byte, stride, n int) ([]float32, int) {
	need := (n-1)*stride + 4*c.dim
	if c.inPlace(codes, stride) {
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

// usesRows reports whether the head's storages take the row path.
func usesRows(hc *headStores) bool {
	if !rowKernels() {
		return false
	}
	k, okK := hc.keys.store.(rowStore)
	v, okV := hc.values.store.(rowStore)
	if !okK || !okV || !k.rowForm() || !v.rowForm() {
		return false
	}
	if hc.upKeys.store != nil {
		uk, okK := hc.upKeys.store.(rowStore)
		uv, okV := hc.upValues.store.(rowStore)
		return okK && okV && uk.rowForm() && uv.rowForm()
	}
	return true
}

// rowState is the working memory of the row path for one query group: the
// shared softmax state and the queries mapped for the row kernels.
type rowState struct {
	softmaxState
	drift  []float32 // [g]: a block's key drift scores, then its value weights (BlockCenter)
	qk, qr []float32 // queries × scale in the key storage's domain and raw, [g][d]
	qu     []float32 // queries × scale in the upgraded key storage's domain (guard)
	qmu    []float32 // scale·q·μ_k per query head (Center)
	init   []float32 // [g]: the logits' start before a run's scores are added
	rows   []float32 // the row kernels' scratch, rowScratch(d, g)
	// qk8, qu8: qk and qu quantized for integer scoring (nil when no part
	// of the key storage scores with integers)
	qk8, qu8       []simd.QueryQ8
	qk8Buf, qu8Buf []simd.QueryQ8
	ints           bool            // Config.IntScores
	w8             *simd.WeightsQ8 // Config.IntValues; nil: off
	// base is the position whose logits sit at the start of the rows
	// (attendRange: the current run's; 0 for Logits).
	base int
}

func newRowState(g, d int, intScores, intValues bool) *rowState {
	rs := &rowState{softmaxState: newSoftmaxState(g, d), drift: make([]float32, g), qk: make([]float32, g*d), qr: make([]float32, g*d),
		qu: make([]float32, g*d), qmu: make([]float32, g), init: make([]float32, g), rows: make([]float32, rowScratch(d, g)), ints: intScores}
	if intValues {
		rs.w8 = new(simd.WeightsQ8)
	}
	return rs
}

// prepare maps the group's queries (len g·d) for scoring.
func (rs *rowState) prepare(hc *headStores, q []float32, scale float32) {
	d := rs.d
	kc := hc.keys.store.(rowStore)
	for gi := range rs.g {
		y := q[gi*d : (gi+1)*d]
		qk, qr := rs.qk[gi*d:(gi+1)*d], rs.qr[gi*d:(gi+1)*d]
		kc.queryRow(qk, y, rs.tmp)
		for j, v := range y {
			qk[j] *= scale
			qr[j] = v * scale
		}
		if hc.upKeys.store != nil {
			qu := rs.qu[gi*d : (gi+1)*d]
			hc.upKeys.store.(rowStore).queryRow(qu, y, rs.tmp)
			for j := range qu {
				qu[j] *= scale
			}
		}
		rs.qmu[gi] = 0
		if hc.keys.mu != nil {
			rs.qmu[gi] = scale * float32(vec.Dot64(y, hc.keys.mu))
		}
	}
	rs.qk8, rs.qu8 = nil, nil
	if rs.ints {
		rs.qk8 = prepareQ8(&rs.qk8Buf, hc.keys.store, rs.qk, rs.g)
		if hc.upKeys.store != nil {
			rs.qu8 = prepareQ8(&rs.qu8Buf, hc.upKeys.store, rs.qu, rs.g)
		}
	}
}

// prepareQ8 returns q quantized in buf for the storage's integer scoring,
// or nil when it has none.
func prepareQ8(buf *[]simd.QueryQ8, st any, q []float32, g int) []simd.QueryQ8 {
	if qs, ok := st.(*quantStore); ok && qs.prepareQ8(buf, q, g) {
		return *buf
	}
	return nil
}

// scoreRun writes the scaled logits of run r to rs.logits, at r.pos −
// rs.base.
func (rs *rowState) scoreRun(hc *headStores, fp16 fp16Store, r run) {
	g, N := rs.g, rs.stride
	L := rs.logits[r.pos-rs.base:]
	if r.kd != nil { // the block's drift: scale·q·d̂ per query head
		clear(rs.drift)
		hc.keys.store.(rowStore).scoreRun(rs.drift, 1, nil, rs.qk, nil, g, r.kd, len(r.kd), 1, rs.rows, nil) // one code: the float kernels
	}
	for gi := range g { // compressed keys are stored minus μ_k (Center) and the block's drift
		rs.init[gi] = rs.qmu[gi]
		if r.kd != nil {
			rs.init[gi] += rs.drift[gi]
		}
		if r.raw {
			rs.init[gi] = 0
		}
	}
	switch {
	case r.raw:
		fp16.scoreRun(L, N, rs.init, rs.qr, nil, g, r.k, r.kStride, r.n, rs.rows, nil)
	case r.up:
		hc.upKeys.store.(rowStore).scoreRun(L, N, rs.init, rs.qu, rs.qu8, g, r.k, r.kStride, r.n, rs.rows, r.aheadK)
	default:
		hc.keys.store.(rowStore).scoreRun(L, N, rs.init, rs.qk, rs.qk8, g, r.k, r.kStride, r.n, rs.rows, r.aheadK)
	}
}

// accumulateRun adds run r's values, weighted, into the accumulators.
func (rs *rowState) accumulateRun(hs *headStores, fp16 fp16Store, r run) {
	g, N, off := rs.g, rs.stride, r.pos-rs.base
	switch {
	case r.raw:
		fp16.accumulateRun(rs.accRaw, rs.logits[off:], N, g, r.v, r.vStride, r.n, rs.rows, nil, nil)
		rs.addRawWeights(off, r.n)
	case r.up:
		rs.codes = true
		hs.upValues.store.(rowStore).accumulateRun(rs.upgradedAcc(), rs.logits[off:], N, g, r.v, r.vStride, r.n, rs.rows, rs.w8, r.aheadV)
	default:
		rs.codes = true
		vs := hs.values.store.(rowStore)
		vs.accumulateRun(rs.accCode, rs.logits[off:], N, g, r.v, r.vStride, r.n, rs.rows, rs.w8, r.aheadV)
		if r.vd != nil { // the block's drift, weighted by the run's total weight
			for gi := range g {
				var w float32
				for _, x := range rs.logits[gi*N+off : gi*N+off+r.n] {
					w += x
				}
				rs.drift[gi] = w
			}
			vs.accumulateRun(rs.accCode, rs.drift, 1, g, r.vd, len(r.vd), 1, rs.rows, nil, nil) // one code: the float kernels
		}
	}
}

// attendRows computes, for the KV heads heads (ascending, contiguous; one
// rowState each), the outputs of the T query positions of queries
// ([T][QHeads][d]) into out, over a layer of n tokens.
func (s *Sequence) attendRows(l *seqLayer, heads []int, rss []*rowState, queries, out []float32, T, n int) {
	cfg := s.pool.cfg
	g, d := cfg.QHeads/cfg.KVHeads, cfg.HeadDim
	for i := range T {
		limit := n - T + i + 1
		q0 := func(h int) int { return (i*cfg.QHeads + h*g) * d }
		for k, h := range heads {
			rss[k].prepare(&l.heads[h], queries[q0(h):q0(h)+g*d], cfg.Scale)
		}
		s.attendRange(l, heads, rss, 0, limit)
		for k, h := range heads {
			rss[k].finish(&l.heads[h], out[q0(h):q0(h)+g*d])
		}
	}
}

// attendRange runs the prepared rowStates over positions [from, limit),
// leaving each with the softmax state of that range. It goes a chunk of
// the context at a time (chunkTokens): the chunk's keys are scored into
// the start of the logit rows, the chunk is folded into the streaming
// softmax, then its values are added, so the logits stay in cache rather
// than making three trips to memory. The chunks sit on a fixed grid of
// positions, so a query's result does not depend on how the context was
// appended (prefill or decode).
func (s *Sequence) attendRange(l *seqLayer, heads []int, rss []*rowState, from, limit int) {
	fp16 := fp16Store{s.pool.cfg.HeadDim}
	C := chunkTokens(s.pool.cfg.BlockTokens)
	for k := range heads {
		rss[k].start()
	}
	for lo := from; lo < limit; {
		hi := min(limit, l.nSink+C) // the first chunk also holds the sinks
		if lo >= l.nSink {
			hi = min(limit, l.nSink+((lo-l.nSink)/C+1)*C)
		}
		for k := range heads {
			rss[k].base = lo
		}
		s.layerRuns(l, heads, lo, hi, func(k int, r run) { rss[k].scoreRun(&l.heads[heads[k]], fp16, r) })
		for k := range heads {
			rss[k].fold(0, hi-lo)
		}
		s.layerRuns(l, heads, lo, hi, func(k int, r run) { rss[k].accumulateRun(&l.heads[heads[k]], fp16, r) })
		lo = hi
	}
}

// chunkTokens is attendRange's chunk: the most whole blocks in
// attendChunk tokens (at least one block).
func chunkTokens(B int) int { return max(B, attendChunk/B*B) }

// attendChunk is 1024 tokens: logits for four query heads of 16 KiB per
// KV head, which stay in L2 for the whole walk of a worker's heads. Tests
// shrink it to cross many chunks.
var attendChunk = 1024

// attendSplit is attendRows for layers with fewer KV heads than workers:
// every worker takes all heads over its own stretch of the context (whole
// blocks), and the partial softmax states are merged in position order.
// rss holds one rowState per (worker, head): rss[w*len(heads)+k].
func (s *Sequence) attendSplit(l *seqLayer, heads []int, rss []*rowState, workers int, queries, out []float32, T, n int) {
	cfg := s.pool.cfg
	g, d, B, H := cfg.QHeads/cfg.KVHeads, cfg.HeadDim, cfg.BlockTokens, len(heads)
	for i := range T {
		limit := n - T + i + 1
		q0 := func(h int) int { return (i*cfg.QHeads + h*g) * d }
		// Cut [0, limit) at block boundaries into at most workers pieces.
		blocks := min(limit-l.nSink, l.compressed) / B
		cuts := []int{0}
		for w := 1; w < workers; w++ {
			if c := l.nSink + (blocks*w/workers)*B; c > cuts[len(cuts)-1] && c < limit {
				cuts = append(cuts, c)
			}
		}
		cuts = append(cuts, limit)
		var wg sync.WaitGroup
		for w := range len(cuts) - 1 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ws := rss[w*H : (w+1)*H]
				for k, h := range heads {
					ws[k].prepare(&l.heads[h], queries[q0(h):q0(h)+g*d], cfg.Scale)
				}
				s.attendRange(l, heads, ws, cuts[w], cuts[w+1])
			}()
		}
		wg.Wait()
		for k, h := range heads {
			for w := 1; w < len(cuts)-1; w++ {
				rss[k].merge(&rss[w*H+k].softmaxState)
			}
			rss[k].finish(&l.heads[h], out[q0(h):q0(h)+g*d])
		}
	}
}
