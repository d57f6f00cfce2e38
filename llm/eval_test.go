package llm

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/turboquant-go/tq/internal/rng"
)

func TestScoreWindow(t *testing.T) {
	cfg := testConfig("llama")
	src := randomSource(cfg, 11)
	m, err := assemble(cfg, src)
	if err != nil {
		t.Fatal(err)
	}
	toks := testTokens(48, cfg.Vocab, 9)
	ref := referenceLogits(cfg, src, toks)
	const from = 20
	res, err := m.ScoreWindow([]Cache{
		newTestCache(t, cfg, "fp32", 1<<24),
		newTestCache(t, cfg, "fp32", 1<<24),
		newTestCache(t, cfg, "tq3", 1<<24),
	}, toks, from, 7)
	if err != nil {
		t.Fatal(err)
	}
	scores := [][]Score{res[0].Scores, res[1].Scores, res[2].Scores}
	for i, s := range scores[0] {
		pos := from + i - 1
		lp := make([]float64, cfg.Vocab)
		l32 := make([]float32, cfg.Vocab)
		for j, v := range ref[pos] {
			l32[j] = float32(v)
		}
		logSoftmax(lp, l32)
		if want := -lp[toks[from+i]]; math.Abs(s.NLL-want) > 1e-3 {
			t.Fatalf("token %d: NLL %g, reference %g", from+i, s.NLL, want)
		}
		if s.Top1 != Argmax(l32) {
			t.Fatalf("token %d: top-1 %d, reference %d", from+i, s.Top1, Argmax(l32))
		}
		if same := scores[1][i]; same.KLD > 1e-9 || math.Abs(same.NLL-s.NLL) > 1e-6 {
			t.Fatalf("token %d: an identical cache scores KLD %g, NLL %g vs %g", from+i, same.KLD, same.NLL, s.NLL)
		}
	}
	if len(scores[2]) != len(toks)-from {
		t.Fatalf("%d scores, want %d", len(scores[2]), len(toks)-from)
	}
	var kld float64
	for _, s := range scores[2] {
		kld += s.KLD
	}
	if !(kld > 0) {
		t.Fatalf("a 3-bit cache shows no divergence at all (%g): KLD is not being measured", kld)
	}
}

func TestScoreWindowBadInput(t *testing.T) {
	cfg := testConfig("llama")
	m, err := assemble(cfg, randomSource(cfg, 1))
	if err != nil {
		t.Fatal(err)
	}
	c := newTestCache(t, cfg, "fp32", 1<<24)
	toks := testTokens(10, cfg.Vocab, 1)
	for _, bad := range []struct {
		caches      []Cache
		from, chunk int
	}{{nil, 2, 1}, {[]Cache{c}, 0, 1}, {[]Cache{c}, 10, 1}, {[]Cache{c}, 2, 0}} {
		if _, err := m.ScoreWindow(bad.caches, toks, bad.from, bad.chunk); !errors.Is(err, ErrArgument) {
			t.Errorf("from %d chunk %d: got %v, want ErrArgument", bad.from, bad.chunk, err)
		}
	}
}

