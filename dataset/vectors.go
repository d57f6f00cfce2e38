package dataset

import (
	"errors"
	"fmt"

	"github.com/turboquant-go/tq/internal/rng"
)

// Sentinel errors; every error of this package wraps one of them.
var (
	// ErrFormat reports a malformed, truncated or corrupt input file.
	ErrFormat = errors.New("dataset: bad file")
	// ErrNotFetched reports a dataset whose cache file is absent.
	ErrNotFetched = errors.New("dataset: not fetched")
	// ErrArgument reports an invalid argument (an unknown name, a split larger
	// than the data).
	ErrArgument = errors.New("dataset: invalid argument")
)

// Vectors is a row-major matrix of Len() vectors of Dim float32 each.
type Vectors struct {
	Dim  int
	Data []float32
}

// Len is the number of vectors.
func (v *Vectors) Len() int {
	if v.Dim == 0 {
		return 0
	}
	return len(v.Data) / v.Dim
}

// Row returns vector i (aliasing Data).
func (v *Vectors) Row(i int) []float32 { return v.Data[i*v.Dim : (i+1)*v.Dim : (i+1)*v.Dim] }

// Split draws nBase base vectors and nQuery held-out query vectors, disjoint,
// from v by a seeded permutation: the same seed gives the same split on every
// platform. The results are copies.
func (v *Vectors) Split(nBase, nQuery int, seed uint64) (base, queries *Vectors, err error) {
	n := v.Len()
	if nBase < 0 || nQuery < 0 || nBase+nQuery > n || nBase+nQuery < nBase {
		return nil, nil, fmt.Errorf("%w: split of %d base + %d queries from %d vectors", ErrArgument, nBase, nQuery, n)
	}
	// A partial Fisher–Yates shuffle: only the first nBase+nQuery positions
	// are drawn, so the cost does not depend on n beyond the index slice.
	perm := make([]int32, n)
	for i := range perm {
		perm[i] = int32(i)
	}
	r := rng.New(rng.Derive(seed, 0x5eed))
	for i := range nBase + nQuery {
		j := i + r.Intn(n-i)
		perm[i], perm[j] = perm[j], perm[i]
	}
	pick := func(ids []int32) *Vectors {
		out := &Vectors{Dim: v.Dim, Data: make([]float32, len(ids)*v.Dim)}
		for k, id := range ids {
			copy(out.Row(k), v.Row(int(id)))
		}
		return out
	}
	return pick(perm[nQuery : nQuery+nBase]), pick(perm[:nQuery]), nil
}
