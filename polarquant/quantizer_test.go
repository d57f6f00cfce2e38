package polarquant

import (
	"encoding/binary"
	"errors"
	"math"
	"sort"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/turboquant-go/tq/internal/bitpack"
	"github.com/turboquant-go/tq/internal/half"
	"github.com/turboquant-go/tq/internal/rng"
)

var testDims = []int{16, 32, 48, 64, 128, 1024}

// unitVector fills y with a uniform random point on the unit sphere, which
// is what a randomly rotated unit vector is.
func unitVector(src *rng.Source, y []float32) {
	var s float64
	g := make([]float64, len(y))
	for i := range g {
		g[i] = src.Norm()
		s += g[i] * g[i]
	}
	s = 1 / math.Sqrt(s)
	for i := range y {
		y[i] = float32(g[i] * s)
	}
}

func mustNew(t testing.TB, d int) *Quantizer {
	q, err := New(d)
	require.NoError(t, err)
	return q
}

// refEncode is an independent implementation of the documented code
// layout: the exact float64 transform, boundary search on the angles, and
// bitpack for the index streams.
func refEncode(t testing.TB, q *Quantizer, y []float32) []byte {
	d := len(y)
	n := d / 16
	yf := make([]float64, d)
	for i, v := range y {
		yf[i] = float64(v)
	}
	radii := make([]float64, n)
	angles := newAngles(d)
	Forward(radii, angles, yf)
	var idx [Levels][]uint8
	for l := range angles {
		for _, a := range angles[l] {
			// Number of boundaries strictly below a: ties go to the lower cell.
			idx[l] = append(idx[l], uint8(sort.SearchFloat64s(q.t.bound[l], a)))
		}
	}
	code := make([]byte, q.CodeSize())
	for b, r := range radii {
		binary.LittleEndian.PutUint16(code[2*b:], half.FromFloat32(float32(r)))
	}
	bitpack.Pack(code[2*n:], idx[0], 4)
	bitpack.Pack(code[6*n:], idx[1], 2)
	bitpack.Pack(code[7*n:], append(idx[2], idx[3]...), 2)
	require.Equal(t, 7*n+bitpack.Bytes(3*n, 2), len(code))
	return code
}

// refDecode rebuilds a code with Inverse and the float64 centroids.
func refDecode(q *Quantizer, code []byte) []float64 {
	d := q.Dim()
	n := d / 16
	radii := make([]float64, n)
	for b := range radii {
		radii[b] = float64(half.ToFloat32(binary.LittleEndian.Uint16(code[2*b:])))
	}
	angles := newAngles(d)
	var idx [Levels][]uint8
	for l := range idx {
		idx[l] = make([]uint8, len(angles[l]))
	}
	bitpack.Unpack(idx[0], code[2*n:], 4)
	bitpack.Unpack(idx[1], code[6*n:], 2)
	tail := make([]uint8, 3*n)
	bitpack.Unpack(tail, code[7*n:], 2)
	copy(idx[2], tail[:2*n])
	copy(idx[3], tail[2*n:])
	for l := range angles {
		for i, k := range idx[l] {
			angles[l][i] = q.t.cent[l][k]
		}
	}
	y := make([]float64, d)
	Inverse(y, radii, angles)
	return y
}

func TestCodeSize(t *testing.T) {
	require.Equal(t, 62, mustNew(t, 128).CodeSize())
	for d := 16; d <= 2048; d += 16 {
		q := mustNew(t, d)
		require.Equal(t, d, q.Dim())
		require.Equal(t, (31*d+63)/64, q.CodeSize(), "d=%d", d)
		if d%64 == 0 {
			require.Equal(t, 3.875, float64(8*q.CodeSize())/float64(d), "d=%d", d)
		}
	}
}

func TestNewRejectsBadDimensions(t *testing.T) {
	for _, d := range []int{0, -16, 1, 8, 24, 100, 129} {
		_, err := New(d)
		require.ErrorIs(t, err, ErrDimension, "d=%d", d)
	}
}

