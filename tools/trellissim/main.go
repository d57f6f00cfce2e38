package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"time"
)

// trellis is a bitshift trellis quantizer: 2^L states, k bits per
// coordinate, reproduction table[state].
type trellis struct {
	L, k  int
	table []float64
	// Viterbi working memory.
	cost, next []float64
	back       [][]int32 // [coordinate][state]: the best predecessor
}

func newTrellis(L, k, d int, r *rand.Rand) *trellis {
	S := 1 << L
	t := &trellis{L: L, k: k, table: make([]float64, S), cost: make([]float64, S), next: make([]float64, S)}
	for s := range t.table {
		t.table[s] = r.NormFloat64()
	}
	t.back = make([][]int32, d)
	for i := range t.back {
		t.back[i] = make([]int32, S)
	}
	return t
}

// encode writes into path the state sequence with the least squared error
// for x (the initial state is free: L−k more bits per vector) and returns
// that error.
func (t *trellis) encode(x []float64, path []int32) float64 {
	S, K, shift := 1<<t.L, 1<<t.k, t.L-t.k
	cost, next := t.cost, t.next
	for s := range S {
		d := x[0] - t.table[s]
		cost[s] = d * d
	}
	for i := 1; i < len(x); i++ {
		back := t.back[i]
		for s := range S {
			// The predecessors of s are the states whose low L−k bits
			// are s's high ones.
			base := s >> t.k
			best, bp := math.Inf(1), 0
			for hi := range K {
				if p := base | hi<<shift; cost[p] < best {
					best, bp = cost[p], p
				}
			}
			d := x[i] - t.table[s]
			next[s] = best + d*d
			back[s] = int32(bp)
		}
		cost, next = next, cost
	}
	best, bs := math.Inf(1), 0
	for s, c := range cost {
		if c < best {
			best, bs = c, s
		}
	}
	for i := len(x) - 1; i >= 0; i-- {
		path[i] = int32(bs)
		bs = int(t.back[i][bs])
	}
	return best
}

func gaussians(n, d int, seed uint64) [][]float64 {
	r := rand.New(rand.NewPCG(seed, 3))
	xs := make([][]float64, n)
	for i := range xs {
		xs[i] = make([]float64, d)
		for j := range xs[i] {
			xs[i][j] = r.NormFloat64()
		}
	}
	return xs
}

func main() {
	L := flag.Int("L", 6, "state bits (2^L states and table entries)")
	k := flag.Int("k", 3, "bits per coordinate")
	d := flag.Int("d", 128, "coordinates per vector")
	n := flag.Int("n", 1500, "training vectors")
	iters := flag.Int("iters", 15, "Lloyd iterations")
	flag.Parse()
	if *k < 1 || *L < *k || *L > 16 || *d < 2 {
		fmt.Fprintln(os.Stderr, "trellissim: need 1 ≤ k ≤ L ≤ 16 and d ≥ 2")
		os.Exit(2)
	}
	t := newTrellis(*L, *k, *d, rand.New(rand.NewPCG(1, 2)))
	train, test := gaussians(*n, *d, 5), gaussians(500, *d, 9)
	path := make([]int32, *d)
	S := 1 << *L
	for range *iters {
		sum, cnt := make([]float64, S), make([]float64, S)
		for _, x := range train {
			t.encode(x, path)
			for j, s := range path {
				sum[s] += x[j]
				cnt[s]++
			}
		}
		for s := range t.table {
			if cnt[s] > 0 {
				t.table[s] = sum[s] / cnt[s]
			}
		}
	}
	var e float64
	start := time.Now()
	for _, x := range test {
		e += t.encode(x, path)
	}
	perVector := time.Since(start).Seconds() / float64(len(test)) * 1e6
	mse := e / float64(len(test)**d)
	fmt.Printf("L=%d k=%d d=%d: MSE %.5f per unit-variance coordinate (%.2f dB; the rate–distortion bound %.5f), "+
		"%.1f µs to encode a vector\n", *L, *k, *d, mse, -10*math.Log10(mse), math.Exp2(-2*float64(*k)), perVector)
}
