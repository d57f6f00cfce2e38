package ann

import (
	"math"
	"testing"

	"github.com/turboquant-go/tq/internal/rng"
)

// gaussian returns n row-major d-dimensional vectors with i.i.d. N(0,1)
// entries, scaled per vector by a factor in [0.5, 1.5] so norms vary.
func gaussian(n, d int, seed uint64) []float32 {
	r := rng.New(seed)
	out := make([]float32, n*d)
	for i := range n {
		s := 0.5 + r.Float64()
		for j := range d {
			out[i*d+j] = float32(s * r.Norm())
		}
	}
	return out
}

func mustTQ(t testing.TB, cfg Config) *TQ {
	t.Helper()
	q, err := NewTQ(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// recallAt1 is the fraction of queries whose true nearest neighbour is among
// the returned results.
func recallAt1(truth, got [][]Result) float64 {
	hit := 0
	for i := range truth {
		for _, r := range got[i] {
			if r.ID == truth[i][0].ID {
				hit++
				break
			}
		}
	}
	return float64(hit) / float64(len(truth))
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*(1+math.Abs(b)) }
