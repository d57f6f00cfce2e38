package polarquant

import (
	"encoding/binary"

	"github.com/turboquant-go/tq/internal/half"
)

// Query is a prepared query vector that scores codes directly, without
// decoding them. Reset builds a table holding, for every level-1 pair j and
// every level-1 centroid k, the dot product of (y[2j], y[2j+1]) with
// (cos θ̂ₖ, sin θ̂ₖ); Score then needs one lookup per pair and one
// multiply-add pair per higher-level angle. A Query is not safe for
// concurrent use; make one per goroutine.
type Query struct {
	q   *Quantizer
	lut []float32 // lut[16j+k] = y[2j]·cos θ̂ₖ + y[2j+1]·sin θ̂ₖ
}

// NewQuery returns a query for q, zero until Reset.
func (q *Quantizer) NewQuery() *Query {
	return &Query{q: q, lut: make([]float32, q.dim/2*16)}
}

// Reset prepares qq for the rotated query y. It panics if len(y) != Dim().
// It does not allocate.
func (qq *Query) Reset(y []float32) {
	if len(y) != qq.q.dim {
		panic("polarquant: Reset with wrong vector length")
	}
	t := qq.q.t
	for j := range len(y) / 2 {
		u, v := y[2*j], y[2*j+1]
		row := qq.lut[16*j : 16*j+16 : 16*j+16]
		for k := range 8 { // centroid k+8 is centroid k + π
			p := u*t.cos1[k] + v*t.sin1[k]
			row[k], row[k+8] = p, -p
		}
	}
}

// Score returns ⟨y, Decode(code)⟩ for the y of the last Reset, up to
// float32 rounding. It panics if len(code) < CodeSize(). It does not
// allocate.
func (qq *Query) Score(code []byte) float32 {
	q := qq.q
	if len(code) < q.size {
		panic("polarquant: Score with short code")
	}
	code = code[:q.size:q.size]
	t := q.t
	tail := code[q.l3Off:]
	lut := qq.lut
	n := q.dim / blockLen
	var sum float32
	for b := range n {
		// The block's contribution is r·Σ (path weight)·(pair dot), so the
		// tree is folded bottom-up: pair dots, then levels 2, 3, 4.
		row := lut[128*b : 128*b+128 : 128*b+128]
		w1 := binary.LittleEndian.Uint32(code[q.l1Off+4*b:])
		w2 := code[q.l2Off+b]
		var p [4]float32
		for i := range p {
			k := w2 >> (2 * i) & 3
			a := row[32*i+int(w1>>(8*i)&15)]
			c := row[32*i+16+int(w1>>(8*i+4)&15)]
			p[i] = a*t.cos[0][k] + c*t.sin[0][k]
		}
		i3 := tail[b>>1] >> (4 * (b & 1))
		ia, ib := i3&3, i3>>2&3
		ua := p[0]*t.cos[1][ia] + p[1]*t.sin[1][ia]
		ub := p[2]*t.cos[1][ib] + p[3]*t.sin[1][ib]
		bit := q.l4Bit + 2*b
		i4 := tail[bit>>3] >> (bit & 7) & 3
		r := half.ToFloat32(binary.LittleEndian.Uint16(code[2*b:]))
		sum += r * (ua*t.cos[2][i4] + ub*t.sin[2][i4])
	}
	return sum
}
