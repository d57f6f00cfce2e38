package turboquant

import (
	"fmt"

	"github.com/turboquant-go/tq/internal/bitpack"
	"github.com/turboquant-go/tq/polarquant"
	"github.com/turboquant-go/tq/qjl"
)

// Query is a query vector prepared once (rotated, lookup tables built) and
// scored against many codes without decoding them. Score(code) is the inner
// product ⟨y, Decode(code)⟩ up to float32 rounding. A Query is not safe for
// concurrent use; make one per goroutine with NewQuery.
type Query struct {
	q      *Quantizer
	parts  []partQuery
	gather [2][]float32
}

// partQuery is the prepared query of one part.
type partQuery struct {
	c    *part
	rq   []float32  // the rotated query
	segs []segQuery // the index segments: the head, and a split's tail
	sk   *qjl.Query
	pq   *polarquant.Query
}

// segQuery scores one run of packed indices against its coordinates of rq.
type segQuery struct {
	rq     []float32 // the segment's coordinates of the part's rq
	bits   int
	cent   []float32
	offIdx int
	// lut holds rq[j]·centroid[k] at j<<bits+k for bits ≤ maxLUTBits, so a
	// coordinate costs one lookup and no multiply.
	lut []float32
	// byteLUT (bits == 1) holds, per code byte position p and byte value v,
	// the sum over its 8 coordinates: one lookup per 8 coordinates.
	byteLUT []float32
}

func newSegQuery(rq []float32, bits int, cent []float32, offIdx int) segQuery {
	s := segQuery{rq: rq, bits: bits, cent: cent, offIdx: offIdx}
	switch {
	case bits == 1:
		s.byteLUT = make([]float32, bitpack.Bytes(len(rq), 1)*256)
	case bits > 1 && bits <= maxLUTBits:
		s.lut = make([]float32, len(rq)<<bits)
	}
	return s
}

// maxLUTBits is the widest code with a per-coordinate lookup table: at
// d=128 and 4 bits the table is 8 KiB, at 5 bits it would be 16 KiB and
// no faster than a multiply.
const maxLUTBits = 4

// NewQuery allocates a prepared query; Reset loads a vector into it.
func (q *Quantizer) NewQuery() *Query {
	qq := &Query{q: q, parts: make([]partQuery, len(q.parts))}
	for i, c := range q.parts {
		p := &qq.parts[i]
		p.c = c
		p.rq = make([]float32, c.dim)
		switch {
		case c.method == Polar:
			p.pq = c.polar.NewQuery()
		case c.bits > 0:
			p.segs = append(p.segs, newSegQuery(p.rq[:c.head], c.bits, c.cb.Centroids32, c.offIdx))
			if t := c.tail; t != nil {
				p.segs = append(p.segs, newSegQuery(p.rq[c.head:], t.bits, t.cb.Centroids32, t.offIdx))
			}
		}
		if c.sketch != nil {
			p.sk = c.sketch.NewQuery()
		}
	}
	for i, ch := range q.channels {
		qq.gather[i] = make([]float32, len(ch))
	}
	return qq
}

// Reset prepares y (len Dim, finite) for scoring. It does not allocate.
func (qq *Query) Reset(y []float32) error {
	if err := qq.q.checkVector(y, "query"); err != nil {
		return err
	}
	for i := range qq.parts {
		sub := y
		if qq.q.channels != nil {
			sub = gather(qq.gather[i], y, qq.q.channels[i])
		}
		qq.parts[i].reset(sub)
	}
	return nil
}

func (p *partQuery) reset(y []float32) {
	c := p.c
	c.rot.Forward(p.rq, y)
	if p.pq != nil {
		p.pq.Reset(p.rq)
	}
	for i := range p.segs {
		p.segs[i].reset()
	}
	if p.sk != nil {
		p.sk.Reset(p.rq)
	}
}

func (s *segQuery) reset() {
	switch {
	case s.byteLUT != nil:
		buildByteLUT1(s.byteLUT, s.rq, s.cent)
	case s.lut != nil:
		k := len(s.cent)
		for j, r := range s.rq {
			row := s.lut[j*k : j*k+k : j*k+k]
			for t, cv := range s.cent {
				row[t] = r * cv
			}
		}
	}
}

// buildByteLUT1 fills the 1-bit table: for byte position p and value v,
// Σ_t rq[8p+t]·cent[bit t of v]. Each entry extends the entry with its top
// bit cleared by one coordinate, so a 256-entry row costs 256 adds.
func buildByteLUT1(lut, rq []float32, cent []float32) {
	for p := 0; p*8 < len(rq); p++ {
		row := lut[p*256 : p*256+256 : p*256+256]
		coords := rq[p*8 : min(p*8+8, len(rq))]
		var base float32
		for _, r := range coords {
			base += r * cent[0]
		}
		row[0] = base
		for t, r := range coords {
			d := r * (cent[1] - cent[0])
			lo := 1 << t
			for v := lo; v < 2*lo; v++ {
				row[v] = row[v-lo] + d
			}
		}
		// Bits beyond the last coordinate are zero in valid codes; the rest
		// of the row stays unused.
	}
}

// Score returns ⟨y, Decode(code)⟩ for the prepared query y.
func (qq *Query) Score(code []byte) (float32, error) {
	if len(code) < qq.q.size {
		return 0, fmt.Errorf("%w: code of %d bytes, need %d", ErrLength, len(code), qq.q.size)
	}
	return qq.score(code), nil
}

