package qjl

import (
	"encoding/hex"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/turboquant-go/tq/internal/bitpack"
	"github.com/turboquant-go/tq/internal/rng"
)

var kinds = []Kind{Gaussian, Hadamard}

func randomVector(s *rng.Source, d int) []float32 {
	x := make([]float32, d)
	for i := range x {
		x[i] = float32(s.Norm())
	}
	return x
}

func norm(x []float32) float64 {
	s := 0.0
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s)
}

func dot(x, y []float32) float64 {
	s := 0.0
	for i := range x {
		s += float64(x[i]) * float64(y[i])
	}
	return s
}

func mustNew(t testing.TB, dim, rows int, kind Kind, seed uint64) *Sketch {
	s, err := New(dim, rows, kind, seed)
	require.NoError(t, err)
	return s
}

func TestNewErrors(t *testing.T) {
	for _, d := range []int{-1, 0, MaxDim + 1} {
		_, err := New(d, 8, Gaussian, 1)
		require.ErrorIs(t, err, ErrDimension, "dim %d", d)
	}
	for _, m := range []int{-1, 0, MaxRows + 1} {
		_, err := New(8, m, Hadamard, 1)
		require.ErrorIs(t, err, ErrRows, "rows %d", m)
	}
	_, err := New(1<<14, 1<<15, Gaussian, 1) // 2^29 entries
	require.ErrorIs(t, err, ErrRows)
	_, err = New(8, 8, Kind(2), 1)
	require.ErrorIs(t, err, ErrKind)
	require.Equal(t, "Kind(2)", Kind(2).String())

	s := mustNew(t, 100, 70, Hadamard, 9)
	assert.Equal(t, 100, s.Dim())
	assert.Equal(t, 70, s.Rows())
	assert.Equal(t, Hadamard, s.Kind())
	assert.Equal(t, "Hadamard", s.Kind().String())
	assert.Equal(t, uint64(9), s.Seed())
	assert.Equal(t, 9, s.CodeBytes())
	assert.Equal(t, 128, s.ScratchLen())
	assert.Equal(t, 70, mustNew(t, 100, 70, Gaussian, 9).ScratchLen())
}

func TestWrongLengthsPanic(t *testing.T) {
	for _, k := range kinds {
		s := mustNew(t, 10, 20, k, 1)
		x, sc := make([]float32, 10), make([]float32, s.ScratchLen())
		assert.Panics(t, func() { s.Project(make([]float32, 20), x[:9], sc) })
		assert.Panics(t, func() { s.Project(make([]float32, 20), x, sc[:s.ScratchLen()-1]) })
		assert.Panics(t, func() { s.Project(make([]float32, 19), x, sc) })
		assert.Panics(t, func() { s.Encode(make([]byte, 2), x, sc) })
		q := s.NewQuery()
		assert.Panics(t, func() { q.Reset(make([]float32, 11)) })
		q.Reset(x)
		assert.Panics(t, func() { q.Dot(make([]byte, 2)) })
	}
}

// The first entries of S for seed 42 are fixed forever (the sketch is stored
// as its seed), as are two codes.
func TestGolden(t *testing.T) {
	g := mustNew(t, 128, 128, Gaussian, 42)
	want := []uint32{0x3fbc9d64, 0x3fd4d1b5, 0xbea24af7, 0xbf0f1976, 0x3f89c042, 0xbf839a02, 0xbfa0bdaf, 0x3f91ed0d}
	m := g.AppendMatrix(nil)
	for i, w := range want {
		require.Equal(t, w, math.Float32bits(m[i]), "entry %d", i)
	}
	h := mustNew(t, 100, 300, Hadamard, 42)
	hm := h.AppendMatrix(nil)
	require.Equal(t, []float32{1, 1, -1, -1, 1, -1, -1, -1}, hm[:8])
	require.Equal(t, []float32{1, -1, -1, 1, 1, 1, -1, 1}, hm[100:108])
	require.Equal(t, []float32{1, -1, -1, -1, 1, 1, -1, 1}, hm[128*100:128*100+8], "first row of block 1")

	x := make([]float32, 128)
	for i := range x {
		x[i] = float32(i%7-3) + float32(i%100)/64
	}
	code := make([]byte, h.CodeBytes())
	h.Encode(code, x[:100], make([]float32, h.ScratchLen()))
	require.Equal(t, "adf15433aaac6cc209639008380eb95d24fdd51f2386258b9c71025415302e763bee761f1004", hex.EncodeToString(code))
	code = make([]byte, g.CodeBytes())
	g.Encode(code, x, make([]float32, g.ScratchLen()))
	require.Equal(t, "6a5483a971c1c8638bc8568d92ba4a04", hex.EncodeToString(code))
}

