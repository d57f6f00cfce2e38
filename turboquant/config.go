package turboquant

import (
	"fmt"
	"slices"

	"github.com/turboquant-go/tq/hadamard"
	"github.com/turboquant-go/tq/lloydmax"
	"github.com/turboquant-go/tq/qjl"
)

// Method selects the quantization scheme applied after the rotation.
type Method uint8

const (
	// MSE stores b-bit Lloyd–Max indices of the rotated unit vector and its
	// norm: the minimum-distortion choice, and the better one for attention.
	MSE Method = iota + 1
	// Prod spends b−1 bits on the MSE stage and 1 bit on a QJL sketch of the
	// residual: inner products are unbiased, which vector search wants.
	Prod
	// Polar is PolarQuant: a 4-level polar transform with Lloyd–Max angle
	// codebooks and fp16 radii, 3.875 bits per coordinate. Bits must be 0.
	Polar
)

func (m Method) String() string {
	switch m {
	case MSE:
		return "mse"
	case Prod:
		return "prod"
	case Polar:
		return "polar"
	}
	return fmt.Sprintf("Method(%d)", uint8(m))
}

// ParseMethod is the inverse of Method.String.
func ParseMethod(s string) (Method, error) {
	for _, m := range []Method{MSE, Prod, Polar} {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown method %q (want mse, prod or polar)", ErrConfig, s)
}

// Precision is the storage format of the per-vector scalars (norm, residual
// norm, correction factor).
type Precision uint8

const (
	// FP16 stores scalars as IEEE half floats (2 bytes): the default.
	FP16 Precision = iota
	// FP32 stores scalars as float32 (4 bytes).
	FP32
)

func (p Precision) bytes() int {
	if p == FP32 {
		return 4
	}
	return 2
}

// Correction selects an optional per-vector correction scalar (one extra
// stored scalar) that rescales the reconstruction.
type Correction uint8

const (
	// NoCorrection stores no extra scalar.
	NoCorrection Correction = iota
	// Unbiased rescales the reconstruction x̃ so that ⟨x, x̃⟩ = ‖x‖²
	// (EDEN/RaBitQ style). With a random rotation this makes inner-product
	// estimates unbiased at the cost of some extra MSE.
	Unbiased
	// Renormalize rescales the reconstruction so that ‖x̃‖ = ‖x‖.
	Renormalize
)

// Outliers configures mixed precision: the listed channels are split off and
// quantized as an independent vector (own rotation, norm and codebook) with
// their own bit width, the rest with Config.Bits. With 32 channels at 4 bits
// and 96 at 2 bits a d=128 vector costs 2.5 bits per coordinate.
type Outliers struct {
	Channels []int // distinct channel indices in [0, Dim); at least 1, at most Dim−1
	Bits     int   // bits for the outlier channels, 1–8
}

// Split gives the last Coords coordinates of the rotated vector Bits bits
// instead of Config.Bits: mixed precision at one rotation and one norm.
// After a random rotation the coordinates are exchangeable, so which ones
// get the extra bits does not matter, and unlike Outliers (a second part
// with its own rotation and norm) a split costs no extra scalar: 3.5 bits
// per coordinate is Bits 3 with Split{Coords: Dim/2, Bits: 4}, plus one
// norm. MSE codes without a correction only.
type Split struct {
	Coords int // 1 ≤ Coords < Dim (and ≤ 65535, the spec's field)
	Bits   int // 1–8
}

// Config describes a Quantizer. The zero value is not valid: Dim, Bits (except
// for Polar) and Method must be set.
type Config struct {
	Dim    int    // vector dimension, ≥ 2 (Polar: a multiple of 16)
	Bits   int    // bits per coordinate, 1–8 (Prod: including the QJL bit); 0 for Polar
	Method Method // MSE, Prod or Polar
	Seed   uint64 // seeds the rotation and the QJL sketch

	Norm       Precision  // storage of norms and other scalars (default FP16)
	Correction Correction // optional norm correction (MSE and Polar only)
	Outliers   *Outliers  // optional outlier channels (MSE and Prod only)
	Split      *Split     // optional rotated-domain mixed precision (MSE only)

	// Rounds is the number of randomized Hadamard rounds; 0 means
	// hadamard.DefaultRounds(Dim) (3 for powers of two, 2 otherwise).
	Rounds int
	// Codebook is the density the Lloyd–Max codebook is optimal for:
	// lloydmax.FamilyBeta (exact, the default) or lloydmax.FamilyGaussian.
	Codebook lloydmax.Family
	// Sketch is the QJL projection used by Prod (default qjl.Gaussian).
	Sketch qjl.Kind
}

// WithDefaults returns a copy with the zero fields New fills in filled in
// (Rounds) and the outlier channel list sorted and copied, so the Quantizer
// never aliases caller memory. A Quantizer's Config is New's argument's
// WithDefaults: code that checks a Spec against the Config it expects
// compares with this.
func (c Config) WithDefaults() Config {
	if c.Rounds == 0 {
		c.Rounds = hadamard.DefaultRounds(c.Dim)
	}
	if c.Outliers != nil {
		o := *c.Outliers
		o.Channels = slices.Clone(o.Channels)
		slices.Sort(o.Channels)
		c.Outliers = &o
	}
	if c.Split != nil {
		sp := *c.Split
		c.Split = &sp
	}
	return c
}

func (c Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	if c.Dim < 2 || c.Dim > maxDim {
		return bad("dim %d outside [2, %d]", c.Dim, maxDim)
	}
	switch c.Method {
	case MSE, Prod:
		if c.Bits < 1 || c.Bits > 8 {
			return bad("bits %d outside 1–8", c.Bits)
		}
	case Polar:
		if c.Bits != 0 {
			return bad("polar has a fixed 3.875 bits per coordinate; leave Bits 0 (got %d)", c.Bits)
		}
		if c.Dim%16 != 0 {
			return bad("polar needs a dim that is a multiple of 16 (got %d)", c.Dim)
		}
	default:
		return bad("unknown method %d", c.Method)
	}
	if c.Norm > FP32 {
		return bad("unknown norm precision %d", c.Norm)
	}
	if c.Correction > Renormalize {
		return bad("unknown correction %d", c.Correction)
	}
	if c.Correction != NoCorrection && c.Method == Prod {
		return bad("prod is already unbiased; correction applies to mse and polar")
	}
	if c.Rounds < 1 || c.Rounds > maxRounds {
		return bad("rounds %d outside [1, %d]", c.Rounds, maxRounds)
	}
	if c.Codebook > lloydmax.FamilyGaussian {
		return bad("unknown codebook family %d", c.Codebook)
	}
	if c.Sketch > qjl.Hadamard {
		return bad("unknown sketch kind %d", c.Sketch)
	}
	if c.Method == Prod && c.Sketch == qjl.Gaussian && c.Dim > maxGaussianSketchDim {
		return bad("a Gaussian QJL sketch at dim %d would hold %d MiB; use qjl.Hadamard above dim %d",
			c.Dim, c.Dim*c.Dim*4>>20, maxGaussianSketchDim)
	}
	if sp := c.Split; sp != nil {
		switch {
		case c.Method != MSE || c.Correction != NoCorrection:
			return bad("a rotated-domain split needs mse codes without a correction")
		case c.Outliers != nil:
			return bad("a rotated-domain split and outlier channels do not combine")
		case sp.Bits < 1 || sp.Bits > 8:
			return bad("split bits %d outside 1–8", sp.Bits)
		case sp.Coords < 1 || sp.Coords >= c.Dim || sp.Coords > maxSplitCoords:
			return bad("split of %d coordinates outside [1, %d)", sp.Coords, min(c.Dim, maxSplitCoords+1))
		}
	}
	if o := c.Outliers; o != nil {
		if c.Method == Polar {
			return bad("outlier channels are supported for mse and prod, not polar")
		}
		if o.Bits < 1 || o.Bits > 8 {
			return bad("outlier bits %d outside 1–8", o.Bits)
		}
		n := len(o.Channels)
		if n < 2 || c.Dim-n < 2 {
			return bad("%d outlier channels: each part needs at least 2 channels (dim %d)", n, c.Dim)
		}
		for i, ch := range o.Channels { // sorted by WithDefaults
			if ch < 0 || ch >= c.Dim {
				return bad("outlier channel %d outside [0, %d)", ch, c.Dim)
			}
			if i > 0 && ch <= o.Channels[i-1] {
				return bad("outlier channels must be distinct and ascending (%d after %d)", ch, o.Channels[i-1])
			}
		}
	}
	return nil
}

const (
	maxDim    = 1 << 16 // bounds specs read from disk; far above any head or embedding dim
	maxRounds = 8
	// maxSplitCoords is the widest split a Spec can record (a u16 field).
	maxSplitCoords = 1<<16 - 1
	// maxGaussianSketchDim caps the dense dim×dim Gaussian sketch at 64 MiB.
	maxGaussianSketchDim = 4096
)
