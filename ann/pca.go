package ann

import (
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/turboquant-go/tq/internal/simd"
	"github.com/turboquant-go/tq/internal/vec"
	"github.com/turboquant-go/tq/lloydmax"
	"github.com/turboquant-go/tq/turboquant"
)

// MaxPCADim bounds PCA's dimension: the fitted axes are a dim×dim matrix
// and the fit an eigendecomposition of that size.
const MaxPCADim = 4096

// pcaSample bounds the vectors the covariance is estimated from.
const pcaSample = 20000

// PCA is a fitted quantizer, the alternative to TQ where the data has a low
// intrinsic dimension (images, pixels) and a data-oblivious rotation spends
// its bits on every coordinate alike. FitPCA rotates onto the principal axes
// of a sample of the base (after subtracting its mean) and shares out the
// bits·dim bits of a code among the axes by reverse water-filling: each bit
// goes where it removes the most expected squared error, so high-variance
// axes get up to 8 bits and low-variance ones none. Each kept axis, scaled to
// unit variance, is coded with the Lloyd–Max codebook of a unit Gaussian.
//
// A code is bits·dim bits rounded up to whole bytes, the same budget as TQ's
// MSE codes (without their norm) and as a product quantizer of bits·dim
// bits. No axis's field straddles a byte (the small fields of the weak axes
// fill the gaps the wide ones leave; the allocation gives up the cheapest
// bits when they do not fit), so a query scores a code with one table
// lookup per byte, in the flat scan's byte-table kernel. Unlike TQ it needs
// a fit (a pass over a sample and an eigendecomposition), and its model of
// the data must be stored with the index (the axes: kept·dim floats).
type PCA struct {
	dim, bits int
	metric    Metric
	mean      []float32 // len dim; of the normalized vectors for Cosine
	axes      []float32 // [kept][dim], orthonormal rows by decreasing variance
	alloc     []uint8   // per kept axis: its bits, 1–8
	fieldByte []int32   // per kept axis: the code byte holding its field
	shift     []uint8   // per kept axis: the field's lowest bit in that byte
	sigma     []float32 // per kept axis: the standard deviation of the data on it
	dropVar   float64   // the variance on the axes that get no bits
	codeSize  int

	books  [9]*lloydmax.Codebook // unit-Gaussian codebooks by bits
	levels []float32             // per kept axis, at offs[i]: sigma[i]·centroid
	offs   []int
}