var shapes = []struct{ dim, rows int }{
	{1, 1}, {1, 9}, {2, 3}, {3, 8}, {3, 13}, {4, 11}, {5, 16}, {8, 8}, {8, 24}, {16, 7},
	{100, 64}, {100, 128}, {100, 300}, {128, 128}, {128, 129},
}

// Project equals the dense product with the matrix from AppendMatrix.
func TestProjectMatchesMatrix(t *testing.T) {
	src := rng.New(5)
	for _, k := range kinds {
		for _, sh := range shapes {
			s := mustNew(t, sh.dim, sh.rows, k, 3)
			m := s.AppendMatrix(nil)
			require.Len(t, m, sh.rows*sh.dim)
			x := randomVector(src, sh.dim)
			got := make([]float32, sh.rows)
			s.Project(got, x, make([]float32, s.ScratchLen()))
			for i := range got {
				want := dot(m[i*sh.dim:(i+1)*sh.dim], x)
				require.InDelta(t, want, got[i], 1e-5*norm(x)*math.Sqrt(float64(sh.dim)), "%v %+v row %d", k, sh, i)
			}
		}
	}
}

// Bit i of a code is 1 iff (S·x)_i ≥ 0, at bit i%8 of byte i/8 (the bitpack
// order); the unused high bits of the last byte are 0; nothing past
// CodeBytes is written.
func TestEncodeBitOrder(t *testing.T) {
	src := rng.New(6)
	for _, k := range kinds {
		for _, sh := range shapes {
			s := mustNew(t, sh.dim, sh.rows, k, 4)
			x := randomVector(src, sh.dim)
			p := make([]float32, sh.rows)
			sc := make([]float32, s.ScratchLen())
			s.Project(p, x, sc)
			nb := s.CodeBytes()
			require.Equal(t, bitpack.Bytes(sh.rows, 1), nb)
			buf := make([]byte, nb+3)
			for i := range buf {
				buf[i] = 0xA5 // garbage in, to catch bytes Encode forgets to set
			}
			s.Encode(buf, x, sc)
			require.Equal(t, []byte{0xA5, 0xA5, 0xA5}, buf[nb:], "%v %+v guard", k, sh)
			for i, v := range p {
				want := uint8(0)
				if v >= 0 {
					want = 1
				}
				require.Equal(t, want, buf[i/8]>>(i%8)&1, "%v %+v bit %d", k, sh, i)
				require.Equal(t, want, bitpack.Get(buf, i, 1))
			}
			if sh.rows%8 != 0 {
				require.Zero(t, buf[nb-1]>>(sh.rows%8), "%v %+v high bits", k, sh)
			}
		}
	}
	// Zero projects to +0, which counts as non-negative: all ones.
	s := mustNew(t, 4, 12, Gaussian, 1)
	code := make([]byte, 2)
	s.Encode(code, make([]float32, 4), make([]float32, s.ScratchLen()))
	require.Equal(t, []byte{0xff, 0x0f}, code)
}

