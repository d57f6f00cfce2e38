package kvcache_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"os"
	"runtime"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	. "github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
)

// snapConfig is a small cache configuration: a preset, "mixed" (Prod keys
// with outlier channels and fp32 norms, corrected MSE values, and a layer
// overridden to Polar keys and fp32 values), or "deferred" (tq3 with
// DeferPrefill), with sinks, a window and small blocks so that a few dozen
// tokens fill several blocks and wrap the window.
func snapConfig(t testing.TB, preset string, layers, kvHeads, qHeads, headDim int) Config {
	var cfg Config
	if preset == "deferred" {
		cfg = snapConfig(t, "tq3", layers, kvHeads, qHeads, headDim)
		cfg.DeferPrefill = true
		return cfg
	}
	if preset == "blockcenter" {
		cfg = snapConfig(t, "k4v3.5", layers, kvHeads, qHeads, headDim)
		cfg.BlockCenter = true
		return cfg
	}
	if preset == "mixed" {
		cfg = Config{
			Layers: layers, KVHeads: kvHeads, QHeads: qHeads, HeadDim: headDim, Seed: 7,
			Keys:   Storage{Kind: Quantized, Method: turboquant.Prod, Bits: 3, Norm: turboquant.FP32, Outliers: headDim / 8, OutlierBits: 4},
			Values: Storage{Kind: Quantized, Method: turboquant.MSE, Bits: 2, Correction: turboquant.Unbiased},
			Overrides: map[int]LayerStorage{layers - 1: {
				Keys:   Storage{Kind: Quantized, Method: turboquant.Polar},
				Values: Storage{Kind: Float32},
			}},
		}
	} else {
		var err error
		cfg, err = Preset(preset, layers, kvHeads, qHeads, headDim)
		require.NoError(t, err)
	}
	cfg.Window, cfg.Sinks, cfg.BlockTokens = 8, 2, 4
	return cfg
}

func snapPool(t testing.TB, cfg Config, budget int64) *Pool {
	p, err := NewPool(cfg, budget)
	require.NoError(t, err)
	return p
}

// snapAppend appends tokens [from, to) of the keys and values that seed
// makes to one layer of every sequence, one token at a time when single.
func snapAppend(t testing.TB, cfg Config, layer, from, to int, seed uint64, single bool, seqs ...*Sequence) {
	row := cfg.KVHeads * cfg.HeadDim
	keys, values := kvData(to, cfg.KVHeads, cfg.HeadDim, seed)
	step := to - from
	if single {
		step = 1
	}
	for t0 := from; t0 < to; t0 += step {
		t1 := min(t0+step, to)
		for _, s := range seqs {
			require.NoError(t, s.Append(layer, keys[t0*row:t1*row], values[t0*row:t1*row]))
		}
	}
}

// snapFill gives every layer a prefill of 10 tokens and then n−10 tokens one
// at a time (wrapping the 8-token window); layer 0 gets one token more, as in
// the middle of a decode step.
func snapFill(t testing.TB, cfg Config, n int, seqs ...*Sequence) {
	for layer := range cfg.Layers {
		seed := uint64(10 + layer)
		snapAppend(t, cfg, layer, 0, 10, seed, false, seqs...)
		end := n
		if layer == 0 {
			end++
		}
		snapAppend(t, cfg, layer, 10, end, seed, true, seqs...)
	}
}

func snapBits(xs []float32) []uint32 {
	b := make([]uint32, len(xs))
	for i, x := range xs {
		b[i] = math.Float32bits(x)
	}
	return b
}

// snapOutputs is every output of a sequence that depends on its tokens: per
// layer, attention for the last (up to) 3 positions and every query head's
// logits, as bits.
func snapOutputs(t testing.TB, cfg Config, s *Sequence) [][]uint32 {
	var outs [][]uint32
	d := cfg.HeadDim
	for layer := range cfg.Layers {
		n := s.LayerLen(layer)
		outs = append(outs, []uint32{uint32(n)})
		if n == 0 {
			continue
		}
		T := min(n, 3)
		queries, _ := kvData(T, cfg.QHeads, d, uint64(100+layer))
		out := make([]float32, len(queries))
		require.NoError(t, s.Attend(layer, queries, out))
		outs = append(outs, snapBits(out))
		for qh := range cfg.QHeads {
			logits := make([]float32, n)
			require.NoError(t, s.Logits(layer, qh, queries[qh*d:(qh+1)*d], logits))
			outs = append(outs, snapBits(logits))
		}
	}
	return outs
}

