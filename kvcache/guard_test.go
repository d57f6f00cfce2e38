package kvcache_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/turboquant-go/tq/internal/rng"
	"github.com/turboquant-go/tq/internal/simd"
	. "github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
)

// guardConfig is tq3-guard for a small model: blocks of 16, a 16-token
// window, 2 sinks.
func guardConfig(t testing.TB, layers, kvHeads, qHeads, headDim int, budget float64) Config {
	cfg, err := Preset("tq3-guard", layers, kvHeads, qHeads, headDim)
	require.NoError(t, err)
	cfg.Window, cfg.Sinks, cfg.BlockTokens = 16, 2, 16
	cfg.Guard.Budget = budget
	return cfg
}

// outlierKV is keys whose last KV head has a huge channel that varies from
// token to token (so centring cannot remove it) and whose other heads are
// small and benign; values are Gaussian.
func outlierKV(T, H, d int, seed uint64) (keys, values []float32) {
	r := rng.New(seed)
	keys, values = make([]float32, T*H*d), make([]float32, T*H*d)
	for t := range T {
		for h := range H {
			for i := range d {
				x := 0.5 * r.Norm()
				if h == H-1 && i == 3 {
					x = 40 * r.Norm()
				}
				keys[(t*H+h)*d+i] = float32(x)
				values[(t*H+h)*d+i] = float32(r.Norm())
			}
		}
	}
	return keys, values
}

// guardRun drives a sequence as a decoder does: a prefill of 'prefill'
// tokens attended with their queries, then one token at a time, each
// attended, to n tokens, on every layer.
func guardRun(t testing.TB, cfg Config, s *Sequence, from, prefill, n int, seed uint64) {
	H, QH, d := cfg.KVHeads, cfg.QHeads, cfg.HeadDim
	keys, values := outlierKV(n, H, d, seed)
	queries, _ := kvData(n, QH, d, seed+1)
	out := make([]float32, n*QH*d)
	step := func(layer, a, b int) {
		require.NoError(t, s.Append(layer, keys[a*H*d:b*H*d], values[a*H*d:b*H*d]))
		require.NoError(t, s.Attend(layer, queries[a*QH*d:b*QH*d], out[:(b-a)*QH*d]))
	}
	for layer := range cfg.Layers {
		if from < prefill {
			step(layer, from, prefill)
		}
		for p := max(from, prefill); p < n; p++ {
			step(layer, p, p+1)
		}
	}
}

// TestGuardUpgradesTheOutlierHead: with a budget between the two kinds of
// head, exactly the head with the outlier channel is upgraded, at the first
// block (compressed at the first decode step, after the prompt's queries),
// every later block of it is stored at 4 bits, and the bytes add up.
func TestGuardUpgradesTheOutlierHead(t *testing.T) {
	const L, H, QH, d, n = 2, 3, 6, 64, 100
	cfg := guardConfig(t, L, H, QH, d, 0.3)
	pool := snapPool(t, cfg, 0)
	s := pool.NewSequence()
	guardRun(t, cfg, s, 0, 40, n, 1)
	st := s.Stats()
	require.Len(t, st.Upgrades, L, "one head per layer")
	blocks := (n - cfg.Sinks - cfg.Window + cfg.BlockTokens - 1) / cfg.BlockTokens
	// 3 → 4 bits adds d/8 bytes per key and per value.
	extra := int64(blocks * cfg.BlockTokens * 2 * d / 8)
	for i, u := range st.Upgrades {
		assert.Equal(t, i, u.Layer)
		assert.Equal(t, H-1, u.Head)
		assert.Equal(t, cfg.Sinks, u.Position, "upgraded at the first block")
		assert.Greater(t, u.Error, cfg.Guard.Budget)
		assert.Equal(t, blocks, u.Blocks)
		assert.Equal(t, extra, u.ExtraBytes)
	}
	assert.Equal(t, int64(L)*extra, st.UpgradeBytes)

	// The same tokens without a guard: the difference is the upgrades, and
	// the rings (8 queries per query head, per KV head).
	plain := cfg
	plain.Guard = GuardConfig{}
	p := snapPool(t, plain, 0)
	ps := p.NewSequence()
	guardRun(t, plain, ps, 0, 40, n, 1)
	ring := int64(L * H * 8 * (QH / H) * d * 4)
	assert.Equal(t, ps.Stats().StoredBytes+st.UpgradeBytes+ring, st.StoredBytes)
	assert.Equal(t, st.StoredBytes, pool.Used())
	plan, err := cfg.PlanBytes(n)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, plan, st.StoredBytes, "PlanBytes bounds a guard sequence")

	// A budget above every head's error upgrades nothing.
	high := guardConfig(t, L, H, QH, d, 100)
	hs := snapPool(t, high, 0).NewSequence()
	guardRun(t, high, hs, 0, 40, n, 1)
	assert.Empty(t, hs.Stats().Upgrades)
	assert.Zero(t, hs.Stats().UpgradeBytes)
	// The upgrade buys fidelity on the outlier head.
	assert.Less(t, guardLogitErr(t, cfg, s, n), guardLogitErr(t, high, hs, n))
}

