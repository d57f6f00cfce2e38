package validate

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func rows(T, d int, f func(t, c int) float32) [][]float32 {
	out := make([][]float32, T)
	for t := range out {
		out[t] = make([]float32, d)
		for c := range out[t] {
			out[t][c] = f(t, c)
		}
	}
	return out
}

func TestBaselineBitsAccounting(t *testing.T) {
	// Nominal bits: codes plus one fp16 scale (symmetric) or scale and
	// zero (asymmetric) per 32 elements.
	assert.Equal(t, 4.5, Baseline{Kind: TokenSymmetric, Bits: 4}.NominalBits())
	assert.Equal(t, 5.0, Baseline{Kind: TokenAsymmetric, Bits: 4}.NominalBits())
	assert.Equal(t, 3.0, Baseline{Kind: KIVI, Bits: 2}.NominalBits())
	assert.Equal(t, 2.25, Baseline{Kind: TokenAsymmetric, Bits: 2, Group: 128}.NominalBits())

	// By hand: KIVI-2 on 40 tokens × 64 channels. Keys: 64 channels × 2
	// token groups (32 + 8) × 32 bits; values: 40 tokens × 2 channel groups
	// × 32 bits; codes 2·40·64·2.
	kivi := Baseline{Kind: KIVI, Bits: 2}
	assert.EqualValues(t, 2*40*64*2+64*2*32+40*2*32, kivi.StoredBits(40, 64))
	// int3 symmetric on 5 tokens × 80 channels: groups of 32, 32, 16, one
	// fp16 scale each, keys and values.
	sym := Baseline{Kind: TokenSymmetric, Bits: 3}
	assert.EqualValues(t, 2*5*80*3+2*5*3*16, sym.StoredBits(5, 80))

	// Quantize counts exactly what StoredBits says, partial groups included.
	for _, b := range Baselines() {
		for _, shape := range [][2]int{{40, 64}, {33, 128}, {5, 80}, {1, 2}} {
			x := rows(shape[0], shape[1], func(t, c int) float32 { return float32(math.Sin(float64(7*t + c))) })
			_, _, bits, err := b.Quantize(x, x)
			require.NoError(t, err)
			assert.Equal(t, b.StoredBits(shape[0], shape[1]), bits, "%s %v", b.Name(), shape)
		}
	}
}

func TestBaselineReconstruction(t *testing.T) {
	x := rows(64, 64, func(t, c int) float32 { return float32(math.Sin(float64(3*t+5*c)) * (1 + float64(c%5))) })
	for _, b := range Baselines() {
		k, v, _, err := b.Quantize(x, x)
		require.NoError(t, err)
		var e, n float64
		for i := range x {
			e += SquaredDistance(k[i], x[i]) + SquaredDistance(v[i], x[i])
			n += 2 * Dot(x[i], x[i])
		}
		// Uniform b-bit on a group's range: relative MSE well under 4^−b·4.
		rel := e / n
		t.Logf("%s: relative MSE %.2e", b.Name(), rel)
		assert.Less(t, rel, 4*math.Pow(4, -float64(b.Bits)), b.Name())
	}

	// Asymmetric groups reproduce their minimum and maximum (representable
	// in fp16, range a multiple of the levels) exactly.
	g := [][]float32{{-3, 0, 1, 12}}
	k, _, _, err := Baseline{Kind: TokenAsymmetric, Bits: 4}.Quantize(g, g)
	require.NoError(t, err)
	assert.Equal(t, []float32{-3, 0, 1, 12}, k[0])
	// Symmetric: the largest magnitude is exact, zero stays zero.
	k, _, _, err = Baseline{Kind: TokenSymmetric, Bits: 2}.Quantize([][]float32{{-4, 0, 2, 3}}, [][]float32{{1, 1}})
	require.Error(t, err) // ragged
	k, _, _, err = Baseline{Kind: TokenSymmetric, Bits: 2}.Quantize([][]float32{{-4, 0, 2, 3}}, [][]float32{{0, 0, 0, 0}})
	require.NoError(t, err)
	assert.Equal(t, []float32{-4, 0, 2, 2}, k[0]) // levels −4, −2, 0, 2

	// KIVI keys are per channel: a channel that is constant over a token
	// group is exact, however the other channels vary; per-token codes are
	// not.
	y := rows(32, 64, func(t, c int) float32 {
		if c == 0 {
			return 0.3
		}
		return float32(math.Sin(float64(t * c)))
	})
	k, _, _, err = Baseline{Kind: KIVI, Bits: 2}.Quantize(y, y)
	require.NoError(t, err)
	for i := range k {
		assert.Equal(t, fp16Round(0.3), k[i][0])
	}
}

func TestBaselineErrors(t *testing.T) {
	x := [][]float32{{1, 2}}
	for _, b := range []Baseline{{Kind: TokenAsymmetric, Bits: 0}, {Kind: KIVI, Bits: 9},
		{Kind: TokenSymmetric, Bits: 1}, {Kind: KIVI + 1, Bits: 4}, {Kind: KIVI, Bits: 2, Group: -1}} {
		_, _, _, err := b.Quantize(x, x)
		assert.ErrorIs(t, err, ErrBaseline, "%+v", b)
	}
	_, _, _, err := Baseline{Kind: KIVI, Bits: 2}.Quantize(nil, nil)
	assert.ErrorIs(t, err, ErrBaseline)
	_, _, _, err = Baseline{Kind: KIVI, Bits: 2}.Quantize([][]float32{{1, 2}, {3}}, [][]float32{{1, 2}, {3, 4}})
	assert.ErrorIs(t, err, ErrBaseline)
}
