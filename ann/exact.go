package ann

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// ExactDistance is the distance of x from q under m, in float64
// accumulation: −⟨q, x⟩, 1 − cos(q, x) (1 when either is zero), ‖q − x‖².
func ExactDistance(m Metric, q, x []float32) float32 {
	x = x[:len(q)]
	switch m {
	case InnerProduct:
		return float32(-dot64(q, x))
	case Cosine:
		qq, xx := dot64(q, q), dot64(x, x)
		if qq == 0 || xx == 0 {
			return 1
		}
		return float32(1 - dot64(q, x)/math.Sqrt(qq*xx))
	}
	var s float64
	for i, v := range q {
		d := float64(v) - float64(x[i])
		s += d * d
	}
	return float32(s)
}

func dot64(a, b []float32) float64 {
	b = b[:len(a)]
	var s0, s1 float64
	n := len(a) &^ 1
	for i := 0; i < n; i += 2 {
		s0 += float64(a[i]) * float64(b[i])
		s1 += float64(a[i+1]) * float64(b[i+1])
	}
	if n < len(a) {
		s0 += float64(a[n]) * float64(b[n])
	}
	return s0 + s1
}

// ExactSearch is brute-force ground truth: for each query (row-major, dim
// each) the k nearest base vectors under m, best first, ties by lower id.
// Queries are split across GOMAXPROCS goroutines.
func ExactSearch(m Metric, base, queries []float32, dim, k int) ([][]Result, error) {
	if dim < 1 || len(base)%dim != 0 || len(queries)%dim != 0 {
		return nil, fmt.Errorf("%w: %d base and %d query floats are not whole %d-d vectors", ErrDimension, len(base), len(queries), dim)
	}
	n, nq := len(base)/dim, len(queries)/dim
	if n == 0 {
		return nil, ErrEmpty
	}
	if k < 1 || k > n {
		return nil, fmt.Errorf("%w: k=%d with %d vectors", ErrK, k, n)
	}
	out := make([][]Result, nq)
	parallelFor(nq, func(i int) {
		q := queries[i*dim : (i+1)*dim]
		t := newTopK(k)
		for j := range n {
			t.offer(ExactDistance(m, q, base[j*dim:(j+1)*dim]), j)
		}
		out[i] = t.sorted()
	})
	return out, nil
}

// parallelFor runs body(i) for i < n on GOMAXPROCS goroutines.
func parallelFor(n int, body func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	var next int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= int64(n) {
					return
				}
				body(int(i))
			}
		}()
	}
	wg.Wait()
}
