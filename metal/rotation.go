package metal

import (
	"fmt"
	"math"

	"github.com/turboquant-go/tq/hadamard"
	"github.com/turboquant-go/tq/internal/rng"
)

// rotationPlan is a power-of-two rotation as the encode kernel runs it:
// per round, multiply by signs[r] then the unnormalised Walsh–Hadamard
// butterflies; finally multiply by final. The constants are those the
// hadamard package's fused plan uses (a normalisation after every second
// round folded into the next round's signs), so the result is bit-identical
// to Rotation.ForwardScaled; TestRotationPlanMatchesHadamard holds it to
// that.
type rotationPlan struct {
	dim, rounds int
	signs       []float32 // [rounds][dim]
	final       float32
}

func newRotationPlan(r *hadamard.Rotation) (*rotationPlan, error) {
	n := r.Dim()
	if n&(n-1) != 0 || n > maxEncodeDim || n < 2 {
		return nil, fmt.Errorf("%w: device encode needs a power-of-two dim in [2, %d], got %d", ErrUnsupported, maxEncodeDim, n)
	}
	p := &rotationPlan{dim: n, rounds: r.Rounds(), signs: make([]float32, r.Rounds()*n)}
	sigma := math.Sqrt(float64(n))
	pending, carry := 1.0, 1.0
	for k := range p.rounds {
		src := rng.New(rng.Derive(r.Seed(), uint64(k)))
		for i := range n {
			p.signs[k*n+i] = float32(float64(src.Sign()) * carry)
		}
		carry = 1
		pending *= sigma
		if k%2 == 1 || k == p.rounds-1 {
			sc := 1 / pending
			pending = 1
			if k == p.rounds-1 {
				p.final = float32(sc)
			} else {
				carry = sc
			}
		}
	}
	return p, nil
}
