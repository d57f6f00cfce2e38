package serve

import (
	"fmt"
	"testing"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/llm"
)

// BenchmarkDecodeBatch is one llm.DecodeBatch step of B sequences of the
// committed model, each 256 tokens into a tq3 cache: tokens/s is B per
// step, the engine's side of the server's aggregate rate.
func BenchmarkDecodeBatch(b *testing.B) {
	m := model(b)
	c := m.Config
	for _, B := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("B=%d", B), func(b *testing.B) {
			kc, _ := kvcache.Preset("tq3", c.Layers, c.KVHeads, c.Heads, c.HeadDim)
			pool, err := kvcache.NewPool(kc, 0)
			if err != nil {
				b.Fatal(err)
			}
			caches := make([]llm.Cache, B)
			toks := make([]int32, B)
			prompt := m.Tokenizer.Encode(loadText(256), true, false)[:256]
			logits := make([]float32, B*c.Vocab)
			for i := range caches {
				seq := pool.NewSequence()
				defer seq.Close()
				if err := m.Forward(seq, prompt, logits[:c.Vocab]); err != nil {
					b.Fatal(err)
				}
				caches[i], toks[i] = seq, prompt[i%len(prompt)]
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := m.DecodeBatch(caches, toks, logits); err != nil {
					b.Fatal(err)
				}
				for _, cc := range caches {
					_ = cc.Truncate(256)
				}
			}
			b.ReportMetric(float64(B*b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

func loadText(words int) string {
	s := ""
	for len(s) < words*8 {
		s += "And it came to pass in those days, that the word of the LORD came unto me, saying. "
	}
	return s
}
