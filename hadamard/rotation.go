package hadamard

import (
	"errors"
	"fmt"
	"math"

	"github.com/turboquant-go/tq/internal/rng"
)

// ErrDimension reports a dimension the rotation cannot be built for.
var ErrDimension = errors.New("hadamard: unsupported dimension")

// ErrRounds reports a round count outside [1, 64].
var ErrRounds = errors.New("hadamard: unsupported number of rounds")

// DefaultRounds returns the number of rounds to use for dim unless there is
// a reason not to. One round already makes the expected energy of every
// coordinate exactly 1/dim (for every dimension, see doc.go), but it maps a
// basis vector to a vector of equal-magnitude coordinates, which costs a
// 2-bit scalar quantizer 2.2× its design MSE. Two rounds bring every
// worst-case input measured within 2% of a random unit vector at
// non-power-of-two dims. At a power-of-two dim an exact basis vector still
// lands on a lattice after two rounds (each output a sum of dim terms ±1/dim)
// and costs a 3-bit quantizer +24% at dim 64 and +7% at dim 128; a third
// round brings it within 4%, so power-of-two dims get 3.
func DefaultRounds(dim int) int {
	if dim > 0 && dim&(dim-1) == 0 {
		return 3
	}
	return 2
}

// MaxDim bounds the dimension, only to keep sign tables and scale constants
// in a sane range.
const MaxDim = 1 << 24

// Rotation is a seeded randomized Hadamard rotation Π of R^dim: an exact
// orthogonal map computed in O(dim·log dim) without padding. It is immutable
// and safe for concurrent use.
type Rotation struct {
	dim, rounds int
	seed        uint64
	f32         plan[float32]
	f64         plan[float64]
}

// NewRotation builds the rotation of R^dim with the given seed and number of
// rounds (use DefaultRounds). The same arguments give the same rotation on
// every platform. dim must be in [2, MaxDim] and rounds ≥ 1.
func NewRotation(dim int, seed uint64, rounds int) (*Rotation, error) {
	if dim < 2 || dim > MaxDim {
		return nil, fmt.Errorf("%w: dim %d (want 2..%d)", ErrDimension, dim, MaxDim)
	}
	if rounds < 1 || rounds > 64 {
		return nil, fmt.Errorf("%w: %d (want 1..64)", ErrRounds, rounds)
	}
	fwd, inv := buildPlans(dim, seed, rounds)
	r := &Rotation{dim: dim, rounds: rounds, seed: seed}
	r.f64 = plan[float64]{fwd: convert[float64](fwd), inv: convert[float64](inv)}
	r.f32 = plan[float32]{fwd: convert[float32](fwd), inv: convert[float32](inv)}
	return r, nil
}

// Dim returns the dimension.
func (r *Rotation) Dim() int { return r.dim }

// Rounds returns the number of rounds.
func (r *Rotation) Rounds() int { return r.rounds }

// Seed returns the seed the rotation was built from.
func (r *Rotation) Seed() uint64 { return r.seed }

// Forward sets dst = Π·src. Both must have length Dim (Forward panics
// otherwise). dst may be src itself but must not partially overlap it. It does
// not allocate.
func (r *Rotation) Forward(dst, src []float32) { r.check(len(dst), len(src)); run(r.f32.fwd, dst, src) }

// Inverse sets dst = Πᵀ·src = Π⁻¹·src, with the same rules as Forward.
func (r *Rotation) Inverse(dst, src []float32) { r.check(len(dst), len(src)); run(r.f32.inv, dst, src) }

// ForwardScaled sets dst = s·Π·src, folding s into the rotation's final
// normalisation so that scaling costs no extra pass (the quantizer uses it to
// rotate x/‖x‖). Same rules as Forward.
func (r *Rotation) ForwardScaled(dst, src []float32, s float32) {
	r.check(len(dst), len(src))
	ops := r.f32.fwd
	last := ops[len(ops)-1]
	if last.kind != opScale {
		run(ops, dst, src)
		scale(dst, s)
		return
	}
	run(ops[:len(ops)-1], dst, src)
	scale(dst, last.m[0]*s)
}

// Forward64 is Forward in float64 (the same rotation).
func (r *Rotation) Forward64(dst, src []float64) {
	r.check(len(dst), len(src))
	run(r.f64.fwd, dst, src)
}

// Inverse64 is Inverse in float64.
func (r *Rotation) Inverse64(dst, src []float64) {
	r.check(len(dst), len(src))
	run(r.f64.inv, dst, src)
}

// ForwardBatch applies Forward to each of the row-major vectors of src
// (len(src) a multiple of Dim, equal to len(dst); panics otherwise).
func (r *Rotation) ForwardBatch(dst, src []float32) { batch(r, r.f32.fwd, dst, src) }

// InverseBatch applies Inverse to each row-major vector of src.
func (r *Rotation) InverseBatch(dst, src []float32) { batch(r, r.f32.inv, dst, src) }