func TestEncodeMatchesReference(t *testing.T) {
	src := rng.New(3)
	for _, d := range testDims {
		q := mustNew(t, d)
		y := make([]float32, d)
		// Guard bytes after the code must survive Encode; stale bytes
		// inside it must not leak into the levels that are OR-ed in.
		buf := make([]byte, q.CodeSize()+8)
		for trial := range 50 {
			unitVector(src, y)
			if trial%2 == 1 {
				for i := range y {
					y[i] *= 37 // any scale the radii can hold
				}
			}
			for i := range buf {
				buf[i] = 0xA5
			}
			require.NoError(t, q.Encode(buf, y))
			require.Equal(t, refEncode(t, q, y), buf[:q.CodeSize()], "d=%d trial=%d", d, trial)
			for _, g := range buf[q.CodeSize():] {
				require.Equal(t, byte(0xA5), g, "d=%d: Encode wrote past CodeSize", d)
			}
		}
	}
}

func TestDecodeMatchesReference(t *testing.T) {
	src := rng.New(4)
	for _, d := range testDims {
		q := mustNew(t, d)
		code := make([]byte, q.CodeSize())
		got := make([]float32, d)
		for range 20 {
			// Arbitrary codes, not only ones Encode produces.
			for i := range code {
				code[i] = byte(src.Uint64())
			}
			for b := range d / 16 {
				// Keep radii finite and moderate: clear the sign and the
				// top exponent bit.
				code[2*b+1] &= 0x3f
			}
			q.Decode(got, code)
			want := refDecode(q, code)
			for i := range got {
				require.InDelta(t, want[i], float64(got[i]), 1e-6*(1+math.Abs(want[i])), "d=%d i=%d", d, i)
			}
		}
	}
}

// TestHandMadeLayout pins the documented byte layout at d = 16 (one block,
// 8 bytes) and d = 48 (three blocks, the level-4 stream straddling a byte).
func TestHandMadeLayout(t *testing.T) {
	q := mustNew(t, 16)
	require.Equal(t, 8, q.CodeSize())
	// radius 2.0 = fp16 0x4000; level-1 indices 0..7; level 2: 3,2,1,0;
	// level 3: 1,2; level 4: 3.
	code := []byte{
		0x00, 0x40, // radius, little-endian
		0x10, 0x32, 0x54, 0x76, // level 1, two 4-bit indices a byte, low nibble first
		0x1b,       // level 2: 0b00_01_10_11 = indices 3,2,1,0
		0b11_10_01, // level 3 indices 1,2 in bits 0–3, then level 4 index 3 in bits 4–5
	}
	c := q.t.cent
	r4 := [1]float64{2}
	r3 := [2]float64{r4[0] * math.Cos(c[3][3]), r4[0] * math.Sin(c[3][3])}
	l3 := []int{1, 2}
	var r2 [4]float64
	for i := range r3 {
		r2[2*i], r2[2*i+1] = r3[i]*math.Cos(c[2][l3[i]]), r3[i]*math.Sin(c[2][l3[i]])
	}
	l2 := []int{3, 2, 1, 0}
	var r1 [8]float64
	for i := range r2 {
		r1[2*i], r1[2*i+1] = r2[i]*math.Cos(c[1][l2[i]]), r2[i]*math.Sin(c[1][l2[i]])
	}
	want := make([]float64, 16)
	for j := range r1 {
		want[2*j], want[2*j+1] = r1[j]*math.Cos(c[0][j]), r1[j]*math.Sin(c[0][j])
	}
	got := make([]float32, 16)
	q.Decode(got, code)
	for i := range got {
		require.InDelta(t, want[i], float64(got[i]), 1e-6, "i=%d", i)
	}
	// Centroids lie inside their cells, so re-encoding gives the code back.
	again := make([]byte, 8)
	require.NoError(t, q.Encode(again, got))
	require.Equal(t, code, again)

	// Three blocks: the tail holds level 3 (6 indices, bits 0–11) then
	// level 4 (3 indices, bits 12–17), so block 2's level-4 index crosses
	// into the tail's third byte.
	q = mustNew(t, 48)
	require.Equal(t, 3*7+3, q.CodeSize())
	code = make([]byte, q.CodeSize())
	for b := range 3 {
		binary.LittleEndian.PutUint16(code[2*b:], 0x3c00) // radius 1
	}
	tail := code[21:]
	tail[0] = 0b0000_0000 // level 3 of blocks 0, 1
	tail[1] = 0b0011_0000 // level 3 of block 2 = 0,0; level 4: block 0 = 3 (bits 12–13), block 1 = 0
	tail[2] = 0b0000_0010 // level 4 of block 2 = 2 (bits 16–17)
	got = make([]float32, 48)
	q.Decode(got, code)
	norm := func(v []float32) (s float64) {
		for _, x := range v {
			s += float64(x) * float64(x)
		}
		return math.Sqrt(s)
	}
	// Level-4 index 3 pushes block 0's mass into its upper half, 2 into
	// block 2's upper half, 0 into block 1's lower half.
	h := func(b, side int) float64 { return norm(got[16*b+8*side : 16*b+8*side+8]) }
	assert.InDelta(t, math.Sin(c[3][3]), h(0, 1), 1e-6)
	assert.InDelta(t, math.Cos(c[3][0]), h(1, 0), 1e-6)
	assert.InDelta(t, math.Sin(c[3][2]), h(2, 1), 1e-6)
	require.Equal(t, code, refEncode(t, q, got))
}

