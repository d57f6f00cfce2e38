package turboquant

import (
	"cmp"
	"fmt"
	"github.com/turboquant-go/tq/internal/vec"
	"slices"
)

// TopChannels returns, in ascending order, the k channels with the largest
// L2 norm over the row-major vectors xs (each of length dim): the outlier
// channels to give to Config.Outliers, chosen from a prefill's keys.
func TopChannels(xs []float32, dim, k int) ([]int, error) {
	if dim < 1 || len(xs)%dim != 0 || len(xs) == 0 {
		return nil, fmt.Errorf("%w: %d floats do not form vectors of dim %d", ErrLength, len(xs), dim)
	}
	if k < 1 || k > dim {
		return nil, fmt.Errorf("%w: %d channels requested of %d", ErrConfig, k, dim)
	}
	if i := vec.NonFinite(xs); i >= 0 {
		return nil, fmt.Errorf("%w: component %d is %v", ErrNonFinite, i, xs[i])
	}
	energy := make([]float64, dim)
	for i, v := range xs {
		energy[i%dim] += float64(v) * float64(v)
	}
	order := make([]int, dim)
	for i := range order {
		order[i] = i
	}
	// Ties broken by channel index, so the choice is deterministic.
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(energy[b], energy[a]) })
	top := order[:k]
	slices.Sort(top)
	return top, nil
}