func (r *Rotation) check(nd, ns int) {
	if nd != r.dim || ns != r.dim {
		panic(fmt.Sprintf("hadamard: rotation of dim %d applied to lengths %d, %d", r.dim, nd, ns))
	}
}

func batch(r *Rotation, ops []op[float32], dst, src []float32) {
	if len(dst) != len(src) || len(src)%r.dim != 0 {
		panic(fmt.Sprintf("hadamard: batch lengths %d, %d are not equal multiples of dim %d", len(dst), len(src), r.dim))
	}
	d := r.dim
	for i := 0; i < len(src); i += d {
		run(ops, dst[i:i+d:i+d], src[i:i+d:i+d])
	}
}

// The rotation is compiled into a short list of primitive operations on
// blocks of the vector (a "plan"); Forward and Inverse just execute a list.

type opKind uint8

const (
	opSigns       opKind = iota // x[blk] *= signs
	opFWHT                      // x[blk] = H·x[blk] (unnormalised)
	opSignedFWHT                // x[blk] = H·(signs∘x[blk]), fused
	opGivens                    // (x[a+j], x[b+j]) = M·(x[a+j], x[b+j]) for j < n
	opScale                     // x *= k
	opSignedScale               // x *= k·signs (signs then scale, fused)
)

// op is one primitive. m holds the Givens 2×2 matrix [m0 m1; m2 m3] or the
// scale in m[0], computed in float64 and rounded once to F.
type op[F float] struct {
	kind   opKind
	off, n int // block [off, off+n); for Givens the a-block
	off2   int // Givens b-block
	signs  []F
	m      [4]F
}

type plan[F float] struct{ fwd, inv []op[F] }

// buildPlans lays out the forward and inverse rotations as float64
// primitives.
//
// One round on n coordinates: if n is a power of two, x → H·D·x. Otherwise
// n = L + r with L the largest power of two below n; the head block A = [0,L)
// and the tail B = [L,n) are mixed by
//
//	A → H_L·D_A·A,  B → (one round on r coordinates, recursively),
//	(A_j, B_j) → Givens rotation for j < r with cos²θ = r/n, sin²θ = L/n,
//	A → H_L·D'·A.
//
// With fresh signs before every transform, the expected energy of each output
// coordinate is exactly 1/n for every input basis vector (doc.go has the
// two-line proof), using only Hadamard transforms of power-of-two size on the
// exact n coordinates.
//
// Transforms are left unnormalised and the Givens coefficients absorb the
// scale mismatch between A and B, so a round multiplies the whole vector by
// one constant σ(n) (√n for a power of two, else L). The only normalisation
// is then one multiply per coordinate by 1/σ² after every second round — an
// exact power of two (1/n or 1/L²) — and by 1/σ after an odd last round.
// Normalising every second round bounds intermediate growth to σ² ≤ n².
func buildPlans(dim int, seed uint64, rounds int) (fwd, inv []op[float64]) {
	sigma := roundScale(dim)
	perRound := make([][]op[float64], rounds)
	for round := range perRound {
		src := rng.New(rng.Derive(seed, uint64(round)))
		perRound[round] = mixRound(nil, src, 0, dim)
	}
	// The inverse runs the transposed rounds in reverse order; both directions
	// normalise after every second round and at the end.
	pending := 1.0
	for k := range rounds {
		fwd = append(fwd, perRound[k]...)
		inv = append(inv, transpose(perRound[rounds-1-k])...)
		pending *= sigma
		if k%2 == 1 || k == rounds-1 {
			sc := op[float64]{kind: opScale, n: dim, m: [4]float64{1 / pending}}
			fwd = append(fwd, sc)
			inv = append(inv, sc)
			pending = 1
		}
	}
	return fuse(fwd), fuse(inv)
}

// mixRound appends one round on [off, off+n). Signs are drawn in the order
// the blocks are first touched, so the layout fixes the random stream.
func mixRound(ops []op[float64], src *rng.Source, off, n int) []op[float64] {
	if isPow2(n) {
		return append(ops, signs(src, off, n), op[float64]{kind: opFWHT, off: off, n: n})
	}
	L := floorPow2(n)
	r := n - L
	ops = append(ops, signs(src, off, L), op[float64]{kind: opFWHT, off: off, n: L})
	ops = mixRound(ops, src, off+L, r)
	// Transforms are unnormalised, so here A is at scale √L and B at scale
	// σ(r). The rotation [c −s; s c] acts on the true values and leaves A at
	// scale √L (its unpaired coordinates need no touch) and B at scale L;
	// the final H_L brings A to L as well, so σ(n) = L.
	c, s := math.Sqrt(float64(r)/float64(n)), math.Sqrt(float64(L)/float64(n))
	sa, sb := math.Sqrt(float64(L)), roundScale(r)
	g := op[float64]{kind: opGivens, off: off, n: r, off2: off + L,
		m: [4]float64{c, -s * sa / sb, s * sa, c * float64(L) / sb}}
	return append(ops, g, signs(src, off, L), op[float64]{kind: opFWHT, off: off, n: L})
}

