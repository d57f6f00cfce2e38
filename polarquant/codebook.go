package polarquant

import (
	"fmt"
	"sync"

	"github.com/turboquant-go/tq/lloydmax"
)

// angleBits is the width of a level-ℓ angle index: 4 bits at level 1, where
// the angle spans the whole circle, 2 bits at levels 2–4.
func angleBits(level int) int {
	if level == 1 {
		return 4
	}
	return 2
}

// books holds the four angle codebooks and the tables derived from them,
// solved once on first use and shared by every Quantizer.
var books struct {
	once sync.Once
	cb   [Levels]*lloydmax.Codebook
	t    *tables
	err  error
}

func solveBooks() {
	var cent, bound [Levels][]float64
	for l := 1; l <= Levels; l++ {
		lo, hi := angleRange(l)
		cb, err := lloydmax.Solve(lloydmax.FromFunc(angleDensity(l), lo, hi), angleBits(l), lloydmax.Options{})
		if err != nil {
			books.err = fmt.Errorf("polarquant: level-%d angle codebook: %w", l, err)
			return
		}
		books.cb[l-1] = cb
		cent[l-1], bound[l-1] = cb.Centroids, cb.Boundaries
	}
	books.t, books.err = newTables(cent, bound)
}

func sharedTables() (*tables, error) {
	books.once.Do(solveBooks)
	return books.t, books.err
}

// AngleCodebook returns the Lloyd–Max codebook of the level-ℓ angles
// (1 ≤ ℓ ≤ Levels): at level 1 the 16-point uniform grid on [0, 2π)
// (centroids (k+½)·π/8), at levels 2–4 the 4-point optimum for the density
// ∝ sin^(2^(ℓ−1)−1)(2ψ) on [0, π/2], symmetric about π/4. The codebook is
// shared: treat it as read-only. AngleCodebook panics for a level outside
// 1–Levels, or if the codebooks could not be solved (New reports that as an
// error).
func AngleCodebook(level int) *lloydmax.Codebook {
	if level < 1 || level > Levels {
		panic(fmt.Sprintf("polarquant: AngleCodebook level %d outside 1–%d", level, Levels))
	}
	if _, err := sharedTables(); err != nil {
		panic(err)
	}
	return books.cb[level-1]
}
