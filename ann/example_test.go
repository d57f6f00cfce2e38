package ann_test

import (
	"fmt"

	"github.com/turboquant-go/tq/ann"
	"github.com/turboquant-go/tq/internal/rng"
)

// A flat index of 4-bit codes: add vectors, search with a full-precision
// query, and re-rank the best candidates exactly against the originals.
func ExampleFlat_Search() {
	const dim, n = 64, 1000
	r := rng.New(1)
	base := make([]float32, n*dim)
	for i := range base {
		base[i] = float32(r.Norm())
	}
	q, err := ann.NewTQ(ann.Config{Dim: dim, Bits: 4, Method: ann.MSENorm, Metric: ann.Cosine, Seed: 1})
	if err != nil {
		panic(err)
	}
	index := ann.NewFlat(q)
	if err := index.Add(base); err != nil {
		panic(err)
	}
	// The query is vector 123 itself: its nearest neighbour must be 123.
	query := base[123*dim : 124*dim]
	res, err := index.Search(query, ann.SearchOptions{K: 3, Rerank: 4, Originals: base})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d codes of %d bytes; nearest: %d, exact distance ≈ 0: %v\n",
		index.Len(), q.CodeSize(), res[0].ID, res[0].Distance < 1e-5)
	// Output: 1000 codes of 36 bytes; nearest: 123, exact distance ≈ 0: true
}
