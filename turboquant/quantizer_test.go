package turboquant_test

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/turboquant-go/tq/internal/rng"
	"github.com/turboquant-go/tq/lloydmax"
	"github.com/turboquant-go/tq/qjl"
	. "github.com/turboquant-go/tq/turboquant"
	"github.com/turboquant-go/tq/validate"
)

// configs covers every method, scalar option and a few awkward dims.
func configs() []Config {
	var out []Config
	for _, d := range []int{2, 3, 16, 100, 128} {
		for b := 1; b <= 8; b++ {
			out = append(out, Config{Dim: d, Bits: b, Method: MSE, Seed: 1})
			out = append(out, Config{Dim: d, Bits: b, Method: Prod, Seed: 2})
		}
	}
	out = append(out,
		Config{Dim: 128, Method: Polar, Seed: 3},
		Config{Dim: 64, Method: Polar, Seed: 3, Correction: Unbiased},
		Config{Dim: 128, Bits: 3, Method: MSE, Correction: Unbiased, Seed: 4},
		Config{Dim: 96, Bits: 4, Method: MSE, Correction: Renormalize, Norm: FP32, Seed: 5},
		Config{Dim: 128, Bits: 3, Method: Prod, Sketch: qjl.Hadamard, Seed: 6},
		Config{Dim: 128, Bits: 2, Method: MSE, Codebook: lloydmax.FamilyGaussian, Seed: 7},
		Config{Dim: 128, Bits: 2, Method: MSE, Outliers: &Outliers{Channels: seq(0, 128, 4), Bits: 4}, Seed: 8},
		Config{Dim: 80, Bits: 3, Method: Prod, Outliers: &Outliers{Channels: []int{79, 3, 40}, Bits: 5}, Seed: 9},
		Config{Dim: 256, Bits: 3, Method: MSE, Rounds: 1, Seed: 10},
		Config{Dim: 128, Bits: 3, Method: MSE, Split: &Split{Coords: 64, Bits: 4}, Seed: 11},
		Config{Dim: 100, Bits: 5, Method: MSE, Split: &Split{Coords: 37, Bits: 2}, Seed: 12},
		Config{Dim: 64, Bits: 1, Method: MSE, Split: &Split{Coords: 9, Bits: 8}, Norm: FP32, Seed: 13},
	)
	return out
}

func seq(from, to, step int) []int {
	var s []int
	for i := from; i < to; i += step {
		s = append(s, i)
	}
	return s
}

func name(c Config) string {
	s := fmt.Sprintf("%s/d%d/b%d", c.Method, c.Dim, c.Bits)
	if c.Outliers != nil {
		s += fmt.Sprintf("/out%d@%d", len(c.Outliers.Channels), c.Outliers.Bits)
	}
	if c.Split != nil {
		s += fmt.Sprintf("/split%d@%d", c.Split.Coords, c.Split.Bits)
	}
	if c.Correction != NoCorrection {
		s += fmt.Sprintf("/corr%d", c.Correction)
	}
	return s
}

// mixedVector has components of very different magnitudes, like real keys.
func mixedVector(d int, seed uint64) []float32 {
	r := rng.New(seed)
	x := make([]float32, d)
	for i := range x {
		x[i] = float32(r.Norm() * math.Pow(10, float64(r.Intn(5))-2))
	}
	return x
}

func TestScoreEqualsInnerProductWithDecode(t *testing.T) {
	for _, cfg := range configs() {
		t.Run(name(cfg), func(t *testing.T) {
			q := mustNew(t, cfg)
			d := q.Dim()
			code := make([]byte, q.CodeSize())
			rec := make([]float32, d)
			qq := q.NewQuery()
			for trial := range 5 {
				x := mixedVector(d, uint64(trial))
				y := mixedVector(d, uint64(trial+50))
				require.NoError(t, q.Encode(code, x))
				require.NoError(t, q.Decode(rec, code))
				require.NoError(t, qq.Reset(y))
				s, err := qq.Score(code)
				require.NoError(t, err)
				want := validate.Dot(y, rec)
				scale := math.Sqrt(validate.Dot(y, y) * validate.Dot(rec, rec))
				assert.InDelta(t, want, float64(s), 2e-5*scale+1e-30, "trial %d", trial)
				batch := make([]float32, 3)
				require.NoError(t, qq.ScoreBatch(batch, append(append(append([]byte{}, code...), code...), code...)))
				assert.Equal(t, []float32{s, s, s}, batch)
			}
		})
	}
}

