package ann

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// IVFConfig configures the coarse partition of an IVF index.
type IVFConfig struct {
	Lists int // number of k-means partitions, ≥ 1
	// TrainIterations of Lloyd's algorithm (0: 10); TrainSample bounds the
	// vectors k-means sees (0: min(n, 256·Lists)).
	TrainIterations, TrainSample int
	Seed                         uint64
}

// IVF is an inverted-file index: a k-means partition of the vectors (L2
// k-means; for inner product a vector joins the list whose centroid has the
// largest ⟨x, c⟩, the order queries probe in), and in each list the codes of
// the residuals x − centroid. A search scores the
// residual codes of the NProbe lists whose centroids are nearest the query:
// for inner product ⟨q, c⟩ + ⟨q, r̃⟩ with one prepared query for all lists,
// for L2 ‖(q − c) − r̃‖² with the query prepared once per probed list.
type IVF struct {
	q         Quantizer
	dim       int
	centroids []float32
	lists     []ivfList
	n         int
}

type ivfList struct {
	ids   []int
	codes []byte
}

// NewIVF builds an empty IVF index over q, whose metric must be
// InnerProduct or L2 (for cosine, normalize the vectors and queries and use
// InnerProduct: residuals of normalized vectors are not themselves unit).
// Train must run before Add.
func NewIVF(q Quantizer, cfg IVFConfig) (*IVF, error) {
	if q.Metric() != InnerProduct && q.Metric() != L2 {
		return nil, fmt.Errorf("%w: IVF needs an inner-product or L2 quantizer, got %v (normalize for cosine)", ErrConfig, q.Metric())
	}
	if t, ok := q.(*TQ); ok && t.mean != nil {
		return nil, fmt.Errorf("%w: IVF encodes residuals, which its lists already centre; use a quantizer without Mean", ErrConfig)
	}
	if cfg.Lists < 1 || cfg.Lists > maxLists {
		return nil, fmt.Errorf("%w: %d lists outside [1, %d]", ErrConfig, cfg.Lists, maxLists)
	}
	return &IVF{q: q, dim: q.Dim(), lists: make([]ivfList, cfg.Lists), centroids: nil}, nil
}

const maxLists = 1 << 20

// Train runs k-means on xs (row-major, at least Lists vectors) to place the
// centroids. It must be called once, before Add.
func (ix *IVF) Train(xs []float32, cfg IVFConfig) error {
	d, k := ix.dim, len(ix.lists)
	if len(xs)%d != 0 {
		return fmt.Errorf("%w: %d floats is not a whole number of %d-d vectors", ErrDimension, len(xs), d)
	}
	if ix.centroids != nil || k == 0 {
		return fmt.Errorf("%w: already trained (or read back untrained)", ErrConfig)
	}
	n := len(xs) / d
	if n < k {
		return fmt.Errorf("%w: %d training vectors for %d lists", ErrK, n, k)
	}
	for i, v := range xs {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: training vector %d component %d is %v", ErrConfig, i/d, i%d, v)
		}
	}
	sample := cfg.TrainSample
	if sample <= 0 {
		sample = 256 * k
	}
	sample = max(k, min(n, sample))
	iters := cfg.TrainIterations
	if iters <= 0 {
		iters = 10
	}
	// An evenly strided sample keeps training deterministic for a given input.
	train := xs
	if sample < n {
		train = make([]float32, 0, sample*d)
		for i := range sample {
			j := int(int64(i) * int64(n) / int64(sample))
			train = append(train, xs[j*d:(j+1)*d]...)
		}
	}
	ix.centroids = kmeans(train, d, k, iters, cfg.Seed)
	return nil
}

// Len is the number of indexed vectors.
func (ix *IVF) Len() int { return ix.n }

