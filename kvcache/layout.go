package kvcache

import (
	"sync/atomic"

	"github.com/turboquant-go/tq/internal/simd"
)

// block holds BlockTokens compressed tokens of one layer: key codes
// [head][token], then value codes [head][token], each head's codes where
// and as large as its layout says (the guard's upgraded heads are larger).
// Blocks are shared between forked sequences and copied before a shared
// block is written.
type block struct {
	refs atomic.Int32
	data []byte
	lay  *blockLayout
}

// newBlockData allocates a block's bytes with simd.Slack spare capacity, so
// the decode kernels' word loads past the last code stay inside it.
func newBlockData(n int64) []byte { return make([]byte, n, n+simd.Slack) }

func (s *Sequence) dropBlock(b *block) {
	if b.refs.Add(-1) == 0 {
		s.pool.release(b.lay.bytes)
	}
}

// blockLayout is where each KV head's codes sit in a block: keys of head h
// at kOff[h], kSize[h] bytes per token, then the values likewise, then
// (BlockCenter) each head's key drift code at kDOff[h] and value drift code
// at vDOff[h], kDSize and vDSize bytes (0: none). Layouts are immutable and
// shared by the blocks (and forks) that use them.
type blockLayout struct {
	up                       []bool // per head: the guard's codecs; nil: none
	kOff, vOff, kSize, vSize []int
	kDOff, vDOff             []int
	kDSize, vDSize           int
	tokenBytes               int64 // one token, every head, keys and values
	bytes                    int64 // the whole block
}

// newBlockLayout lays out a block of layer plan lp with the heads marked in
// up (nil: none) at the guard's storages.
func newBlockLayout(lp *layerPlan, H, B int, up []bool) *blockLayout {
	lay := &blockLayout{kOff: make([]int, H), vOff: make([]int, H), kSize: make([]int, H), vSize: make([]int, H)}
	for h := range H {
		lay.kSize[h], lay.vSize[h] = lp.kSize, lp.vSize
		if up != nil && up[h] {
			lay.kSize[h], lay.vSize[h] = lp.upKSize, lp.upVSize
		}
		lay.tokenBytes += int64(lay.kSize[h] + lay.vSize[h])
	}
	if up != nil {
		lay.up = append([]bool(nil), up...)
	}
	off := 0
	for h := range H {
		lay.kOff[h] = off
		off += B * lay.kSize[h]
	}
	for h := range H {
		lay.vOff[h] = off
		off += B * lay.vSize[h]
	}
	if lp.kDrift+lp.vDrift > 0 {
		lay.kDSize, lay.vDSize = lp.kDrift, lp.vDrift
		lay.kDOff, lay.vDOff = make([]int, H), make([]int, H)
		for h := range H {
			lay.kDOff[h] = off
			off += lp.kDrift
		}
		for h := range H {
			lay.vDOff[h] = off
			off += lp.vDrift
		}
	}
	lay.bytes = int64(off)
	return lay
}

// drift returns head h's key and value drift codes in a block's data (nil
// where the side has none).
func (lay *blockLayout) drift(data []byte, h int) (k, v []byte) {
	if lay.kDSize > 0 {
		k = data[lay.kDOff[h] : lay.kDOff[h]+lay.kDSize]
	}
	if lay.vDSize > 0 {
		v = data[lay.vDOff[h] : lay.vDOff[h]+lay.vDSize]
	}
	return k, v
}

// usedRegions calls f with the bytes of the first m tokens of a block with
// this layout, in snapshot order (2g in snapshot_format.go): each head's key
// codes, then each head's value codes, then (BlockCenter; a block with a
// token has them) each head's key drift code and each head's value drift
// code.
func (lay *blockLayout) usedRegions(data []byte, m int, f func([]byte)) {
	for h := range lay.kOff {
		f(data[lay.kOff[h] : lay.kOff[h]+m*lay.kSize[h]])
	}
	for h := range lay.vOff {
		f(data[lay.vOff[h] : lay.vOff[h]+m*lay.vSize[h]])
	}
	if m == 0 || lay.kDOff == nil {
		return
	}
	for h := range lay.kDOff {
		f(data[lay.kDOff[h] : lay.kDOff[h]+lay.kDSize])
	}
	for h := range lay.vDOff {
		f(data[lay.vDOff[h] : lay.vDOff[h]+lay.vDSize])
	}
}