func TestReconstructionErrorIsSmallForMixedMagnitudes(t *testing.T) {
	// A 4-bit MSE code of any vector is within ~10% relative error (the unit
	// vector bound is √0.0093 ≈ 0.096 on average); 8 bits within 1%.
	for _, c := range []struct {
		bits int
		tol  float64
	}{{4, 0.2}, {8, 0.02}} {
		q := mustNew(t, Config{Dim: 128, Bits: c.bits, Method: MSE, Norm: FP32})
		code := make([]byte, q.CodeSize())
		rec := make([]float32, 128)
		for trial := range 20 {
			x := mixedVector(128, uint64(trial))
			require.NoError(t, q.Encode(code, x))
			require.NoError(t, q.Decode(rec, code))
			rel := math.Sqrt(validate.SquaredDistance(x, rec) / validate.Dot(x, x))
			assert.Less(t, rel, c.tol, "bits=%d trial=%d", c.bits, trial)
		}
	}
}

func TestZeroVector(t *testing.T) {
	for _, cfg := range configs() {
		q := mustNew(t, cfg)
		d := q.Dim()
		code := make([]byte, q.CodeSize())
		require.NoError(t, q.Encode(code, make([]float32, d)), name(cfg))
		rec := make([]float32, d)
		for i := range rec {
			rec[i] = 7
		}
		require.NoError(t, q.Decode(rec, code))
		assert.Equal(t, make([]float32, d), rec, name(cfg))
		qq := q.NewQuery()
		require.NoError(t, qq.Reset(mixedVector(d, 1)))
		s, err := qq.Score(code)
		require.NoError(t, err)
		assert.Zero(t, s, name(cfg))
		n, err := q.Norm(code)
		require.NoError(t, err)
		assert.Zero(t, n)
	}
}

func TestNormIsStored(t *testing.T) {
	q := mustNew(t, Config{Dim: 128, Bits: 3, Method: MSE, Norm: FP32})
	x := mixedVector(128, 3)
	code := make([]byte, q.CodeSize())
	require.NoError(t, q.Encode(code, x))
	n, err := q.Norm(code)
	require.NoError(t, err)
	assert.InEpsilon(t, math.Sqrt(validate.Dot(x, x)), float64(n), 1e-6)

	qo := mustNew(t, Config{Dim: 128, Bits: 3, Method: MSE, Norm: FP32, Outliers: &Outliers{Channels: []int{1, 2, 3}, Bits: 6}})
	code = make([]byte, qo.CodeSize())
	require.NoError(t, qo.Encode(code, x))
	n, err = qo.Norm(code)
	require.NoError(t, err)
	assert.InEpsilon(t, math.Sqrt(validate.Dot(x, x)), float64(n), 1e-6, "norm of the whole vector across parts")
}

