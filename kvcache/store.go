package kvcache

import (
	"github.com/turboquant-go/tq/turboquant"

	"encoding/binary"
	"math"

	"github.com/turboquant-go/tq/internal/half"
	"github.com/turboquant-go/tq/internal/simd"
)

// store is how one (layer, KV head) stores its keys or values: a
// Quantizer's codes, or plain fp16/fp32 for the passthrough storages.
// Attention only needs these operations, so the compressed and the baseline
// caches run the same loops.
type store interface {
	encode(dst []byte, x []float32) error
	// decode writes the vector a code stands for into dst (len dim).
	decode(dst []float32, code []byte)
	newQuery() vecQuery
	// accumulate adds ws[i]·x̃ into accs[i] for every i, in the store's own
	// domain (rotated for quantizers), reading the code once; finish maps an
	// accumulator back to dst. tmp has HeadDim floats.
	accumulate(accs [][]float32, ws []float32, code []byte, tmp []float32)
	finish(dst, acc []float32)
}

// vecQuery is a query prepared against one store.
type vecQuery interface {
	reset(y []float32)
	score(code []byte) float32
}

// quantStore is a store backed by a Quantizer. It keeps the quantizer's
// code layout and, where the codes have a row form (attend_rows.go), their
// codebooks laid out for the internal/simd kernels, built once.
type quantStore struct {
	q     *turboquant.Quantizer
	parts []turboquant.Part // walked by index per run: a Part is about 200 bytes
	kerns []*simd.Codebook  // per part; nil without a row form
}

func newQuantStore(q *turboquant.Quantizer) *quantStore {
	c := &quantStore{q: q, parts: q.Parts()}
	for _, p := range c.parts {
		if p.Method != turboquant.MSE || p.Norm != turboquant.FP16 || p.Bits < 1 || p.Bits > 8 {
			c.kerns = nil
			break
		}
		c.kerns = append(c.kerns, simd.NewCodebook(p.Centroids, p.Bits))
	}
	return c
}

// Lengths are right by construction: the cache sizes every buffer and code
// from the quantizer, so the quantizer's length errors cannot occur here.

func (c *quantStore) encode(dst []byte, x []float32) error { return c.q.Encode(dst, x) }

func (c *quantStore) decode(dst []float32, code []byte) { _ = c.q.Decode(dst, code) }

func (c *quantStore) newQuery() vecQuery { return quantQuery{c.q.NewQuery()} }

func (c *quantStore) accumulate(accs [][]float32, ws []float32, code []byte, _ []float32) {
	_ = c.q.AccumulateRotatedGroup(accs, ws, code)
}

func (c *quantStore) finish(dst, acc []float32) { _ = c.q.FinishRotated(dst, acc) }

type quantQuery struct{ qq *turboquant.Query }

func (q quantQuery) reset(y []float32) { _ = q.qq.Reset(y) }
func (q quantQuery) score(code []byte) float32 {
	s, _ := q.qq.Score(code)
	return s
}

// fp16Store stores little-endian IEEE half floats.
type fp16Store struct{ dim int }

func (c fp16Store) encode(dst []byte, x []float32) error {
	if math.Float32frombits(simd.MaxAbsBits(x)) >= fp16Limit {
		return ErrOverflow
	}
	simd.EncodeF16(dst[:2*len(x)], x)
	return nil
}

func (c fp16Store) decode(dst []float32, code []byte) {
	for i := range dst[:c.dim] {
		dst[i] = half.ToFloat32(binary.LittleEndian.Uint16(code[2*i:]))
	}
}

func (c fp16Store) newQuery() vecQuery { return &rawQuery{y: make([]float32, c.dim), half: true} }

func (c fp16Store) accumulate(accs [][]float32, ws []float32, code []byte, tmp []float32) {
	tmp = tmp[:c.dim]
	for i := range tmp {
		tmp[i] = half.ToFloat32(binary.LittleEndian.Uint16(code[2*i:]))
	}
	axpyGroup(accs, ws, tmp)
}

// axpyGroup adds ws[i]·x to accs[i] for every i.
func axpyGroup(accs [][]float32, ws []float32, x []float32) {
	for i, acc := range accs {
		w := ws[i]
		acc = acc[:len(x)]
		for j, v := range x {
			acc[j] += w * v
		}
	}
}

func (c fp16Store) finish(dst, acc []float32) { copy(dst, acc) }

// fp32Store stores little-endian float32.
type fp32Store struct{ dim int }

func (c fp32Store) encode(dst []byte, x []float32) error {
	for i, v := range x {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
	return nil
}

func (c fp32Store) decode(dst []float32, code []byte) {
	for i := range dst[:c.dim] {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(code[4*i:]))
	}
}

func (c fp32Store) newQuery() vecQuery { return &rawQuery{y: make([]float32, c.dim)} }

func (c fp32Store) accumulate(accs [][]float32, ws []float32, code []byte, tmp []float32) {
	tmp = tmp[:c.dim]
	for i := range tmp {
		tmp[i] = math.Float32frombits(binary.LittleEndian.Uint32(code[4*i:]))
	}
	axpyGroup(accs, ws, tmp)
}

func (c fp32Store) finish(dst, acc []float32) { copy(dst, acc) }

// rawQuery scores fp16 or fp32 codes with a plain dot product.
type rawQuery struct {
	y    []float32
	half bool
}

func (q *rawQuery) reset(y []float32) { copy(q.y, y) }

func (q *rawQuery) score(code []byte) float32 {
	var s0, s1 float32
	y := q.y
	if q.half {
		code = code[:2*len(y)]
		n := len(y) &^ 1
		for i := 0; i < n; i += 2 {
			s0 += y[i] * half.ToFloat32(binary.LittleEndian.Uint16(code[2*i:]))
			s1 += y[i+1] * half.ToFloat32(binary.LittleEndian.Uint16(code[2*i+2:]))
		}
		if n < len(y) {
			s0 += y[n] * half.ToFloat32(binary.LittleEndian.Uint16(code[2*n:]))
		}
		return s0 + s1
	}
	code = code[:4*len(y)]
	for i, v := range y {
		s0 += v * math.Float32frombits(binary.LittleEndian.Uint32(code[4*i:]))
	}
	return s0
}