// FitPCA fits a PCA quantizer of bits (1–8) bits per dimension on the
// row-major vectors xs (at least 2): the mean of all of them, the principal
// axes of up to 20,000 of them (evenly spaced), and the bit allocation. For
// Cosine the vectors are normalized first. Errors wrap ErrConfig,
// ErrDimension or turboquant.ErrNonFinite.
func FitPCA(m Metric, xs []float32, dim, bits int) (*PCA, error) {
	if dim < 2 || dim > MaxPCADim {
		return nil, fmt.Errorf("%w: PCA dimension %d outside [2, %d]", ErrConfig, dim, MaxPCADim)
	}
	if bits < 1 || bits > 8 {
		return nil, fmt.Errorf("%w: PCA bits %d outside [1, 8]", ErrConfig, bits)
	}
	if m != InnerProduct && m != Cosine && m != L2 {
		return nil, fmt.Errorf("%w: unknown metric %d", ErrConfig, m)
	}
	if len(xs)%dim != 0 || len(xs) < 2*dim {
		return nil, fmt.Errorf("%w: %d floats is not at least two %d-d vectors", ErrDimension, len(xs), dim)
	}
	if i := vec.NonFinite(xs); i >= 0 {
		return nil, fmt.Errorf("%w: vector %d, component %d", turboquant.ErrNonFinite, i/dim, i%dim)
	}
	mean, err := Mean(m, xs, dim)
	if err != nil {
		return nil, err
	}
	n := len(xs) / dim
	rows := min(n, pcaSample)
	// The covariance of the sample, accumulated in chunks of centred rows.
	cov := mat.NewSymDense(dim, nil)
	const chunk = 512
	buf := make([]float64, chunk*dim)
	for lo := 0; lo < rows; lo += chunk {
		hi := min(rows, lo+chunk)
		for r := lo; r < hi; r++ {
			x := xs[(r*n/rows)*dim:][:dim]
			s := metricScale(m, x)
			row := buf[(r-lo)*dim : (r-lo+1)*dim]
			for j, v := range x {
				row[j] = s*float64(v) - float64(mean[j])
			}
		}
		cov.SymRankK(cov, 1/float64(rows), mat.NewDense(hi-lo, dim, buf[:(hi-lo)*dim]).T())
	}
	var es mat.EigenSym
	if !es.Factorize(cov, true) {
		return nil, fmt.Errorf("%w: the sample's covariance did not factorize", ErrConfig)
	}
	vals := es.Values(nil)
	var vecs mat.Dense
	es.VectorsTo(&vecs)
	order := make([]int, dim)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return vals[order[a]] > vals[order[b]] })
	variance := make([]float64, dim)
	for i, o := range order {
		variance[i] = max(vals[o], 0)
	}
	books, err := unitGaussianBooks()
	if err != nil {
		return nil, err
	}
	alloc := allocateBits(variance, bits*dim, books)
	fitBytes(alloc, variance, codeBytes(bits, dim), books)
	p := &PCA{dim: dim, bits: bits, metric: m, mean: mean}
	for i, o := range order {
		if alloc[i] == 0 {
			p.dropVar += variance[i]
			continue
		}
		for j := range dim {
			p.axes = append(p.axes, float32(vecs.At(j, o)))
		}
		p.alloc = append(p.alloc, alloc[i])
		p.sigma = append(p.sigma, float32(math.Sqrt(variance[i])))
	}
	if err := p.prepare(books); err != nil {
		return nil, err
	}
	return p, nil
}