func TestBadInput(t *testing.T) {
	bad := []Config{
		{Dim: 1, Bits: 3, Method: MSE},
		{Dim: 128, Bits: 0, Method: MSE},
		{Dim: 128, Bits: 9, Method: Prod},
		{Dim: 128, Bits: 3},
		{Dim: 128, Bits: 3, Method: 9},
		{Dim: 100, Method: Polar},
		{Dim: 128, Bits: 3, Method: Polar},
		{Dim: 128, Bits: 3, Method: Prod, Correction: Unbiased},
		{Dim: 128, Bits: 3, Method: MSE, Norm: 7},
		{Dim: 128, Bits: 3, Method: MSE, Correction: 9},
		{Dim: 128, Bits: 3, Method: MSE, Rounds: 99},
		{Dim: 128, Bits: 3, Method: MSE, Codebook: 5},
		{Dim: 128, Bits: 3, Method: Prod, Sketch: 5},
		{Dim: 8192, Bits: 3, Method: Prod},
		{Dim: 128, Bits: 3, Method: MSE, Outliers: &Outliers{Channels: []int{1, 1}, Bits: 4}},
		{Dim: 128, Bits: 3, Method: MSE, Outliers: &Outliers{Channels: []int{1, 128}, Bits: 4}},
		{Dim: 128, Bits: 3, Method: MSE, Outliers: &Outliers{Channels: []int{1, 2}, Bits: 0}},
		{Dim: 128, Bits: 3, Method: MSE, Outliers: &Outliers{Channels: []int{1}, Bits: 4}},
		{Dim: 128, Method: Polar, Outliers: &Outliers{Channels: []int{1, 2}, Bits: 4}},
		{Dim: 1 << 20, Bits: 3, Method: MSE},
	}
	for _, cfg := range bad {
		_, err := New(cfg)
		assert.ErrorIs(t, err, ErrConfig, "%+v", cfg)
	}

	q := mustNew(t, Config{Dim: 16, Bits: 3, Method: MSE})
	code := make([]byte, q.CodeSize())
	x := make([]float32, 16)
	assert.ErrorIs(t, q.Encode(code, x[:15]), ErrLength)
	assert.ErrorIs(t, q.Encode(code[:3], x), ErrLength)
	for _, v := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		x[5] = v
		before := append([]byte{}, code...)
		assert.ErrorIs(t, q.Encode(code, x), ErrNonFinite)
		assert.Equal(t, before, code, "a failed encode leaves the buffer alone")
		assert.ErrorIs(t, q.EncodeBatch(make([]byte, 2*q.CodeSize()), append(make([]float32, 16), x...)), ErrNonFinite)
		qq := q.NewQuery()
		assert.ErrorIs(t, qq.Reset(x), ErrNonFinite)
	}
	x[5] = 0
	assert.ErrorIs(t, q.Decode(make([]float32, 15), code), ErrLength)
	assert.ErrorIs(t, q.Decode(x, code[:2]), ErrLength)
	_, err := q.NewQuery().Score(code[:1])
	assert.ErrorIs(t, err, ErrLength)
	assert.ErrorIs(t, q.NewQuery().ScoreBatch(make([]float32, 1), make([]byte, q.CodeSize()+1)), ErrLength)
	assert.ErrorIs(t, q.NewQuery().ScoreBatch(make([]float32, 1), make([]byte, 2*q.CodeSize())), ErrLength)
	assert.ErrorIs(t, q.EncodeBatch(code, make([]float32, 17)), ErrLength)
	assert.ErrorIs(t, q.EncodeBatch(code, make([]float32, 32)), ErrLength)
	_, err = q.Norm(nil)
	assert.ErrorIs(t, err, ErrLength)

	// fp16 norms overflow above 65504; fp32 norms hold them.
	big := make([]float32, 16)
	big[0] = 1e6
	assert.ErrorIs(t, q.Encode(code, big), ErrOverflow)
	q32 := mustNew(t, Config{Dim: 16, Bits: 3, Method: MSE, Norm: FP32})
	assert.NoError(t, q32.Encode(make([]byte, q32.CodeSize()), big))
	qp := mustNew(t, Config{Dim: 16, Method: Polar})
	assert.ErrorIs(t, qp.Encode(make([]byte, qp.CodeSize()), big), ErrOverflow)
}

