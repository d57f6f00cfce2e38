package qjl

import "fmt"

// Query is a vector y sketched once and scored against many codes. Reset
// prepares it (no allocation); Dot and Estimate then only read it, so one
// prepared Query may be scored from several goroutines, but Reset must not
// run concurrently with them.
type Query struct {
	s       *Sketch
	proj    []float32      // S·y, zero-padded to a multiple of 8 rows
	lut     [][256]float32 // lut[g][c] = Σ_{k<8} proj[8g+k]·(2·bit_k(c) − 1)
	scratch []float32
	scale   float32
}

// NewQuery allocates a query's buffers: the projection, a 256-entry table
// per 8 rows (1 KiB per code byte) and the projection scratch.
func (s *Sketch) NewQuery() *Query {
	g := s.CodeBytes()
	return &Query{
		s:       s,
		proj:    make([]float32, 8*g),
		lut:     make([][256]float32, g),
		scratch: make([]float32, s.ScratchLen()),
		scale:   Scale(s.rows),
	}
}

// Reset makes q the query for y (len Dim; panics otherwise): it computes S·y
// and the lookup tables. It does not allocate.
func (q *Query) Reset(y []float32) {
	if len(y) != q.s.dim {
		panic(fmt.Sprintf("qjl: query of length %d for a sketch of dim %d", len(y), q.s.dim))
	}
	q.s.Project(q.proj, y, q.scratch)
	// Rows past Rows() stay zero, so the unused high bits of a code's last
	// byte add ±0 whatever their value.
	for g := range q.lut {
		buildLUT(&q.lut[g], q.proj[8*g:8*g+8:8*g+8])
	}
}

// buildLUT fills t[c] = Σ_k ±p[k] (+ where bit k of c is set) from pair and
// nibble tables, as the balanced sum ((±p0 ± p1) + (±p2 ± p3)) +
// ((±p4 ± p5) + (±p6 ± p7)): 16 + 32 + 256 adds per 8 rows.
func buildLUT(t *[256]float32, p []float32) {
	p = p[:8:8]
	var lo, hi [16]float32
	nibble(&lo, p[0], p[1], p[2], p[3])
	nibble(&hi, p[4], p[5], p[6], p[7])
	for h, hv := range hi {
		row := t[16*h : 16*h+16 : 16*h+16]
		for l, lv := range lo {
			row[l] = lv + hv
		}
	}
}

// nibble sets n[c] = (±a ± b) + (±c ± d), signs from the bits of c.
func nibble(n *[16]float32, a, b, c, d float32) {
	ab := [4]float32{-a - b, a - b, -a + b, a + b}
	cd := [4]float32{-c - d, c - d, -c + d, c + d}
	for i := range n {
		n[i] = ab[i&3] + cd[i>>2]
	}
}

// Projection returns S·y for the current query (len Rows). It aliases the
// query's storage: read-only, valid until the next Reset.
func (q *Query) Projection() []float32 { return q.proj[:q.s.rows] }

// Dot returns Σ_i (S·y)_i·(2·bit_i − 1) = ⟨S·y, sign(S·k)⟩ for a code written
// by Encode: one table lookup per code byte. signs must hold at least
// CodeBytes bytes (Dot panics otherwise). It does not allocate.
func (q *Query) Dot(signs []byte) float32 {
	lut := q.lut
	signs = signs[:len(lut)]
	var a0, a1, a2, a3 float32
	i := 0
	for ; i+4 <= len(signs); i += 4 {
		c := signs[i : i+4 : i+4]
		t := lut[i : i+4 : i+4]
		a0 += t[0][c[0]]
		a1 += t[1][c[1]]
		a2 += t[2][c[2]]
		a3 += t[3][c[3]]
	}
	for ; i < len(signs); i++ {
		a0 += lut[i][signs[i]]
	}
	return (a0 + a1) + (a2 + a3)
}

// Estimate returns the QJL estimate of ⟨y, k⟩ from k's code and norm ‖k‖:
// √(π/2)/rows · norm · Dot(signs).
func (q *Query) Estimate(signs []byte, norm float32) float32 {
	return float32(q.scale*norm) * q.Dot(signs)
}
