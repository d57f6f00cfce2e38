package kvcache_test

import (
	"bytes"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/turboquant-go/tq/internal/rng"
	. "github.com/turboquant-go/tq/kvcache"
)

// kvData makes T tokens of keys and values [T][H][d] with realistic
// structure: per-channel scales with a few outlier channels, varying norms,
// and a shared mean direction.
func kvData(T, H, d int, seed uint64) (keys, values []float32) {
	r := rng.New(seed)
	chScale := make([]float64, d)
	mean := make([]float64, d)
	for i := range chScale {
		chScale[i] = 0.5 + r.Float64()
		if i%37 == 5 {
			chScale[i] = 4
		}
		mean[i] = 0.3 * r.Norm()
	}
	keys, values = make([]float32, T*H*d), make([]float32, T*H*d)
	for t := range T * H {
		tokScale := 0.5 + r.Float64()
		for i := range d {
			keys[t*d+i] = float32((mean[i] + r.Norm()) * chScale[i] * tokScale)
			values[t*d+i] = float32(r.Norm())
		}
	}
	return keys, values
}

// refAttention is exact float64 causal attention over all n tokens for the
// last T queries.
func refAttention(keys, values, queries []float32, n, T, H, QH, d int, scale float64) []float32 {
	out := make([]float32, T*QH*d)
	g := QH / H
	for i := range T {
		limit := n - T + i + 1
		for qh := range QH {
			h := qh / g
			q := queries[(i*QH+qh)*d : (i*QH+qh+1)*d]
			logits := make([]float64, limit)
			m := math.Inf(-1)
			for t := range limit {
				var s float64
				for j := range d {
					s += float64(q[j]) * float64(keys[(t*H+h)*d+j])
				}
				logits[t] = s * scale
				m = max(m, logits[t])
			}
			var sum float64
			acc := make([]float64, d)
			for t := range limit {
				w := math.Exp(logits[t] - m)
				sum += w
				for j := range d {
					acc[j] += w * float64(values[(t*H+h)*d+j])
				}
			}
			for j := range d {
				out[(i*QH+qh)*d+j] = float32(acc[j] / sum)
			}
		}
	}
	return out
}