// snapWrite snapshots s and checks that WriteTo reports its length.
func snapWrite(t testing.TB, s *Sequence) []byte {
	var buf bytes.Buffer
	n, err := s.WriteTo(&buf)
	require.NoError(t, err)
	require.Equal(t, int64(buf.Len()), n)
	return buf.Bytes()
}

// snapRoundTrip snapshots s, restores it into pool, and checks that the
// restored sequence gives the same outputs and snapshots to the same bytes.
func snapRoundTrip(t testing.TB, cfg Config, pool *Pool, s *Sequence) *Sequence {
	data := snapWrite(t, s)
	used := pool.Used()
	r, err := pool.ReadSequence(bytes.NewReader(data))
	require.NoError(t, err)
	assert.Equal(t, used+r.Stats().StoredBytes, pool.Used(), "the restored sequence's memory is reserved")
	assert.Equal(t, s.Len(), r.Len())
	assert.Equal(t, data, snapWrite(t, r), "a restored sequence snapshots to the same bytes")
	assert.Equal(t, snapOutputs(t, cfg, s), snapOutputs(t, cfg, r))
	// Attending records queries (with a guard): both recorded the same.
	assert.Equal(t, snapWrite(t, s), snapWrite(t, r), "the same after attending")
	return r
}

var snapPresets = []string{"fp16", "tq3", "tq3.5", "k4v3.5", "k4v3.25+uk", "k8v4", "mixed", "deferred", "blockcenter"}

func TestSnapshotRoundTrip(t *testing.T) {
	for _, preset := range snapPresets {
		t.Run(preset, func(t *testing.T) {
			cfg := snapConfig(t, preset, 2, 2, 4, 32)
			pool := snapPool(t, cfg, 0)
			// Each case: the sequence to snapshot. After the round trip, the
			// original and the restored sequence take the same tokens and
			// must still agree bit for bit.
			cases := []struct {
				name string
				make func() *Sequence
				// spareWindow: the original holds window capacity that a
				// restore does not keep (a truncated deferred prefill).
				spareWindow bool
			}{
				{"empty", pool.NewSequence, false},
				{"prefill only", func() *Sequence {
					s := pool.NewSequence()
					for layer := range cfg.Layers {
						snapAppend(t, cfg, layer, 0, 7, 3, false, s)
					}
					return s
				}, false},
				{"wrapped window", func() *Sequence {
					s := pool.NewSequence()
					snapFill(t, cfg, 30, s)
					return s
				}, false},
				{"truncated into a block", func() *Sequence {
					s := pool.NewSequence()
					snapFill(t, cfg, 30, s)
					require.NoError(t, s.Truncate(13)) // 2 sinks, 11 compressed: 3 of 4 in the last block
					return s
				}, false},
				{"truncated to nothing", func() *Sequence {
					s := pool.NewSequence()
					snapFill(t, cfg, 20, s)
					require.NoError(t, s.Truncate(0)) // codecs (outlier channels) kept
					return s
				}, false},
				{"reset", func() *Sequence {
					s := pool.NewSequence()
					snapFill(t, cfg, 20, s)
					s.Reset()
					return s
				}, false},
				{"long prefill", func() *Sequence {
					s := pool.NewSequence()
					for layer := range cfg.Layers {
						snapAppend(t, cfg, layer, 0, 21, 3, false, s)
					}
					return s
				}, false},
				{"long prefill truncated", func() *Sequence {
					s := pool.NewSequence()
					for layer := range cfg.Layers {
						snapAppend(t, cfg, layer, 0, 21, 3, false, s)
					}
					require.NoError(t, s.Truncate(12))
					return s
				}, cfg.DeferPrefill},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					s := c.make()
					r := snapRoundTrip(t, cfg, pool, s)
					if c.spareWindow {
						ss, rs := s.Stats(), r.Stats()
						assert.Less(t, rs.StoredBytes, ss.StoredBytes)
						rs.StoredBytes, rs.Ratio = ss.StoredBytes, ss.Ratio
						assert.Equal(t, ss, rs)
					} else {
						assert.Equal(t, s.Stats(), r.Stats())
					}
					for layer := range cfg.Layers {
						assert.Equal(t, s.LayerLen(layer), r.LayerLen(layer))
						base := s.LayerLen(layer)
						snapAppend(t, cfg, layer, base, base+11, 99, true, s, r)
						snapAppend(t, cfg, layer, base+11, base+16, 99, false, s, r)
					}
					assert.Equal(t, snapOutputs(t, cfg, s), snapOutputs(t, cfg, r), "the restored sequence appends like the original")
					assert.Equal(t, s.Stats(), r.Stats())
					assert.Equal(t, snapWrite(t, s), snapWrite(t, r))
					require.NoError(t, s.Close())
					require.NoError(t, r.Close())
					assert.Zero(t, pool.Used())
				})
			}
		})
	}
}

