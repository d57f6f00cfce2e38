package tokenizer_test

import (
	"fmt"

	"github.com/turboquant-go/tq/llm/tokenizer"
)

// The engine glue starts from llama.cpp's defaults for the model and
// pre-tokenizer, then copies the keys the GGUF file has.
func Example() {
	v := tokenizer.Defaults("llama", "")
	v.Tokens = []string{"<unk>", "<s>", "</s>", "▁", "h", "i", "▁h", "▁hi", "!"}
	v.Scores = []float32{0, 0, 0, -2, -5, -5, -3, -1, -3}
	v.Types = []int32{2, 3, 3, 1, 1, 1, 1, 1, 1}
	tk, err := tokenizer.New(v)
	if err != nil {
		panic(err)
	}
	ids := tk.Encode("hi!", true, false)
	fmt.Printf("%v %q %q\n", ids, tk.Decode(ids), tk.Decode(ids[1:]))
	// Output: [1 7 8] " hi!" "hi!"
}