func relErr(got, want []float32) float64 {
	var num, den float64
	for i := range got {
		e := float64(got[i]) - float64(want[i])
		num += e * e
		den += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(num / den)
}

func TestCacheMatchesReferenceAttention(t *testing.T) {
	const L, H, QH, d, n = 2, 2, 4, 64, 300
	for _, name := range PresetNames {
		t.Run(name, func(t *testing.T) {
			cfg, err := Preset(name, L, H, QH, d)
			require.NoError(t, err)
			cfg.Window = 32
			pool, err := NewPool(cfg, 0)
			require.NoError(t, err)
			seq := pool.NewSequence()
			keys, values := kvData(n, H, d, 1)
			queries, _ := kvData(8, QH, d, 2)
			for layer := range L {
				// A prefill of n−8 tokens, then 8 decode steps.
				require.NoError(t, seq.Append(layer, keys[:(n-8)*H*d], values[:(n-8)*H*d]))
				for s := n - 8; s < n; s++ {
					require.NoError(t, seq.Append(layer, keys[s*H*d:(s+1)*H*d], values[s*H*d:(s+1)*H*d]))
				}
			}
			require.Equal(t, n, seq.Len())
			out := make([]float32, len(queries))
			require.NoError(t, seq.Attend(1, queries, out))
			want := refAttention(keys, values, queries, n, 8, H, QH, d, 1/math.Sqrt(d))
			e := relErr(out, want)
			t.Logf("%s: attention output relative error %.4f", name, e)
			limits := map[string]float64{"fp32": 1e-3, "fp16": 2e-3, "k8v4": 0.15, "tq4": 0.15, "tq3.5": 0.25, "tq3": 0.3, "k4v2": 0.45, "tq2.5": 0.5, "tq2": 0.6}
			assert.Less(t, e, limits[name])
		})
	}
}

func TestDeferPrefillAttendsOnFP16ThenCompresses(t *testing.T) {
	const L, H, QH, d, n = 1, 2, 4, 64, 200
	keys, values := kvData(n+1, H, d, 3)
	queries, _ := kvData(n, QH, d, 4)

	ref, err := Preset("fp16", L, H, QH, d)
	require.NoError(t, err)
	refPool, err := NewPool(ref, 0)
	require.NoError(t, err)
	refSeq := refPool.NewSequence()
	require.NoError(t, refSeq.Append(0, keys[:n*H*d], values[:n*H*d]))
	want := make([]float32, len(queries))
	require.NoError(t, refSeq.Attend(0, queries, want))

	cfg, err := Preset("tq3", L, H, QH, d)
	require.NoError(t, err)
	cfg.DeferPrefill, cfg.Window = true, 16
	pool, err := NewPool(cfg, 0)
	require.NoError(t, err)
	seq := pool.NewSequence()
	require.NoError(t, seq.Append(0, keys[:n*H*d], values[:n*H*d]))
	got := make([]float32, len(queries))
	require.NoError(t, seq.Attend(0, queries, got))
	assert.Equal(t, want, got, "a deferred prefill attends on fp16 exactly like the fp16 cache")
	assert.Equal(t, int64(n*cfg.KVHeads*cfg.HeadDim*4), seq.Stats().LiveBytes, "nothing compressed yet")

	// The first decode step compresses everything beyond the window and
	// shrinks the window back: memory is then exactly the plan.
	require.NoError(t, seq.Append(0, keys[n*H*d:], values[n*H*d:]))
	plan, err := cfg.PlanBytes(n + 1)
	require.NoError(t, err)
	assert.Equal(t, plan, pool.Used())
	st := seq.Stats()
	assert.Equal(t, n+1, st.Tokens)
	assert.Less(t, st.StoredBytes, st.FP16Bytes)
	require.NoError(t, seq.Close())
	assert.Zero(t, pool.Used())
}

func TestPresetBytesPerTokenMatchTheREADME(t *testing.T) {
	want := map[string]int64{"fp32": 1024, "fp16": 512, "k8v4": 196, "tq4": 132, "tq3.5": 120, "tq3": 100, "k4v2": 100, "tq2.5": 88, "tq2": 68}
	for _, name := range PresetNames {
		cfg, err := Preset(name, 1, 1, 1, 128)
		require.NoError(t, err)
		cfg.Window, cfg.Sinks, cfg.BlockTokens = 0, 0, 1
		plan, err := cfg.PlanBytes(1)
		require.NoError(t, err)
		assert.Equal(t, want[name], plan, name)
	}
	_, err := Preset("tq9", 1, 1, 1, 128)
	assert.ErrorIs(t, err, ErrConfig)
}

func TestForkPrefix(t *testing.T) {
	cfg, err := Preset("tq4", 1, 2, 2, 64)
	require.NoError(t, err)
	// Without Center: a and b would centre on the means of different
	// prompts (60 and 100 tokens).
	cfg.Window, cfg.BlockTokens, cfg.Center = 8, 16, false
	pool, err := NewPool(cfg, 0)
	require.NoError(t, err)
	keys, values := kvData(100, 2, 64, 5)
	a := pool.NewSequence()
	require.NoError(t, a.Append(0, keys[:60*128], values[:60*128]))
	b := pool.NewSequence()
	require.NoError(t, b.Append(0, keys[:100*128], values[:100*128]))
	p, err := b.ForkPrefix(60)
	require.NoError(t, err)
	assert.Equal(t, 60, p.Len())
	q, _ := kvData(1, 2, 64, 6)
	want, got := make([]float32, 128), make([]float32, 128)
	require.NoError(t, a.Attend(0, q, want))
	require.NoError(t, p.Attend(0, q, got))
	// The prefix was compressed further in b (its window slid past token
	// 52), so it is not bit-identical to a fresh 60-token sequence, but the
	// same tokens at the same precision or better.
	assert.Less(t, relErr(got, want), 0.1)
	assert.Greater(t, p.Stats().SharedBytes, int64(0))
	_, err = b.ForkPrefix(101)
	assert.ErrorIs(t, err, ErrLength)
}

func TestCenterIsExactAndSnapshots(t *testing.T) {
	// Keys and values with a shared offset (as real keys have: their mean is
	// 0.5–0.8 of their length) plus noise.
	const H, QH, d, n = 2, 4, 64, 300
	keys, values := kvData(n, H, d, 21)
	for i := range keys {
		keys[i] = 0.3*keys[i] + 2
		values[i] += 2
	}
	queries, _ := kvData(4, QH, d, 22)
	for i := range queries {
		queries[i] *= 0.3
	}
	want := refAttention(keys, values, queries, n, 4, H, QH, d, 1/math.Sqrt(d))
	errs := map[bool]float64{}
	for _, center := range []bool{false, true} {
		cfg, err := Preset("tq3", 1, H, QH, d)
		require.NoError(t, err)
		cfg.Window, cfg.Sinks, cfg.Center = 16, 0, center
		pool, err := NewPool(cfg, 0)
		require.NoError(t, err)
		seq := pool.NewSequence()
		require.NoError(t, seq.Append(0, keys[:200*H*d], values[:200*H*d]))
		for s := 200; s < n; s += 50 {
			require.NoError(t, seq.Append(0, keys[s*H*d:(s+50)*H*d], values[s*H*d:(s+50)*H*d]))
		}
		out := make([]float32, len(queries))
		require.NoError(t, seq.Attend(0, queries, out))
		errs[center] = relErr(out, want)

		// A snapshot restores the means with the codes: bit-identical.
		var buf bytes.Buffer
		_, err = seq.WriteTo(&buf)
		require.NoError(t, err)
		back, err := pool.ReadSequence(&buf)
		require.NoError(t, err)
		again := make([]float32, len(queries))
		require.NoError(t, back.Attend(0, queries, again))
		assert.Equal(t, out, again, "center=%v", center)
		lg, lb := make([]float32, n), make([]float32, n)
		require.NoError(t, seq.Logits(0, 1, queries[:d], lg))
		require.NoError(t, back.Logits(0, 1, queries[:d], lb))
		assert.Equal(t, lg, lb)
	}
	t.Logf("tq3 attention output error: %.4f plain, %.4f centred", errs[false], errs[true])
	assert.Less(t, errs[true], 0.5*errs[false], "centering must help on uncentred data")

	// A pool with Center refuses a snapshot of a pool without it.
	plain, err := Preset("tq3", 1, H, QH, d)
	require.NoError(t, err)
	plain.Center = false
	centred := plain
	centred.Center = true
	p1, err := NewPool(plain, 0)
	require.NoError(t, err)
	p2, err := NewPool(centred, 0)
	require.NoError(t, err)
	s1 := p1.NewSequence()
	require.NoError(t, s1.Append(0, keys[:10*H*d], values[:10*H*d]))
	var buf bytes.Buffer
	_, err = s1.WriteTo(&buf)
	require.NoError(t, err)
	_, err = p2.ReadSequence(&buf)
	assert.ErrorIs(t, err, ErrSnapshot)
}
