package turboquant

import "fmt"

// Operations in the rotated domain, where codes live: attention sums
// weighted values there and rotates back once (AccumulateRotated,
// AccumulateRotatedGroup, FinishRotated); scan kernels outside the package
// (ann, cuda) score codes against a query rotated once (RotateQuery,
// PrepareKernelQuery) using the layout Parts describes; graph indexes
// compare codes with each other (CodeInnerProduct).

// AccumulateRotated adds w·x̃ for the vector x̃ that code decodes to into
// acc, kept in the quantizer's rotated domain (len Dim): attention sums
// weighted values there and rotates back once with FinishRotated, instead of
// decoding every value. It does not allocate.
func (q *Quantizer) AccumulateRotated(acc []float32, w float32, code []byte) error {
	if err := q.checkAccumulation(acc, code); err != nil {
		return err
	}
	s := q.get()
	q.accumulate(acc, w, code, s)
	q.put(s)
	return nil
}

// checkAccumulation checks an accumulator (len Dim) and a code.
func (q *Quantizer) checkAccumulation(acc []float32, code []byte) error {
	if len(acc) != q.cfg.Dim {
		return fmt.Errorf("%w: accumulator has %d components, quantizer dim is %d", ErrLength, len(acc), q.cfg.Dim)
	}
	if len(code) < q.size {
		return fmt.Errorf("%w: code of %d bytes, need %d", ErrLength, len(code), q.size)
	}
	return nil
}

// accumulate is AccumulateRotated after validation. The parts' rotated
// domains are laid side by side in acc, in part order.
func (q *Quantizer) accumulate(acc []float32, w float32, code []byte, s *scratch) {
	off, coff := 0, 0
	for _, p := range q.parts {
		p.accumulate(acc[off:off+p.dim], w, code[coff:coff+p.size], s)
		off += p.dim
		coff += p.size
	}
}

// AccumulateRotatedGroup is AccumulateRotated for several accumulators at
// once: it adds ws[i]·x̃ to accs[i] (each len Dim, rotated domain) for every
// i, unpacking the code once. The query heads of a grouped-query attention
// group share each value, so attention over packed values uses this. It
// does not allocate.
func (q *Quantizer) AccumulateRotatedGroup(accs [][]float32, ws []float32, code []byte) error {
	if len(ws) != len(accs) {
		return fmt.Errorf("%w: %d weights for %d accumulators", ErrLength, len(ws), len(accs))
	}
	for _, acc := range accs {
		if err := q.checkAccumulation(acc, code); err != nil {
			return err
		}
	}
	if len(accs) == 0 && len(code) < q.size {
		return fmt.Errorf("%w: code of %d bytes, need %d", ErrLength, len(code), q.size)
	}
	s := q.get()
	q.accumulateGroup(accs, ws, code, s)
	q.put(s)
	return nil
}

// accumulateGroup is AccumulateRotatedGroup after validation.
func (q *Quantizer) accumulateGroup(accs [][]float32, ws []float32, code []byte, s *scratch) {
	off, coff := 0, 0
	for _, p := range q.parts {
		v, f := p.rotatedTerms(code[coff:coff+p.size], s)
		for i, acc := range accs {
			w := ws[i] * f
			acc = acc[off : off+len(v)]
			for j, x := range v {
				acc[j] += w * x
			}
		}
		off += p.dim
		coff += p.size
	}
}

// FinishRotated maps an accumulator filled by AccumulateRotated back to the
// original domain: dst = Πᵀ·acc (per part, channels scattered back). acc is
// left unspecified. It does not allocate.
func (q *Quantizer) FinishRotated(dst, acc []float32) error {
	if len(dst) != q.cfg.Dim || len(acc) != q.cfg.Dim {
		return fmt.Errorf("%w: finish with %d and %d components, quantizer dim is %d", ErrLength, len(dst), len(acc), q.cfg.Dim)
	}
	if q.channels == nil {
		q.parts[0].rot.Inverse(dst, acc)
		return nil
	}
	off := 0
	for i, p := range q.parts {
		sub := acc[off : off+p.dim]
		p.rot.Inverse(sub, sub)
		for j, ch := range q.channels[i] {
			dst[ch] = sub[j]
		}
		off += p.dim
	}
	return nil
}

// RotateQuery writes Π·y, the query in the rotated domain the codes of a
// single-part quantizer live in, to dst (both len Dim). With outlier
// channels it fails with ErrConfig.
func (q *Quantizer) RotateQuery(dst, y []float32) error {
	if len(q.parts) != 1 {
		return fmt.Errorf("%w: RotateQuery needs a quantizer without outlier channels", ErrConfig)
	}
	if len(dst) != q.cfg.Dim {
		return fmt.Errorf("%w: output has %d components, quantizer dim is %d", ErrLength, len(dst), q.cfg.Dim)
	}
	if err := q.checkVector(y, "query"); err != nil {
		return err
	}
	q.parts[0].rot.Forward(dst, y)
	return nil
}

// CodeInnerProduct returns ⟨Decode(a), Decode(b)⟩ computed in the rotated
// domain (the rotation is orthogonal, so this is the same number up to
// rounding) without rotating either back: the symmetric code-to-code score
// graph indexes build with. It does not allocate.
func (q *Quantizer) CodeInnerProduct(a, b []byte) (float32, error) {
	if len(a) < q.size || len(b) < q.size {
		return 0, fmt.Errorf("%w: codes of %d and %d bytes, need %d", ErrLength, len(a), len(b), q.size)
	}
	sa, sb := q.get(), q.get()
	defer q.put(sa)
	defer q.put(sb)
	var sum float64
	off := 0
	for _, p := range q.parts {
		va, fa := p.rotatedTerms(a[off:off+p.size], sa)
		vb, fb := p.rotatedTerms(b[off:off+p.size], sb)
		var s0, s1 float32
		vb = vb[:len(va)]
		n := len(va) &^ 1
		for j := 0; j < n; j += 2 {
			s0 += va[j] * vb[j]
			s1 += va[j+1] * vb[j+1]
		}
		if n < len(va) {
			s0 += va[n] * vb[n]
		}
		sum += float64(fa) * float64(fb) * float64(s0+s1)
		off += p.size
	}
	return float32(sum), nil
}

// PrepareKernelQuery writes what a kernel needs to score codes against y
// (len Dim, finite): rot (len Dim) gets each part's rotated query Π·y_part,
// parts side by side; proj gets, for each Prod part in order, the sketch
// projection S·Π·y_part (len the sum of their SketchRows; may be nil when
// there are none). These are the values the Query's lookup tables are
// built from.
func (q *Quantizer) PrepareKernelQuery(rot, proj, y []float32) error {
	if err := q.checkVector(y, "query"); err != nil {
		return err
	}
	rows := 0
	for _, c := range q.parts {
		if c.sketch != nil {
			rows += c.sketch.Rows()
		}
	}
	if len(rot) != q.cfg.Dim || len(proj) < rows {
		return fmt.Errorf("%w: kernel query buffers of %d and %d, need %d and %d", ErrLength, len(rot), len(proj), q.cfg.Dim, rows)
	}
	s := q.get()
	defer q.put(s)
	off, poff := 0, 0
	for i, c := range q.parts {
		sub := y
		if q.channels != nil {
			sub = gather(s.parts[i], y, q.channels[i])
		}
		r := rot[off : off+c.dim]
		c.rot.Forward(r, sub)
		if c.sketch != nil {
			c.sketch.Project(proj[poff:poff+c.sketch.Rows()], r, s.sk)
			poff += c.sketch.Rows()
		}
		off += c.dim
	}
	return nil
}
