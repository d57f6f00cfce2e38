package lloydmax

import (
	"fmt"
	"math"
	"sort"
	"sync"
)

//go:generate go run ./internal/gentables -o tables_gen.go

// Family selects the density of Get's codebooks.
type Family uint8

const (
	// FamilyBeta is the exact coordinate density of a random unit vector
	// in R^dim (see Beta).
	FamilyBeta Family = iota
	// FamilyGaussian is its limit N(0, 1/dim) (see Gaussian).
	FamilyGaussian
)

func (f Family) String() string {
	switch f {
	case FamilyBeta:
		return "beta"
	case FamilyGaussian:
		return "gaussian"
	}
	return fmt.Sprintf("Family(%d)", uint8(f))
}

// tableEntry is one committed codebook of a symmetric density: its positive
// centroids, ascending, and its distortion.
type tableEntry struct {
	distortion float64
	pos        []float64
}

// tableDim holds the committed Beta codebooks of one dimension, bits 1–8.
type tableDim struct {
	dim     int
	entries [8]tableEntry
}

// Set by tables_gen.go's init, so the package still builds (and solves
// everything on demand) while that file is being regenerated.
var (
	betaTables    []tableDim     // ascending dim
	gaussianTable *[8]tableEntry // unit variance
)

type getKey struct {
	family Family
	dim    int
	bits   int
}

type getEntry struct {
	once sync.Once
	cb   *Codebook
	err  error
}

var memo sync.Map // getKey → *getEntry

// Get returns the shared, read-only codebook for (family, dim, bits). Beta
// codebooks for the dimensions in the committed tables, and all Gaussian
// codebooks (the unit-variance table scaled by 1/√dim), cost no solving;
// any other Beta dimension is solved once — concurrent callers wait for the
// same solve — and memoized for the life of the process.
func Get(f Family, dim, bits int) (*Codebook, error) {
	if bits < 1 || bits > 8 {
		return nil, fmt.Errorf("%w (got %d)", ErrBits, bits)
	}
	switch f {
	case FamilyBeta:
		if dim < 2 {
			return nil, fmt.Errorf("%w: Beta needs d ≥ 2, got %d", ErrDim, dim)
		}
	case FamilyGaussian:
		if dim < 1 {
			return nil, fmt.Errorf("%w: Gaussian needs d ≥ 1, got %d", ErrDim, dim)
		}
	default:
		return nil, fmt.Errorf("lloydmax: unknown family %v", f)
	}
	k := getKey{f, dim, bits}
	v, ok := memo.Load(k)
	if !ok {
		v, _ = memo.LoadOrStore(k, new(getEntry))
	}
	e := v.(*getEntry)
	e.once.Do(func() { e.cb, e.err = build(f, dim, bits) })
	return e.cb, e.err
}

func build(f Family, dim, bits int) (*Codebook, error) {
	if f == FamilyGaussian {
		unit, err := unitGaussian(bits)
		if err != nil {
			return nil, err
		}
		if dim == 1 {
			return unit, nil
		}
		return scaleCodebook(unit, dim), nil
	}
	if e, ok := lookupBeta(dim, bits); ok {
		return fromTable(bits, e), nil
	}
	return Solve(Beta(dim), bits, Options{})
}

// unitGaussian returns the N(0, 1) codebook, from the table when present.
func unitGaussian(bits int) (*Codebook, error) {
	if gaussianTable != nil {
		return fromTable(bits, gaussianTable[bits-1]), nil
	}
	return solveUnitNormal(bits, Options{Tol: defaultTol, MaxIter: defaultMaxIter})
}

func lookupBeta(dim, bits int) (tableEntry, bool) {
	i := sort.Search(len(betaTables), func(i int) bool { return betaTables[i].dim >= dim })
	if i < len(betaTables) && betaTables[i].dim == dim {
		return betaTables[i].entries[bits-1], true
	}
	return tableEntry{}, false
}

// fromTable mirrors a committed positive half into a full codebook.
func fromTable(bits int, e tableEntry) *Codebook {
	half := len(e.pos)
	c := make([]float64, 2*half)
	for i, v := range e.pos {
		c[half+i] = v
		c[half-1-i] = -v
	}
	return newCodebook(bits, c, e.distortion, 0)
}

// scaleCodebook turns the unit-variance Gaussian codebook into the one for
// N(0, 1/dim): centroids divided by √dim, distortion by dim.
func scaleCodebook(unit *Codebook, dim int) *Codebook {
	s := math.Sqrt(float64(dim))
	c := make([]float64, len(unit.Centroids))
	for i, v := range unit.Centroids {
		c[i] = v / s
	}
	return newCodebook(unit.Bits, c, unit.Distortion/float64(dim), unit.Iterations)
}