// The table-driven Dot equals the plain sum Σ p_i·(±1) for every m in
// 1..70 (every tail length), and ignores garbage in the unused high bits.
func TestDotMatchesNaive(t *testing.T) {
	src := rng.New(8)
	for _, k := range kinds {
		for m := 1; m <= 70; m++ {
			s := mustNew(t, 13, m, k, uint64(m))
			q := s.NewQuery()
			q.Reset(randomVector(src, 13))
			p := q.Projection()
			require.Len(t, p, m)
			code := make([]byte, s.CodeBytes())
			for trial := 0; trial < 20; trial++ {
				for i := range code {
					code[i] = byte(src.Uint64())
				}
				want, abs := 0.0, 0.0
				for i, v := range p {
					if code[i/8]>>(i%8)&1 == 1 {
						want += float64(v)
					} else {
						want -= float64(v)
					}
					abs += math.Abs(float64(v))
				}
				require.InDelta(t, want, q.Dot(code), 4e-7*abs, "%v m=%d", k, m)
				// Dot reads only the rows that exist.
				if m%8 != 0 {
					c := append([]byte(nil), code...)
					c[len(c)-1] ^= ^byte(0) << (m % 8)
					require.Equal(t, q.Dot(code), q.Dot(c), "%v m=%d high bits", k, m)
				}
			}
		}
	}
}

func TestEstimateIsScaledDot(t *testing.T) {
	s := mustNew(t, 20, 40, Gaussian, 2)
	src := rng.New(9)
	q := s.NewQuery()
	q.Reset(randomVector(src, 20))
	code := make([]byte, s.CodeBytes())
	s.Encode(code, randomVector(src, 20), make([]float32, s.ScratchLen()))
	require.InDelta(t, float64(Scale(40))*2.5*float64(q.Dot(code)), q.Estimate(code, 2.5), 1e-6)
	require.InDelta(t, math.Sqrt(math.Pi/2)/40, Scale(40), 1e-9)
}

func TestNoAllocations(t *testing.T) {
	src := rng.New(1)
	for _, k := range kinds {
		s := mustNew(t, 128, 128, k, 1)
		x := randomVector(src, 128)
		code := make([]byte, s.CodeBytes())
		sc := make([]float32, s.ScratchLen())
		p := make([]float32, s.Rows())
		q := s.NewQuery()
		allocs := testing.AllocsPerRun(50, func() {
			s.Project(p, x, sc)
			s.Encode(code, x, sc)
			q.Reset(x)
			_ = q.Dot(code)
			_ = q.Estimate(code, 1)
		})
		require.Zero(t, allocs, "%v", k)
	}
}

// A prepared query scores concurrently (run with -race).
func TestConcurrentScoring(t *testing.T) {
	s := mustNew(t, 32, 64, Hadamard, 1)
	src := rng.New(2)
	q := s.NewQuery()
	q.Reset(randomVector(src, 32))
	code := make([]byte, s.CodeBytes())
	s.Encode(code, randomVector(src, 32), make([]float32, s.ScratchLen()))
	want := q.Dot(code)
	done := make(chan float32)
	for g := 0; g < 4; g++ {
		go func() {
			c := make([]byte, s.CodeBytes())
			sc := make([]float32, s.ScratchLen())
			x := make([]float32, 32)
			x[g] = 1
			for range 100 {
				s.Encode(c, x, sc) // the sketch itself is shared, read-only
			}
			done <- q.Dot(code)
		}()
	}
	for g := 0; g < 4; g++ {
		require.Equal(t, want, <-done)
	}
}

func Example() {
	// One user seed; a sketch of 128-dimensional keys into 128 bits each.
	sk, err := New(128, 128, Gaussian, 42)
	if err != nil {
		panic(err)
	}
	key := make([]float32, 128)
	query := make([]float32, 128)
	for i := range key {
		key[i] = float32(i%5) - 2
		query[i] = float32(i%5) - 2 + float32(i%3) - 1
	}
	// Store the 16-byte code and the key's norm.
	code := make([]byte, sk.CodeBytes())
	scratch := make([]float32, sk.ScratchLen())
	sk.Encode(code, key, scratch)
	keyNorm := float32(norm(key))

	// Sketch the query once, then score it against any number of codes.
	q := sk.NewQuery()
	q.Reset(query)
	fmt.Printf("code %d bytes, true ⟨q,k⟩ = %.0f, estimate %.0f\n", len(code), dot(query, key), q.Estimate(code, keyNorm))
	// Output:
	// code 16 bytes, true ⟨q,k⟩ = 255, estimate 309
}
