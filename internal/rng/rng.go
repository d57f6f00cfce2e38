package rng

import "math"

// Source is a SplitMix64 generator. The zero value is a valid source with seed 0.
// A Source is not safe for concurrent use.
type Source struct{ state uint64 }

// New returns a source seeded with seed.
func New(seed uint64) *Source { return &Source{state: seed} }

// Derive mixes a seed with a stream label into an independent seed, so that
// the several random objects built from one user seed (rotation signs,
// sketch rows, outlier sub-quantizers) do not share a stream.
func Derive(seed, stream uint64) uint64 {
	return mix(seed ^ mix(stream+0x9e3779b97f4a7c15))
}

func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Uint64 returns the next 64 random bits.
func (s *Source) Uint64() uint64 {
	s.state += 0x9e3779b97f4a7c15
	return mix(s.state)
}

// Float64 returns a uniform value in [0, 1) with 53 random bits.
func (s *Source) Float64() float64 {
	return float64(s.Uint64()>>11) * (1.0 / (1 << 53))
}

// Intn returns a uniform value in [0, n). It panics if n <= 0.
func (s *Source) Intn(n int) int {
	if n <= 0 {
		panic("rng: Intn with n <= 0")
	}
	// Lemire's multiply-shift with rejection: unbiased for every n.
	un := uint64(n)
	for {
		hi, lo := mul64(s.Uint64(), un)
		if lo >= un || lo >= (-un)%un {
			return int(hi)
		}
	}
}

func mul64(a, b uint64) (hi, lo uint64) {
	const mask32 = 1<<32 - 1
	a0, a1 := a&mask32, a>>32
	b0, b1 := b&mask32, b>>32
	w0 := a0 * b0
	t := a1*b0 + w0>>32
	w1 := t&mask32 + a0*b1
	return a1*b1 + t>>32 + w1>>32, a * b
}

// sqrt2OverE is √(2/e), the half-width of the ratio-of-uniforms v range.
var sqrt2OverE = math.Sqrt(2 / math.E)

// Norm returns a standard normal deviate by the Kinderman–Monahan
// ratio-of-uniforms method. The returned value is an exact IEEE quotient v/u,
// and math.Log only decides acceptance, so the stream is bit-identical across
// platforms even where math.Log differs in the last place.
func (s *Source) Norm() float64 {
	for {
		u := 1 - s.Float64() // (0, 1]
		v := (2*s.Float64() - 1) * sqrt2OverE
		x := v / u
		if x*x <= -4*math.Log(u) {
			return x
		}
	}
}

// Sign returns +1 or -1 with equal probability.
func (s *Source) Sign() float32 {
	if s.Uint64()>>63 == 0 {
		return 1
	}
	return -1
}
