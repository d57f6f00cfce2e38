package lloydmax

import (
	"math"
	"math/bits"
)

// grid maps a value to its cell with one multiply, one table load and one
// compare: the span of the boundaries is cut into 2^k equal slots, and
// base[s] is the number of boundaries below every value that lands in slot
// s. The table is built so that at most one boundary falls among the values
// of a slot, so the cell is base[s] plus one compare with that boundary.
// Slot assignment is computed in float32 with monotone operations, and base
// is derived from the exact smallest float32 of each slot, so the result
// equals the boundary search for every input, NaN and ±Inf included.
type grid struct {
	lo, scale float32
	last      float32 // the largest slot index, as a float
	base      []uint8
}

// maxGridSlots bounds the table (4 KiB); codebooks whose boundaries are too
// uneven for it keep the search.
const maxGridSlots = 4096

// slot is the grid slot of x: ⌊(x − lo)·scale⌋ clamped to [0, last]; NaN
// goes to slot 0.
func (g *grid) slot(x float32) int {
	t := (x - g.lo) * g.scale
	if !(t >= 0) {
		t = 0
	}
	if t > g.last {
		t = g.last
	}
	return int(t)
}

// newGrid builds the grid for ascending boundaries, or returns nil when no
// table of at most maxGridSlots slots has one boundary per slot at most.
func newGrid(b []float32) *grid {
	if len(b) < 2 {
		return nil
	}
	span := float64(b[len(b)-1]) - float64(b[0])
	minGap := math.Inf(1)
	for i := 1; i < len(b); i++ {
		minGap = min(minGap, float64(b[i])-float64(b[i-1]))
	}
	if !(span > 0) || !(minGap > 0) {
		return nil
	}
	for slots := 1 << bits.Len(uint(2*span/minGap)); slots <= maxGridSlots; slots *= 2 {
		if g := tryGrid(b, slots); g != nil {
			return g
		}
	}
	return nil
}

func tryGrid(b []float32, slots int) *grid {
	// The last boundary sits strictly inside the last slot's range, so
	// values above it land in a slot whose base counts the others.
	span := float64(b[len(b)-1]) - float64(b[0])
	g := &grid{lo: b[0], scale: float32(float64(slots) / (span * (1 + 1.0/float64(slots)))), last: float32(slots - 1)}
	g.base = make([]uint8, slots)
	count := func(x float32) int { // boundaries strictly below x
		n := 0
		for n < len(b) && b[n] < x {
			n++
		}
		return n
	}
	for s := range slots {
		lo := g.firstOf(s)
		hi := g.firstOf(s + 1) // first value of the next slot (+Inf past the end)
		n := count(lo)
		// Every value of the slot is in [lo, hi): at most one boundary may
		// lie in [lo, hi), or one compare cannot place the value.
		if n+1 < len(b) && b[n+1] < hi {
			return nil
		}
		g.base[s] = uint8(n)
	}
	return g
}

// firstOf returns the smallest float32 whose slot is s (−Inf for slot 0,
// +Inf past the last slot), by bisection over float32 values in order;
// slot is monotone in x.
func (g *grid) firstOf(s int) float32 {
	if s == 0 {
		return float32(math.Inf(-1))
	}
	if s > int(g.last) {
		return float32(math.Inf(1))
	}
	lo, hi := orderKey(float32(math.Inf(-1))), orderKey(float32(math.Inf(1)))
	for lo < hi { // smallest key whose slot is ≥ s
		mid := lo + (hi-lo)/2
		if g.slot(fromOrderKey(mid)) >= s {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return fromOrderKey(lo)
}

// orderKey maps float32 to uint32 preserving order (−0 and +0 adjacent).
func orderKey(f float32) uint32 {
	u := math.Float32bits(f)
	if u>>31 == 1 {
		return ^u
	}
	return u | 1<<31
}

func fromOrderKey(k uint32) float32 {
	if k>>31 == 1 {
		return math.Float32frombits(k &^ (1 << 31))
	}
	return math.Float32frombits(^k)
}