// unitGaussianBooks returns the unit-variance Lloyd–Max codebooks, by bits.
func unitGaussianBooks() ([9]*lloydmax.Codebook, error) {
	var books [9]*lloydmax.Codebook
	for b := 1; b <= 8; b++ {
		cb, err := lloydmax.Get(lloydmax.FamilyGaussian, 1, b)
		if err != nil {
			return books, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		books[b] = cb
	}
	return books, nil
}

// allocateBits shares total bits among axes of the given variances, at most
// 8 each, greedily: each bit goes to the axis whose expected squared error it
// lowers most. The codebooks' distortion falls convexly with bits, so the
// greedy allocation is optimal for the model.
func allocateBits(variance []float64, total int, books [9]*lloydmax.Codebook) []uint8 {
	dist := func(b uint8) float64 {
		if b == 0 {
			return 1
		}
		return books[b].Distortion
	}
	alloc := make([]uint8, len(variance))
	for range total {
		best, gain := -1, -1.0
		for i, v := range variance {
			if alloc[i] < 8 {
				if g := v * (dist(alloc[i]) - dist(alloc[i]+1)); g > gain {
					best, gain = i, g
				}
			}
		}
		if best < 0 {
			break
		}
		alloc[best]++
	}
	return alloc
}

// codeBytes is the code size of a PCA quantizer of bits per dimension.
func codeBytes(bits, dim int) int { return (bits*dim + 7) / 8 }

// fitBytes makes alloc's fields pack into n bytes without straddling one
// (packFields). While they do not fit it takes back a bit, the cheapest in
// expected squared error among the decrements that free a byte (else the
// cheapest of all); then it gives bits back where they still fit, the most
// valuable first, so that little of the budget goes to gaps. Only the
// cheapest axis of each width is tried at each step: packing depends on
// the widths alone.
func fitBytes(alloc []uint8, variance []float64, n int, books [9]*lloydmax.Codebook) {
	dist := func(b uint8) float64 {
		if b == 0 {
			return 1
		}
		return books[b].Distortion
	}
	// byWidth returns, per width, the axis whose step by delta (±1) is
	// best: the lowest cost for −1, the highest gain for +1; −1 for none.
	byWidth := func(delta int) (pick [9]int) {
		score := [9]float64{}
		for w := range pick {
			pick[w] = -1
		}
		for i, b := range alloc {
			nb := int(b) + delta
			if nb < 0 || nb > 8 {
				continue
			}
			s := variance[i] * (dist(min(b, uint8(nb))) - dist(max(b, uint8(nb))))
			if pick[b] < 0 || (delta < 0 && s < score[b]) || (delta > 0 && s > score[b]) {
				pick[b], score[b] = i, s
			}
		}
		return pick
	}
	cost := func(i int) float64 { return variance[i] * (dist(alloc[i]-1) - dist(alloc[i])) }
	_, _, used := packFields(alloc)
	for used > n {
		best, freeing := -1, false
		for _, i := range byWidth(-1) {
			if i < 0 {
				continue
			}
			alloc[i]--
			_, _, u := packFields(alloc)
			alloc[i]++
			if f := u < used; (f && !freeing) || (f == freeing && (best < 0 || cost(i) < cost(best))) {
				best, freeing = i, f
			}
		}
		alloc[best]--
		_, _, used = packFields(alloc)
	}
	for {
		best, gain := -1, 0.0
		for _, i := range byWidth(+1) {
			if i < 0 {
				continue
			}
			alloc[i]++
			_, _, u := packFields(alloc)
			g := variance[i] * (dist(alloc[i]-1) - dist(alloc[i]))
			alloc[i]--
			if u <= n && g > gain {
				best, gain = i, g
			}
		}
		if best < 0 {
			return
		}
		alloc[best]++
	}
}

// packFields places each axis's field (alloc[i] bits; none for 0) in a code
// byte, best fit by decreasing width: a field goes to the byte whose free
// bits fit it most tightly, else to a new byte. It returns each field's
// byte and lowest bit, and the bytes used. It is deterministic, so a
// quantizer read back from disk lays out its codes exactly as the one that
// wrote them.
func packFields(alloc []uint8) (fieldByte []int32, shift []uint8, used int) {
	order := make([]int, len(alloc))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return alloc[order[a]] > alloc[order[b]] })
	fieldByte, shift = make([]int32, len(alloc)), make([]uint8, len(alloc))
	var free [8][]int32 // free[f]: bytes with f free bits (1–7), as a stack
	for _, i := range order {
		w := int(alloc[i])
		if w == 0 {
			break
		}
		f := w
		for f < 8 && len(free[f]) == 0 {
			f++
		}
		var at int32
		if f == 8 {
			at = int32(used)
			used++
		} else {
			at = free[f][len(free[f])-1]
			free[f] = free[f][:len(free[f])-1]
		}
		fieldByte[i], shift[i] = at, uint8(8-f)
		if f > w {
			free[f-w] = append(free[f-w], at)
		}
	}
	return fieldByte, shift, used
}

// prepare derives the code layout and the per-axis levels. It fails when
// the fields do not pack into the code size (only a corrupt file can ask
// for that).
func (p *PCA) prepare(books [9]*lloydmax.Codebook) error {
	p.books = books
	p.codeSize = codeBytes(p.bits, p.dim)
	var used int
	if p.fieldByte, p.shift, used = packFields(p.alloc); used > p.codeSize {
		return fmt.Errorf("%w: PCA fields need %d bytes, the code has %d", ErrConfig, used, p.codeSize)
	}
	p.offs = make([]int, len(p.alloc))
	p.levels = p.levels[:0]
	for i, b := range p.alloc {
		p.offs[i] = len(p.levels)
		for _, c := range books[b].Centroids32 {
			p.levels = append(p.levels, p.sigma[i]*c)
		}
	}
	return nil
}

// Dim is the vector dimension.
func (p *PCA) Dim() int { return p.dim }

// Metric is the distance the codes are scored by.
func (p *PCA) Metric() Metric { return p.metric }

// CodeSize is the bytes of one code: bits·dim bits, rounded up.
func (p *PCA) CodeSize() int { return p.codeSize }

// Kept is the number of principal axes that get bits.
func (p *PCA) Kept() int { return len(p.alloc) }

// project writes the coordinates of x − mean (x normalized first for Cosine)
// on the kept axes into dst, using r (len dim) as scratch.
func (p *PCA) project(dst, r, x []float32) {
	s := float32(metricScale(p.metric, x))
	for j, v := range x {
		r[j] = s*v - p.mean[j]
	}
	p.onAxes(dst, r)
}