// guardLogitErr is the RMS error of the last query head's logits against
// the exact ones, over a few queries.
func guardLogitErr(t *testing.T, cfg Config, s *Sequence, n int) float64 {
	H, QH, d := cfg.KVHeads, cfg.QHeads, cfg.HeadDim
	keys, _ := outlierKV(n, H, d, 1)
	queries, _ := kvData(4, QH, d, 77)
	got := make([]float32, n)
	var se float64
	for i := range 4 {
		q := queries[(i*QH+QH-1)*d : (i*QH+QH)*d]
		require.NoError(t, s.Logits(0, QH-1, q, got))
		for p := range n {
			var e float64
			for j := range d {
				e += float64(q[j]) * float64(keys[(p*H+H-1)*d+j])
			}
			e = e*float64(cfg.Scale) - float64(got[p])
			se += e * e
		}
	}
	return math.Sqrt(se / float64(4*n))
}

// guardGolden is the SHA-256 of TestGuardIsDeterministic's snapshot.
const guardGolden = "fb2da206a5a6b9feadc48623f69741def46ad7987828826a5b86c748145dc4a7"

// TestGuardIsDeterministic: the same appends and attends give the same
// snapshot bytes, whichever kernel level runs attention; other queries may
// give other decisions, and the decision reads only the recorded queries.
func TestGuardIsDeterministic(t *testing.T) {
	cfg := guardConfig(t, 1, 2, 4, 32, 0.3)
	cfg.Guard.Queries = 5 // not a multiple of the group: the ring wraps mid-token
	snap := func() []byte {
		s := snapPool(t, cfg, 0).NewSequence()
		guardRun(t, cfg, s, 0, 30, 90, 3)
		return snapWrite(t, s)
	}
	first := snap()
	// The same bytes on every platform (amd64 and arm64 under qemu were
	// checked): the decisions and codes do not depend on FMA or SIMD.
	sum := sha256.Sum256(first)
	assert.Equal(t, guardGolden, hex.EncodeToString(sum[:]), "snapshot digest")
	for _, rows := range []bool{false, true} {
		restore := SetRowKernels(rows)
		assert.Equal(t, first, snap(), "row path %v", rows)
		restore()
	}
	if simd.Available(simd.Generic) {
		back, err := simd.Use(simd.Generic)
		require.NoError(t, err)
		assert.Equal(t, first, snap(), "generic kernels")
		back()
	}
	// Logits does not record its query: calling it changes nothing.
	s := snapPool(t, cfg, 0).NewSequence()
	guardRun(t, cfg, s, 0, 30, 60, 3)
	q, _ := kvData(1, cfg.QHeads, cfg.HeadDim, 9)
	require.NoError(t, s.Logits(0, 0, q[:cfg.HeadDim], make([]float32, 60)))
	guardRun(t, cfg, s, 60, 30, 90, 3)
	assert.Equal(t, first, snapWrite(t, s))
}