// roundScale is σ(n), the factor by which one unnormalised round multiplies
// the vector: √n for a power of two, else the largest power of two below n.
func roundScale(n int) float64 {
	if isPow2(n) {
		return math.Sqrt(float64(n))
	}
	return float64(floorPow2(n))
}

func signs(src *rng.Source, off, n int) op[float64] {
	s := make([]float64, n)
	for i := range s {
		s[i] = float64(src.Sign())
	}
	return op[float64]{kind: opSigns, off: off, n: n, signs: s}
}

// transpose returns the primitives of the transposed round (its inverse, up
// to the same scale σ): reverse order, each primitive transposed. Signs and
// the symmetric H are their own transposes.
func transpose(fwd []op[float64]) []op[float64] {
	inv := make([]op[float64], 0, len(fwd))
	for i := len(fwd) - 1; i >= 0; i-- {
		o := fwd[i]
		if o.kind == opGivens {
			o.m[1], o.m[2] = o.m[2], o.m[1]
		}
		inv = append(inv, o)
	}
	return inv
}

// fuse merges a sign flip into the transform or scale that follows it on the
// same block, which saves a sweep over memory. Fusing is exact: multiplying
// by ±1 is exact, so the fused and unfused plans give identical bits.
func fuse(ops []op[float64]) []op[float64] {
	var out []op[float64]
	for i := 0; i < len(ops); i++ {
		o := ops[i]
		if o.kind == opSigns && i+1 < len(ops) {
			next := ops[i+1]
			switch {
			case next.kind == opFWHT && next.off == o.off && next.n == o.n:
				o.kind = opSignedFWHT
				i++
			case next.kind == opScale && o.off == 0 && o.n == next.n:
				// Scale times ±1 is exact, so k·s[i] is one constant per element.
				s := make([]float64, o.n)
				for j := range s {
					s[j] = o.signs[j] * next.m[0]
				}
				o = op[float64]{kind: opSignedScale, n: o.n, signs: s}
				i++
			}
		}
		out = append(out, o)
	}
	// A scale of the whole vector right before a signed transform of the
	// whole vector folds into its signs: (k·s_j)·x_j rounds once, exactly
	// as k·(s_j·x_j) does (s_j·x_j is exact), so the result is unchanged
	// and a pass over the vector is saved.
	merged := out[:0]
	for i := 0; i < len(out); i++ {
		o := out[i]
		if o.kind == opScale && i+1 < len(out) {
			next := out[i+1]
			if next.kind == opSignedFWHT && next.off == 0 && next.n == o.n {
				s := make([]float64, next.n)
				for j := range s {
					s[j] = next.signs[j] * o.m[0]
				}
				next.signs = s
				o = next
				i++
			}
		}
		merged = append(merged, o)
	}
	return merged
}

func convert[F float](ops []op[float64]) []op[F] {
	out := make([]op[F], len(ops))
	for i, o := range ops {
		c := op[F]{kind: o.kind, off: o.off, n: o.n, off2: o.off2}
		for j, v := range o.m {
			c.m[j] = F(v)
		}
		if o.signs != nil {
			c.signs = make([]F, len(o.signs))
			for j, v := range o.signs {
				c.signs[j] = F(v)
			}
		}
		out[i] = c
	}
	return out
}

// run executes a plan: dst = plan(src). A plan whose first primitive is a
// transform of the whole vector reads src directly (no copy, and dst == src
// works); otherwise src is copied to dst first.
func run[F float](ops []op[F], dst, src []F) {
	for i := range ops {
		o := &ops[i]
		in := dst
		if i == 0 {
			if (o.kind == opFWHT || o.kind == opSignedFWHT) && o.n == len(dst) {
				in = src
			} else {
				copy(dst, src)
			}
		}
		switch o.kind {
		case opFWHT, opSignedFWHT:
			transform(dst[o.off:o.off+o.n], in[o.off:o.off+o.n], o.signs)
		case opSigns:
			signedScale(dst[o.off:o.off+o.n], dst[o.off:o.off+o.n], o.signs)
		case opSignedScale:
			signedScale(dst, dst, o.signs)
		case opGivens:
			givens(dst[o.off:o.off+o.n], dst[o.off2:o.off2+o.n], o.m)
		case opScale:
			scale(dst, o.m[0])
		default:
			panic("hadamard: bad plan")
		}
	}
}

// givens applies [a'; b'] = [m0 m1; m2 m3]·[a; b] pairwise. The conversions
// keep the compiler from fusing a product into the add (bit-identical results
// on every platform).
func givens[F float](a, b []F, m [4]F) {
	b = b[:len(a)]
	for j, x := range a {
		y := b[j]
		a[j] = F(m[0]*x) + F(m[1]*y)
		b[j] = F(m[2]*x) + F(m[3]*y)
	}
}

func signedScale[F float](dst, src, k []F) {
	src = src[:len(dst)]
	k = k[:len(dst)]
	for i, v := range src {
		dst[i] = F(v * k[i])
	}
}
