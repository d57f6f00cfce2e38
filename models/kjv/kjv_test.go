package kjv_test

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/llm"
	"github.com/turboquant-go/tq/models/kjv"
	"github.com/turboquant-go/tq/validate"
)

// TestLogitsMatchTorch runs every probe through the engine with the fp32
// cache and compares the logits at every position with PyTorch's on the same
// weights: max |Δ| ≤ 1e-3 of the logit range. The probes' token ids must
// also equal the training tokenizer's.
func TestLogitsMatchTorch(t *testing.T) {
	m, err := kjv.Model()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := kjv.LoadReference()
	if err != nil {
		t.Fatal(err)
	}
	c := m.Config
	if ref.Vocab != c.Vocab || len(ref.Probes) == 0 {
		t.Fatalf("reference vocab %d, %d probes; model vocab %d", ref.Vocab, len(ref.Probes), c.Vocab)
	}
	cfg, err := kvcache.Preset("fp32", c.Layers, c.KVHeads, c.Heads, c.HeadDim)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := kvcache.NewPool(cfg, 1<<28)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ref.Probes {
		ids := m.Tokenizer.Encode(p.Text, true, false)
		if fmt.Sprint(ids) != fmt.Sprint(p.IDs) {
			t.Errorf("%q: ids %v, the training tokenizer's %v", p.Text, ids, p.IDs)
			continue
		}
		seq := pool.NewSequence()
		logits := make([]float32, len(ids)*c.Vocab)
		if err := m.Forward(seq, ids, logits); err != nil {
			t.Fatal(err)
		}
		seq.Close()
		worst := 0.0
		for pos := range ids {
			got, want := logits[pos*c.Vocab:(pos+1)*c.Vocab], p.Logits[pos*c.Vocab:(pos+1)*c.Vocab]
			lo, hi, d := math.Inf(1), math.Inf(-1), 0.0
			for i := range want {
				lo, hi = min(lo, float64(want[i])), max(hi, float64(want[i]))
				d = max(d, math.Abs(float64(got[i]-want[i])))
			}
			worst = max(worst, d/(hi-lo))
		}
		if worst > 1e-3 {
			t.Errorf("%q: max |Δ| %.2g of the logit range, want ≤ 1e-3", p.Text, worst)
		}
		t.Logf("%q: %d tokens, max |Δ| %.2g of the logit range", p.Text[:min(len(p.Text), 24)], len(ids), worst)
	}
}

// TestHeldoutPerplexityMatchesTorch scores the first windows of the held-out
// text by the reference's protocol and compares each window's mean NLL with
// PyTorch's; the compressed presets must stay ordered by bits.
func TestHeldoutPerplexityMatchesTorch(t *testing.T) {
	m, err := kjv.Model()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := kjv.LoadReference()
	if err != nil {
		t.Fatal(err)
	}
	windows := 2
	if testing.Short() {
		windows = 1
	}
	tokens := m.Tokenizer.Encode(kjv.Heldout, false, false)
	rows, err := validate.MeasureLM(m, tokens, []string{"fp32", "fp16", "tq4", "tq3"}, validate.LMOptions{
		Ctx: ref.Heldout.Ctx, Windows: windows, Chunk: 64, BOS: m.Tokenizer.BOS(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var want float64
	for _, w := range ref.Heldout.WindowMeanNLL[:windows] {
		want += w
	}
	want /= float64(windows)
	if got := math.Log(rows[0].PPL); math.Abs(got-want) > 1e-3 {
		t.Fatalf("fp32-cache mean NLL %.5f over %d windows, PyTorch %.5f", got, windows, want)
	}
	for _, r := range rows {
		t.Logf("%-5s PPL %.4f ΔPPL %+.3f%% KLD %.2e top-1 %.4f", r.Preset, r.PPL, r.DeltaPPLPct, r.KLDMean, r.Top1Agree)
	}
	if !(rows[2].KLDMean < rows[3].KLDMean) || !(rows[1].KLDMean < rows[2].KLDMean) {
		t.Fatalf("mean KLD not ordered by bits: fp16 %g, tq4 %g, tq3 %g", rows[1].KLDMean, rows[2].KLDMean, rows[3].KLDMean)
	}
}

// TestPasskeyHarness runs the passkey task through the committed model with
// an uncompressed cache, a compressed preset and a KIVI-like baseline: every
// cell is decoded and counted, and the model, which retrieves, finds every
// key with each.
func TestPasskeyHarness(t *testing.T) {
	m, err := kjv.Model()
	if err != nil {
		t.Fatal(err)
	}
	filler := m.Tokenizer.Encode(kjv.Heldout, false, false)
	rows, err := validate.MeasurePasskey(m, textCodec{m}, filler, []string{"fp32", "tq3", "kivi4-g32"}, validate.PasskeyOptions{
		Lengths: []int{192}, Depths: 2, Trials: 2, Seed: 1, BOS: m.Tokenizer.BOS(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3", len(rows))
	}
	for _, r := range rows {
		passed := 0
		for _, c := range r.Cells {
			if c.Tokens != 192 || c.Trials != 2 || c.Passed < 0 || c.Passed > c.Trials {
				t.Fatalf("%s: cell %+v", r.Preset, c)
			}
			passed += c.Passed
		}
		if len(r.Cells) != 2 || r.Accuracy != float64(passed)/4 {
			t.Fatalf("%s: %d cells, accuracy %g for %d of 4 passed", r.Preset, len(r.Cells), r.Accuracy, passed)
		}
		t.Logf("%s passkey accuracy %.2f", r.Preset, r.Accuracy)
		if r.Accuracy != 1 {
			t.Errorf("%s: passkey accuracy %.2f, want 1 (the committed model retrieves at 192 tokens)", r.Preset, r.Accuracy)
		}
	}
	if _, err := validate.MeasurePasskey(m, textCodec{m}, filler, []string{"fp32"}, validate.PasskeyOptions{
		Lengths: []int{m.Config.Context + 1}, Depths: 1, Trials: 1, BOS: m.Tokenizer.BOS(),
	}); !errors.Is(err, llm.ErrArgument) {
		t.Fatalf("a prompt longer than the context: err %v, want llm.ErrArgument", err)
	}
}

type textCodec struct{ m *llm.Model }

func (c textCodec) Encode(s string) []int32   { return c.m.Tokenizer.Encode(s, false, false) }
func (c textCodec) Decode(ids []int32) string { return c.m.Tokenizer.Decode(ids) }