func TestEncodeBatchMatchesLoop(t *testing.T) {
	for _, cfg := range []Config{
		{Dim: 128, Bits: 3, Method: MSE, Seed: 5},
		{Dim: 100, Bits: 2, Method: Prod, Seed: 5},
		{Dim: 64, Method: Polar, Seed: 5},
	} {
		q := mustNew(t, cfg)
		const n = 1200 // large enough to take the parallel path
		xs := validate.UnitVectors(n, cfg.Dim, 77)
		batch := make([]byte, n*q.CodeSize())
		require.NoError(t, q.EncodeBatch(batch, xs))
		one := make([]byte, q.CodeSize())
		for i := range n {
			require.NoError(t, q.Encode(one, xs[i*cfg.Dim:(i+1)*cfg.Dim]))
			require.Equal(t, one, batch[i*q.CodeSize():(i+1)*q.CodeSize()], "%s vector %d", name(cfg), i)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	q := mustNew(t, Config{Dim: 128, Bits: 3, Method: Prod, Seed: 1})
	xs := validate.UnitVectors(64, 128, 5)
	want := make([]byte, 64*q.CodeSize())
	require.NoError(t, q.EncodeBatch(want, xs))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code := make([]byte, q.CodeSize())
			rec := make([]float32, 128)
			qq := q.NewQuery()
			for i := range 64 {
				x := xs[i*128 : (i+1)*128]
				assert.NoError(t, q.Encode(code, x))
				assert.Equal(t, want[i*q.CodeSize():(i+1)*q.CodeSize()], code, "goroutine %d", g)
				assert.NoError(t, q.Decode(rec, code))
				assert.NoError(t, qq.Reset(rec))
				_, err := qq.Score(code)
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
}

func TestNoAllocationsOnHotPaths(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items, so allocation counts are meaningless")
	}
	for _, cfg := range []Config{
		{Dim: 128, Bits: 3, Method: MSE},
		{Dim: 128, Bits: 1, Method: MSE},
		{Dim: 128, Bits: 4, Method: Prod},
		{Dim: 100, Bits: 8, Method: MSE, Correction: Unbiased},
		{Dim: 128, Method: Polar},
		{Dim: 128, Bits: 2, Method: MSE, Outliers: &Outliers{Channels: seq(0, 128, 4), Bits: 4}},
	} {
		q := mustNew(t, cfg)
		x := mixedVector(cfg.Dim, 1)
		code := make([]byte, q.CodeSize())
		rec := make([]float32, cfg.Dim)
		qq := q.NewQuery()
		assert.Zero(t, testing.AllocsPerRun(50, func() { _ = q.Encode(code, x) }), "Encode %s", name(cfg))
		assert.Zero(t, testing.AllocsPerRun(50, func() { _ = q.Decode(rec, code) }), "Decode %s", name(cfg))
		assert.Zero(t, testing.AllocsPerRun(50, func() { _ = qq.Reset(x) }), "Reset %s", name(cfg))
		assert.Zero(t, testing.AllocsPerRun(50, func() { _, _ = qq.Score(code) }), "Score %s", name(cfg))
	}
}

func TestGoldenCodes(t *testing.T) {
	// Codes of a fixed vector are part of the on-disk format: they must not
	// change across platforms or releases without a SpecVersion bump.
	x := mixedVector(128, 42)
	golden := map[string]string{}
	for _, cfg := range []Config{
		{Dim: 128, Bits: 3, Method: MSE, Seed: 42},
		{Dim: 100, Bits: 4, Method: Prod, Seed: 42},
		{Dim: 128, Method: Polar, Seed: 42},
	} {
		q := mustNew(t, cfg)
		code := make([]byte, q.CodeSize())
		require.NoError(t, q.Encode(code, x[:cfg.Dim]))
		golden[name(cfg)] = fmt.Sprintf("%x", code)
	}
	for k, v := range golden {
		want, ok := goldenCodes[k]
		if !ok {
			t.Errorf("no golden code for %s; got %s", k, v)
			continue
		}
		assert.Equal(t, want, v, k)
	}
}

func TestErrorsAreWrapped(t *testing.T) {
	_, err := New(Config{Dim: 128, Bits: 3, Method: Polar})
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrConfig))
	assert.Contains(t, err.Error(), "polar")
}
