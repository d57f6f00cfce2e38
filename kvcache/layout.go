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
// at kOff[h], kSize[h] bytes per token, then the values likewise. Layouts
// are immutable and shared by the blocks (and forks) that use them.
type blockLayout struct {
	up                       []bool // per head: the guard's codecs; nil: none
	kOff, vOff, kSize, vSize []int
	tokenBytes               int64 // one token, every head, keys and values
	bytes                    int64 // the whole block
}

// newBlockLayout lays out a block of layer plan lp with the heads marked in
// up (nil: none) at the guard's codecs.
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
	lay.bytes = int64(off)
	return lay
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