// Add assigns the vectors to their nearest centroids, encodes their
// residuals and appends them; ids continue from Len. On error the index is
// unchanged.
func (ix *IVF) Add(xs []float32) error {
	d := ix.dim
	if ix.centroids == nil {
		return fmt.Errorf("%w: Add before Train", ErrConfig)
	}
	if len(xs)%d != 0 {
		return fmt.Errorf("%w: %d floats is not a whole number of %d-d vectors", ErrDimension, len(xs), d)
	}
	n := len(xs) / d
	assign := make([]int32, n)
	assignAll(assign, xs, ix.centroids, d, ix.q.Metric())
	res := make([]float32, len(xs))
	for i, c := range assign {
		cr := ix.centroids[int(c)*d : int(c+1)*d]
		for j, v := range xs[i*d : (i+1)*d] {
			res[i*d+j] = v - cr[j]
		}
	}
	cs := ix.q.CodeSize()
	codes := make([]byte, n*cs)
	if err := ix.q.Encode(codes, res); err != nil {
		return err
	}
	for i, c := range assign {
		l := &ix.lists[c]
		l.ids = append(l.ids, ix.n+i)
		l.codes = append(l.codes, codes[i*cs:(i+1)*cs]...)
	}
	ix.n += n
	return nil
}

// Search returns the K nearest neighbours among the vectors in the NProbe
// lists nearest the query (NProbe 0 means 1; more than Lists means all).
func (ix *IVF) Search(query []float32, o SearchOptions) ([]Result, error) {
	keep, err := o.check(ix.n, ix.dim)
	if err != nil {
		return nil, err
	}
	if len(query) != ix.dim {
		return nil, fmt.Errorf("%w: query has %d components, index dim is %d", ErrDimension, len(query), ix.dim)
	}
	qq := ix.q.NewQuery()
	h := newTopK(keep)
	if err := ix.search(qq, query, o, h, make([]float32, ix.dim)); err != nil {
		return nil, err
	}
	res := h.sorted()
	if o.Rerank > 0 {
		res = rerank(ix.q.Metric(), query, res, o.Originals, o.K)
	}
	return res, nil
}

// SearchBatch searches each query (row-major), split across workers.
func (ix *IVF) SearchBatch(queries []float32, o SearchOptions) ([][]Result, error) {
	keep, err := o.check(ix.n, ix.dim)
	if err != nil {
		return nil, err
	}
	return searchBatch(ix.q, queries, o, keep, func() func(Query, []float32, *topK) error {
		buf := make([]float32, ix.dim)
		return func(qq Query, y []float32, h *topK) error { return ix.search(qq, y, o, h, buf) }
	})
}

func (ix *IVF) search(qq Query, y []float32, o SearchOptions, h *topK, buf []float32) error {
	d, cs := ix.dim, ix.q.CodeSize()
	ip := ix.q.Metric() == InnerProduct
	nprobe := min(max(o.NProbe, 1), len(ix.lists))
	// Rank the lists by their centroid's distance to the query.
	probe := newTopK(nprobe)
	for c := range ix.lists {
		probe.offer(ExactDistance(ix.q.Metric(), y, ix.centroids[c*d:(c+1)*d]), c)
	}
	if ip {
		if err := qq.Reset(y); err != nil {
			return err
		}
	}
	var dist [scanChunk]float32
	for _, p := range probe.sorted() {
		l := &ix.lists[p.ID]
		if len(l.ids) == 0 {
			continue
		}
		shift := p.Distance // −⟨q, c⟩ for inner product
		if !ip {
			shift = 0
			c := ix.centroids[p.ID*d : (p.ID+1)*d]
			for j := range buf {
				buf[j] = y[j] - c[j]
			}
			if err := qq.Reset(buf); err != nil {
				return err
			}
		}
		for i := 0; i < len(l.ids); i += scanChunk {
			m := min(scanChunk, len(l.ids)-i)
			_ = qq.Distances(dist[:m], l.codes[i*cs:(i+m)*cs])
			for j, dd := range dist[:m] {
				h.offer(dd+shift, l.ids[i+j])
			}
		}
	}
	return nil
}

