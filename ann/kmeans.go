package ann

import (
	"math"

	"github.com/turboquant-go/tq/internal/rng"
)

// kmeans partitions the row-major xs (n vectors of dim d, n ≥ k) into k
// clusters by Lloyd's algorithm under L2 and returns the centroids. Seeds are
// k distinct input vectors drawn with the seed; a cluster that empties is
// re-seeded with a random input vector. Assignment runs in parallel.
func kmeans(xs []float32, d, k, iters int, seed uint64) []float32 {
	n := len(xs) / d
	r := rng.New(rng.Derive(seed, 0x6b6d))
	cent := make([]float32, k*d)
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	for i := range k {
		j := i + r.Intn(n-i)
		perm[i], perm[j] = perm[j], perm[i]
		copy(cent[i*d:(i+1)*d], xs[perm[i]*d:(perm[i]+1)*d])
	}
	assign := make([]int32, n)
	sums := make([]float64, k*d)
	counts := make([]int, k)
	for range iters {
		assignAll(assign, xs, cent, d, L2)
		clear(sums)
		clear(counts)
		for i, c := range assign {
			counts[c]++
			row := sums[int(c)*d : int(c+1)*d]
			for j, v := range xs[i*d : (i+1)*d] {
				row[j] += float64(v)
			}
		}
		for c := range k {
			if counts[c] == 0 {
				p := r.Intn(n)
				copy(cent[c*d:(c+1)*d], xs[p*d:(p+1)*d])
				continue
			}
			inv := 1 / float64(counts[c])
			for j := range d {
				cent[c*d+j] = float32(sums[c*d+j] * inv)
			}
		}
	}
	return cent
}

// assignAll sets assign[i] to the centroid nearest xs row i: by L2, or for
// InnerProduct the centroid with the largest ⟨x, c⟩, the order an
// inner-product search probes lists in.
func assignAll(assign []int32, xs, cent []float32, d int, m Metric) {
	n := len(xs) / d
	const chunk = 1024
	parallelFor((n+chunk-1)/chunk, func(b int) {
		for i := b * chunk; i < min(n, (b+1)*chunk); i++ {
			if m == InnerProduct {
				assign[i] = int32(largestIP(xs[i*d:(i+1)*d], cent, d))
			} else {
				assign[i] = int32(nearestL2(xs[i*d:(i+1)*d], cent, d))
			}
		}
	})
}

func nearestL2(x, cent []float32, d int) int {
	best, bestD := 0, float32(math.Inf(1))
	for c := 0; c*d < len(cent); c++ {
		row := cent[c*d : (c+1)*d : (c+1)*d]
		var s0, s1 float32
		x := x[:len(row)]
		j := 0
		for ; j+1 < len(row); j += 2 {
			a, b := x[j]-row[j], x[j+1]-row[j+1]
			s0 += a * a
			s1 += b * b
		}
		if j < len(row) {
			a := x[j] - row[j]
			s0 += a * a
		}
		if s := s0 + s1; s < bestD {
			best, bestD = c, s
		}
	}
	return best
}

func largestIP(x, cent []float32, d int) int {
	best, bestS := 0, math.Inf(-1)
	for c := 0; c*d < len(cent); c++ {
		if s := dot64(x, cent[c*d:(c+1)*d]); s > bestS {
			best, bestS = c, s
		}
	}
	return best
}