// TestGuardSnapshotRoundTrip restores guard sequences with Center and
// upgraded heads (also a fork truncated to before the upgrades' blocks, and
// one mid-prefill) bit for bit, and the restored sequence continues exactly
// as the original: same decisions, same bytes.
func TestGuardSnapshotRoundTrip(t *testing.T) {
	cfg := guardConfig(t, 2, 2, 4, 32, 0.3)
	require.True(t, cfg.Center)
	pool := snapPool(t, cfg, 0)
	cases := map[string]func() *Sequence{
		"upgraded": func() *Sequence {
			s := pool.NewSequence()
			guardRun(t, cfg, s, 0, 30, 70, 5)
			require.NotEmpty(t, s.Stats().Upgrades)
			return s
		},
		"truncated fork": func() *Sequence {
			s := pool.NewSequence()
			guardRun(t, cfg, s, 0, 30, 70, 5)
			f, err := s.ForkPrefix(25) // inside the first block
			require.NoError(t, err)
			require.NoError(t, s.Close())
			return f
		},
		"deferred prefill": func() *Sequence {
			s := pool.NewSequence()
			guardRun(t, cfg, s, 0, 30, 30, 5)
			return s
		},
		"empty": func() *Sequence { return pool.NewSequence() },
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			s := mk()
			r := snapRoundTrip(t, cfg, pool, s)
			from := s.Len()
			for _, seq := range []*Sequence{s, r} {
				guardRun(t, cfg, seq, from, from, from+40, 6)
			}
			assert.Equal(t, snapWrite(t, s), snapWrite(t, r), "continues identically")
			assert.Equal(t, s.Stats(), r.Stats())
			require.NoError(t, s.Close())
			require.NoError(t, r.Close())
		})
	}
	assert.Zero(t, pool.Used())
}

// TestGuardRowPathMatchesPerCodePath is TestRowPathMatchesPerCodePath with
// upgraded heads: blocks of both widths in one head, MHA and GQA.
func TestGuardRowPathMatchesPerCodePath(t *testing.T) {
	levels := []simd.Level{simd.Generic}
	for _, l := range []simd.Level{simd.AVX2, simd.NEON} {
		if simd.Available(l) {
			levels = append(levels, l)
		}
	}
	for _, heads := range [][2]int{{2, 2}, {2, 8}} {
		H, QH := heads[0], heads[1]
		t.Run(fmt.Sprintf("H=%d/QH=%d", H, QH), func(t *testing.T) {
			const d, n, T = 64, 150, 3
			// Without a deferred prefill the outlier head upgrades only
			// after its first blocks: no query was recorded before the
			// prefill was compressed.
			cfg := guardConfig(t, 1, H, QH, d, 0.3)
			cfg.DeferPrefill = false
			s := snapPool(t, cfg, 0).NewSequence()
			guardRun(t, cfg, s, 0, 60, n, 2)
			st := s.Stats()
			require.Len(t, st.Upgrades, 1)
			require.Less(t, st.Upgrades[0].Blocks, (n-cfg.Sinks-cfg.Window)/cfg.BlockTokens, "base and upgraded blocks")
			queries, _ := kvData(T, QH, d, 8)
			restore := SetRowKernels(false)
			want := make([]float32, len(queries))
			require.NoError(t, s.Attend(0, queries, want))
			wantLogits := make([]float32, n)
			require.NoError(t, s.Logits(0, QH-1, queries[:d], wantLogits))
			restore()
			defer SetRowKernels(true)()
			for _, l := range levels {
				back, err := simd.Use(l)
				require.NoError(t, err)
				got := make([]float32, len(queries))
				require.NoError(t, s.Attend(0, queries, got))
				gotLogits := make([]float32, n)
				require.NoError(t, s.Logits(0, QH-1, queries[:d], gotLogits))
				back()
				require.Less(t, relErr(got, want), 2e-5, "%v: attention outputs", l)
				require.Less(t, relErr(gotLogits, wantLogits), 2e-6, "%v: logits", l)
			}
		})
	}
}

