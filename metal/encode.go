package metal

import (
	"encoding/binary"
	"fmt"
	"github.com/turboquant-go/tq/internal/gpucode"
	"math"

	"github.com/turboquant-go/tq/internal/half"
	"github.com/turboquant-go/tq/turboquant"
)

// InputType is the element type of the vectors an Encoder reads.
type InputType int32

const (
	Float32  InputType = 0 // IN_F32
	Float16  InputType = 1 // IN_F16: IEEE binary16
	BFloat16 InputType = 2 // IN_BF16
)

func (t InputType) size() int {
	if t == Float32 {
		return 4
	}
	return 2
}

// encodeArgs is EncodeArgs in encode.metal.
type encodeArgs struct {
	N, D, Bits, Prec, Rounds, CodeSize, OffIdx, InType int32
	FinalScale                                         float32
}

// Encoder encodes batches of vectors on the device with one quantizer's
// codes: MSE, one part (no outlier channels), no correction scalar, a
// power-of-two dim of at most 1024 (the restrictions of cuda.Encoder).
// Codes equal Quantizer.Encode's byte for byte, up to the norm caveat in
// encode.metal.
type Encoder struct {
	dev    *Device
	q      *turboquant.Quantizer
	part   turboquant.Part
	plan   *gpucode.RotationPlan
	signs  *Buffer
	bounds *Buffer
}

// NewEncoder prepares q's rotation and codebook on the device.
func NewEncoder(dev *Device, q *turboquant.Quantizer) (*Encoder, error) {
	parts := q.Parts()
	if len(parts) != 1 || parts[0].Method != turboquant.MSE || parts[0].Correction != turboquant.NoCorrection {
		return nil, fmt.Errorf("%w: device encode handles single-part MSE codes without correction", ErrUnsupported)
	}
	e := &Encoder{dev: dev, q: q, part: parts[0]}
	var err error
	if e.plan, err = gpucode.NewRotationPlan(parts[0].Rotation, maxEncodeDim); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	bounds := append(append([]float32(nil), e.part.Boundaries...), float32(math.Inf(1)))
	if e.signs, err = dev.Alloc(4 * len(e.plan.Signs)); err != nil {
		return nil, err
	}
	if e.bounds, err = dev.Alloc(4 * len(bounds)); err != nil {
		dev.Free(e.signs)
		return nil, err
	}
	putFloat32s(e.signs.Bytes(), e.plan.Signs)
	putFloat32s(e.bounds.Bytes(), bounds)
	return e, nil
}

// Close frees the encoder's device tables.
func (e *Encoder) Close() {
	e.dev.Free(e.signs)
	e.dev.Free(e.bounds)
}

// EncodeDevice encodes the vectors of type in held by xs (whole vectors of
// Dim elements) into codes (n·CodeSize bytes). A vector whose norm
// overflows the norm's precision is reported (by index) with
// turboquant.ErrOverflow; the codes of the others are written.
func (e *Encoder) EncodeDevice(codes, xs *Buffer, in InputType) error {
	d, cs := e.part.Dim, e.q.CodeSize()
	if in < Float32 || in > BFloat16 {
		return fmt.Errorf("%w: input type %d", ErrUnsupported, in)
	}
	vb := d * in.size()
	if xs == nil || codes == nil || xs.Size()%vb != 0 {
		return fmt.Errorf("%w: input of %d bytes is not whole vectors of dim %d", ErrLength, xs.Size(), d)
	}
	n := xs.Size() / vb
	if codes.Size() < n*cs {
		return fmt.Errorf("%w: code buffer of %d bytes, need %d", ErrLength, codes.Size(), n*cs)
	}
	if n == 0 {
		return nil
	}
	status, err := e.dev.Alloc(4 * n)
	if err != nil {
		return err
	}
	defer e.dev.Free(status)
	args := encodeArgs{N: int32(n), D: int32(d), Bits: int32(e.part.Bits), Prec: int32(e.part.Norm),
		Rounds: int32(e.plan.Rounds), CodeSize: int32(cs), OffIdx: int32(e.part.IndexOffset), InType: int32(in),
		FinalScale: e.plan.Final}
	if err := e.dev.run([]dispatch{{kernel: "tq_encode_mse", groups: [3]int{n, 1, 1}, threads: d,
		binds: []binding{bufArg(xs), bytesArg(&args), bufArg(e.signs), bufArg(e.bounds), bufArg(codes), bufArg(status)},
		tgmem: []int{4 * d, d, 8 * 8, 4 * 4}}}); err != nil {
		return err
	}
	st := status.Bytes()
	for i := range n {
		if binary.LittleEndian.Uint32(st[4*i:]) != 0 {
			return fmt.Errorf("vector %d: %w", i, turboquant.ErrOverflow)
		}
	}
	return nil
}

// Encode encodes xs ([n][Dim] float32, finite) into dst (n·CodeSize
// bytes).
func (e *Encoder) Encode(dst []byte, xs []float32) error {
	for i, x := range xs {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("%w: component %d is %v", turboquant.ErrNonFinite, i, x)
		}
	}
	raw := make([]byte, 4*len(xs))
	putFloat32s(raw, xs)
	return e.encodeHost(dst, raw, len(xs), Float32)
}

// EncodeFP16 is Encode for IEEE half inputs.
func (e *Encoder) EncodeFP16(dst []byte, xs []uint16) error {
	for i, x := range xs {
		if x&0x7C00 == 0x7C00 {
			return fmt.Errorf("%w: component %d is %v", turboquant.ErrNonFinite, i, half.ToFloat32(x))
		}
	}
	return e.encodeHost(dst, u16Bytes(xs), len(xs), Float16)
}

// EncodeBF16 is Encode for bfloat16 inputs.
func (e *Encoder) EncodeBF16(dst []byte, xs []uint16) error {
	for i, x := range xs {
		if x&0x7F80 == 0x7F80 {
			return fmt.Errorf("%w: component %d is not finite (bits %#04x)", turboquant.ErrNonFinite, i, x)
		}
	}
	return e.encodeHost(dst, u16Bytes(xs), len(xs), BFloat16)
}

func (e *Encoder) encodeHost(dst, raw []byte, elems int, in InputType) error {
	d, cs := e.part.Dim, e.q.CodeSize()
	if elems%d != 0 || len(dst) < elems/d*cs {
		return fmt.Errorf("%w: %d elements and %d code bytes for dim %d", ErrLength, elems, len(dst), d)
	}
	n := elems / d
	if n == 0 {
		return nil
	}
	in0, err := e.dev.Alloc(len(raw))
	if err != nil {
		return err
	}
	defer e.dev.Free(in0)
	out, err := e.dev.Alloc(n * cs)
	if err != nil {
		return err
	}
	defer e.dev.Free(out)
	copy(in0.Bytes(), raw)
	if err := e.EncodeDevice(out, in0, in); err != nil {
		return err
	}
	copy(dst[:n*cs], out.Bytes())
	return nil
}

func putFloat32s(dst []byte, xs []float32) {
	for i, x := range xs {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(x))
	}
}

func getFloat32s(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func u16Bytes(xs []uint16) []byte {
	b := make([]byte, 2*len(xs))
	for i, x := range xs {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	return b
}

func int32Bytes(xs []int32) []byte {
	b := make([]byte, 4*len(xs))
	for i, x := range xs {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return b
}

func f32Bytes(xs []float32) []byte {
	b := make([]byte, 4*len(xs))
	putFloat32s(b, xs)
	return b
}