// angle1Index runs level1 on a block holding (u, v) in pair slot j (and
// noise elsewhere) and returns that slot's index.
func angle1Index(u, v float32, j int) uint32 {
	yb := []float32{.1, -.2, .3, -.4, .5, -.6, .7, -.8, .9, -1, 1.1, -1.2, 1.3, -1.4, 1.5, -1.6}
	yb[2*j], yb[2*j+1] = u, v
	var s1 [8]float64
	return level1(&s1, yb) >> (4 * j) & 15
}

// TestLevel1MatchesBoundarySearch checks that the reflection test gives
// the same cell as computing atan2 and searching the boundaries, except
// within rounding of a boundary.
func TestLevel1MatchesBoundarySearch(t *testing.T) {
	src := rng.New(5)
	bound := mustNew(t, 16).t.bound[0]
	j := 0
	check := func(u, v float32) {
		a := math.Atan2(float64(v), float64(u))
		if a < 0 {
			a += 2 * math.Pi
		}
		k := sort.SearchFloat64s(bound, a)
		for _, b := range append([]float64{0, 2 * math.Pi}, bound...) {
			if math.Abs(a-b) < 1e-12 {
				return // a tie: either side is right
			}
		}
		j = (j + 1) % 8
		require.Equal(t, uint32(k), angle1Index(u, v, j), "u=%v v=%v angle=%v", u, v, a)
	}
	n := 200000
	if testing.Short() {
		n = 50000
	}
	for range n {
		check(float32(src.Norm()), float32(src.Norm()))
	}
	// Near every boundary, on both sides, at two scales.
	for k := range 16 {
		for _, eps := range []float64{1e-6, 1e-5, 1e-3} {
			for _, s := range []float64{-1, 1} {
				a := float64(k)*math.Pi/8 + s*eps
				check(float32(math.Cos(a)), float32(math.Sin(a)))
				check(float32(3e-20*math.Cos(a)), float32(3e-20*math.Sin(a)))
			}
		}
	}
	// One float32 ulp either side of the π/8, π/4 and 3π/8 directions.
	for _, v0 := range []float32{float32(tanPi8), 1, float32(tan3Pi8)} {
		v := v0
		for range 3 {
			v = math.Nextafter32(v, 0)
		}
		for range 6 {
			check(1, v)
			check(-1, v)
			check(v, -1)
			check(-v, -1)
			v = math.Nextafter32(v, 10)
		}
	}
	require.Equal(t, uint32(0), angle1Index(0, 0, 3))
	require.Equal(t, uint32(0), angle1Index(1, 0, 3))
	require.Equal(t, uint32(7), angle1Index(-1, 1e-30, 3))
	require.Equal(t, uint32(8), angle1Index(-1, -1e-30, 3))
	require.Equal(t, uint32(15), angle1Index(1, -1e-30, 3))
}