// onAxes writes the coordinates of r on the kept axes into dst.
func (p *PCA) onAxes(dst, r []float32) {
	clear(dst)
	simd.Dot(dst, len(dst), r, p.axes, len(p.alloc), p.dim, p.dim, nil) // Dot adds
}

// Encode writes the codes of the row-major vectors xs to dst, in parallel.
func (p *PCA) Encode(dst []byte, xs []float32) error {
	d, cs := p.dim, p.codeSize
	if len(xs)%d != 0 {
		return fmt.Errorf("%w: %d floats is not a whole number of %d-d vectors", ErrDimension, len(xs), d)
	}
	n := len(xs) / d
	if len(dst) < n*cs {
		return fmt.Errorf("%w: code buffer of %d bytes, need %d for %d vectors", ErrConfig, len(dst), n*cs, n)
	}
	if i := vec.NonFinite(xs); i >= 0 {
		return fmt.Errorf("%w: vector %d, component %d", turboquant.ErrNonFinite, i/d, i%d)
	}
	workers := min(runtime.GOMAXPROCS(0), max(1, n/64))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, y := make([]float32, d), make([]float32, len(p.alloc))
			for i := w * n / workers; i < (w+1)*n/workers; i++ {
				p.project(y, r, xs[i*d:(i+1)*d])
				p.pack(dst[i*cs:(i+1)*cs], y)
			}
		}()
	}
	wg.Wait()
	return nil
}

// pack writes the codes of the projected coordinates y into their fields.
func (p *PCA) pack(code []byte, y []float32) {
	clear(code)
	for i, b := range p.alloc {
		c := byte(p.books[b].Quantize(y[i] / p.sigma[i]))
		code[p.fieldByte[i]] |= c << p.shift[i]
	}
}

// field returns axis i's index in code.
func (p *PCA) field(code []byte, i int) int {
	return int(code[p.fieldByte[i]]>>p.shift[i]) & (1<<p.alloc[i] - 1)
}

// unpack calls f with each kept axis and the level its code selects.
func (p *PCA) unpack(code []byte, f func(i int, level float32)) {
	for i := range p.alloc {
		f(i, p.levels[p.offs[i]+p.field(code, i)])
	}
}

// Decode reconstructs the vector a code stands for (normalized for Cosine).
func (p *PCA) Decode(dst []float32, code []byte) error {
	if len(code) != p.codeSize || len(dst) != p.dim {
		return fmt.Errorf("%w: code of %d bytes into %d floats, want %d and %d", ErrDimension, len(code), len(dst), p.codeSize, p.dim)
	}
	copy(dst, p.mean)
	p.unpack(code, func(i int, v float32) {
		for j, a := range p.axes[i*p.dim : (i+1)*p.dim] {
			dst[j] += v * a
		}
	})
	return nil
}

// Distance is the symmetric distance between two codes, from their
// reconstructions.
func (p *PCA) Distance(a, b []byte) (float32, error) {
	if len(a) != p.codeSize || len(b) != p.codeSize {
		return 0, fmt.Errorf("%w: codes of %d and %d bytes, want %d", ErrDimension, len(a), len(b), p.codeSize)
	}
	if p.metric == L2 {
		ya, yb := make([]float32, len(p.alloc)), make([]float32, len(p.alloc))
		p.unpack(a, func(i int, v float32) { ya[i] = v })
		p.unpack(b, func(i int, v float32) { yb[i] = v })
		var s float64
		for i := range ya {
			d := float64(ya[i] - yb[i])
			s += d * d
		}
		return float32(s + 2*p.dropVar), nil
	}
	xa, xb := make([]float32, p.dim), make([]float32, p.dim)
	_ = p.Decode(xa, a)
	_ = p.Decode(xb, b)
	if p.metric == Cosine {
		return ExactDistance(Cosine, xa, xb), nil
	}
	return float32(-dot64(xa, xb)), nil
}

