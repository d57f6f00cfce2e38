package kvstore

import (
	"context"
	"testing"

	"github.com/turboquant-go/tq/kvstore/redistest"
	"github.com/turboquant-go/tq/llm"
	"github.com/turboquant-go/tq/llm/gguf"
	"github.com/turboquant-go/tq/llm/synth"
)

// benchModel is a synthetic llama with a 4K+ context and head dim 128 (the
// committed KJV model stops at 1024 tokens and has head dim 64).
func benchModel(b *testing.B) *llm.Model {
	b.Helper()
	data, err := synth.Build(synth.Options{Arch: "llama", Layers: 4, Dim: 512, FFNDim: 1408, Heads: 4, KVHeads: 2,
		HeadDim: 128, Context: 8192, Type: gguf.Q8_0, Tokenizer: "gpt2", Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	f, err := gguf.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	m, err := llm.Load(f)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

const benchShared = 4096 // shared prompt tokens; the request adds benchTail

const benchTail = 16

func benchPrompt(m *llm.Model) []int32 {
	p := make([]int32, benchShared+benchTail)
	for i := range p {
		p[i] = int32((i*7919 + 13) % m.Config.Vocab)
	}
	return p
}

// BenchmarkSharedPrefixTTFT is the time to the first token's logits of a
// 4096+16-token prompt: cold (prefill everything, in 64-token chunks as
// tqserve does) against a replica that restores the 4096-token prefix a
// peer published (Lookup through the backend, then a 16-token prefill).
func BenchmarkSharedPrefixTTFT(b *testing.B) {
	m := benchModel(b)
	prompt := benchPrompt(m)
	pool := newPool(b, m, "tq3")
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			seq := pool.NewSequence()
			prefill(b, m, seq, prompt, 0)
			_ = seq.Close()
		}
	})
	seq := pool.NewSequence()
	prefill(b, m, seq, prompt[:benchShared], 0)
	for _, name := range []string{"mem", "redis"} {
		b.Run("restored/"+name, func(b *testing.B) {
			var backend Backend = NewMemory(1 << 30)
			if name == "redis" {
				srv := redistest.Start(b)
				r, err := NewRedis(RedisOptions{URL: srv.URL(), Timeout: 0})
				if err != nil {
					b.Fatal(err)
				}
				backend = r
			}
			defer backend.Close()
			st := newStore(b, backend, pool)
			if err := st.Put(context.Background(), prompt[:benchShared], seq); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				got, n, err := st.Lookup(context.Background(), prompt, 0, len(prompt)-1)
				if got == nil || n != benchShared {
					b.Fatalf("restored %d tokens: %v", n, err)
				}
				prefill(b, m, got, prompt, n)
				_ = got.Close()
			}
			b.ReportMetric(float64(st.Stats().BytesFetched)/float64(st.Stats().Hits), "B/fetch")
		})
	}
	_ = seq.Close()
}

// BenchmarkStoredBytesPerToken reports the bytes of the store's value for
// a 4096-token prefix per token, by preset (the encode is what is timed).
func BenchmarkStoredBytesPerToken(b *testing.B) {
	m := benchModel(b)
	prompt := benchPrompt(m)[:benchShared]
	for _, preset := range []string{"fp16", "tq4", "tq3"} {
		b.Run(preset, func(b *testing.B) {
			pool := newPool(b, m, preset)
			seq := pool.NewSequence()
			defer seq.Close()
			prefill(b, m, seq, prompt, 0)
			st := newStore(b, NewMemory(1<<30), pool)
			var n int
			for b.Loop() {
				_, v, err := st.Encode(prompt, seq)
				if err != nil {
					b.Fatal(err)
				}
				n = len(v)
			}
			b.ReportMetric(float64(n)/float64(len(prompt)), "B/token")
			b.SetBytes(int64(n))
		})
	}
}
