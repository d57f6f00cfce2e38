package cuda

import (
	"fmt"
	"github.com/turboquant-go/tq/internal/gpucode"
	"math"

	"github.com/turboquant-go/tq/turboquant"
)

// Encoder encodes batches of vectors on the device with one quantizer's
// codes: MSE, one part (no outlier channels), no correction scalar, a
// power-of-two dim of at most 1024. Codes are byte-identical to
// Quantizer.Encode.
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
	if e.signs, err = dev.Alloc(4 * len(e.plan.Signs)); err != nil {
		return nil, err
	}
	bounds := append(append([]float32(nil), e.part.Boundaries...), float32(math.Inf(1)))
	if e.bounds, err = dev.Alloc(4 * len(bounds)); err != nil {
		_ = dev.Free(e.signs)
		return nil, err
	}
	if err := dev.WriteFloat32s(e.signs, 0, e.plan.Signs); err != nil {
		e.Close()
		return nil, err
	}
	if err := dev.WriteFloat32s(e.bounds, 0, bounds); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Close frees the encoder's device tables.
func (e *Encoder) Close() {
	_ = e.dev.Free(e.signs)
	_ = e.dev.Free(e.bounds)
}

// EncodeDevice encodes the n = xs.Size()/(4·Dim) vectors in device buffer
// xs into device buffer codes (n·CodeSize bytes). A vector whose norm
// overflows the norm's precision is reported (by index) with
// turboquant.ErrOverflow; codes of the others are written.
func (e *Encoder) EncodeDevice(codes, xs *Buffer) error {
	d, cs := e.part.Dim, e.q.CodeSize()
	if xs == nil || codes == nil || xs.Size()%(4*d) != 0 {
		return fmt.Errorf("%w: input of %d bytes is not whole vectors of dim %d", ErrLength, bufSize(xs), d)
	}
	n := xs.Size() / (4 * d)
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
	shared := uint32(d * (8 + 4 + 1))
	if err := e.dev.launch("tq_encode_mse", dim3{uint32(n), 1, 1}, dim3{uint32(d), 1, 1}, shared,
		xs, int32(n), int32(d), int32(e.part.Bits), int32(e.part.Norm), int32(e.plan.Rounds), e.signs, e.plan.Final,
		e.bounds, codes, int32(cs), int32(e.part.IndexOffset), status); err != nil {
		return err
	}
	st := make([]int32, n)
	if err := e.dev.Read(int32Bytes(st), status, 0); err != nil {
		return err
	}
	for i, s := range st {
		if s != 0 {
			return fmt.Errorf("vector %d: %w", i, turboquant.ErrOverflow)
		}
	}
	return nil
}

// Encode is EncodeDevice for host slices: xs ([n][Dim], finite) is
// uploaded, encoded, and the codes downloaded into dst (n·CodeSize bytes).
func (e *Encoder) Encode(dst []byte, xs []float32) error {
	d, cs := e.part.Dim, e.q.CodeSize()
	if len(xs)%d != 0 || len(dst) < len(xs)/d*cs {
		return fmt.Errorf("%w: %d floats and %d code bytes for dim %d", ErrLength, len(xs), len(dst), d)
	}
	for i, x := range xs {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("%w: component %d is %v", turboquant.ErrNonFinite, i, x)
		}
	}
	n := len(xs) / d
	if n == 0 {
		return nil
	}
	in, err := e.dev.Alloc(4 * len(xs))
	if err != nil {
		return err
	}
	defer e.dev.Free(in)
	out, err := e.dev.Alloc(n * cs)
	if err != nil {
		return err
	}
	defer e.dev.Free(out)
	if err := e.dev.WriteFloat32s(in, 0, xs); err != nil {
		return err
	}
	if err := e.EncodeDevice(out, in); err != nil {
		return err
	}
	return e.dev.Read(dst[:n*cs], out, 0)
}