func TestSampler(t *testing.T) {
	logits := []float32{0.1, 2, 1.9, -1, 2}
	g, _ := NewSampler(SampleOptions{})
	if got := g.Sample(logits); got != 1 {
		t.Fatalf("greedy picked %d, want 1 (lowest id of the tied maximum)", got)
	}
	if _, err := NewSampler(SampleOptions{Temperature: -1}); !errors.Is(err, ErrArgument) {
		t.Fatal("negative temperature accepted")
	}
	if _, err := NewSampler(SampleOptions{Temperature: 1, TopP: 1.5}); !errors.Is(err, ErrArgument) {
		t.Fatal("top-p > 1 accepted")
	}
	// top-k 2 only ever draws the two best; the same seed replays the run.
	draw := func(opt SampleOptions) []int32 {
		s, err := NewSampler(opt)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]int32, 200)
		for i := range out {
			out[i] = s.Sample(logits)
		}
		return out
	}
	a := draw(SampleOptions{Temperature: 1, TopK: 2, Seed: 5})
	b := draw(SampleOptions{Temperature: 1, TopK: 2, Seed: 5})
	seen := map[int32]int{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("the same seed drew different tokens")
		}
		seen[a[i]]++
	}
	if len(seen) != 2 || seen[1] == 0 || seen[4] == 0 {
		t.Fatalf("top-k 2 drew %v, want only tokens 1 and 4", seen)
	}
	// top-p 0.01 keeps only the most likely token.
	for _, tok := range draw(SampleOptions{Temperature: 1, TopP: 0.01, Seed: 1}) {
		if tok != 1 {
			t.Fatalf("top-p 0.01 drew %d", tok)
		}
	}
	// At temperature 1 the frequencies follow the softmax.
	n := map[int32]int{}
	s, _ := NewSampler(SampleOptions{Temperature: 1, Seed: 3})
	const draws = 20000
	for range draws {
		n[s.Sample(logits)]++
	}
	lp := make([]float64, len(logits))
	logSoftmax(lp, logits)
	for id, p := range lp {
		want := math.Exp(p)
		got := float64(n[int32(id)]) / draws
		if se := math.Sqrt(want * (1 - want) / draws); math.Abs(got-want) > 5*se+1e-3 {
			t.Errorf("token %d drawn %.4f of the time, softmax says %.4f", id, got, want)
		}
	}
}

func TestGenerateEqualsForward(t *testing.T) {
	cfg := testConfig("llama")
	src := randomSource(cfg, 2)
	m, err := assemble(cfg, src)
	if err != nil {
		t.Fatal(err)
	}
	prompt := testTokens(12, cfg.Vocab, 4)
	g, _ := NewSampler(SampleOptions{})
	out, err := m.Generate(newTestCache(t, cfg, "fp32", 1<<24), prompt, 8, g, nil)
	if err != nil {
		t.Fatal(err)
	}
	all := append(append([]int32(nil), prompt...), out...)
	ref := referenceLogits(cfg, src, all)
	for i, tok := range out {
		l := ref[len(prompt)-1+i]
		best := 0
		for j := range l {
			if l[j] > l[best] {
				best = j
			}
		}
		if int32(best) != tok {
			t.Fatalf("generated token %d is %d, the oracle's argmax is %d", i, tok, best)
		}
	}
	stopAt := out[2]
	short, err := m.Generate(newTestCache(t, cfg, "fp32", 1<<24), prompt, 8, g, func(t int32) bool { return t == stopAt })
	if err != nil || len(short) > 3 || short[len(short)-1] != stopAt {
		t.Fatalf("stop token: got %v, %v", short, err)
	}
	if _, err := m.Generate(newTestCache(t, cfg, "fp32", 1<<24), prompt, cfg.Context, g, nil); !errors.Is(err, ErrContext) {
		t.Fatalf("generation past the context: %v", err)
	}
}

// TestSortByLogitIsStableDescending checks the radix sort against a stable
// comparison sort on logits with many ties, ±0 and both signs.
func TestSortByLogitIsStableDescending(t *testing.T) {
	r := rng.New(3)
	s, _ := NewSampler(SampleOptions{Temperature: 1})
	for trial := range 50 {
		n := 1 + r.Intn(3000)
		logits := make([]float32, n)
		for i := range logits {
			switch r.Intn(4) {
			case 0:
				logits[i] = float32(r.Intn(5) - 2) // ties
			case 1:
				logits[i] = float32(math.Copysign(0, float64(r.Intn(2)*2-1)))
			default:
				logits[i] = float32(r.Norm() * 20)
			}
		}
		want := make([]int32, n)
		for i := range want {
			want[i] = int32(i)
		}
		slices.SortStableFunc(want, func(a, b int32) int {
			switch {
			case logits[a] > logits[b]:
				return -1
			case logits[a] < logits[b]:
				return 1
			}
			return 0
		})
		s.sortByLogit(logits)
		if !slices.Equal(s.order, want) {
			t.Fatalf("trial %d (n %d): radix order differs from the stable sort", trial, n)
		}
	}
}
