package turboquant_test

import (
	"fmt"

	"github.com/turboquant-go/tq/turboquant"
	"github.com/turboquant-go/tq/validate"
)

func Example() {
	q, err := turboquant.New(turboquant.Config{Dim: 128, Bits: 3, Method: turboquant.MSE, Seed: 42})
	if err != nil {
		panic(err)
	}
	vecs := validate.UnitVectors(2, 128, 7)
	key, query := vecs[:128], vecs[128:]

	code := make([]byte, q.CodeSize())
	if err := q.Encode(code, key); err != nil {
		panic(err)
	}
	prepared := q.NewQuery()
	if err := prepared.Reset(query); err != nil {
		panic(err)
	}
	score, _ := prepared.Score(code)
	exact := validate.Dot(key, query)
	fmt.Printf("%d bytes instead of %d; score error below 0.05: %v\n", q.CodeSize(), 2*128, abs(float64(score)-exact) < 0.05)
	// Output: 50 bytes instead of 256; score error below 0.05: true
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// A configuration's code size is arithmetic: nothing is built. Parts says
// where each field of a code sits.
func ExampleConfig_CodeSize() {
	cfg := turboquant.Config{Dim: 128, Bits: 3, Method: turboquant.MSE,
		Outliers: &turboquant.Outliers{Channels: []int{3, 17, 40, 99}, Bits: 6}}
	n, err := cfg.CodeSize()
	if err != nil {
		panic(err)
	}
	q, err := turboquant.New(cfg)
	if err != nil {
		panic(err)
	}
	fmt.Println(n, q.CodeSize())
	for _, p := range q.Parts() {
		fmt.Printf("%d channels at %d bits: bytes [%d, %d), indices from %d\n", p.Dim, p.Bits, p.Offset, p.Offset+p.Size, p.Offset+p.IndexOffset)
	}
	// Output:
	// 54 54
	// 124 channels at 3 bits: bytes [0, 49), indices from 2
	// 4 channels at 6 bits: bytes [49, 54), indices from 51
}
