package cuda

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/turboquant-go/tq/internal/gpucode"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
)

// modelExecutor runs the kernels' Go models over what the device holds:
// it reads every buffer the partial kernel would read back from the device
// (through the stub driver, host memory) and runs the models on those
// bytes. With it, a pool on the stub driver tests everything the GPU path
// does except the kernels themselves.
type modelExecutor struct{}

func (modelExecutor) attend(s *Sequence, l *devLayer, qb *queryBatch) ([]float32, error) {
	dev, cfg := s.pool.dev, s.pool.cfg
	read := func(b *Buffer) ([]byte, error) {
		out := make([]byte, b.Size())
		return out, dev.Read(out, b, 0)
	}
	klay, vlay := make([]int32, gpucode.LayoutInts), make([]int32, gpucode.LayoutInts)
	if err := dev.Read(int32Bytes(klay), l.klay, 0); err != nil {
		return nil, err
	}
	if err := dev.Read(int32Bytes(vlay), l.vlay, 0); err != nil {
		return nil, err
	}
	cent := make([]float32, l.cent.Size()/4)
	if err := dev.ReadFloat32s(cent, l.cent, 0); err != nil {
		return nil, err
	}
	// The block table must point at the block buffers, in order.
	table := make([]uint64, l.table.Size()/8)
	tb, err := read(l.table)
	if err != nil {
		return nil, err
	}
	for i := range table {
		for k := range 8 {
			table[i] |= uint64(tb[8*i+k]) << (8 * k)
		}
	}
	var blocks [][]byte
	for i, db := range l.blocks {
		if table[i] != db.buf.ptr {
			return nil, errors.New("block table out of date")
		}
		b, err := read(db.buf)
		if err != nil {
			return nil, err
		}
		blocks = append(blocks, b)
	}
	sink, err := read(l.sink)
	if err != nil {
		return nil, err
	}
	win, err := read(l.win)
	if err != nil {
		return nil, err
	}
	v := l.view
	mem := &layerMemory{klay: klay, vlay: vlay, cent: cent, blocks: blocks, B: cfg.BlockTokens, H: cfg.KVHeads,
		ksize: int(klay[1]), vsize: int(vlay[1]), ksd: l.lc.ksd, vsd: l.lc.vsd, sink: sink, win: win, nsink: v.nsink, winStart: v.winStart,
		winCap: max(l.winCap, 1), winLen: v.winLen, compressed: v.compressed}
	return runModel(mem, qb), nil
}

