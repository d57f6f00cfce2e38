package turboquant

import (
	"encoding/binary"
	"math"

	"github.com/turboquant-go/tq/internal/half"
	"github.com/turboquant-go/tq/internal/simd"
)

// vecCodec is how one (layer, KV head) stores its keys or values: a
// Quantizer, or plain fp16/fp32 for the passthrough codecs. Attention only
// needs these operations, so the compressed and the baseline caches run the
// same loops.
type vecCodec interface {
	encode(dst []byte, x []float32) error
	// decode writes the vector a code stands for into dst (len dim).
	decode(dst []float32, code []byte)
	newQuery() vecQuery
	// accumulate adds ws[i]·x̃ into accs[i] for every i, in the codec's own
	// domain (rotated for quantizers), reading the code once; finish maps an
	// accumulator back to dst. s comes from getScratch; tmp has HeadDim
	// floats.
	accumulate(accs [][]float32, ws []float32, code []byte, s *scratch, tmp []float32)
	finish(dst, acc []float32)
	getScratch() *scratch
	putScratch(*scratch)
}

// vecQuery is a query prepared against one codec.
type vecQuery interface {
	reset(y []float32)
	score(code []byte) float32
}

// quantCodec is a vecCodec backed by a Quantizer.
type quantCodec struct{ q *Quantizer }

func (c quantCodec) encode(dst []byte, x []float32) error { return c.q.Encode(dst, x) }

func (c quantCodec) decode(dst []float32, code []byte) { _ = c.q.Decode(dst, code) }

func (c quantCodec) newQuery() vecQuery { return quantQuery{c.q.NewQuery()} }

func (c quantCodec) accumulate(accs [][]float32, ws []float32, code []byte, s *scratch, _ []float32) {
	c.q.accumulateGroup(accs, ws, code, s)
}

func (c quantCodec) getScratch() *scratch  { return c.q.get() }
func (c quantCodec) putScratch(s *scratch) { c.q.put(s) }

func (c quantCodec) finish(dst, acc []float32) { _ = c.q.FinishRotated(dst, acc) }

type quantQuery struct{ qq *Query }

func (q quantQuery) reset(y []float32)         { _ = q.qq.Reset(y) }
func (q quantQuery) score(code []byte) float32 { return q.qq.score(code) }

// fp16Codec stores little-endian IEEE half floats.
type fp16Codec struct{ dim int }

func (c fp16Codec) encode(dst []byte, x []float32) error {
	for _, v := range x {
		if math.Abs(float64(v)) >= fp16Max+16 {
			return ErrOverflow
		}
	}
	simd.EncodeF16(dst[:2*len(x)], x)
	return nil
}

func (c fp16Codec) decode(dst []float32, code []byte) {
	for i := range dst[:c.dim] {
		dst[i] = half.ToFloat32(binary.LittleEndian.Uint16(code[2*i:]))
	}
}

func (c fp16Codec) newQuery() vecQuery { return &rawQuery{y: make([]float32, c.dim), half: true} }

func (fp16Codec) getScratch() *scratch { return nil }
func (fp16Codec) putScratch(*scratch)  {}

func (c fp16Codec) accumulate(accs [][]float32, ws []float32, code []byte, _ *scratch, tmp []float32) {
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

func (c fp16Codec) finish(dst, acc []float32) { copy(dst, acc) }

// fp32Codec stores little-endian float32.
type fp32Codec struct{ dim int }

func (c fp32Codec) encode(dst []byte, x []float32) error {
	for i, v := range x {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
	return nil
}

func (c fp32Codec) decode(dst []float32, code []byte) {
	for i := range dst[:c.dim] {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(code[4*i:]))
	}
}

func (c fp32Codec) newQuery() vecQuery { return &rawQuery{y: make([]float32, c.dim)} }

func (fp32Codec) getScratch() *scratch { return nil }
func (fp32Codec) putScratch(*scratch)  {}

func (c fp32Codec) accumulate(accs [][]float32, ws []float32, code []byte, _ *scratch, tmp []float32) {
	tmp = tmp[:c.dim]
	for i := range tmp {
		tmp[i] = math.Float32frombits(binary.LittleEndian.Uint32(code[4*i:]))
	}
	axpyGroup(accs, ws, tmp)
}

func (c fp32Codec) finish(dst, acc []float32) { copy(dst, acc) }

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