// TestGuardAppendFailureLeavesCacheUnchanged: an append whose upgraded block
// does not fit the budget fails with ErrCacheFull and changes nothing (the
// decision included); with room, it then succeeds as if it never failed.
func TestGuardAppendFailureLeavesCacheUnchanged(t *testing.T) {
	cfg := guardConfig(t, 1, 2, 2, 32, 0.3)
	cfg.DeferPrefill = false
	H, d := cfg.KVHeads, cfg.HeadDim
	keys, values := outlierKV(60, H, d, 4)
	queries, _ := kvData(60, cfg.QHeads, d, 5)
	out := make([]float32, cfg.QHeads*d)
	run := func(s *Sequence, from, to int) {
		for p := from; p < to; p++ {
			require.NoError(t, s.Append(0, keys[p*H*d:(p+1)*H*d], values[p*H*d:(p+1)*H*d]))
			require.NoError(t, s.Attend(0, queries[p*cfg.QHeads*d:(p+1)*cfg.QHeads*d], out))
		}
	}
	ref := snapPool(t, cfg, 0).NewSequence()
	run(ref, 0, 60)
	require.NotEmpty(t, ref.Stats().Upgrades)

	// Find the append that opens the first (upgraded) block: position
	// Sinks+Window, and give the pool exactly one byte too little for it.
	first := cfg.Sinks + cfg.Window
	probe := snapPool(t, cfg, 0)
	ps := probe.NewSequence()
	run(ps, 0, first)
	before := probe.Used()
	run(ps, first, first+1)
	need := probe.Used() - before
	pool := snapPool(t, cfg, before+need-1)
	s := pool.NewSequence()
	run(s, 0, first)
	snap := snapWrite(t, s)
	err := s.Append(0, keys[first*H*d:(first+1)*H*d], values[first*H*d:(first+1)*H*d])
	require.ErrorIs(t, err, ErrCacheFull)
	assert.Equal(t, snap, snapWrite(t, s), "unchanged")
	assert.Equal(t, before, pool.Used())

	// Restored into a pool with room, it goes on as the reference did.
	big := snapPool(t, cfg, 0)
	r, err := big.ReadSequence(bytes.NewReader(snap))
	require.NoError(t, err)
	run(r, first, 60)
	assert.Equal(t, snapWrite(t, ref), snapWrite(t, r))
}

func TestGuardConfigErrors(t *testing.T) {
	base := guardConfig(t, 1, 2, 2, 32, 0.3)
	mse := func(b int) Storage { return Storage{Kind: Quantized, Method: turboquant.MSE, Bits: b} }
	edits := map[string]func(c *Config){
		"negative budget":  func(c *Config) { c.Guard.Budget = -1 },
		"nan budget":       func(c *Config) { c.Guard.Budget = math.NaN() },
		"inf budget":       func(c *Config) { c.Guard.Budget = math.Inf(1) },
		"queries":          func(c *Config) { c.Guard.Queries = -1 },
		"too many queries": func(c *Config) { c.Guard.Queries = 1 << 20 },
		"outlier upgrade": func(c *Config) {
			c.Guard.Keys = Storage{Kind: Quantized, Method: turboquant.MSE, Bits: 3, Outliers: 8, OutlierBits: 4}
		},
		"bad upgrade bits":  func(c *Config) { c.Guard.Values = mse(9) },
		"fields without it": func(c *Config) { c.Guard = GuardConfig{Keys: mse(4)} },
	}
	for name, edit := range edits {
		cfg := base
		edit(&cfg)
		_, err := NewPool(cfg, 0)
		assert.ErrorIs(t, err, ErrConfig, name)
		_, err = cfg.PlanBytes(10)
		assert.ErrorIs(t, err, ErrConfig, name)
	}
	// fp16 as the upgrade is allowed (a head over budget is kept exact).
	cfg := base
	cfg.Guard.Keys, cfg.Guard.Values = Storage{Kind: Float16}, Storage{Kind: Float16}
	cfg.DeferPrefill = false
	pool := snapPool(t, cfg, 0)
	s := pool.NewSequence()
	guardRun(t, cfg, s, 0, 0, 60, 1)
	require.NotEmpty(t, s.Stats().Upgrades)
	snapRoundTrip(t, cfg, pool, s)
	_, err := Preset("tq3-guarded", 1, 1, 1, 64)
	require.ErrorIs(t, err, ErrConfig)
	assert.ErrorContains(t, err, "tq3-guard")
}

// guardSnapshot is a snapshot of one upgraded guard layer (1 layer, 2
// heads, d=16, Center off), and the offsets of its guard section payload.
func guardSnapshot(t *testing.T) (cfg Config, data []byte, g, n int) {
	cfg = guardConfig(t, 1, 2, 2, 16, 0.2)
	cfg.Center, cfg.DeferPrefill, cfg.Guard.Queries = false, false, 3
	s := snapPool(t, cfg, 0).NewSequence()
	guardRun(t, cfg, s, 0, 0, 60, 1)
	require.Equal(t, 1, s.Stats().Upgrades[0].Head)
	data = snapWrite(t, s)
	secs := snapSections(data)
	// config, layer, codecs, guard, sinks, window, blocks
	return cfg, data, secs[3].off + 8, secs[3].n
}

