package gguf_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/turboquant-go/tq/llm/gguf"
)

// Build a tiny model file with Writer, parse it back, read hyperparameters
// and decode a quantized row.
func Example() {
	w := gguf.NewWriter()
	w.SetString("general.architecture", "llama")
	w.SetUint32("llama.block_count", 2)
	w.SetFloat32("llama.rope.freq_base", 10000)
	w.SetStrings("tokenizer.ggml.tokens", []string{"<unk>", "<s>", "</s>"})

	// A [2 rows × 32 cols] weight (torch [out=2, in=32] → dims [32, 2]) in Q8_0.
	src := make([]float32, 64)
	for i := range src {
		src[i] = float32(i%32) / 8
	}
	q := make([]byte, 2*gguf.Q8_0.BlockBytes())
	if err := gguf.Quantize(gguf.Q8_0, q, src); err != nil {
		log.Fatal(err)
	}
	if err := w.AddTensor("blk.0.attn_q.weight", []int{32, 2}, gguf.Q8_0, q); err != nil {
		log.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		log.Fatal(err)
	}

	f, err := gguf.Parse(buf.Bytes()) // gguf.Open(path) maps a file instead
	if err != nil {
		log.Fatal(err)
	}
	layers, _ := f.Uint("llama.block_count")
	base, _ := f.Float("llama.rope.freq_base")
	tokens, _ := f.Strings("tokenizer.ggml.tokens")
	t, _ := f.Tensor("blk.0.attn_q.weight")
	row := make([]float32, t.Cols())
	if err := t.DequantizeRow(1, row); err != nil {
		log.Fatal(err)
	}
	fmt.Println(f.Version, layers, base, len(tokens))
	fmt.Printf("%v %v %d×%d %.2f\n", t.Type, t.Dims, t.Rows(), t.Cols(), row[8]) // ≈ 8/8, within a Q8_0 step
	// Output:
	// 3 2 10000 3
	// Q8_0 [32 2] 2×32 1.01
}