// TestPoolOnStubMatchesCPU drives a device pool on the stub driver and a
// CPU pool through the same appends, decode steps, truncation, fork and
// snapshots, and compares attention (device memory + kernel models) and
// snapshot bytes.
func TestPoolOnStubMatchesCPU(t *testing.T) {
	dev, _ := openStub(t)
	// BlockCenter: drift codes on both sides, on the value side alone
	// (fp16 keys in layer 1), and with unbiased keys.
	bc := kvcache.BlockCenterSuffix
	for _, preset := range []string{"fp16", "k8v4", "tq3", "tq2.5", "tq3" + bc, "k4v3.5" + bc, "k4v3.25+uk" + bc, "fp16-keys" + bc} {
		t.Run(preset, func(t *testing.T) {
			name := strings.Replace(preset, "fp16-keys", "tq3", 1)
			cfg, err := kvcache.Preset(name, 2, 2, 4, 64)
			if err != nil {
				t.Fatal(err)
			}
			if name != preset {
				cfg.Overrides = map[int]kvcache.LayerStorage{1: {Keys: kvcache.Storage{Kind: kvcache.Float16}, Values: cfg.Values}}
			}
			if cfg.Window > 0 {
				cfg.Window, cfg.Sinks = 16, 2
			}
			cfg.BlockTokens, cfg.Center = 8, cfg.Center && preset != "k8v4" && preset != "tq2.5"
			gpu, err := NewPool(dev, cfg, 0)
			if err != nil {
				t.Fatal(err)
			}
			gpu.exec = modelExecutor{}
			cpu, err := kvcache.NewPool(cfg, 0)
			if err != nil {
				t.Fatal(err)
			}
			gs, cs := gpu.NewSequence(), cpu.NewSequence()
			defer gs.Close()
			r := rand.New(rand.NewPCG(7, 8))
			row := cfg.KVHeads * cfg.HeadDim
			appendBoth := func(n int) {
				t.Helper()
				for layer := range cfg.Layers {
					k, v := randVecs(r, n*row, 1), randVecs(r, n*row, 1)
					if err := gs.Append(layer, k, v); err != nil {
						t.Fatal(err)
					}
					if err := cs.Append(layer, k, v); err != nil {
						t.Fatal(err)
					}
				}
			}
			compare := func(what string, g kvcache.Cache, c kvcache.Cache, T int) {
				t.Helper()
				for _, chunk := range []int{0, 32} {
					gpu.Chunk = chunk
					for layer := range cfg.Layers {
						q := randVecs(r, T*cfg.QHeads*cfg.HeadDim, 2)
						got, want := make([]float32, len(q)), make([]float32, len(q))
						if err := g.Attend(layer, q, got); err != nil {
							t.Fatalf("%s: device attend: %v", what, err)
						}
						if err := c.Attend(layer, q, want); err != nil {
							t.Fatal(err)
						}
						if e := relErr(got, want, cfg.HeadDim); e > 2e-5 {
							t.Fatalf("%s layer %d chunk %d: relative error %.3g", what, layer, chunk, e)
						}
					}
				}
				var gb, cb bytes.Buffer
				if _, err := g.WriteTo(&gb); err != nil {
					t.Fatal(err)
				}
				if _, err := c.WriteTo(&cb); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(gb.Bytes(), cb.Bytes()) {
					t.Fatalf("%s: device and CPU snapshots differ", what)
				}
			}
			appendBoth(1)
			compare("one token", gs, cs, 1)
			appendBoth(70)
			compare("prefill", gs, cs, 4)
			for i := range 20 {
				appendBoth(1)
				if i%7 == 0 {
					compare("decode", gs, cs, 1)
				}
			}
			compare("after decode", gs, cs, 1)
			for _, n := range []int{85, 60, 30} { // within the window, within a block, across blocks
				if err := gs.Truncate(n); err != nil {
					t.Fatal(err)
				}
				if err := cs.Truncate(n); err != nil {
					t.Fatal(err)
				}
				compare("truncated", gs, cs, 1)
				appendBoth(3)
				compare("re-appended", gs, cs, 2)
			}
			gf, err := gs.Fork()
			if err != nil {
				t.Fatal(err)
			}
			cf, err := cs.Fork()
			if err != nil {
				t.Fatal(err)
			}
			for layer := range cfg.Layers { // the fork diverges; the original must not see it
				k, v := randVecs(r, row, 1), randVecs(r, row, 1)
				if err := gf.Append(layer, k, v); err != nil {
					t.Fatal(err)
				}
				if err := cf.Append(layer, k, v); err != nil {
					t.Fatal(err)
				}
			}
			compare("fork", gf, cf, 1)
			compare("forked-from", gs, cs, 1)
			_ = gf.Close()

			// Snapshots cross between the pools both ways.
			var snap bytes.Buffer
			if _, err := cs.WriteTo(&snap); err != nil {
				t.Fatal(err)
			}
			fromCPU, err := gpu.ReadSequence(bytes.NewReader(snap.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			compare("restored on device", fromCPU, cs, 1)
			snap.Reset()
			if _, err := fromCPU.WriteTo(&snap); err != nil {
				t.Fatal(err)
			}
			_ = fromCPU.Close()
			back, err := cpu.ReadSequence(bytes.NewReader(snap.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			compare("restored on CPU", gs, back, 1)

			gs.Reset()
			cs.Reset()
			appendBoth(5)
			compare("after reset", gs, cs, 2)
		})
	}
}

func TestPoolErrors(t *testing.T) {
	dev, _ := openStub(t)
	cfg, _ := kvcache.Preset("tq3", 1, 2, 4, 64)
	bad := cfg
	bad.Values = kvcache.Storage{Kind: kvcache.Quantized, Method: turboquant.Prod, Bits: 3}
	if _, err := NewPool(dev, bad, 0); !errors.Is(err, ErrUnsupported) {
		t.Errorf("prod values: %v, want ErrUnsupported", err)
	}
	bad = cfg
	bad.Keys = kvcache.Storage{Kind: kvcache.Quantized, Method: turboquant.Polar}
	if _, err := NewPool(dev, bad, 0); !errors.Is(err, ErrUnsupported) {
		t.Errorf("polar keys: %v, want ErrUnsupported", err)
	}
	guard, err := kvcache.Preset("tq3-guard", 1, 2, 4, 64)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPool(dev, guard, 0); !errors.Is(err, ErrUnsupported) {
		t.Errorf("tq3-guard: %v, want ErrUnsupported", err)
	}
	bad = cfg
	bad.QHeads = 64
	if _, err := NewPool(dev, bad, 0); !errors.Is(err, ErrUnsupported) {
		t.Errorf("32 query heads per KV head: %v, want ErrUnsupported", err)
	}
	if _, err := NewPool(dev, kvcache.Config{}, 0); !errors.Is(err, turboquant.ErrConfig) {
		t.Errorf("empty config: %v, want ErrConfig", err)
	}
	p, err := NewPool(dev, cfg, 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	p.exec = modelExecutor{}
	s := p.NewSequence()
	row := 2 * 64
	if err := s.Append(0, make([]float32, 200*row), make([]float32, 200*row)); !errors.Is(err, kvcache.ErrCacheFull) {
		t.Errorf("over budget: %v, want ErrCacheFull", err)
	}
	if err := s.Attend(0, make([]float32, 4*64), make([]float32, 4*64)); !errors.Is(err, turboquant.ErrLength) {
		t.Errorf("attend on an empty layer: %v, want ErrLength", err)
	}
	if err := s.Attend(3, make([]float32, 4*64), make([]float32, 4*64)); !errors.Is(err, turboquant.ErrLength) {
		t.Errorf("attend on layer 3: %v, want ErrLength", err)
	}
	_ = s.Close()
	if err := s.Append(0, make([]float32, row), make([]float32, row)); !errors.Is(err, kvcache.ErrClosed) {
		t.Errorf("append after close: %v, want ErrClosed", err)
	}
	if _, err := p.ReadSequence(bytes.NewReader([]byte("TQKV junk"))); !errors.Is(err, kvcache.ErrSnapshot) {
		t.Errorf("junk snapshot: %v, want ErrSnapshot", err)
	}
}

// TestEncoderLaunchOnStub checks the encode kernel's launch: geometry and
// the leading arguments as the stub driver recorded them.
func TestEncoderLaunchOnStub(t *testing.T) {
	dev, hooks := openStub(t)
	q, err := turboquant.New(turboquant.Config{Dim: 128, Bits: 3, Method: turboquant.MSE, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEncoder(dev, q)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Encode(make([]byte, 5*q.CodeSize()), make([]float32, 5*128)); err != nil {
		t.Fatal(err)
	}
	var l [16]uint64
	hooks.lastLaunch(&l)
	plan := e.plan
	want := [16]uint64{0, 5, 1, 1, 128, 1, 1, 128 * 13, l[8], 5, 128, 3, 0, uint64(plan.Rounds), e.signs.ptr, uint64(math.Float32bits(plan.Final))}
	if l != want {
		t.Fatalf("encode launch %v, want %v", l, want)
	}
	if err := e.Encode(make([]byte, q.CodeSize()), []float32{float32(math.NaN())}); err == nil {
		t.Error("a wrong-length batch should fail")
	}
	if _, err := NewEncoder(dev, mustQuantizer(t, turboquant.Config{Dim: 96, Bits: 3, Method: turboquant.MSE})); !errors.Is(err, ErrUnsupported) {
		t.Errorf("dim 96: %v, want ErrUnsupported", err)
	}
	if _, err := NewEncoder(dev, mustQuantizer(t, turboquant.Config{Dim: 128, Bits: 3, Method: turboquant.Prod})); !errors.Is(err, ErrUnsupported) {
		t.Errorf("prod: %v, want ErrUnsupported", err)
	}
}

func mustQuantizer(t *testing.T, cfg turboquant.Config) *turboquant.Quantizer {
	q, err := turboquant.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return q
}