func TestSnapshotOfForkIsIndependent(t *testing.T) {
	cfg := snapConfig(t, "tq3.5", 2, 2, 4, 32)
	pool := snapPool(t, cfg, 0)
	s := pool.NewSequence()
	snapFill(t, cfg, 29, s)
	f, err := s.Fork()
	require.NoError(t, err)
	for layer := range cfg.Layers { // the fork copies its shared tail block
		n := f.LayerLen(layer)
		snapAppend(t, cfg, layer, n, n+3, 5, true, f)
	}
	require.NotZero(t, f.Stats().SharedBytes)

	r := snapRoundTrip(t, cfg, pool, f)
	fs, rs := f.Stats(), r.Stats()
	assert.Zero(t, rs.SharedBytes, "restored blocks are the sequence's own")
	fs.SharedBytes = 0
	assert.Equal(t, fs, rs)

	origOut, forkOut := snapOutputs(t, cfg, s), snapOutputs(t, cfg, f)
	for layer := range cfg.Layers {
		n := r.LayerLen(layer)
		snapAppend(t, cfg, layer, n, n+6, 6, true, r)
	}
	assert.Equal(t, origOut, snapOutputs(t, cfg, s), "appending to the restored sequence leaves the original alone")
	assert.Equal(t, forkOut, snapOutputs(t, cfg, f), "appending to the restored sequence leaves the fork alone")
	restOut := snapOutputs(t, cfg, r)
	for layer := range cfg.Layers {
		n := f.LayerLen(layer)
		snapAppend(t, cfg, layer, n, n+6, 7, true, f)
	}
	require.NoError(t, s.Close())
	require.NoError(t, f.Close())
	assert.Equal(t, restOut, snapOutputs(t, cfg, r), "the restored sequence outlives its source and the fork's appends")
	require.NoError(t, r.Close())
	assert.Zero(t, pool.Used())
}

// snapSmall is a small snapshot of a one-layer, two-head cache with outlier
// channels: sinks, window and two compressed blocks, one of them partial.
func snapSmall(t testing.TB) (Config, []byte) {
	cfg := snapConfig(t, "tq3.5", 1, 2, 2, 16)
	cfg.Window, cfg.Sinks, cfg.BlockTokens, cfg.Center = 2, 1, 2, false // the centres section has its own test
	s := snapPool(t, cfg, 0).NewSequence()
	snapAppend(t, cfg, 0, 0, 4, 1, false, s)
	snapAppend(t, cfg, 0, 4, 6, 1, true, s)
	return cfg, snapWrite(t, s)
}

// snapBusyPool returns a pool of cfg with a sequence already holding memory,
// so that a failed restore that leaked or released too much would show.
func snapBusyPool(t testing.TB, cfg Config, budget int64) *Pool {
	p := snapPool(t, cfg, budget)
	snapAppend(t, cfg, 0, 0, 3, 8, false, p.NewSequence())
	require.NotZero(t, p.Used())
	return p
}

