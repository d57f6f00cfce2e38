package qjl

import (
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/turboquant-go/tq/hadamard"
	"github.com/turboquant-go/tq/internal/bitpack"
	"github.com/turboquant-go/tq/internal/rng"
)

// Kind selects how the projection matrix S is drawn.
type Kind uint8

const (
	// Gaussian draws S with i.i.d. N(0,1) entries: the estimator is exactly
	// unbiased, with the variance in the package doc. O(rows·dim) per
	// projection.
	Gaussian Kind = iota
	// Hadamard uses rows of √P·H_P·D_b (±1 entries, P the next power of two
	// ≥ dim, one independent sign diagonal D_b per block of P rows).
	// O(rows·log P) per projection; unbiased only approximately (doc.go).
	Hadamard
)

func (k Kind) String() string {
	switch k {
	case Gaussian:
		return "Gaussian"
	case Hadamard:
		return "Hadamard"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

var (
	// ErrDimension reports a vector dimension outside [1, MaxDim].
	ErrDimension = errors.New("qjl: unsupported dimension")
	// ErrRows reports a row count outside [1, MaxRows], or a Gaussian matrix
	// larger than MaxEntries.
	ErrRows = errors.New("qjl: unsupported number of rows")
	// ErrKind reports a Kind other than Gaussian or Hadamard.
	ErrKind = errors.New("qjl: unknown sketch kind")
)

// Size limits, there only to keep allocations sane.
const (
	MaxDim     = 1 << 24
	MaxRows    = 1 << 24
	MaxEntries = 1 << 28 // rows·dim of a Gaussian matrix (1 GiB of float32)
)

// streamBase labels this package's random streams, far from the small
// labels hadamard.NewRotation uses (0, 1, …), so that one user seed can key
// both a rotation and a sketch without the two sharing random bits.
const streamBase = 0x716a6c << 32 // "qjl"

// Sketch is a seeded 1-bit Johnson–Lindenstrauss sketch R^dim → {±1}^rows.
// It is immutable and safe for concurrent use.
type Sketch struct {
	dim, rows int
	kind      Kind
	seed      uint64
	pad       int       // Hadamard: P, the transform length
	gauss     []float32 // Gaussian: S, row-major rows×dim
	signs     []float32 // Hadamard: D_b restricted to the first dim coordinates, block after block
}

// New draws the sketch of R^dim with the given number of rows (bits per
// code). The same arguments give the same matrix on every platform.
func New(dim, rows int, kind Kind, seed uint64) (*Sketch, error) {
	if dim < 1 || dim > MaxDim {
		return nil, fmt.Errorf("%w: %d (want 1..%d)", ErrDimension, dim, MaxDim)
	}
	if rows < 1 || rows > MaxRows {
		return nil, fmt.Errorf("%w: %d (want 1..%d)", ErrRows, rows, MaxRows)
	}
	s := &Sketch{dim: dim, rows: rows, kind: kind, seed: seed}
	switch kind {
	case Gaussian:
		if rows*dim > MaxEntries {
			return nil, fmt.Errorf("%w: %d×%d Gaussian matrix exceeds %d entries", ErrRows, rows, dim, MaxEntries)
		}
		src := rng.New(rng.Derive(seed, streamBase))
		s.gauss = make([]float32, rows*dim)
		for i := range s.gauss {
			s.gauss[i] = float32(src.Norm())
		}
	case Hadamard:
		s.pad = 1 << bits.Len(uint(dim-1))
		blocks := (rows + s.pad - 1) / s.pad
		s.signs = make([]float32, blocks*dim)
		for b := range blocks {
			src := rng.New(rng.Derive(seed, streamBase+1+uint64(b)))
			for j := range dim {
				s.signs[b*dim+j] = src.Sign()
			}
		}
	default:
		return nil, fmt.Errorf("%w: %d", ErrKind, uint8(kind))
	}
	return s, nil
}

// Dim returns the input dimension.
func (s *Sketch) Dim() int { return s.dim }

// Rows returns the number of rows m, the bits per code.
func (s *Sketch) Rows() int { return s.rows }

// Kind returns how S was drawn.
func (s *Sketch) Kind() Kind { return s.kind }

// Seed returns the seed S was drawn from.
func (s *Sketch) Seed() uint64 { return s.seed }

// CodeBytes returns the size of one code: ⌈rows/8⌉.
func (s *Sketch) CodeBytes() int { return bitpack.Bytes(s.rows, 1) }

// ScratchLen returns the length of the float32 scratch that Project and
// Encode need: rows for Gaussian, P (next power of two ≥ dim) for Hadamard.
func (s *Sketch) ScratchLen() int {
	if s.kind == Hadamard {
		return s.pad
	}
	return s.rows
}

// Scale returns √(π/2)/rows, the factor that turns ‖k‖·⟨S·q, sign(S·k)⟩ into
// an estimate of ⟨q, k⟩.
func Scale(rows int) float32 { return float32(math.Sqrt(math.Pi/2) / float64(rows)) }

// AppendMatrix appends S, row-major (rows×dim), to dst and returns the
// result: for backends that need the matrix itself, and for tests.
func (s *Sketch) AppendMatrix(dst []float32) []float32 {
	if s.kind == Gaussian {
		return append(dst, s.gauss...)
	}
	for i := 0; i < s.rows; i++ {
		b, t := i/s.pad, i%s.pad
		d := s.signs[b*s.dim : (b+1)*s.dim]
		for j, sg := range d {
			if bits.OnesCount(uint(t&j))%2 == 1 {
				sg = -sg
			}
			dst = append(dst, sg)
		}
	}
	return dst
}

func (s *Sketch) check(x, scratch []float32) {
	if len(x) != s.dim || len(scratch) < s.ScratchLen() {
		panic(fmt.Sprintf("qjl: sketch %d×%d given a vector of %d and scratch of %d (need %d)",
			s.rows, s.dim, len(x), len(scratch), s.ScratchLen()))
	}
}

// Project sets dst[:rows] = S·x. len(x) must be Dim, len(dst) ≥ Rows and
// len(scratch) ≥ ScratchLen() (Project panics otherwise: programmer error).
// It does not allocate.
func (s *Sketch) Project(dst, x, scratch []float32) {
	s.check(x, scratch)
	dst = dst[:s.rows]
	if s.kind == Gaussian {
		gemv(dst, s.gauss, x)
		return
	}
	for b := 0; b*s.pad < s.rows; b++ {
		n := min(s.pad, s.rows-b*s.pad)
		copy(dst[b*s.pad:b*s.pad+n], s.hadamardBlock(b, x, scratch)[:n])
	}
}

// Encode writes the code of x to dst[:CodeBytes()]: bit i is 1 iff
// (S·x)_i ≥ 0, as a little-endian bit stream (bit i is bit i%8 of byte i/8,
// the internal/bitpack order); the unused high bits of the last byte are 0.
// Same length rules as Project; it does not allocate.
func (s *Sketch) Encode(dst []byte, x, scratch []float32) {
	s.check(x, scratch)
	dst = dst[:s.CodeBytes()]
	if s.kind == Gaussian {
		p := scratch[:s.rows]
		gemv(p, s.gauss, x)
		packSigns(dst, 0, p)
		return
	}
	if s.pad < 8 {
		// Blocks are not byte aligned; packSigns ORs bits into place.
		clear(dst)
	}
	for b := 0; b*s.pad < s.rows; b++ {
		n := min(s.pad, s.rows-b*s.pad)
		packSigns(dst, b*s.pad, s.hadamardBlock(b, x, scratch)[:n])
	}
}

// hadamardBlock returns √P·H_P·D_b·x (x zero-padded to P) in scratch[:P].
func (s *Sketch) hadamardBlock(b int, x, scratch []float32) []float32 {
	z := scratch[:s.pad]
	d := s.signs[b*s.dim : (b+1)*s.dim]
	d = d[:len(x)]
	for j, v := range x {
		z[j] = v * d[j]
	}
	clear(z[len(x):])
	hadamard.FWHTUnscaled(z) // H unnormalised is exactly √P·H_P
	return z
}

// gemv sets y = A·x for row-major A (len(y)×len(x)). Four rows share each
// load of x; each row is summed left to right, with every product rounded
// before it is added, so the result is the same on every platform (and equal
// to the naive loop).
func gemv(y, a, x []float32) {
	n := len(x)
	i := 0
	for ; i+4 <= len(y); i += 4 {
		r0 := a[i*n : (i+1)*n : (i+1)*n]
		r1 := a[(i+1)*n : (i+2)*n : (i+2)*n]
		r2 := a[(i+2)*n : (i+3)*n : (i+3)*n]
		r3 := a[(i+3)*n : (i+4)*n : (i+4)*n]
		r0, r1, r2, r3 = r0[:n], r1[:n], r2[:n], r3[:n] // lets the compiler drop bounds checks
		var s0, s1, s2, s3 float32
		for j, v := range x {
			s0 += float32(r0[j] * v)
			s1 += float32(r1[j] * v)
			s2 += float32(r2[j] * v)
			s3 += float32(r3[j] * v)
		}
		y[i], y[i+1], y[i+2], y[i+3] = s0, s1, s2, s3
	}
	for ; i < len(y); i++ {
		r := a[i*n : (i+1)*n : (i+1)*n]
		r = r[:n]
		var s float32
		for j, v := range x {
			s += float32(r[j] * v)
		}
		y[i] = s
	}
}

// packSigns writes bit (bit0+i) = [v[i] ≥ 0] into dst. When bit0 is a
// multiple of 8 whole bytes are written (the last one zero-padded); otherwise
// bits are ORed into bytes the caller has cleared.
func packSigns(dst []byte, bit0 int, v []float32) {
	if bit0%8 != 0 {
		for i, x := range v {
			k := bit0 + i
			dst[k/8] |= nonNeg(x) << (k % 8)
		}
		return
	}
	dst = dst[bit0/8:]
	full := len(v) / 8
	dst = dst[:(len(v)+7)/8]
	for i := range dst[:full] {
		w := v[8*i : 8*i+8 : 8*i+8]
		dst[i] = nonNeg(w[0]) | nonNeg(w[1])<<1 | nonNeg(w[2])<<2 | nonNeg(w[3])<<3 |
			nonNeg(w[4])<<4 | nonNeg(w[5])<<5 | nonNeg(w[6])<<6 | nonNeg(w[7])<<7
	}
	if tail := v[8*full:]; len(tail) > 0 {
		var c byte
		for k, x := range tail {
			c |= nonNeg(x) << k
		}
		dst[full] = c
	}
}

// nonNeg is 1 for x ≥ 0 (−0 included), 0 for x < 0 and NaN.
func nonNeg(x float32) byte {
	if x >= 0 {
		return 1
	}
	return 0
}

// Unproject sets dst[:Dim()] = Sᵀ·s, where s_i = +1 where bit i of signs is
// set and −1 where it is not: the direction a sign code decodes to
// (Scale(rows)·‖k‖·Sᵀ·s is the unbiased reconstruction of k for Gaussian S).
// len(signs) must be ≥ CodeBytes(), len(dst) ≥ Dim() and len(scratch) ≥
// ScratchLen() (Unproject panics otherwise). It does not allocate.
func (s *Sketch) Unproject(dst []float32, signs []byte, scratch []float32) {
	if len(dst) < s.dim || len(signs) < s.CodeBytes() || len(scratch) < s.ScratchLen() {
		panic(fmt.Sprintf("qjl: Unproject given dst %d, signs %d, scratch %d (need %d, %d, %d)",
			len(dst), len(signs), len(scratch), s.dim, s.CodeBytes(), s.ScratchLen()))
	}
	dst = dst[:s.dim]
	clear(dst)
	sign := func(i int) float32 {
		if signs[i/8]>>(i%8)&1 == 1 {
			return 1
		}
		return -1
	}
	if s.kind == Gaussian {
		for i := range s.rows {
			row := s.gauss[i*s.dim : (i+1)*s.dim : (i+1)*s.dim]
			if sign(i) > 0 {
				for j, v := range row {
					dst[j] += v
				}
			} else {
				for j, v := range row {
					dst[j] -= v
				}
			}
		}
		return
	}
	// S restricted to block b is H_P·D_b on the first dim coordinates; H is
	// symmetric, so its transpose applied to s is D_b·H_P·s.
	for b := 0; b*s.pad < s.rows; b++ {
		n := min(s.pad, s.rows-b*s.pad)
		z := scratch[:s.pad]
		for t := range n {
			z[t] = sign(b*s.pad + t)
		}
		clear(z[n:])
		hadamard.FWHTUnscaled(z)
		d := s.signs[b*s.dim : (b+1)*s.dim]
		for j := range dst {
			dst[j] += d[j] * z[j]
		}
	}
}
