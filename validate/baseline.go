package validate

import (
	"errors"
	"fmt"
	"math"

	"github.com/turboquant-go/tq/internal/half"
)

// ErrBaseline is wrapped by the errors of the baseline codecs (bad bit
// width or group size, ragged input).
var ErrBaseline = errors.New("validate: bad baseline codec")

// BaselineKind is a family of uniform integer KV-cache codecs that TurboQuant
// is measured against. They are measurement baselines, not cache options:
// they quantize a whole chunk's keys and values at once and hand back the
// reconstruction.
type BaselineKind uint8

const (
	// TokenSymmetric quantizes each token's vector in groups of Group
	// consecutive channels with one fp16 scale per group and 2^Bits levels
	// (−2^(Bits−1)…2^(Bits−1)−1)·scale, the scale chosen so that the
	// group's largest-magnitude value lands exactly on the extreme level (the
	// llama.cpp Q4_0 construction).
	TokenSymmetric BaselineKind = iota
	// TokenAsymmetric is per-token groups with an fp16 scale and an fp16
	// zero point (the group minimum): levels min + i·(max−min)/(2^Bits−1).
	TokenAsymmetric
	// KIVI quantizes keys per channel, in groups of Group consecutive tokens,
	// and values per token in groups of Group channels, both asymmetric with
	// fp16 scale and zero (KIVI, Liu et al. 2024; its fp16 recent-token
	// residual is left out so that every token is compressed, as in the
	// TurboQuant rows of the comparison).
	KIVI
)

func (k BaselineKind) String() string {
	switch k {
	case TokenSymmetric:
		return "int-sym"
	case TokenAsymmetric:
		return "int-asym"
	case KIVI:
		return "kivi"
	}
	return fmt.Sprintf("BaselineKind(%d)", uint8(k))
}

// Baseline is one baseline codec configuration.
type Baseline struct {
	Kind  BaselineKind
	Bits  int // bits per code, 1–8 (TokenSymmetric: 2–8)
	Group int // elements per scale (and zero point); 0 means 32
}

// Name is a short label such as "int4-asym-g32" or "kivi4-g32".
func (b Baseline) Name() string {
	g := b.group()
	switch b.Kind {
	case TokenSymmetric:
		return fmt.Sprintf("int%d-sym-g%d", b.Bits, g)
	case TokenAsymmetric:
		return fmt.Sprintf("int%d-asym-g%d", b.Bits, g)
	case KIVI:
		return fmt.Sprintf("kivi%d-g%d", b.Bits, g)
	}
	return b.Kind.String()
}

func (b Baseline) group() int {
	if b.Group == 0 {
		return 32
	}
	return b.Group
}

func (b Baseline) validate() error {
	switch {
	case b.Kind > KIVI:
		return fmt.Errorf("%w: unknown kind %d", ErrBaseline, b.Kind)
	case b.Bits < 1 || b.Bits > 8:
		return fmt.Errorf("%w: %d bits outside 1–8", ErrBaseline, b.Bits)
	case b.Kind == TokenSymmetric && b.Bits < 2:
		return fmt.Errorf("%w: symmetric codes need at least 2 bits", ErrBaseline)
	case b.Group < 0 || b.Group > 1<<16:
		return fmt.Errorf("%w: group %d outside [1, 65536]", ErrBaseline, b.Group)
	}
	return nil
}

// groupOverheadBits is what one group's scale (and zero point) cost.
func (b Baseline) groupOverheadBits() int64 {
	if b.Kind == TokenSymmetric {
		return 16
	}
	return 32
}

// NominalBits is the steady-state bits per stored element: the code bits
// plus the scale (and zero point) spread over a full group. It is what a
// long sequence costs; StoredBits is exact for a given shape.
func (b Baseline) NominalBits() float64 {
	return float64(b.Bits) + float64(b.groupOverheadBits())/float64(b.group())
}

// StoredBits is the exact storage, in bits, of the keys and values of one
// head of a chunk of tokens vectors of dim channels: every code, scale and
// zero point, partial groups at the end of a token (or, for KIVI keys, at
// the end of the chunk) paying a full scale and zero.
func (b Baseline) StoredBits(tokens, dim int) int64 {
	g := int64(b.group())
	T, d := int64(tokens), int64(dim)
	codes := 2 * T * d * int64(b.Bits)
	perToken := T * ((d + g - 1) / g) * b.groupOverheadBits()
	if b.Kind == KIVI {
		keys := d * ((T + g - 1) / g) * b.groupOverheadBits()
		return codes + keys + perToken
	}
	return codes + 2*perToken
}