// usedBytes is the bytes usedRegions hands out for m tokens.
func (lay *blockLayout) usedBytes(m int) int64 {
	n := int64(m) * lay.tokenBytes
	if m > 0 && lay.kDOff != nil {
		n += int64(len(lay.kDOff) * (lay.kDSize + lay.vDSize))
	}
	return n
}

func (lay *blockLayout) upgraded(h int) bool { return lay.up != nil && lay.up[h] }

// winSlot is the ring slot of the i-th oldest window token.
func (s *Sequence) winSlot(l *seqLayer, i int) int {
	return (l.winStart + i) % l.winCap
}

// putFP16Token stores one token's keys and values ([H][d] each) as fp16
// [H][2][d] little-endian.
func putFP16Token(dst []byte, k, v []float32, H, d int) {
	for h := range H {
		base := h * 2 * d * 2
		simd.EncodeF16(dst[base:base+2*d], k[h*d:(h+1)*d])
		simd.EncodeF16(dst[base+2*d:base+4*d], v[h*d:(h+1)*d])
	}
}

// widenFP16 widens the key and value of head h of token slot of an fp16
// token buffer into k and v.
func widenFP16(buf []byte, slot, h, d, H int, k, v []float32) ([]float32, []float32) {
	kb, vb := fp16Vec(buf, slot, h, d, H)
	simd.DecodeF16(k, d, kb, 2*d, 1, d)
	simd.DecodeF16(v, d, vb, 2*d, 1, d)
	return k, v
}

// fp16Vec returns the fp16 key and value bytes of head h of token slot in an
// fp16 token buffer ([t][H][2][d]).
func fp16Vec(buf []byte, slot, h, d, H int) (k, v []byte) {
	base := (slot*H + h) * 2 * d * 2
	return buf[base : base+2*d], buf[base+2*d : base+4*d]
}

// The one iterator over a layer's storage: positions [0, nSink) in the
// fp16 sink buffer, [nSink, nSink+compressed) in blocks (each head's codes
// where the block's layout puts them), the rest in the fp16 window ring.
// layerRuns hands out runs of tokens (the row path), eachToken single
// tokens (the per-code path); snapshots write the same three regions.

// run is a contiguous stretch of one KV head's tokens: n tokens from
// position pos whose keys and values sit at k and v, stride bytes apart.
// raw runs are the fp16 sinks and window; the others are codes of the
// head's storages, or of the guard's upgraded storages when up.
type run struct {
	pos, n           int
	k, v             []byte
	kStride, vStride int
	raw, up          bool
	// kd and vd are the block's drift codes of the head (BlockCenter; nil
	// without): every token of the run decodes to μ + drift + its code.
	kd, vd []byte
	// aheadK and aheadV are the key and value codes of the run that comes
	// next in the walk (the next head's in the block, or the first head's
	// in the next block), to prefetch while this run is processed; nil
	// for the last head's run in the last block, and for the sinks and
	// window.
	aheadK, aheadV []byte
}