// WriteTo writes the index (format in format.go). It implements io.WriterTo.
func (ix *IVF) WriteTo(w io.Writer) (int64, error) {
	qb, err := ix.q.MarshalBinary()
	if err != nil {
		return 0, err
	}
	sw := newSectionWriter(w, ivfMagic)
	sw.section(qb)
	hdr := binary.LittleEndian.AppendUint32(nil, uint32(len(ix.lists)))
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(ix.dim))
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(ix.n))
	if ix.centroids == nil {
		hdr[0], hdr[1], hdr[2], hdr[3] = 0, 0, 0, 0 // untrained: no lists
	}
	sw.section(hdr)
	if ix.centroids == nil {
		return sw.finish()
	}
	cent := make([]byte, 0, 4*len(ix.centroids))
	for _, v := range ix.centroids {
		cent = binary.LittleEndian.AppendUint32(cent, math.Float32bits(v))
	}
	sw.section(cent)
	sizes := make([]byte, 0, 8*len(ix.lists))
	for _, l := range ix.lists {
		sizes = binary.LittleEndian.AppendUint64(sizes, uint64(len(l.ids)))
	}
	sw.section(sizes)
	for _, l := range ix.lists {
		ids := make([]byte, 0, 8*len(l.ids))
		for _, id := range l.ids {
			ids = binary.LittleEndian.AppendUint64(ids, uint64(id))
		}
		sw.section(ids, l.codes)
	}
	return sw.finish()
}

// ReadIVF reads an index written by IVF.WriteTo. Errors wrap ErrFormat. An
// untrained index (written before Train) is read back untrained, with no
// lists: it cannot be trained afterwards.
func ReadIVF(r io.Reader) (*IVF, error) {
	sr, err := newSectionReader(r, ivfMagic)
	if err != nil {
		return nil, err
	}
	t, err := readQuantizer(sr)
	if err != nil {
		return nil, err
	}
	if t.Metric() != InnerProduct && t.Metric() != L2 {
		return nil, formatErr("IVF with a %v quantizer", t.Metric())
	}
	hdr, err := sr.section("header", 16, 16)
	if err != nil {
		return nil, err
	}
	k := uint64(binary.LittleEndian.Uint32(hdr))
	d := binary.LittleEndian.Uint32(hdr[4:])
	n := binary.LittleEndian.Uint64(hdr[8:])
	if int(d) != t.Dim() {
		return nil, formatErr("dim %d, quantizer dim %d", d, t.Dim())
	}
	ix := &IVF{q: t, dim: t.Dim()}
	if k == 0 {
		if n != 0 {
			return nil, formatErr("%d vectors without lists", n)
		}
		return ix, sr.end()
	}
	if k > maxLists {
		return nil, formatErr("%d lists, at most %d", k, maxLists)
	}
	cb, err := sr.section("centroids", int64(4*k*uint64(d)), int64(4*k*uint64(d)))
	if err != nil {
		return nil, err
	}
	ix.centroids = make([]float32, k*uint64(d))
	for i := range ix.centroids {
		v := math.Float32frombits(binary.LittleEndian.Uint32(cb[4*i:]))
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, formatErr("centroid value %d is %v", i, v)
		}
		ix.centroids[i] = v
	}
	sb, err := sr.section("list sizes", int64(8*k), int64(8*k))
	if err != nil {
		return nil, err
	}
	cs := uint64(t.CodeSize())
	var total uint64
	sizes := make([]uint64, k)
	for i := range sizes {
		sizes[i] = binary.LittleEndian.Uint64(sb[8*i:])
		if sizes[i] > maxSection/(8+cs) || total+sizes[i] > maxSection/(8+cs) {
			return nil, formatErr("list %d of %d vectors", i, sizes[i])
		}
		total += sizes[i]
	}
	if total != n {
		return nil, formatErr("lists hold %d vectors, header says %d", total, n)
	}
	ix.lists = make([]ivfList, k)
	seen := make(map[int]struct{})
	for i, m := range sizes {
		b, err := sr.section(fmt.Sprintf("list %d", i), int64(m*(8+cs)), int64(m*(8+cs)))
		if err != nil {
			return nil, err
		}
		l := &ix.lists[i]
		l.ids = make([]int, m)
		for j := range l.ids {
			id := binary.LittleEndian.Uint64(b[8*j:])
			if id >= n {
				return nil, formatErr("list %d holds id %d of %d vectors", i, id, n)
			}
			if _, dup := seen[int(id)]; dup {
				return nil, formatErr("id %d appears twice", id)
			}
			seen[int(id)] = struct{}{}
			l.ids[j] = int(id)
		}
		l.codes = b[8*m:]
		if err := t.checkCodes(l.codes); err != nil {
			return nil, err
		}
	}
	ix.n = int(n)
	return ix, sr.end()
}