// NewQuery returns a prepared query for asymmetric distances.
func (p *PCA) NewQuery() Query {
	q := &pcaQuery{p: p, r: make([]float32, p.dim), y: make([]float32, len(p.alloc)), tab: make([]float32, len(p.levels))}
	q.lut.rows = make([][256]uint16, p.codeSize)
	q.lut.f = make([][256]float32, p.codeSize)
	return q
}

// pcaQuery scores codes with one lookup per code byte: tab holds, for each
// axis and level, that level's term of the distance, and lut sums the terms
// of the fields each byte value holds.
type pcaQuery struct {
	p    *PCA
	r, y []float32
	tab  []float32
	lut  byteLUT
	base float64 // the distance's part that does not depend on the code
	set  bool
}

// Reset prepares y as the query. For L2 the distance is ‖y − x̂‖² over the
// kept axes plus, for the rest, ‖y − μ‖² off the kept axes and the dropped
// variance (the expected squared norm of x there); for inner products it is
// −⟨y, μ⟩ − Σ y_i x̂_i over the kept axes (1 + that, y normalized, for
// Cosine).
func (q *pcaQuery) Reset(y []float32) error {
	p := q.p
	if len(y) != p.dim {
		return fmt.Errorf("%w: query has %d components, index dim is %d", ErrDimension, len(y), p.dim)
	}
	if i := vec.NonFinite(y); i >= 0 {
		return fmt.Errorf("%w: query component %d", turboquant.ErrNonFinite, i)
	}
	switch p.metric {
	case L2:
		p.project(q.y, q.r, y)
		rr := dot64(q.r, q.r)
		for i, yi := range q.y {
			rr -= float64(yi) * float64(yi)
			for j, v := range p.levels[p.offs[i]:p.end(i)] {
				d := yi - v
				q.tab[p.offs[i]+j] = d * d
			}
		}
		q.base = max(rr, 0) + p.dropVar
	default:
		// Project y itself (not y − μ): ⟨y, x̂⟩ = ⟨y, μ⟩ + Σ ⟨y, a_i⟩ x̂_i.
		s := float32(metricScale(p.metric, y))
		for j, v := range y {
			q.r[j] = s * v
		}
		p.onAxes(q.y, q.r)
		for i, yi := range q.y {
			for j, v := range p.levels[p.offs[i]:p.end(i)] {
				q.tab[p.offs[i]+j] = -yi * v
			}
		}
		q.base = -dot64(q.r, p.mean)
		if p.metric == Cosine {
			q.base++
		}
	}
	q.buildLUT()
	q.set = true
	return nil
}

// buildLUT sums, for each code byte and byte value, the terms of the fields
// the byte holds. Bits no field uses are ignored.
func (q *pcaQuery) buildLUT() {
	p := q.p
	for b := range q.lut.f {
		clear(q.lut.f[b][:])
	}
	for i, w := range p.alloc {
		row, terms := &q.lut.f[p.fieldByte[i]], q.tab[p.offs[i]:p.end(i)]
		sh, mask := p.shift[i], 1<<w-1
		for v := range row {
			row[v] += terms[v>>sh&mask]
		}
	}
	q.lut.quantize()
}

// end is the end of axis i's levels.
func (p *PCA) end(i int) int { return p.offs[i] + 1<<p.alloc[i] }

// Distances writes the distance to each code into dst.
func (q *pcaQuery) Distances(dst []float32, codes []byte) error {
	p := q.p
	cs := p.codeSize
	if !q.set {
		return fmt.Errorf("%w: PCA query used before Reset", ErrConfig)
	}
	if len(codes)%cs != 0 || len(dst) < len(codes)/cs {
		return fmt.Errorf("%w: %d code bytes (%d each) into %d distances", ErrDimension, len(codes), cs, len(dst))
	}
	var sums [scanChunk]uint32
	base, step := float32(q.base)+q.lut.base, q.lut.step
	n := len(codes) / cs
	for lo := 0; lo < n; lo += scanChunk {
		hi := min(n, lo+scanChunk)
		scanBytes(sums[:hi-lo], q.lut.rows, codes[lo*cs:], cs)
		for i, s := range sums[:hi-lo] {
			dst[lo+i] = base + step*float32(s)
		}
	}
	return nil
}