func TestSnapshotRejectsCorruption(t *testing.T) {
	cfg, data := snapSmall(t)
	pool := snapBusyPool(t, cfg, 0)
	used := pool.Used()
	_, err := pool.ReadSequence(bytes.NewReader(data))
	require.NoError(t, err)
	used2 := pool.Used()
	require.Greater(t, used2, used)
	for i := range data {
		for _, flip := range []byte{0x01, 0x80} {
			bad := bytes.Clone(data)
			bad[i] ^= flip
			_, err := pool.ReadSequence(bytes.NewReader(bad))
			require.ErrorIs(t, err, ErrSnapshot, "byte %d of %d ^ %#x", i, len(data), flip)
			require.Equal(t, used2, pool.Used(), "byte %d", i)
		}
	}
}

func TestSnapshotRejectsTruncation(t *testing.T) {
	cfg, data := snapSmall(t)
	pool := snapBusyPool(t, cfg, 0)
	used := pool.Used()
	for n := range data {
		_, err := pool.ReadSequence(bytes.NewReader(data[:n]))
		require.ErrorIs(t, err, ErrSnapshot, "truncated to %d of %d", n, len(data))
		if n == 0 {
			require.ErrorIs(t, err, io.EOF)
		} else {
			require.ErrorIs(t, err, io.ErrUnexpectedEOF, "truncated to %d", n)
		}
		require.Equal(t, used, pool.Used())
	}
	// A snapshot is read to its last byte and no further.
	r := bytes.NewReader(append(bytes.Clone(data), "next"...))
	s, err := pool.ReadSequence(r)
	require.NoError(t, err)
	assert.Equal(t, 4, r.Len())
	assert.Equal(t, data, snapWrite(t, s))
}

func TestSnapshotConfigMismatch(t *testing.T) {
	cfg, data := snapSmall(t)
	variants := map[string]func(c *Config){
		"layers":        func(c *Config) { c.Layers = 2 },
		"kv heads":      func(c *Config) { c.KVHeads, c.QHeads = 1, 2 },
		"query heads":   func(c *Config) { c.QHeads = 4 },
		"head dim":      func(c *Config) { c.HeadDim = 32; c.Keys.Outliers, c.Values.Outliers = 16, 16 },
		"window":        func(c *Config) { c.Window = 3 },
		"sinks":         func(c *Config) { c.Sinks = 0 },
		"block tokens":  func(c *Config) { c.BlockTokens = 4 },
		"scale":         func(c *Config) { c.Scale = 0.5 },
		"seed":          func(c *Config) { c.Seed = 1 },
		"key bits":      func(c *Config) { c.Keys.Bits = 2 },
		"value norm":    func(c *Config) { c.Values.Norm = turboquant.FP32 },
		"outliers":      func(c *Config) { c.Keys.Outliers = 6 },
		"outlier bits":  func(c *Config) { c.Values.OutlierBits = 5 },
		"method":        func(c *Config) { c.Keys.Method = turboquant.Prod },
		"correction":    func(c *Config) { c.Keys.Correction = turboquant.Renormalize },
		"defer prefill": func(c *Config) { c.DeferPrefill = true },
		"override": func(c *Config) {
			c.Overrides = map[int]LayerStorage{0: {Keys: c.Keys, Values: Storage{Kind: Float16}}}
		},
	}
	for name, change := range variants {
		c := cfg
		change(&c)
		pool := snapPool(t, c, 0)
		_, err := pool.ReadSequence(bytes.NewReader(data))
		require.ErrorIs(t, err, ErrSnapshot, name)
		assert.Zero(t, pool.Used(), name)
	}
	// Fields a passthrough codec ignores are not part of the layout.
	fp := snapConfig(t, "fp16", 1, 1, 1, 8)
	s := snapPool(t, fp, 0).NewSequence()
	snapAppend(t, fp, 0, 0, 5, 2, false, s)
	fp.Keys.Bits, fp.Values.Norm = 3, turboquant.FP32
	_, err := snapPool(t, fp, 0).ReadSequence(bytes.NewReader(snapWrite(t, s)))
	require.NoError(t, err)
}

