package cuda

import (
	"fmt"
	"math"

	"github.com/turboquant-go/tq/internal/half"
)

// DenseAttention is the baseline: attention over plain fp16 or fp32 keys
// and values in device memory, [tokens][KV heads][d], with the same split
// and reduce kernels as the compressed cache. It exists to measure the
// compressed kernels against.
type DenseAttention struct {
	dev           *Device
	fp32          bool
	n, H, g, d    int
	k, v          *Buffer
	q, part, red  *Buffer
	chunk, nsplit int
	scale         float32
}

// NewDenseAttention uploads keys and values ([n][H][d]; fp32, rounded to
// fp16 unless fp32) for query heads g·H.
func NewDenseAttention(dev *Device, keys, values []float32, n, H, g, d int, fp32 bool) (*DenseAttention, error) {
	if len(keys) != n*H*d || len(values) != n*H*d || g < 1 || g > maxGroup || n < 1 {
		return nil, fmt.Errorf("%w: dense attention over %d/%d floats for %d×%d×%d, group %d", ErrLength, len(keys), len(values), n, H, d, g)
	}
	a := &DenseAttention{dev: dev, fp32: fp32, n: n, H: H, g: g, d: d, scale: float32(1 / math.Sqrt(float64(d)))}
	enc := func(x []float32) []byte {
		if fp32 {
			return append([]byte(nil), f32Bytes(x)...)
		}
		b := make([]byte, 2*len(x))
		for i, v := range x {
			h := half.FromFloat32(v)
			b[2*i], b[2*i+1] = byte(h), byte(h>>8)
		}
		return b
	}
	var err error
	for _, kv := range []struct {
		dst **Buffer
		x   []float32
	}{{&a.k, keys}, {&a.v, values}} {
		b := enc(kv.x)
		if *kv.dst, err = dev.Alloc(len(b)); err != nil {
			a.Close()
			return nil, err
		}
		if err = dev.Write(*kv.dst, 0, b); err != nil {
			a.Close()
			return nil, err
		}
	}
	a.chunk = chunkFor(n, H, 1, g, dev.Multiprocessors(), 2*g*d+threadsPerBlock)
	a.nsplit = (n + a.chunk - 1) / a.chunk
	rows := H * g
	if a.q, err = dev.Alloc(4 * rows * d); err == nil {
		if a.part, err = dev.Alloc(4 * rows * a.nsplit * (4 + 2*d)); err == nil {
			a.red, err = dev.Alloc(4 * rows * (4 + 2*d))
		}
	}
	if err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// Close frees the device buffers.
func (a *DenseAttention) Close() {
	for _, b := range []*Buffer{a.k, a.v, a.q, a.part, a.red} {
		_ = a.dev.Free(b)
	}
}

// Launch queues attention of one query per query head ([H·g][d], already
// on the device via SetQuery) over all n tokens.
func (a *DenseAttention) Launch() error {
	name := "dense_attend_partial_f16"
	if a.fp32 {
		name = "dense_attend_partial_f32"
	}
	shared := uint32(4 * (a.g*a.d + a.g*a.chunk + threadsPerBlock))
	if err := a.dev.launch(name, dim3{uint32(a.nsplit), uint32(a.H), 1}, dim3{threadsPerBlock, 1, 1}, shared,
		a.k, a.v, int32(a.n), int32(a.H), a.q, int32(1), int32(a.g), int32(a.d), a.scale, int32(a.chunk), int32(a.nsplit), a.part); err != nil {
		return err
	}
	return a.dev.launch("tq_attend_reduce", dim3{uint32(a.H * a.g), 1, 1}, dim3{threadsPerBlock, 1, 1}, 0,
		a.part, int32(a.nsplit), int32(a.d), a.red)
}

// SetQuery uploads the queries ([H·g][d]).
func (a *DenseAttention) SetQuery(q []float32) error {
	if len(q) != a.H*a.g*a.d {
		return fmt.Errorf("%w: %d query floats, need %d", ErrLength, len(q), a.H*a.g*a.d)
	}
	return a.dev.WriteFloat32s(a.q, 0, q)
}

// Attend runs SetQuery, Launch and returns the outputs ([H·g][d]).
func (a *DenseAttention) Attend(q []float32) ([]float32, error) {
	if err := a.SetQuery(q); err != nil {
		return nil, err
	}
	if err := a.Launch(); err != nil {
		return nil, err
	}
	rows, stride := a.H*a.g, 4+2*a.d
	red := make([]float32, rows*stride)
	if err := a.dev.ReadFloat32s(red, a.red, 0); err != nil {
		return nil, err
	}
	out := make([]float32, rows*a.d)
	for r := range rows {
		inv := float32(1 / float64(red[r*stride]))
		for j := range a.d {
			out[r*a.d+j] = red[r*stride+4+j] * inv
		}
	}
	return out, nil
}
