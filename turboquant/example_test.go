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