func TestSnapshotBudget(t *testing.T) {
	cfg := snapConfig(t, "tq3", 2, 2, 4, 32)
	s := snapPool(t, cfg, 0).NewSequence()
	snapFill(t, cfg, 30, s)
	data := snapWrite(t, s)
	need := s.Stats().StoredBytes
	held := snapBusyPool(t, cfg, 0).Used()
	for _, short := range []int64{need, need / 2, 1} {
		pool := snapBusyPool(t, cfg, held+need-short)
		_, err := pool.ReadSequence(bytes.NewReader(data))
		require.ErrorIs(t, err, ErrCacheFull, "%d bytes short", short)
		require.NotErrorIs(t, err, ErrSnapshot)
		require.Equal(t, held, pool.Used(), "nothing stays reserved")
	}
	pool := snapBusyPool(t, cfg, held+need)
	r, err := pool.ReadSequence(bytes.NewReader(data))
	require.NoError(t, err)
	require.Equal(t, held+need, pool.Used())
	require.NoError(t, r.Close())
	require.Equal(t, held, pool.Used())
}

// snapSection is one section of a snapshot: its length field's offset and
// its payload length.
type snapSection struct{ off, n int }

func snapSections(data []byte) []snapSection {
	var secs []snapSection
	for off := 8; off+12 <= len(data); {
		n := binary.LittleEndian.Uint64(data[off:])
		if n > uint64(len(data)-off-12) {
			break
		}
		secs = append(secs, snapSection{off, int(n)})
		off += 12 + int(n)
	}
	return secs
}

// snapFixCRCs recomputes the checksum of every section in place, so that a
// test (or the fuzzer) can change what the sections say.
func snapFixCRCs(data []byte) {
	table := crc32.MakeTable(crc32.Castagnoli)
	for _, s := range snapSections(data) {
		end := s.off + 8 + s.n
		binary.LittleEndian.PutUint32(data[end:], crc32.Checksum(data[s.off:end], table))
	}
}

func TestSnapshotRejectsHostileContent(t *testing.T) {
	cfg, data := snapSmall(t)
	secs := snapSections(data)
	require.Len(t, secs, 7, "config, layer, codecs, sinks, window, 2 blocks")
	layer, codecs, window := secs[1].off+8, secs[2].off+8, secs[4].off+8
	pool := snapBusyPool(t, cfg, 0)
	used := pool.Used()
	edits := map[string]func(b []byte){
		"magic":             func(b []byte) { b[0] = 'X' },
		"version":           func(b []byte) { b[4] = 3 },
		"reserved":          func(b []byte) { b[6] = 1 },
		"unknown flag":      func(b []byte) { b[layer] |= 4 },
		"empty layer":       func(b []byte) { b[layer] = 0 },
		"decoded but empty": func(b []byte) { b[layer] = 2 },
		"too many sinks":    func(b []byte) { b[layer+4] = 2 },
		"sinks not full":    func(b []byte) { b[layer+4] = 0 },
		"window too long":   func(b []byte) { b[layer+8] = 3 },
		"absurd window":     func(b []byte) { b[layer+15] = 0x80 },
		"more compressed":   func(b []byte) { b[layer+16]++ },
		"huge compressed":   func(b []byte) { b[layer+20] = 0x80 },
		"absurd compressed": func(b []byte) { b[layer+23] = 0x80 },
		"absurd section":    func(b []byte) { b[secs[5].off+7] = 0x10 },
		"spec length":       func(b []byte) { b[codecs]++ },
		"spec byte":         func(b []byte) { b[codecs+20]++ },
		"non-finite sink":   func(b []byte) { b[secs[3].off+8+3] = 0xfc },
		"non-finite window": func(b []byte) { b[window+1] = 0x7c },
		"nan window":        func(b []byte) { b[window+5] = 0xfe },
		"foreign fingerprint": func(b []byte) { // a spec from a build with other codebooks
			spec := b[codecs+4 : codecs+secs[2].n/4]
			spec[len(spec)-5]++
			binary.LittleEndian.PutUint32(spec[len(spec)-4:], crc32.Checksum(spec[:len(spec)-4], crc32.MakeTable(crc32.Castagnoli)))
		},
		"swapped key specs": func(b []byte) { // head 0's outlier-channel seed is not head 1's
			n := secs[2].n / 4
			h0, h1 := bytes.Clone(b[codecs:codecs+n]), bytes.Clone(b[codecs+2*n:codecs+3*n])
			copy(b[codecs:], h1)
			copy(b[codecs+2*n:], h0)
		},
	}
	for name, edit := range edits {
		bad := bytes.Clone(data)
		edit(bad)
		snapFixCRCs(bad)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := pool.ReadSequence(bytes.NewReader(bad))
		runtime.ReadMemStats(&after)
		require.ErrorIs(t, err, ErrSnapshot, name)
		require.Equal(t, used, pool.Used(), name)
		assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "%s: allocation follows the bytes read", name)
	}
	// A config section with one layer's codecs too many (found by the fuzzer).
	cfgEnd := secs[0].off + 8 + secs[0].n
	bad := append(bytes.Clone(data[:cfgEnd]), data[cfgEnd-20:cfgEnd]...)
	bad = append(bad, data[cfgEnd:]...)
	binary.LittleEndian.PutUint64(bad[secs[0].off:], uint64(secs[0].n+20))
	snapFixCRCs(bad)
	_, err := pool.ReadSequence(bytes.NewReader(bad))
	require.ErrorIs(t, err, ErrSnapshot)
	assert.ErrorContains(t, err, "2 layer codecs for 1 layers")

	// A layer that claims 2^39 compressed tokens, of which the stream holds
	// one block: the restore runs out of input, having allocated one block.
	bad = bytes.Clone(data[:secs[6].off])
	binary.LittleEndian.PutUint64(bad[layer+16:], 1<<39)
	snapFixCRCs(bad)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = pool.ReadSequence(bytes.NewReader(bad))
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, ErrSnapshot)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Equal(t, used, pool.Used())
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20))
}

