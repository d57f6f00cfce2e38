package validate

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func rowsOf(flat []float32, d int) [][]float32 {
	out := make([][]float32, len(flat)/d)
	for i := range out {
		out[i] = flat[i*d : (i+1)*d]
	}
	return out
}

// meanEntropy is the mean entropy (nats) of softmax(q·k/√d) rows of the
// given queries over the given keys.
func meanEntropy(qs, ks [][]float32) float64 {
	scale := 1 / math.Sqrt(float64(len(ks[0])))
	logits := make([]float64, len(ks))
	var e float64
	for _, q := range qs {
		for i, k := range ks {
			logits[i] = Dot(q, k) * scale
		}
		for _, p := range Softmax(logits) {
			if p > 0 {
				e -= p * math.Log(p)
			}
		}
	}
	return e / float64(len(qs))
}

func TestSynthKVMatchesRealStatistics(t *testing.T) {
	kv := loadRealKVFixture(t)
	s, err := FitSynthKV(kv, 1)
	require.NoError(t, err)
	require.Len(t, s.Heads, 4)
	require.Equal(t, 128, s.Dim)
	for h := range s.Heads {
		for _, kind := range []Kind{Keys, Values, Queries} {
			var real [][]float32
			for ci := range kv.Chunks {
				l := kv.Chunks[ci].layerAt(1)
				real = append(real, [][][][]float32{l.K, l.V, l.Q}[kind][h]...)
			}
			want := DescribeVectors(real)
			got := DescribeVectors(rowsOf(s.Sample(kind, h, 4000, 7), s.Dim))
			t.Logf("head %d kind %d: real %+v synthetic %+v rank %d σ %.3f", h, kind, want, got,
				len(s.Heads[h].model(kind).Basis), s.Heads[h].model(kind).NormSigma)
			assert.InEpsilon(t, want.NormMean, got.NormMean, 0.05, "head %d kind %d norm", h, kind)
			assert.InEpsilon(t, want.NormCV, got.NormCV, 0.15, "head %d kind %d norm spread", h, kind)
			assert.InEpsilon(t, want.MeanFraction, got.MeanFraction, 0.05, "head %d kind %d mean", h, kind)
			assert.InEpsilon(t, want.OutlierRatio, got.OutlierRatio, 0.2, "head %d kind %d outliers", h, kind)
		}
		// Attention sharpness: synthetic queries over synthetic keys give
		// rows about as peaked as real queries over real keys (same number
		// of keys as a real chunk).
		l := kv.Chunks[0].layerAt(1)
		realH := meanEntropy(l.Q[h], l.K[h])
		synH := meanEntropy(rowsOf(s.Sample(Queries, h, 64, 3), s.Dim), rowsOf(s.Sample(Keys, h, l.Tokens, 3), s.Dim))
		t.Logf("head %d: attention entropy real %.3f synthetic %.3f (uniform %.3f)", h, realH, synH, math.Log(float64(l.Tokens)))
		assert.InEpsilon(t, realH, synH, 0.25, "head %d attention entropy", h)
	}
}

func TestSynthKVDeterministicAndShaped(t *testing.T) {
	s, err := DefaultSynthKV()
	require.NoError(t, err)
	k1, v1 := s.Generate(10, 6, 42)
	k2, v2 := s.Generate(10, 6, 42)
	assert.Equal(t, k1, k2)
	assert.Equal(t, v1, v2)
	require.Len(t, k1, 10*6*128)
	// KV head 5 uses real head 1's model, with its own stream: not a copy
	// of head 1.
	assert.NotEqual(t, k1[1*128:2*128], k1[5*128:6*128])
	k3, _ := s.Generate(10, 6, 43)
	assert.NotEqual(t, k1, k3)
	// Token t of head h in Generate is sample t of the (seed, h) stream.
	assert.Equal(t, s.Sample(Keys, 3, 10, 42)[7*128:8*128], k1[(7*6+3)*128:(7*6+4)*128])
	q := s.Queries(2, 3, 4, 9)
	require.Len(t, q, 2*12*128)
	assert.Equal(t, s.Sample(Queries, 2, 8, 9)[5*128:6*128], q[(1*12+2*4+1)*128:(1*12+2*4+2)*128])
}

func TestFitVectorsErrors(t *testing.T) {
	_, err := FitVectors([][]float32{{1, 2}})
	assert.ErrorIs(t, err, ErrSynth)
	_, err = FitVectors([][]float32{{1, 2}, {1, 2, 3}})
	assert.ErrorIs(t, err, ErrSynth)
	// Constant data: zero covariance, all mean.
	m, err := FitVectors([][]float32{{1, 2}, {1, 2}, {1, 2}})
	require.NoError(t, err)
	assert.Empty(t, m.Basis)
	assert.Equal(t, []float64{1, 2}, m.Mean)
}

func TestDescribeVectorsByHand(t *testing.T) {
	// Channel mean |x|: 3, 0, 4 → median 3, outlier ratio 4/3. Norms 5
	// and 5: CV 0. Mean (3, 0, 0): 3/5 of the mean norm.
	st := DescribeVectors([][]float32{{3, 0, 4}, {3, 0, -4}})
	assert.Equal(t, 2, st.N)
	assert.InDelta(t, 5, st.NormMean, 1e-12)
	assert.InDelta(t, 0, st.NormCV, 1e-12)
	assert.InDelta(t, 3.0/5, st.MeanFraction, 1e-12) // mean (3,0,0)
	assert.InDelta(t, 4.0/3, st.OutlierRatio, 1e-12)
	st = DescribeVectors([][]float32{{1, 0}, {3, 0}})
	assert.InDelta(t, 2, st.NormMean, 1e-12)
	assert.InDelta(t, math.Sqrt2/2, st.NormCV, 1e-12) // sample std √2 over mean 2
}

func BenchmarkSynthGenerate(b *testing.B) {
	s, err := DefaultSynthKV()
	require.NoError(b, err)
	for b.Loop() {
		s.Generate(1024, 8, 1)
	}
}
