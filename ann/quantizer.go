package ann

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"runtime"
	"sync"

	"github.com/turboquant-go/tq/internal/half"
	"github.com/turboquant-go/tq/internal/simd"
	"github.com/turboquant-go/tq/qjl"
	"github.com/turboquant-go/tq/turboquant"
)

// Metric is the similarity an index ranks by.
type Metric uint8

const (
	// InnerProduct ranks by ⟨q, x⟩ (distance −⟨q, x⟩).
	InnerProduct Metric = iota + 1
	// Cosine ranks by ⟨q, x⟩/(‖q‖‖x‖): vectors are normalized before
	// encoding and queries before scoring (distance 1 − cosine).
	Cosine
	// L2 ranks by the squared Euclidean distance ‖q − x‖².
	L2
)

func (m Metric) String() string {
	switch m {
	case InnerProduct:
		return "ip"
	case Cosine:
		return "cosine"
	case L2:
		return "l2"
	}
	return fmt.Sprintf("Metric(%d)", uint8(m))
}

// ParseMetric is the inverse of Metric.String.
func ParseMetric(s string) (Metric, error) {
	for _, m := range []Metric{InnerProduct, Cosine, L2} {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown metric %q (want ip, cosine or l2)", ErrConfig, s)
}

// Method is the TurboQuant variant that encodes the vectors.
type Method uint8

const (
	// MSE is TurboQuant_mse: the norm and b-bit Lloyd–Max indices of the
	// rotated unit vector.
	MSE Method = iota + 1
	// Prod is TurboQuant_prod: b−1 MSE bits and a 1-bit QJL sketch of the
	// residual (structured Hadamard sketch), unbiased inner products.
	Prod
	// MSENorm is MSE with one more per-vector scalar that rescales the
	// reconstruction so its inner product with the vector equals ‖x‖²,
	// removing the per-vector length bias of MSE codes (turboquant.Unbiased).
	MSENorm
	// Polar is PolarQuant (3.875 bits per coordinate; Bits must be 0).
	// Dimensions that are not a multiple of 16 are zero-padded up to one.
	Polar
)

func (m Method) String() string {
	switch m {
	case MSE:
		return "mse"
	case Prod:
		return "prod"
	case MSENorm:
		return "mse-norm"
	case Polar:
		return "polar"
	}
	return fmt.Sprintf("Method(%d)", uint8(m))
}

// ParseMethod is the inverse of Method.String.
func ParseMethod(s string) (Method, error) {
	for _, m := range []Method{MSE, Prod, MSENorm, Polar} {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown method %q (want mse, prod, mse-norm or polar)", ErrConfig, s)
}

// MaxDim bounds the dimension (far above 3072-d embeddings); it keeps every
// lookup-table sum inside uint32.
const MaxDim = 1 << 15

// Config describes a TurboQuant quantizer for search.
type Config struct {
	Dim    int    // vector dimension, 2–MaxDim
	Bits   int    // bits per coordinate, 1–8 (Prod: including the QJL bit); 0 for Polar
	Method Method // MSE, Prod, MSENorm or Polar
	Metric Metric // InnerProduct, Cosine or L2
	Seed   uint64 // seeds the rotation (and Prod's sketch)
	// Rounds of the randomized Hadamard rotation; 0 means the turboquant
	// default (3 at powers of two, 2 otherwise).
	Rounds int
	// Mean, when set (len Dim, finite), is subtracted from every vector
	// before rotation: the codes then spend their bits on x − Mean, whose
	// norm is far smaller than ‖x‖ on data that is not centred (pixels,
	// non-negative features). Distances stay those of the original vectors:
	// L2 is translation invariant and scores the centred query, and inner
	// products add the per-query constant ⟨q, Mean⟩. For Cosine the mean is
	// that of the normalized vectors. Compute it with ann.Mean (one pass);
	// nil keeps the quantizer training-free.
	Mean []float32
}

// metricScale is what x is scaled by before it is centred or coded: 1/‖x‖
// for Cosine (1 for the zero vector), 1 otherwise.
func metricScale(m Metric, x []float32) float64 {
	if m == Cosine {
		if ss := dot64(x, x); ss > 0 {
			return 1 / math.Sqrt(ss)
		}
	}
	return 1
}

// Mean returns the mean of the row-major vectors xs (len a multiple of dim),
// normalized first for Cosine: the Config.Mean that centres them. It is one
// pass over the data, accumulated in float64.
func Mean(m Metric, xs []float32, dim int) ([]float32, error) {
	if dim < 1 || len(xs)%dim != 0 || len(xs) == 0 {
		return nil, fmt.Errorf("%w: %d floats is not a non-empty whole number of %d-d vectors", ErrDimension, len(xs), dim)
	}
	acc := make([]float64, dim)
	for i := 0; i < len(xs); i += dim {
		x := xs[i : i+dim]
		s := metricScale(m, x)
		for j, v := range x {
			acc[j] += s * float64(v)
		}
	}
	n := float64(len(xs) / dim)
	out := make([]float32, dim)
	for j, v := range acc {
		out[j] = float32(v / n)
		if math.IsNaN(float64(out[j])) || math.IsInf(float64(out[j]), 0) {
			return nil, fmt.Errorf("%w: mean of coordinate %d is not finite", turboquant.ErrNonFinite, j)
		}
	}
	return out, nil
}

// Quantizer is what an index needs from a vector quantizer: train-free
// batched encoding, prepared full-precision queries scored against codes,
// and code-to-code distances. Implementations are safe for concurrent use;
// a Query is not (make one per goroutine).
type Quantizer interface {
	Dim() int
	Metric() Metric
	// CodeSize is the exact number of bytes of one code.
	CodeSize() int
	// Encode writes the codes of the row-major vectors xs (len a multiple of
	// Dim) to dst (CodeSize bytes each, back to back), in parallel.
	Encode(dst []byte, xs []float32) error
	// NewQuery returns a prepared query; Reset loads a vector into it.
	NewQuery() Query
	// Distance is the symmetric distance between two codes.
	Distance(a, b []byte) (float32, error)
	// MarshalBinary encodes everything needed to rebuild the quantizer.
	MarshalBinary() ([]byte, error)
}

// Query is a full-precision query prepared once and scored against many
// codes (asymmetric distance).
type Query interface {
	Reset(y []float32) error
	// Distances writes the distance to each of the back-to-back codes
	// (len a multiple of CodeSize) into dst.
	Distances(dst []float32, codes []byte) error
}

// TQ is the TurboQuant Quantizer.
type TQ struct {
	cfg    Config
	q      *turboquant.Quantizer
	qDim   int // the turboquant dimension: Dim, or Dim padded to a multiple of 16 for Polar
	layout codeLayout
	mse    bool // layout describes the codes (single-part MSE)
	// fast is set for MSE codes whose bit width divides 8: without SIMD they
	// are scored through a per-byte lookup table.
	fast bool
	// kern is set for MSE codes of 1–4 bits with fp16 norms: with SIMD
	// kernels they are scored by simd.DotCodesPadded (unpacked and
	// multiplied in registers).
	kern *simd.Codebook
	// mean is Config.Mean zero-padded to qDim (nil without centring), and
	// meanNorm2 its squared norm.
	mean      []float32
	meanNorm2 float32
	// ipScale multiplies the code inner products of plain MSE codes: the
	// reciprocal of the expected ⟨ĉ, u⟩ of a unit vector u and its
	// reconstruction ĉ (2/π at one bit), which removes the multiplicative
	// bias of MSE inner products on average. MSENorm stores the exact
	// per-vector factor instead (RaBitQ's correction); other methods use 1.
	ipScale float32
}

var _ Quantizer = (*TQ)(nil)

// NewTQ builds a TurboQuant quantizer. Nothing is trained: the same config
// gives the same codes everywhere.
func NewTQ(cfg Config) (*TQ, error) {
	bad := func(format string, args ...any) (*TQ, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	if cfg.Dim < 2 || cfg.Dim > MaxDim {
		return bad("dim %d outside [2, %d]", cfg.Dim, MaxDim)
	}
	if cfg.Metric < InnerProduct || cfg.Metric > L2 {
		return bad("unknown metric %d", cfg.Metric)
	}
	if cfg.Mean != nil && len(cfg.Mean) != cfg.Dim {
		return bad("mean has %d components, dim is %d", len(cfg.Mean), cfg.Dim)
	}
	t := &TQ{cfg: cfg, qDim: cfg.Dim, ipScale: 1}
	tc := turboquant.Config{Dim: cfg.Dim, Bits: cfg.Bits, Seed: cfg.Seed, Rounds: cfg.Rounds}
	switch cfg.Method {
	case MSE:
		tc.Method = turboquant.MSE
	case MSENorm:
		tc.Method, tc.Correction = turboquant.MSE, turboquant.Unbiased
	case Prod:
		tc.Method, tc.Sketch = turboquant.Prod, qjl.Hadamard
	case Polar:
		if cfg.Bits != 0 {
			return bad("polar has a fixed 3.875 bits per coordinate; leave Bits 0 (got %d)", cfg.Bits)
		}
		tc.Method = turboquant.Polar
		t.qDim = (cfg.Dim + 15) &^ 15
		tc.Dim = t.qDim
	default:
		return bad("unknown method %d", cfg.Method)
	}
	q, err := turboquant.New(tc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	t.q = q
	if cfg.Mean != nil {
		t.mean = make([]float32, t.qDim)
		copy(t.mean, cfg.Mean)
		t.cfg.Mean = t.mean[:cfg.Dim:cfg.Dim]
		ss := dot64(t.mean, t.mean)
		if math.IsNaN(ss) || math.IsInf(ss, 0) {
			return bad("mean is not finite")
		}
		t.meanNorm2 = float32(ss)
	}
	if l, ok := mseLayout(q); ok {
		t.layout, t.mse, t.fast = l, true, 8%l.Bits == 0
		if l.Bits <= 4 && l.Norm == turboquant.FP16 {
			t.kern = simd.NewCodebook(l.Centroids, l.Bits)
		}
		if l.CorrectionOffset < 0 {
			t.ipScale = float32(1 / expectedAlignment(l.Centroids, l.Dim))
		}
	}
	return t, nil
}

// Config returns the configuration.
func (t *TQ) Config() Config { return t.cfg }

// Dim is the vector dimension.
func (t *TQ) Dim() int { return t.cfg.Dim }

// Metric is the metric distances are computed in.
func (t *TQ) Metric() Metric { return t.cfg.Metric }

// CodeSize is the exact number of bytes of one code.
func (t *TQ) CodeSize() int { return t.q.CodeSize() }

// Quantizer is the underlying turboquant quantizer (of dimension Dim, or Dim
// padded to a multiple of 16 for Polar).
func (t *TQ) Quantizer() *turboquant.Quantizer { return t.q }

// expectedAlignment is E⟨ĉ, u⟩ = d·Σ_k c_k²·P(cell k) for a coordinate of
// a rotated unit vector, taken as N(0, 1/d), quantized to the ascending
// centroids cent (cells split at midpoints; Lloyd–Max centroids are the
// conditional means of their cells, so E[c·u] = E[c²]).
func expectedAlignment(cent []float32, d int) float64 {
	sigma := 1 / math.Sqrt(float64(d))
	cdf := func(x float64) float64 { return 0.5 * (1 + math.Erf(x/(sigma*math.Sqrt2))) }
	var a float64
	lo := 0.0
	for k, c := range cent {
		hi := 1.0
		if k+1 < len(cent) {
			hi = cdf((float64(c) + float64(cent[k+1])) / 2)
		}
		a += float64(c) * float64(c) * (hi - lo)
		lo = hi
	}
	if a <= 0 || math.IsNaN(a) {
		return 1
	}
	return a * float64(d)
}

// needsTransform reports whether vectors are changed before encoding
// (normalized for cosine, centred, padded for Polar).
func (t *TQ) needsTransform() bool {
	return t.cfg.Metric == Cosine || t.qDim != t.cfg.Dim || t.mean != nil
}

// transform writes the vector the quantizer sees for x into dst (len qDim):
// normalized for Cosine, minus the mean when centring.
func (t *TQ) transform(dst, x []float32) {
	t.transformQuery(dst, x)
	if t.mean != nil {
		for j, m := range t.mean {
			dst[j] -= m
		}
	}
}

// transformQuery is transform without the centring: the query as the
// inner-product metrics score it.
func (t *TQ) transformQuery(dst, x []float32) {
	copy(dst, x)
	clear(dst[len(x):])
	if t.cfg.Metric == Cosine {
		normalize(dst[:len(x)])
	}
}

func normalize(x []float32) {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	if ss == 0 || math.IsInf(ss, 0) || math.IsNaN(ss) {
		return
	}
	s := float32(1 / math.Sqrt(ss))
	for i := range x {
		x[i] *= s
	}
}

// encodeBlock is the number of vectors a worker encodes at a time.
const encodeBlock = 256

// Encode writes the codes of xs to dst, splitting the work across
// GOMAXPROCS goroutines. Non-finite input fails with an error wrapping
// turboquant.ErrNonFinite; dst is then unspecified (Flat.Add only commits
// codes after a successful Encode).
func (t *TQ) Encode(dst []byte, xs []float32) error {
	d, cs := t.cfg.Dim, t.q.CodeSize()
	if len(xs)%d != 0 {
		return fmt.Errorf("%w: %d floats is not a whole number of %d-d vectors", ErrDimension, len(xs), d)
	}
	n := len(xs) / d
	if len(dst) < n*cs {
		return fmt.Errorf("%w: code buffer of %d bytes, need %d for %d vectors", ErrConfig, len(dst), n*cs, n)
	}
	if !t.needsTransform() {
		return t.q.EncodeBatch(dst[:n*cs], xs)
	}
	blocks := (n + encodeBlock - 1) / encodeBlock
	workers := min(runtime.GOMAXPROCS(0), blocks)
	var next sync.Mutex
	nextBlock := 0
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]float32, encodeBlock*t.qDim)
			for {
				next.Lock()
				b := nextBlock
				nextBlock++
				next.Unlock()
				if b >= blocks || errs[w] != nil {
					return
				}
				lo, hi := b*encodeBlock, min(n, (b+1)*encodeBlock)
				for i := lo; i < hi; i++ {
					t.transform(buf[(i-lo)*t.qDim:(i-lo+1)*t.qDim], xs[i*d:(i+1)*d])
				}
				errs[w] = t.q.EncodeBatch(dst[lo*cs:hi*cs], buf[:(hi-lo)*t.qDim])
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// norm is the stored norm of a code (of the transformed vector).
func (t *TQ) norm(code []byte) float32 {
	if t.mse {
		return t.scalar(code[t.layout.NormOffset:])
	}
	n, _ := t.q.Norm(code)
	return n
}

func (t *TQ) scalar(b []byte) float32 {
	if t.layout.Norm == turboquant.FP32 {
		return math.Float32frombits(binary.LittleEndian.Uint32(b))
	}
	return half.ToFloat32(binary.LittleEndian.Uint16(b))
}

// Distance is the symmetric distance between the vectors two codes decode
// to: −⟨x̃a, x̃b⟩, 1 − ⟨x̃a, x̃b⟩ (both normalized before encoding), or
// ‖a‖² + ‖b‖² − 2⟨x̃a, x̃b⟩ with the stored norms. With a mean the codes
// hold x − μ; the inner products add ⟨x̃a + x̃b, μ⟩ + ‖μ‖² (decoding both),
// and L2 needs nothing.
func (t *TQ) Distance(a, b []byte) (float32, error) {
	ip, err := t.q.CodeInnerProduct(a, b)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrDimension, err)
	}
	if t.mean != nil && t.cfg.Metric != L2 {
		v := make([]float32, t.qDim)
		shift := float64(t.meanNorm2)
		for _, c := range [][]byte{a, b} {
			if err := t.q.Decode(v, c); err != nil {
				return 0, fmt.Errorf("%w: %w", ErrDimension, err)
			}
			shift += dot64(v, t.mean)
		}
		ip += float32(shift)
	}
	switch t.cfg.Metric {
	case InnerProduct:
		return -ip, nil
	case Cosine:
		return 1 - ip, nil
	}
	na, nb := t.norm(a), t.norm(b)
	return na*na + nb*nb - 2*ip, nil
}

// tqQuery is the prepared query of a TQ.
type tqQuery struct {
	t      *TQ
	y      []float32 // the query as the quantizer sees it (normalized, padded; centred for L2)
	qNorm2 float32   // ‖y‖², for L2
	shift  float32   // ⟨y, μ⟩ added to inner products when centring (not for L2)
	slow   *turboquant.Query
	lut    byteLUT
	vector bool      // scored by simd.DotCodesPadded
	rq     []float32 // the rotated query (vector: zero-padded to a multiple of 8)
	ips    []float32
}

// NewQuery returns a prepared query.
func (t *TQ) NewQuery() Query { return t.newQuery() }

func (t *TQ) newQuery() *tqQuery {
	qq := &tqQuery{t: t, y: make([]float32, t.qDim)}
	switch {
	case t.kern != nil && simd.Active() != simd.Generic:
		qq.vector = true
		qq.rq = make([]float32, (t.qDim+7)&^7)
	case t.fast:
		qq.rq = make([]float32, t.qDim)
		qq.lut.init(t.layout)
	default:
		qq.slow = t.q.NewQuery()
	}
	return qq
}

// Reset prepares y (len Dim, finite).
func (qq *tqQuery) Reset(y []float32) error {
	t := qq.t
	if len(y) != t.cfg.Dim {
		return fmt.Errorf("%w: query has %d components, index dim is %d", ErrDimension, len(y), t.cfg.Dim)
	}
	qq.shift = 0
	if t.cfg.Metric == L2 {
		t.transform(qq.y, y)
	} else {
		t.transformQuery(qq.y, y)
		if t.mean != nil {
			qq.shift = float32(dot64(qq.y, t.mean))
		}
	}
	var ss float64
	for _, v := range qq.y {
		ss += float64(v) * float64(v)
	}
	qq.qNorm2 = float32(ss)
	if qq.slow != nil {
		return qq.slow.Reset(qq.y)
	}
	if err := t.q.RotateQuery(qq.rq[:t.qDim], qq.y); err != nil {
		return err
	}
	if !qq.vector {
		qq.lut.build(qq.rq, t.layout)
	}
	return nil
}

// Distances writes the distance from the prepared query to each code.
func (qq *tqQuery) Distances(dst []float32, codes []byte) error {
	cs := qq.t.q.CodeSize()
	if len(codes)%cs != 0 || len(dst) < len(codes)/cs {
		return fmt.Errorf("%w: %d code bytes (code size %d) into %d distances", ErrDimension, len(codes), cs, len(dst))
	}
	qq.distances(dst[:len(codes)/cs], codes)
	return nil
}

// scanChunk bounds the codes scored per kernel call, so the integer sums
// stay in a small stack-like buffer.
const scanChunk = 256

// distances is Distances after validation: len(dst) codes.
func (qq *tqQuery) distances(dst []float32, codes []byte) {
	cs := qq.t.q.CodeSize()
	for lo := 0; lo < len(dst); lo += scanChunk {
		hi := min(len(dst), lo+scanChunk)
		qq.innerProducts(dst[lo:hi], codes[lo*cs:hi*cs])
	}
	qq.finish(dst, codes)
}

// innerProducts sets dst[i] = ⟨y, x̃_i⟩ for the len(dst) ≤ scanChunk codes.
func (qq *tqQuery) innerProducts(dst []float32, codes []byte) {
	t := qq.t
	cs := t.q.CodeSize()
	if qq.slow != nil {
		_ = qq.slow.ScoreBatch(dst, codes) // lengths checked by the caller
		return
	}
	l := &t.layout
	if qq.vector {
		clear(dst)
		simd.DotCodesPadded(dst, len(dst), qq.rq, len(qq.rq), 1, t.kern, codes, cs, l.IndexOffset, l.NormOffset, len(dst), t.qDim)
		if l.CorrectionOffset >= 0 {
			for i := range dst {
				dst[i] *= t.scalar(codes[i*cs+l.CorrectionOffset:])
			}
		}
		return
	}
	var sums [scanChunk]uint32
	scanBytes(sums[:len(dst)], qq.lut.rows, codes[l.IndexOffset:], cs)
	base, step := qq.lut.base, qq.lut.step
	for i := range dst {
		c := codes[i*cs : (i+1)*cs]
		f := t.scalar(c[l.NormOffset:])
		if l.CorrectionOffset >= 0 {
			f *= t.scalar(c[l.CorrectionOffset:])
		}
		dst[i] = f * (base + step*float32(sums[i]))
	}
}

// finish turns inner products into distances in place.
func (qq *tqQuery) finish(dst []float32, codes []byte) {
	t := qq.t
	s, c := t.ipScale, qq.shift
	switch t.cfg.Metric {
	case InnerProduct:
		for i := range dst {
			dst[i] = -(s*dst[i] + c)
		}
	case Cosine:
		for i := range dst {
			dst[i] = 1 - (s*dst[i] + c)
		}
	case L2:
		cs := t.q.CodeSize()
		for i := range dst {
			n := t.norm(codes[i*cs:])
			dst[i] = qq.qNorm2 - 2*s*dst[i] + n*n
		}
	}
}

// MarshalBinary encodes the quantizer: magic "TQAQ", u16 version, u16
// flags (bit 0: a mean follows the spec), u32 dim, u8 bits, method, metric,
// rounds, u64 seed, the turboquant spec (u32 length, bytes; it carries a
// fingerprint of the codebooks and rotation), with flag bit 0 the dim
// float32 components of the mean, and a CRC-32C of all that precedes.
// Without a mean the bytes are those version 1 always wrote.
func (t *TQ) MarshalBinary() ([]byte, error) {
	spec, err := t.q.Spec().MarshalBinary()
	if err != nil {
		return nil, err
	}
	var flags uint16
	if t.mean != nil {
		flags |= flagMean
	}
	b := append([]byte(nil), quantizerMagic[:]...)
	b = binary.LittleEndian.AppendUint16(b, FormatVersion)
	b = binary.LittleEndian.AppendUint16(b, flags)
	b = binary.LittleEndian.AppendUint32(b, uint32(t.cfg.Dim))
	b = append(b, byte(t.cfg.Bits), byte(t.cfg.Method), byte(t.cfg.Metric), byte(t.cfg.Rounds))
	b = binary.LittleEndian.AppendUint64(b, t.cfg.Seed)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(spec)))
	b = append(b, spec...)
	for _, m := range t.cfg.Mean {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(m))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// flagMean marks a serialized quantizer that carries a mean.
const flagMean = 1

var (
	quantizerMagic = [4]byte{'T', 'Q', 'A', 'Q'}
	castagnoli     = crc32.MakeTable(crc32.Castagnoli)
)

const quantizerFixed = 4 + 2 + 2 + 4 + 4 + 8 + 4

// maxSpecBytes bounds the embedded turboquant spec (its outlier channel
// list is the only variable part).
const maxSpecBytes = 1 << 20

// UnmarshalTQ rebuilds a quantizer written by TQ.MarshalBinary, and fails
// with ErrFormat if this build's codebooks or rotation differ from the
// writer's.
func UnmarshalTQ(data []byte) (*TQ, error) {
	bad := func(format string, args ...any) (*TQ, error) {
		return nil, fmt.Errorf("%w: quantizer: "+format, append([]any{ErrFormat}, args...)...)
	}
	if len(data) < quantizerFixed+4 {
		return bad("%d bytes, shorter than the smallest", len(data))
	}
	if [4]byte(data[:4]) != quantizerMagic {
		return bad("bad magic %q", data[:4])
	}
	if crc32.Checksum(data[:len(data)-4], castagnoli) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return bad("checksum mismatch")
	}
	if v := binary.LittleEndian.Uint16(data[4:]); v != FormatVersion {
		return bad("version %d, this build reads %d", v, FormatVersion)
	}
	flags := binary.LittleEndian.Uint16(data[6:])
	if flags&^flagMean != 0 {
		return bad("unknown flags %#x", flags)
	}
	cfg := Config{
		Dim: int(binary.LittleEndian.Uint32(data[8:])), Bits: int(data[12]), Method: Method(data[13]),
		Metric: Metric(data[14]), Rounds: int(data[15]), Seed: binary.LittleEndian.Uint64(data[16:]),
	}
	n := uint64(binary.LittleEndian.Uint32(data[24:]))
	var meanBytes uint64
	if flags&flagMean != 0 {
		if cfg.Dim < 2 || cfg.Dim > MaxDim {
			return bad("dim %d outside [2, %d]", cfg.Dim, MaxDim)
		}
		meanBytes = 4 * uint64(cfg.Dim)
	}
	if n > maxSpecBytes || uint64(len(data)) != quantizerFixed+n+meanBytes+4 {
		return bad("spec of %d bytes and mean of %d in %d bytes", n, meanBytes, len(data))
	}
	if meanBytes > 0 {
		cfg.Mean = make([]float32, cfg.Dim)
		mb := data[quantizerFixed+n:]
		for j := range cfg.Mean {
			cfg.Mean[j] = math.Float32frombits(binary.LittleEndian.Uint32(mb[4*j:]))
			if math.IsNaN(float64(cfg.Mean[j])) || math.IsInf(float64(cfg.Mean[j]), 0) {
				return bad("mean component %d is not finite", j)
			}
		}
	}
	t, err := NewTQ(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: quantizer: %w", ErrFormat, err)
	}
	want, _ := t.MarshalBinary()
	if string(want) != string(data) {
		return bad("spec (codebooks, rotation or defaults) differs from what this build computes for %+v", cfg)
	}
	return t, nil
}