func TestSnapshotLargeSectionsAndShortReads(t *testing.T) {
	// Sections far larger than the reader's and writer's 64 KiB chunks.
	cfg := Config{Layers: 1, KVHeads: 4, QHeads: 8, HeadDim: 128, Keys: Storage{Kind: Float32},
		Values: Storage{Kind: Quantized, Method: turboquant.MSE, Bits: 4}, Window: 80, Sinks: 40, BlockTokens: 64}
	pool := snapPool(t, cfg, 0)
	s := pool.NewSequence()
	snapAppend(t, cfg, 0, 0, 150, 1, false, s)
	snapAppend(t, cfg, 0, 150, 190, 1, true, s)
	data := snapWrite(t, s)
	require.Greater(t, len(data), 1<<18)
	for _, r := range []io.Reader{bytes.NewReader(data), iotest.OneByteReader(bytes.NewReader(data)),
		iotest.HalfReader(bytes.NewReader(data)), iotest.DataErrReader(bytes.NewReader(data))} {
		got, err := pool.ReadSequence(r)
		require.NoError(t, err)
		assert.Equal(t, snapOutputs(t, cfg, s), snapOutputs(t, cfg, got))
		require.NoError(t, got.Close())
	}
	// An I/O error is the reader's, not a bad snapshot.
	used := pool.Used()
	for _, n := range []int64{0, 100, int64(len(data)) / 2, int64(len(data)) - 1} {
		r := io.MultiReader(io.LimitReader(bytes.NewReader(data), n), iotest.ErrReader(errSnapWrite))
		_, err := pool.ReadSequence(r)
		require.ErrorIs(t, err, errSnapWrite)
		require.NotErrorIs(t, err, ErrSnapshot)
		require.Equal(t, used, pool.Used())
	}
	for _, limit := range []int{0, 100, 1 << 16, 1<<16 + 100, len(data) / 2, len(data) - 1} {
		w := &snapFailWriter{limit: limit}
		n, err := s.WriteTo(w)
		require.ErrorIs(t, err, errSnapWrite, "limit %d", limit)
		require.Equal(t, int64(w.n), n)
	}
}