// Quantize returns the reconstruction of one head's keys and values
// ([tokens][dim] each) and the bits they were stored in. The inputs are not
// modified.
func (b Baseline) Quantize(keys, values [][]float32) (k, v [][]float32, bits int64, err error) {
	if err := b.validate(); err != nil {
		return nil, nil, 0, err
	}
	if len(keys) != len(values) || len(keys) == 0 {
		return nil, nil, 0, fmt.Errorf("%w: %d key and %d value rows", ErrBaseline, len(keys), len(values))
	}
	dim := len(keys[0])
	for i := range keys {
		if len(keys[i]) != dim || len(values[i]) != dim || dim == 0 {
			return nil, nil, 0, fmt.Errorf("%w: ragged rows at token %d", ErrBaseline, i)
		}
	}
	g := b.group()
	k, v = cloneRows(keys), cloneRows(values)
	var kb, vb int64
	if b.Kind == KIVI {
		kb = quantizeChannelGroups(k, b.Bits, g)
		vb = quantizeTokenGroups(v, b.Bits, g, false)
	} else {
		sym := b.Kind == TokenSymmetric
		kb = quantizeTokenGroups(k, b.Bits, g, sym)
		vb = quantizeTokenGroups(v, b.Bits, g, sym)
	}
	return k, v, kb + vb, nil
}

func cloneRows(x [][]float32) [][]float32 {
	flat := make([]float32, len(x)*len(x[0]))
	out := make([][]float32, len(x))
	d := len(x[0])
	for i, r := range x {
		out[i] = flat[i*d : (i+1)*d : (i+1)*d]
		copy(out[i], r)
	}
	return out
}

// quantizeTokenGroups quantizes every row of x in place, in groups of g
// consecutive channels, and returns the bits stored.
func quantizeTokenGroups(x [][]float32, bits, g int, sym bool) int64 {
	var stored int64
	for _, row := range x {
		for s := 0; s < len(row); s += g {
			grp := row[s:min(s+g, len(row))]
			if sym {
				stored += quantizeSymmetric(grp, bits)
			} else {
				stored += quantizeAsymmetric(grp, bits)
			}
		}
	}
	return stored
}

// quantizeChannelGroups quantizes every channel of x in place, in groups of
// g consecutive tokens (asymmetric), and returns the bits stored.
func quantizeChannelGroups(x [][]float32, bits, g int) int64 {
	var stored int64
	d := len(x[0])
	col := make([]float32, 0, g)
	for s := 0; s < len(x); s += g {
		rows := x[s:min(s+g, len(x))]
		for c := range d {
			col = col[:0]
			for _, r := range rows {
				col = append(col, r[c])
			}
			stored += quantizeAsymmetric(col, bits)
			for i, r := range rows {
				r[c] = col[i]
			}
		}
	}
	return stored
}

// quantizeAsymmetric replaces x by its asymmetric b-bit reconstruction with
// an fp16 scale and an fp16 zero point (the minimum), and returns the bits
// that cost.
func quantizeAsymmetric(x []float32, bits int) int64 {
	lo, hi := x[0], x[0]
	for _, v := range x {
		lo, hi = min(lo, v), max(hi, v)
	}
	levels := float32(int(1)<<bits - 1)
	zero := fp16Round(lo)
	scale := fp16Round((hi - lo) / levels)
	for i, v := range x {
		q := float32(0)
		if scale != 0 {
			q = min(max(float32(math.Round(float64((v-zero)/scale))), 0), levels)
		}
		x[i] = zero + q*scale
	}
	return int64(len(x)*bits) + 32
}

// quantizeSymmetric replaces x by its symmetric b-bit reconstruction with
// one fp16 scale: the value of largest magnitude m maps to level −2^(b−1)
// with scale −m/2^(b−1), so the 2^b levels cover [−|m|, |m|] with one spare
// level on the far side and an exact zero.
func quantizeSymmetric(x []float32, bits int) int64 {
	var m float32
	for _, v := range x {
		if abs32(v) > abs32(m) {
			m = v
		}
	}
	half := float32(int(1) << (bits - 1))
	scale := fp16Round(-m / half)
	for i, v := range x {
		q := float32(0)
		if scale != 0 {
			q = min(max(float32(math.Round(float64(v/scale))), -half), half-1)
		}
		x[i] = q * scale
	}
	return int64(len(x)*bits) + 16
}

func abs32(x float32) float32 { return float32(math.Abs(float64(x))) }

// fp16Round rounds x to the nearest fp16 value (as a stored scale or zero
// point is).
func fp16Round(x float32) float32 { return half.ToFloat32(half.FromFloat32(x)) }

// Baselines returns the baseline codecs of the comparison, ordered by
// family and bits: per-token symmetric int2–int5, per-token asymmetric
// int1–int4 and KIVI-like 1–4 bits, all with groups of 32. Their nominal
// bits per element span 2–5.5.
func Baselines() []Baseline {
	var out []Baseline
	for b := 2; b <= 5; b++ {
		out = append(out, Baseline{Kind: TokenSymmetric, Bits: b})
	}
	for b := 1; b <= 4; b++ {
		out = append(out, Baseline{Kind: TokenAsymmetric, Bits: b})
	}
	for b := 1; b <= 4; b++ {
		out = append(out, Baseline{Kind: KIVI, Bits: b})
	}
	return out
}