// ScoreBatch scores the back-to-back codes (len a multiple of CodeSize) into
// dst (one score per code).
func (qq *Query) ScoreBatch(dst []float32, codes []byte) error {
	cs := qq.q.size
	if len(codes)%cs != 0 {
		return fmt.Errorf("%w: %d code bytes is not a multiple of the code size %d", ErrLength, len(codes), cs)
	}
	n := len(codes) / cs
	if len(dst) < n {
		return fmt.Errorf("%w: %d scores for %d codes", ErrLength, len(dst), n)
	}
	for i := range n {
		dst[i] = qq.score(codes[i*cs : (i+1)*cs])
	}
	return nil
}

func (qq *Query) score(code []byte) float32 {
	var s float32
	off := 0
	for i := range qq.parts {
		p := &qq.parts[i]
		s += p.score(code[off : off+p.c.size])
		off += p.c.size
	}
	return s
}

func (p *partQuery) score(code []byte) float32 {
	c := p.c
	if p.pq != nil {
		s := p.pq.Score(code[c.offIdx:])
		if c.corr != NoCorrection {
			s *= getScalar(code[c.offCorr:], c.prec)
		}
		return s
	}
	var s float32
	for i := range p.segs {
		s += p.segs[i].score(code)
	}
	if c.method == Prod {
		g := getScalar(code[c.offGamma:], c.prec)
		s += g * p.sk.Estimate(code[c.offSigns:c.offGamma], 1)
	}
	f := getScalar(code[c.offNorm:], c.prec)
	if c.corr != NoCorrection {
		f *= getScalar(code[c.offCorr:], c.prec)
	}
	return f * s
}

// score is Σ_j rq[j]·centroid[index j] over the segment's indices in code.
func (s *segQuery) score(code []byte) float32 {
	n := len(s.rq)
	idx := code[s.offIdx : s.offIdx+bitpack.Bytes(n, s.bits)]
	switch {
	case s.byteLUT != nil:
		return scoreByteLUT(s.byteLUT, idx)
	case s.bits == 4:
		return scoreLUT4(s.lut, idx, n)
	case s.bits == 3:
		return scoreLUT3(s.lut, idx, n)
	case s.bits == 2:
		return scoreLUT2(s.lut, idx, n)
	}
	return scoreGather(s.rq, s.cent, idx, s.bits)
}

func scoreByteLUT(lut []float32, idx []byte) float32 {
	var s0, s1 float32
	n := len(idx) &^ 1
	for p := 0; p < n; p += 2 {
		s0 += lut[p<<8|int(idx[p])]
		s1 += lut[(p+1)<<8|int(idx[p+1])]
	}
	if n < len(idx) {
		s0 += lut[n<<8|int(idx[n])]
	}
	return s0 + s1
}

// scoreLUT4: each byte holds two 4-bit indices, low nibble first.
func scoreLUT4(lut []float32, idx []byte, dim int) float32 {
	var s0, s1 float32
	full := dim / 2
	lut = lut[: dim*16 : dim*16]
	for i, b := range idx[:full] {
		row := lut[i*32 : i*32+32 : i*32+32]
		s0 += row[b&15]
		s1 += row[16|b>>4]
	}
	if dim%2 == 1 {
		s0 += lut[full<<5|int(idx[full]&15)]
	}
	return s0 + s1
}

// scoreLUT2: each byte holds four 2-bit indices, lowest bits first.
func scoreLUT2(lut []float32, idx []byte, dim int) float32 {
	var s0, s1 float32
	full := dim / 4
	lut = lut[: dim*4 : dim*4]
	for i, b := range idx[:full] {
		row := lut[i*16 : i*16+16 : i*16+16]
		w := int(b)
		s0 += row[w&3] + row[4|w>>2&3]
		s1 += row[8|w>>4&3] + row[12|w>>6]
	}
	for j := full * 4; j < dim; j++ {
		s0 += lut[j<<2|int(bitpack.Get(idx, j, 2))]
	}
	return s0 + s1
}

// scoreLUT3: eight 3-bit indices fill three bytes.
func scoreLUT3(lut []float32, idx []byte, dim int) float32 {
	var s0, s1 float32
	groups := dim / 8
	lut = lut[: dim*8 : dim*8]
	for g := range groups {
		b := idx[3*g : 3*g+3 : 3*g+3]
		w := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
		row := lut[g*64 : g*64+64 : g*64+64]
		s0 += row[w&7] + row[8|w>>3&7] + row[16|w>>6&7] + row[24|w>>9&7]
		s1 += row[32|w>>12&7] + row[40|w>>15&7] + row[48|w>>18&7] + row[56|w>>21&7]
	}
	for j := groups * 8; j < dim; j++ {
		s0 += lut[j<<3|int(bitpack.Get(idx, j, 3))]
	}
	return s0 + s1
}

// scoreGather is the wide-code path (5–8 bits): centroid gather and multiply.
func scoreGather(rq, cent []float32, idx []byte, bits int) float32 {
	var s0, s1 float32
	if bits == 8 {
		idx = idx[:len(rq)]
		n := len(rq) &^ 1
		for j := 0; j < n; j += 2 {
			s0 += rq[j] * cent[idx[j]]
			s1 += rq[j+1] * cent[idx[j+1]]
		}
		if n < len(rq) {
			s0 += rq[n] * cent[idx[n]]
		}
		return s0 + s1
	}
	for j, r := range rq {
		s0 += r * cent[bitpack.Get(idx, j, bits)]
	}
	return s0 + s1
}