func TestNormIsDecodedNorm(t *testing.T) {
	src := rng.New(13)
	q := mustNew(t, 128)
	y := make([]float32, 128)
	dec := make([]float32, 128)
	code := make([]byte, q.CodeSize())
	for range 20 {
		unitVector(src, y)
		for i := range y {
			y[i] *= 3
		}
		require.NoError(t, q.Encode(code, y))
		q.Decode(dec, code)
		var s float64
		for _, v := range dec {
			s += float64(v) * float64(v)
		}
		require.InDelta(t, math.Sqrt(s), float64(q.Norm(code)), 1e-5)
		require.InDelta(t, 3, float64(q.Norm(code)), 3e-3, "fp16 radii keep the norm to 2^-11")
	}
	require.Panics(t, func() { q.Norm(code[:61]) })
}

func TestZeroVector(t *testing.T) {
	q := mustNew(t, 128)
	code := make([]byte, q.CodeSize())
	for i := range code {
		code[i] = 0xff
	}
	require.NoError(t, q.Encode(code, make([]float32, 128)))
	require.Equal(t, make([]byte, q.CodeSize()), code, "the zero vector's code is all zero bytes")
	got := make([]float32, 128)
	for i := range got {
		got[i] = 1
	}
	q.Decode(got, code)
	require.Equal(t, make([]float32, 128), got)
	qq := q.NewQuery()
	y := make([]float32, 128)
	unitVector(rng.New(6), y)
	qq.Reset(y)
	require.Zero(t, qq.Score(code))
}

func TestEncodeErrors(t *testing.T) {
	q := mustNew(t, 32)
	code := make([]byte, q.CodeSize())
	y := make([]float32, 32)
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		clear(y)
		y[20] = bad
		err := q.Encode(code, y)
		require.ErrorIs(t, err, ErrNonFinite)
		require.NotErrorIs(t, err, ErrOverflow)
		require.Contains(t, err.Error(), "component 20")
	}
	for _, big := range []float32{1e5, -7e4, 3e38, math.MaxFloat32} {
		clear(y)
		y[3] = big
		require.ErrorIs(t, q.Encode(code, y), ErrOverflow, "component %v", big)
	}
	// The radius is the block norm, not a component: 16 components of
	// 20000 are each fine but their norm (80000) is not.
	clear(y)
	for i := range 16 {
		y[i] = 20000
	}
	require.ErrorIs(t, q.Encode(code, y), ErrOverflow)
	// Nothing is written on error.
	for i := range code {
		code[i] = 0x5a
	}
	y[0] = float32(math.NaN())
	require.Error(t, q.Encode(code, y))
	for _, c := range code {
		require.Equal(t, byte(0x5a), c)
	}
	// Around the edge, where the radius rounds to 65504 or to Inf, Encode
	// either fails or stores a finite radius: the check and the encoder
	// round the same sum.
	src := rng.New(12)
	var fails, oks int
	for range 2000 {
		clear(y)
		var s float64
		for i := 16; i < 32; i++ {
			y[i] = float32(src.Norm())
			s += float64(y[i]) * float64(y[i])
		}
		f := (65504 + 32*src.Float64()) / math.Sqrt(s) // radius in [65504, 65536)
		for i := 16; i < 32; i++ {
			y[i] *= float32(f)
		}
		if err := q.Encode(code, y); err != nil {
			require.ErrorIs(t, err, ErrOverflow)
			require.Contains(t, err.Error(), "block 1")
			fails++
			continue
		}
		oks++
		require.Equal(t, uint16(0x7bff), binary.LittleEndian.Uint16(code[2:]), "radius must be 65504")
	}
	require.Positive(t, fails)
	require.Positive(t, oks)
	// Just inside fp16's range.
	clear(y)
	y[0] = 65000
	require.NoError(t, q.Encode(code, y))
	got := make([]float32, 32)
	q.Decode(got, code)
	var s float64
	for _, v := range got[:16] {
		s += float64(v) * float64(v)
	}
	require.InDelta(t, 65000, math.Sqrt(s), 65000*1e-3, "decoding keeps the block norm")
	require.InDelta(t, 65000, q.Norm(code), 65000*1e-3)
}