func TestSnapshotDeferredWindowIsBoundedByItsBytes(t *testing.T) {
	cfg := snapConfig(t, "deferred", 1, 2, 2, 16)
	pool := snapPool(t, cfg, 0)
	s := pool.NewSequence()
	snapAppend(t, cfg, 0, 0, 20, 1, false, s) // a deferred prefill: 2 sinks, 18 window tokens
	data := snapWrite(t, s)
	r, err := pool.ReadSequence(bytes.NewReader(data))
	require.NoError(t, err)
	assert.Equal(t, s.Stats(), r.Stats())
	require.NoError(t, r.Close())

	used := pool.Used()
	layer := snapSections(data)[1].off + 8
	for _, winLen := range []uint64{1 << 30, 1 << 45, 1 << 62} {
		bad := bytes.Clone(data)
		binary.LittleEndian.PutUint64(bad[layer+8:], winLen)
		snapFixCRCs(bad)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := pool.ReadSequence(bytes.NewReader(bad))
		runtime.ReadMemStats(&after)
		require.ErrorIs(t, err, ErrSnapshot, "%d window tokens", winLen)
		require.Equal(t, used, pool.Used())
		assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "%d window tokens", winLen)
	}
	// Past the first single-token append, the window is Window tokens again.
	bad := bytes.Clone(data)
	bad[layer] |= 2
	snapFixCRCs(bad)
	_, err = pool.ReadSequence(bytes.NewReader(bad))
	require.ErrorIs(t, err, ErrSnapshot)
}

// snapFailWriter accepts limit bytes, then fails.
type snapFailWriter struct{ n, limit int }

var errSnapWrite = errors.New("disk full")

func (w *snapFailWriter) Write(p []byte) (int, error) {
	k := min(len(p), w.limit-w.n)
	w.n += k
	if k < len(p) {
		return k, errSnapWrite
	}
	return k, nil
}

func TestSnapshotWriteErrors(t *testing.T) {
	cfg := snapConfig(t, "k8v4", 2, 2, 4, 32)
	pool := snapPool(t, cfg, 0)
	s := pool.NewSequence()
	snapFill(t, cfg, 30, s)
	size := len(snapWrite(t, s))
	for _, limit := range []int{0, 7, 100, size / 2, size - 1} {
		w := &snapFailWriter{limit: limit}
		n, err := s.WriteTo(w)
		require.ErrorIs(t, err, errSnapWrite, "limit %d", limit)
		require.Equal(t, int64(w.n), n)
	}
	require.NoError(t, s.Close())
	_, err := s.WriteTo(io.Discard)
	require.ErrorIs(t, err, ErrClosed)
}

func TestSnapshotWhileAttending(t *testing.T) {
	cfg := snapConfig(t, "tq3", 1, 2, 4, 32)
	pool := snapPool(t, cfg, 0)
	s := pool.NewSequence()
	snapAppend(t, cfg, 0, 0, 12, 4, false, s)
	keys, values := kvData(40, cfg.KVHeads, cfg.HeadDim, 4)
	row := cfg.KVHeads * cfg.HeadDim
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // appends and attention, racing the snapshots
		defer wg.Done()
		queries, _ := kvData(1, cfg.QHeads, cfg.HeadDim, 1)
		out := make([]float32, len(queries))
		for i := 12; i < 40; i++ {
			assert.NoError(t, s.Append(0, keys[i*row:(i+1)*row], values[i*row:(i+1)*row]))
			assert.NoError(t, s.Attend(0, queries, out))
		}
	}()
	go func() {
		defer wg.Done()
		for range 20 {
			var buf bytes.Buffer
			_, err := s.WriteTo(&buf)
			if !assert.NoError(t, err) {
				return
			}
			r, err := pool.ReadSequence(&buf)
			if assert.NoError(t, err) {
				assert.NoError(t, r.Close())
			}
		}
	}()
	wg.Wait()
}

