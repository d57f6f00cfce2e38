package polarquant_test

import (
	"fmt"
	"math"

	"github.com/turboquant-go/tq/polarquant"
)

func Example() {
	const d = 128
	q, err := polarquant.New(d)
	if err != nil {
		panic(err)
	}
	// A vector of norm ≈ 1 standing in for a randomly rotated key.
	key := make([]float32, d)
	for i := range key {
		key[i] = float32(math.Sin(float64(7*i+1)) / 8)
	}
	code := make([]byte, q.CodeSize())
	if err := q.Encode(code, key); err != nil {
		panic(err)
	}
	fmt.Printf("%d bytes, %.3f bits per coordinate\n", q.CodeSize(), float64(8*q.CodeSize())/d)

	got := make([]float32, d)
	q.Decode(got, code)
	var e float64
	for i := range key {
		e += float64(key[i]-got[i]) * float64(key[i]-got[i])
	}
	fmt.Printf("‖key‖ = %.2f, squared error %.3f\n", q.Norm(code), e)

	// Score the code against a query without decoding it.
	query := q.NewQuery()
	query.Reset(key)
	fmt.Printf("⟨key, decoded⟩ = %.2f\n", query.Score(code))
	// Output:
	// 62 bytes, 3.875 bits per coordinate
	// ‖key‖ = 1.00, squared error 0.036
	// ⟨key, decoded⟩ = 0.98
}
