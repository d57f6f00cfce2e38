package kvcache_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/turboquant-go/tq/internal/rng"
	"github.com/turboquant-go/tq/kvcache"
)

// randomRows returns n rows of d standard normal floats.
func randomRows(r *rng.Source, n, d int) []float32 {
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(r.Norm())
	}
	return x
}

// A model's forward pass against a tq3 cache: the prompt is appended and
// attended layer by layer (prefill), then one token at a time (decode).
func ExamplePool() {
	const layers, kvHeads, qHeads, headDim = 2, 2, 4, 64
	cfg, err := kvcache.Preset("tq3", layers, kvHeads, qHeads, headDim)
	if err != nil {
		panic(err)
	}
	pool, err := kvcache.NewPool(cfg, 64<<20) // a 64 MiB budget
	if err != nil {
		panic(err)
	}
	seq := pool.NewSequence()
	defer seq.Close()

	r := rng.New(1)
	step := func(T int) {
		for layer := range layers {
			keys, values := randomRows(r, T, kvHeads*headDim), randomRows(r, T, kvHeads*headDim)
			queries, out := randomRows(r, T, qHeads*headDim), make([]float32, T*qHeads*headDim)
			if err := seq.Append(layer, keys, values); errors.Is(err, kvcache.ErrCacheFull) {
				panic("over budget; the sequence is unchanged")
			} else if err != nil {
				panic(err)
			}
			if err := seq.Attend(layer, queries, out); err != nil {
				panic(err)
			}
		}
	}
	step(2000) // prefill: a 2000-token prompt
	for range 20 {
		step(1) // decode
	}
	st := seq.Stats()
	plan, _ := cfg.PlanBytes(seq.Len())
	fmt.Printf("%d tokens, %d bytes (PlanBytes %d), %.1f× smaller than fp16\n", st.Tokens, st.StoredBytes, plan, st.Ratio)
	// Output: 2020 tokens, 534528 bytes (PlanBytes 534528), 3.9× smaller than fp16
}

// A snapshot restores a sequence bit for bit: the restored sequence attends
// exactly as the original does.
func ExampleSequence_WriteTo() {
	const kvHeads, qHeads, headDim = 2, 2, 64
	cfg, err := kvcache.Preset("tq4", 1, kvHeads, qHeads, headDim)
	if err != nil {
		panic(err)
	}
	pool, err := kvcache.NewPool(cfg, 0) // no budget
	if err != nil {
		panic(err)
	}
	seq := pool.NewSequence()
	defer seq.Close()
	r := rng.New(2)
	if err := seq.Append(0, randomRows(r, 500, kvHeads*headDim), randomRows(r, 500, kvHeads*headDim)); err != nil {
		panic(err)
	}

	var buf bytes.Buffer
	if _, err := seq.WriteTo(&buf); err != nil {
		panic(err)
	}
	n := buf.Len()
	restored, err := pool.ReadSequence(&buf)
	if err != nil {
		panic(err)
	}
	defer restored.Close()

	query := randomRows(r, 1, qHeads*headDim)
	a, b := make([]float32, len(query)), make([]float32, len(query))
	_ = seq.Attend(0, query, a)
	_ = restored.Attend(0, query, b)
	fmt.Printf("%d-byte snapshot of %d tokens; identical attention: %v\n", n, restored.Len(), slices.Equal(a, b))
	// Output: 119128-byte snapshot of 500 tokens; identical attention: true
}
