package llm

import (
	"errors"
	"slices"
	"testing"

	"github.com/turboquant-go/tq/kvcache"
)

// TestDecodeBatchEqualsForward decodes sequences of different lengths in one
// batch and each alone with Forward. The products take query rows four at a
// time with another accumulation order than a single row, so rows in a group
// of four agree to rounding and the last, single row exactly.
func TestDecodeBatchEqualsForward(t *testing.T) {
	for _, preset := range []string{"fp16", "tq3"} {
		t.Run(preset, func(t *testing.T) {
			cfg := testConfig("llama")
			m, err := assemble(cfg, randomSource(cfg, 11))
			if err != nil {
				t.Fatal(err)
			}
			const B = 5
			batch, alone := make([]Cache, B), make([]Cache, B)
			toks := make([][]int32, B)
			logits := make([]float32, cfg.Vocab)
			for i := range B {
				batch[i] = newTestCache(t, cfg, preset, 1<<26)
				alone[i] = newTestCache(t, cfg, preset, 1<<26)
				toks[i] = testTokens(20+37*i, cfg.Vocab, uint64(100+i)) // some past the fp16 window
				n := len(toks[i]) - 6
				for _, c := range []Cache{batch[i], alone[i]} {
					if err := m.Forward(c, toks[i][:n], logits); err != nil {
						t.Fatal(err)
					}
				}
			}
			got := make([]float32, B*cfg.Vocab)
			step := make([]int32, B)
			for s := 6; s > 0; s-- {
				for i := range B {
					step[i] = toks[i][len(toks[i])-s]
				}
				if err := m.DecodeBatch(batch, step, got); err != nil {
					t.Fatal(err)
				}
				for i := range B {
					if err := m.Forward(alone[i], step[i:i+1], logits); err != nil {
						t.Fatal(err)
					}
					ref := make([]float64, cfg.Vocab)
					for j, v := range logits {
						ref[j] = float64(v)
					}
					if d := maxRelDiff(got[i*cfg.Vocab:(i+1)*cfg.Vocab], ref); d > 1e-4 {
						t.Fatalf("step %d sequence %d: batch and alone differ by %.2g of the logit range", 6-s, i, d)
					}
					if i == B-1 && B%4 == 1 && !slices.Equal(got[i*cfg.Vocab:], logits) {
						t.Fatalf("step %d: the batch's last, ungrouped row differs from Forward", 6-s)
					}
				}
			}
			for i := range B {
				if batch[i].Len() != len(toks[i]) {
					t.Fatalf("sequence %d holds %d tokens, want %d", i, batch[i].Len(), len(toks[i]))
				}
			}
		})
	}
}

// TestDecodeBatchCacheFullRollsBack: one sequence's pool is full; the step
// is refused naming it, and no sequence keeps a token of the step.
func TestDecodeBatchCacheFullRollsBack(t *testing.T) {
	cfg := testConfig("llama")
	m, err := assemble(cfg, randomSource(cfg, 3))
	if err != nil {
		t.Fatal(err)
	}
	cc, _ := kvcache.Preset("fp16", cfg.Layers, cfg.KVHeads, cfg.Heads, cfg.HeadDim)
	need, err := cc.PlanBytes(64)
	if err != nil {
		t.Fatal(err)
	}
	roomy := newTestCache(t, cfg, "fp16", 1<<24)
	full := newTestCache(t, cfg, "fp16", need)
	logits := make([]float32, 2*cfg.Vocab)
	toks := testTokens(64, cfg.Vocab, 9)
	for _, c := range []Cache{roomy, full} {
		if err := m.Forward(c, toks, logits[:cfg.Vocab]); err != nil {
			t.Fatal(err)
		}
	}
	err = m.DecodeBatch([]Cache{roomy, full}, []int32{1, 2}, logits)
	var be *BatchError
	if !errors.As(err, &be) || be.Index != 1 || !errors.Is(err, kvcache.ErrCacheFull) {
		t.Fatalf("got %v, want a BatchError for sequence 1 wrapping ErrCacheFull", err)
	}
	for i, c := range []*kvcache.Sequence{roomy, full} {
		for l := range cfg.Layers {
			if n := c.LayerLen(l); n != 64 {
				t.Fatalf("sequence %d layer %d holds %d tokens after a refused step, want 64", i, l, n)
			}
		}
	}
	for _, c := range []struct {
		name   string
		caches []Cache
		toks   []int32
		n      int
		want   error
	}{
		{"empty", nil, nil, 0, ErrArgument},
		{"tokens", []Cache{roomy}, []int32{1, 2}, 1, ErrArgument},
		{"token range", []Cache{roomy}, []int32{int32(cfg.Vocab)}, 1, ErrToken},
	} {
		if err := m.DecodeBatch(c.caches, c.toks, make([]float32, c.n*cfg.Vocab)); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}