func TestPanicsOnProgrammerErrors(t *testing.T) {
	q := mustNew(t, 32)
	require.Panics(t, func() { _ = q.Encode(make([]byte, q.CodeSize()), make([]float32, 16)) })
	require.Panics(t, func() { _ = q.Encode(make([]byte, q.CodeSize()-1), make([]float32, 32)) })
	require.Panics(t, func() { q.Decode(make([]float32, 31), make([]byte, q.CodeSize())) })
	require.Panics(t, func() { q.Decode(make([]float32, 32), make([]byte, q.CodeSize()-1)) })
	qq := q.NewQuery()
	require.Panics(t, func() { qq.Reset(make([]float32, 16)) })
	require.Panics(t, func() { qq.Score(make([]byte, q.CodeSize()-1)) })
}

func TestScoreMatchesDecode(t *testing.T) {
	src := rng.New(7)
	for _, d := range testDims {
		q := mustNew(t, d)
		qq := q.NewQuery()
		x := make([]float32, d)
		y := make([]float32, d)
		dec := make([]float32, d)
		code := make([]byte, q.CodeSize())
		for trial := range 50 {
			unitVector(src, x)
			unitVector(src, y)
			if trial%5 == 0 {
				copy(y, x) // the large-score case
			}
			require.NoError(t, q.Encode(code, x))
			q.Decode(dec, code)
			qq.Reset(y)
			var dot, ny, nd float64
			for i := range y {
				dot += float64(y[i]) * float64(dec[i])
				ny += float64(y[i]) * float64(y[i])
				nd += float64(dec[i]) * float64(dec[i])
			}
			scale := math.Sqrt(ny * nd)
			require.InDelta(t, dot, float64(qq.Score(code)), 1e-5*scale, "d=%d trial=%d", d, trial)
		}
	}
}

func TestNoAllocations(t *testing.T) {
	q := mustNew(t, 128)
	y := make([]float32, 128)
	unitVector(rng.New(8), y)
	code := make([]byte, q.CodeSize())
	dec := make([]float32, 128)
	qq := q.NewQuery()
	var sink float32
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = q.Encode(code, y) }), "Encode")
	require.Zero(t, testing.AllocsPerRun(100, func() { q.Decode(dec, code) }), "Decode")
	require.Zero(t, testing.AllocsPerRun(100, func() { qq.Reset(y) }), "Reset")
	require.Zero(t, testing.AllocsPerRun(100, func() { sink += qq.Score(code) }), "Score")
	_ = sink
}

// TestConcurrentUse shares one Quantizer between goroutines (run with
// -race); each goroutine has its own Query.
func TestConcurrentUse(t *testing.T) {
	q := mustNew(t, 64)
	y := make([]float32, 64)
	unitVector(rng.New(9), y)
	want := make([]byte, q.CodeSize())
	require.NoError(t, q.Encode(want, y))
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for g := range errs {
		wg.Go(func() {
			code := make([]byte, q.CodeSize())
			qq := q.NewQuery()
			qq.Reset(y)
			for range 200 {
				if err := q.Encode(code, y); err != nil {
					errs[g] = err
					return
				}
				if string(code) != string(want) {
					errs[g] = errors.New("codes differ between goroutines")
					return
				}
				_ = qq.Score(code)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
}