// layerRuns calls f(k, r) for the runs of the KV heads heads[k] covering
// positions [from, limit), in position order per head: a block's tokens of
// one head, or a stretch of the fp16 sinks or window. Blocks are walked
// outermost and heads inside each block, so the heads' codes, which sit
// next to each other in a block, are read as one sequential stream; heads
// must be ascending and contiguous.
//
// Each run of a block carries the keys and values of the run after it,
// which the row path's kernels prefetch a few lines at a time while they
// work on the run, so their cache lines arrive during the computation
// rather than when a kernel first touches them. One run ahead, not one
// block: a block's worth of the other heads' codes came through L1
// between a prefetch for the head's next block and its use, and the
// kernels found the lines in L2 (BENCHMARKS.md, session 18).
func (s *Sequence) layerRuns(l *seqLayer, heads []int, from, limit int, f func(k int, r run)) {
	cfg := s.pool.cfg
	d, H, B := cfg.HeadDim, cfg.KVHeads, cfg.BlockTokens
	fpStride := cfg.fp16TokenStride()
	raw := func(buf []byte, slot, pos, n int) {
		for k, h := range heads {
			base := (slot*H + h) * 4 * d
			f(k, run{pos: pos, n: n, k: buf[base:], v: buf[base+2*d:], kStride: fpStride, vStride: fpStride, raw: true})
		}
	}
	pos := from
	if n := min(l.nSink, limit) - pos; n > 0 {
		raw(l.sink, pos, pos, n)
		pos += n
	}
	end := min(limit, l.nSink+l.compressed)
	for pos < end { // one block at a time: its layout says where each head's codes are
		c := pos - l.nSink
		bi := c / B
		b := l.blocks[bi]
		lay, j := b.lay, c%B
		n := min(B-j, end-pos)
		// The next block is elsewhere in memory (the hardware prefetcher
		// alone stalls at every block boundary), so the last head's run
		// carries the first head's codes in the next block. One burst for
		// all heads, or one per run, kept too many requests in flight.
		var next *block
		if bi+1 < len(l.blocks) {
			next = l.blocks[bi+1]
		}
		for k, h := range heads {
			var aheadK, aheadV []byte
			if k+1 < len(heads) {
				h2 := heads[k+1]
				aheadK = b.data[lay.kOff[h2]+j*lay.kSize[h2] : lay.kOff[h2]+(j+n)*lay.kSize[h2]]
				aheadV = b.data[lay.vOff[h2]+j*lay.vSize[h2] : lay.vOff[h2]+(j+n)*lay.vSize[h2]]
			} else if next != nil {
				h2 := heads[0]
				aheadK = next.data[next.lay.kOff[h2] : next.lay.kOff[h2]+B*next.lay.kSize[h2]]
				aheadV = next.data[next.lay.vOff[h2] : next.lay.vOff[h2]+B*next.lay.vSize[h2]]
			}
			ks, vs := lay.kSize[h], lay.vSize[h]
			kd, vd := lay.drift(b.data, h)
			f(k, run{pos: pos, n: n, k: b.data[lay.kOff[h]+j*ks:], v: b.data[lay.vOff[h]+j*vs:],
				kStride: ks, vStride: vs, up: lay.upgraded(h), kd: kd, vd: vd, aheadK: aheadK, aheadV: aheadV})
		}
		pos += n
	}
	for pos < limit { // the window ring, in at most two pieces
		i := pos - l.nSink - l.compressed
		slot := s.winSlot(l, i)
		n := min(limit-pos, l.winCap-slot)
		raw(l.win, slot, pos, n)
		pos += n
	}
}

// tokenKind says how a token's bytes are stored.
type tokenKind uint8

const (
	baseToken     tokenKind = iota // codes of the head's codecs
	rawToken                       // fp16 (sinks, window)
	upgradedToken                  // codes of the guard's upgraded codecs
)

// eachToken calls f for every token of KV head h at positions [0, limit),
// in position order, with its key and value bytes and its block's drift
// codes (nil without): layerRuns one token at a time. which says which of
// them the caller reads (for prefetching).
func (s *Sequence) eachToken(l *seqLayer, h, limit int, which kv, f func(pos int, k, v, kd, vd []byte, kind tokenKind)) {
	if limit == 0 {
		return
	}
	d := s.pool.cfg.HeadDim
	s.layerRuns(l, []int{h}, 0, limit, func(_ int, r run) {
		kind, ks, vs := baseToken, r.kStride, r.vStride
		switch {
		case r.raw:
			kind, ks, vs = rawToken, 2*d, 2*d
		case r.up:
			kind = upgradedToken
		}
		if which == valuesKV {
			simd.Prefetch(r.aheadV)
		} else {
			simd.Prefetch(r.aheadK)
		}
		for t := range r.n {
			f(r.pos+t, r.k[t*r.kStride:t*r.kStride+ks], r.v[t*r.vStride:t*r.vStride+vs], r.kd, r.vd, kind)
		}
	})
}
