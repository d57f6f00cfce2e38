package gpucode

import (
	"fmt"
	"math"

	"github.com/turboquant-go/tq/hadamard"
	"github.com/turboquant-go/tq/internal/rng"
)

// RotationPlan is a power-of-two rotation as the encode kernel runs it:
// per round, multiply by signs[r] then the unnormalised Walsh–Hadamard
// butterflies; finally multiply by final. The constants are those the
// hadamard package's fused plan uses (a normalisation after every second
// round folded into the next round's signs), so the result is bit-identical
// to Rotation.ForwardScaled; TestRotationPlanMatchesHadamard holds it to
// that.
type RotationPlan struct {
	Dim, Rounds int
	Signs       []float32 // [Rounds][Dim]
	Final       float32
}

// NewRotationPlan builds the plan of r for kernels that take dims up to maxDim.
func NewRotationPlan(r *hadamard.Rotation, maxDim int) (*RotationPlan, error) {
	n := r.Dim()
	if n&(n-1) != 0 || n > maxDim || n < 2 {
		return nil, fmt.Errorf("%w: device encode needs a power-of-two dim in [2, %d], got %d", ErrUnsupported, maxDim, n)
	}
	p := &RotationPlan{Dim: n, Rounds: r.Rounds(), Signs: make([]float32, r.Rounds()*n)}
	sigma := math.Sqrt(float64(n))
	pending, carry := 1.0, 1.0
	for k := range p.Rounds {
		src := rng.New(rng.Derive(r.Seed(), uint64(k)))
		for i := range n {
			p.Signs[k*n+i] = float32(float64(src.Sign()) * carry)
		}
		carry = 1
		pending *= sigma
		if k%2 == 1 || k == p.Rounds-1 {
			sc := 1 / pending
			pending = 1
			if k == p.Rounds-1 {
				p.Final = float32(sc)
			} else {
				carry = sc
			}
		}
	}
	return p, nil
}