func TestGuardSnapshotRejectsHostileContent(t *testing.T) {
	cfg, data, g, n := guardSnapshot(t)
	pool := snapBusyPool(t, cfg, 0)
	used := pool.Used()
	const H, d = 2, 16
	head := func(h int) int { return g + 8 + 24*h }
	ring := g + 8 + 24*H
	flags := ring + 3*H*d*4
	last := g + n - H // the last block's flags
	up := 1           // the outlier head
	edits := map[string]func(b []byte){
		"queries beyond the ring": func(b []byte) { b[g] = 4 },
		"no queries":              func(b []byte) { b[g] = 0 },
		"head flags":              func(b []byte) { b[head(up)] = 2 },
		"error within budget":     func(b []byte) { binary.LittleEndian.PutUint64(b[head(up)+16:], math.Float64bits(0.1)) },
		"infinite error":          func(b []byte) { binary.LittleEndian.PutUint64(b[head(up)+16:], math.Float64bits(math.Inf(1))) },
		"position off a block":    func(b []byte) { b[head(up)+8]++ },
		"benign head with a position": func(b []byte) {
			b[head(1-up)+8] = 2
		},
		"not upgraded, yet flagged": func(b []byte) { b[head(up)] = 0 },
		"non-finite query":          func(b []byte) { binary.LittleEndian.PutUint32(b[ring+8:], 0x7fc00000) },
		"block flag 2":              func(b []byte) { b[flags+up] = 2 },
		"benign head flagged":       func(b []byte) { b[flags+1-up] = 1 },
		"flag gap":                  func(b []byte) { b[last+up] = 0 },
	}
	for name, edit := range edits {
		bad := bytes.Clone(data)
		edit(bad)
		snapFixCRCs(bad)
		_, err := pool.ReadSequence(bytes.NewReader(bad))
		require.ErrorIs(t, err, ErrSnapshot, name)
		require.Equal(t, used, pool.Used(), name)
	}
	// A guard pool refuses a version 1 snapshot, and a plain pool a guard
	// one (configs differ).
	v1, err := os.ReadFile("testdata/snapshot-v1-tq3.tqkv")
	require.NoError(t, err)
	_, err = pool.ReadSequence(bytes.NewReader(v1))
	require.ErrorIs(t, err, ErrSnapshot)
	plain := cfg
	plain.Guard = GuardConfig{}
	_, err = snapPool(t, plain, 0).ReadSequence(bytes.NewReader(data))
	require.ErrorIs(t, err, ErrSnapshot)
	assert.ErrorContains(t, err, "guard budget")
}

// TestSnapshotReadsVersion1 restores snapshots written by the version 1
// code (committed in testdata): the restored sequence is the one the same
// recipe builds today, and it snapshots to today's version 2 bytes.
func TestSnapshotReadsVersion1(t *testing.T) {
	for _, preset := range []string{"tq3", "mixed"} {
		t.Run(preset, func(t *testing.T) {
			v1, err := os.ReadFile("testdata/snapshot-v1-" + preset + ".tqkv")
			require.NoError(t, err)
			require.EqualValues(t, 1, binary.LittleEndian.Uint16(v1[4:]))
			cfg := snapConfig(t, preset, 2, 2, 4, 16)
			pool := snapPool(t, cfg, 0)
			r, err := pool.ReadSequence(bytes.NewReader(v1))
			require.NoError(t, err)
			s := pool.NewSequence()
			snapFill(t, cfg, 30, s)
			assert.Equal(t, snapWrite(t, s), snapWrite(t, r))
			assert.Equal(t, snapOutputs(t, cfg, s), snapOutputs(t, cfg, r))
		})
	}
}

// TestGuardViewLayerRefusesUpgradedBlocks: backends that read LayerView's
// uniform layout get an error, not misread codes, once a head is upgraded.
func TestGuardViewLayerRefusesUpgradedBlocks(t *testing.T) {
	cfg := guardConfig(t, 1, 2, 2, 32, 0.3)
	s := snapPool(t, cfg, 0).NewSequence()
	guardRun(t, cfg, s, 0, 30, 30, 1) // a deferred prefill: no blocks yet
	require.NoError(t, s.ViewLayer(0, func(LayerView) {}))
	guardRun(t, cfg, s, 40, 30, 80, 1)
	require.NotEmpty(t, s.Stats().Upgrades)
	err := s.ViewLayer(0, func(LayerView) {})
	require.True(t, errors.Is(err, ErrConfig), "%v", err)
}