// snapFuzzConfigs are the pools the fuzzer restores into: tiny, so that each
// execution is fast.
func snapFuzzConfigs(t testing.TB) []Config {
	small := func(preset string, layers, kvHeads, headDim, window, sinks, block int) Config {
		c := snapConfig(t, preset, layers, kvHeads, kvHeads, headDim)
		c.Window, c.Sinks, c.BlockTokens = window, sinks, block
		return c
	}
	return []Config{
		small("fp16", 1, 1, 8, 2, 1, 2),
		small("tq3", 2, 1, 16, 2, 1, 2),
		small("tq3.5", 1, 2, 16, 2, 1, 3),
		small("k4v3.5", 1, 1, 16, 2, 1, 2),
		small("blockcenter", 1, 2, 16, 2, 1, 2),
		small("mixed", 2, 1, 16, 1, 0, 2),
		small("deferred", 1, 1, 16, 2, 1, 2),
		centred(small("tq3", 1, 2, 16, 2, 1, 2)),
		guarded(small("tq3-guard", 1, 2, 16, 2, 1, 2)),
		// The pools of the committed version 1 snapshots.
		snapConfig(t, "tq3", 2, 2, 4, 16),
		snapConfig(t, "mixed", 2, 2, 4, 16),
	}
}

// guarded lowers a guard config's budget so that heads upgrade on the
// fuzzer's small random data, and keeps 3 queries per head.
func guarded(c Config) Config {
	c.Guard.Budget, c.Guard.Queries = 1e-3, 3
	return c
}

func centred(c Config) Config {
	c.Center = true
	return c
}

func FuzzReadSequence(f *testing.F) {
	cfgs := snapFuzzConfigs(f)
	pools := make([]*Pool, len(cfgs))
	for i, cfg := range cfgs {
		pools[i] = snapPool(f, cfg, 0)
		for _, n := range [][2]int{{0, 0}, {1, 0}, {5, 0}, {4, 3}, {3, 9}} { // a prefill, then single tokens
			s := pools[i].NewSequence()
			for layer := range cfg.Layers {
				if n[0] > 0 {
					snapAppend(f, cfg, layer, 0, n[0], 1, false, s)
					if cfg.Guard.Budget != 0 { // queries for the guard to measure against
						q, _ := kvData(n[0], cfg.QHeads, cfg.HeadDim, 4)
						require.NoError(f, s.Attend(layer, q, make([]float32, len(q))))
					}
					snapAppend(f, cfg, layer, n[0], n[0]+n[1]+layer, 1, true, s)
				}
			}
			data := snapWrite(f, s)
			require.NoError(f, s.Close())
			f.Add(uint8(i), false, data)
			f.Add(uint8(i), true, data)
		}
	}
	for i, preset := range []string{"tq3", "mixed"} {
		data, err := os.ReadFile("testdata/snapshot-v1-" + preset + ".tqkv")
		require.NoError(f, err)
		f.Add(uint8(len(cfgs)-2+i), false, data)
	}
	f.Fuzz(func(t *testing.T, which uint8, fixCRCs bool, data []byte) {
		i := int(which) % len(pools)
		pool, cfg := pools[i], cfgs[i]
		if fixCRCs {
			data = bytes.Clone(data)
			snapFixCRCs(data)
		}
		used := pool.Used()
		r := bytes.NewReader(data)
		s, err := pool.ReadSequence(r)
		if err != nil {
			require.ErrorIs(t, err, ErrSnapshot)
			require.Equal(t, used, pool.Used())
			return
		}
		read := data[:len(data)-r.Len()]
		if binary.LittleEndian.Uint16(read[4:]) == 1 {
			// A version 1 snapshot is written back as version 2, which
			// restores to the same bytes again.
			again := snapWrite(t, s)
			s2, err := pool.ReadSequence(bytes.NewReader(again))
			require.NoError(t, err)
			require.Equal(t, again, snapWrite(t, s2))
			require.NoError(t, s2.Close())
		} else {
			require.Equal(t, read, snapWrite(t, s), "a restored sequence snapshots to the bytes it came from")
		}
		// The restored sequence is usable: it attends and takes tokens
		// (which may fail on hostile codes, but must not panic).
		for layer := range cfg.Layers {
			if s.LayerLen(layer) > 0 {
				queries, _ := kvData(1, cfg.QHeads, cfg.HeadDim, 2)
				require.NoError(t, s.Attend(layer, queries, make([]float32, len(queries))))
			}
			keys, values := kvData(1, cfg.KVHeads, cfg.HeadDim, 3)
			_ = s.Append(layer, keys, values)
		}
		require.NoError(t, s.Close())
		require.Equal(t, used, pool.Used())
	})
}
