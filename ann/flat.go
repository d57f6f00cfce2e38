package ann

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"
)

// Flat is an exhaustive index: it holds one code per vector and scans them
// all. Add is safe to call concurrently with nothing else; searches may run
// concurrently with each other.
type Flat struct {
	q     Quantizer
	codes []byte
	n     int
}

// NewFlat returns an empty flat index over q.
func NewFlat(q Quantizer) *Flat { return &Flat{q: q} }

// Quantizer is the index's quantizer.
func (f *Flat) Quantizer() Quantizer { return f.q }

// Len is the number of indexed vectors.
func (f *Flat) Len() int { return f.n }

// Codes are the stored codes, id order, CodeSize bytes each (not a copy).
func (f *Flat) Codes() []byte { return f.codes }

// Add encodes the row-major vectors xs and appends them; their ids continue
// from Len. On error the index is unchanged.
func (f *Flat) Add(xs []float32) error {
	d, cs := f.q.Dim(), f.q.CodeSize()
	if len(xs)%d != 0 {
		return fmt.Errorf("%w: %d floats is not a whole number of %d-d vectors", ErrDimension, len(xs), d)
	}
	n := len(xs) / d
	codes := f.codes
	if cap(codes)-len(codes) < n*cs {
		codes = make([]byte, len(f.codes), len(f.codes)+max(n*cs, len(f.codes)/4))
		copy(codes, f.codes)
	}
	if err := f.q.Encode(codes[len(codes):len(codes)+n*cs], xs); err != nil {
		return err
	}
	f.codes, f.n = codes[:len(codes)+n*cs], f.n+n
	return nil
}

// SearchOptions tunes a search.
type SearchOptions struct {
	// K is the number of neighbours to return, 1 ≤ K ≤ Len.
	K int
	// Rerank > 0 re-ranks the best min(K·Rerank, Len) candidates by their
	// exact distance to the query, computed from Originals.
	Rerank int
	// Originals are the indexed vectors at full precision, row-major in id
	// order (Len·Dim floats), held by the caller; required with Rerank.
	Originals []float32
	// Workers bounds the goroutines of one search (0: GOMAXPROCS).
	Workers int
	// NProbe is the number of lists an IVF search scans (0 means 1);
	// Flat ignores it.
	NProbe int
}

func (o SearchOptions) workers() int {
	if o.Workers > 0 {
		return o.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// check validates the options against an index of n vectors of dim d, and
// returns the number of candidates the code scan keeps.
func (o SearchOptions) check(n, d int) (int, error) {
	if n == 0 {
		return 0, fmt.Errorf("%w: search of an index with no vectors", ErrEmpty)
	}
	if o.K < 1 || o.K > n {
		return 0, fmt.Errorf("%w: k=%d, want 1 ≤ k ≤ %d (the indexed vectors)", ErrK, o.K, n)
	}
	if o.Rerank < 0 {
		return 0, fmt.Errorf("%w: re-rank factor %d is negative", ErrK, o.Rerank)
	}
	if o.Rerank == 0 {
		return o.K, nil
	}
	if len(o.Originals) != n*d {
		return 0, fmt.Errorf("%w: re-rank needs the %d×%d originals, got %d floats", ErrDimension, n, d, len(o.Originals))
	}
	return min(n, o.K*o.Rerank), nil
}

// rerank orders candidates by exact distance and keeps k.
func rerank(m Metric, query []float32, cands []Result, originals []float32, k int) []Result {
	d := len(query)
	for i := range cands {
		id := cands[i].ID
		cands[i].Distance = ExactDistance(m, query, originals[id*d:(id+1)*d])
	}
	sortResults(cands)
	return cands[:min(k, len(cands))]
}

// Search returns the K nearest neighbours of query, best first. The codes
// are split into shards scanned in parallel (Options.Workers), each keeping
// its own heap; the heaps are merged.
func (f *Flat) Search(query []float32, o SearchOptions) ([]Result, error) {
	keep, err := o.check(f.n, f.q.Dim())
	if err != nil {
		return nil, err
	}
	if len(query) != f.q.Dim() {
		return nil, fmt.Errorf("%w: query has %d components, index dim is %d", ErrDimension, len(query), f.q.Dim())
	}
	shards := max(1, min(o.workers(), f.n/minShard))
	heaps := make([]*topK, shards)
	errs := make([]error, shards)
	var wg sync.WaitGroup
	for s := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			qq := f.q.NewQuery()
			if errs[s] = qq.Reset(query); errs[s] != nil {
				return
			}
			heaps[s] = newTopK(keep)
			f.scan(qq, heaps[s], s*f.n/shards, (s+1)*f.n/shards)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	all := heaps[0]
	for _, h := range heaps[1:] {
		for _, r := range h.h {
			all.offer(r.Distance, r.ID)
		}
	}
	res := all.sorted()
	if o.Rerank > 0 {
		res = rerank(f.q.Metric(), query, res, o.Originals, o.K)
	}
	return res, nil
}

// minShard keeps a shard's scan long against the cost of its query setup.
const minShard = 8192

// scan offers the codes lo…hi−1 to h.
func (f *Flat) scan(qq Query, h *topK, lo, hi int) {
	cs := f.q.CodeSize()
	var dist [scanChunk]float32
	for i := lo; i < hi; i += scanChunk {
		m := min(scanChunk, hi-i)
		_ = qq.Distances(dist[:m], f.codes[i*cs:(i+m)*cs])
		h.pushDistances(dist[:m], i)
	}
}

// SearchBatch searches every query (row-major) and returns the results in
// query order. Queries are split across Options.Workers goroutines, each
// scanning the whole index with its own prepared query.
func (f *Flat) SearchBatch(queries []float32, o SearchOptions) ([][]Result, error) {
	keep, err := o.check(f.n, f.q.Dim())
	if err != nil {
		return nil, err
	}
	return searchBatch(f.q, queries, o, keep, func() func(Query, []float32, *topK) error {
		return func(qq Query, y []float32, h *topK) error {
			if err := qq.Reset(y); err != nil {
				return err
			}
			f.scan(qq, h, 0, f.n)
			return nil
		}
	})
}

// searchBatch runs one search per query (row-major) across o's workers and
// re-ranks when asked. newSearch is called once per worker and returns the
// search that fills h with the best keep candidates for y.
func searchBatch(q Quantizer, queries []float32, o SearchOptions, keep int, newSearch func() func(qq Query, y []float32, h *topK) error) ([][]Result, error) {
	d := q.Dim()
	if len(queries)%d != 0 {
		return nil, fmt.Errorf("%w: %d query floats is not a whole number of %d-d vectors", ErrDimension, len(queries), d)
	}
	nq := len(queries) / d
	out := make([][]Result, nq)
	errs := make([]error, nq)
	workers := min(o.workers(), nq)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			qq, search := q.NewQuery(), newSearch()
			for i := w; i < nq; i += workers {
				y := queries[i*d : (i+1)*d]
				h := newTopK(keep)
				if errs[i] = search(qq, y, h); errs[i] != nil {
					return
				}
				out[i] = h.sorted()
				if o.Rerank > 0 {
					out[i] = rerank(q.Metric(), y, out[i], o.Originals, o.K)
				}
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("query %d: %w", i, err)
		}
	}
	return out, nil
}

// WriteTo writes the index (format in format.go). It implements io.WriterTo.
func (f *Flat) WriteTo(w io.Writer) (int64, error) {
	qb, err := f.q.MarshalBinary()
	if err != nil {
		return 0, err
	}
	sw := newSectionWriter(w, flatMagic)
	sw.section(qb)
	sw.section(binary.LittleEndian.AppendUint64(nil, uint64(f.n)))
	sw.section(f.codes)
	return sw.finish()
}

// maxQuantizerBytes bounds the quantizer section.
const maxQuantizerBytes = quantizerFixed + maxSpecBytes + 4*MaxDim + 4

// ReadFlat reads an index written by Flat.WriteTo. Errors wrap ErrFormat.
func ReadFlat(r io.Reader) (*Flat, error) {
	sr, err := newSectionReader(r, flatMagic)
	if err != nil {
		return nil, err
	}
	qb, err := sr.section("quantizer", -1, max(maxQuantizerBytes, maxPCABytes))
	if err != nil {
		return nil, err
	}
	t, err := unmarshalQuantizer(qb)
	if err != nil {
		return nil, err
	}
	hdr, err := sr.section("count", 8, 8)
	if err != nil {
		return nil, err
	}
	cs := uint64(t.CodeSize())
	n := binary.LittleEndian.Uint64(hdr)
	if n > maxSection/cs || n > math.MaxInt/cs {
		return nil, formatErr("%d codes of %d bytes", n, cs)
	}
	codes, err := sr.section("codes", int64(n*cs), int64(n*cs))
	if err != nil {
		return nil, err
	}
	if tq, ok := t.(*TQ); ok {
		if err := tq.checkCodes(codes); err != nil {
			return nil, err
		}
	}
	if err := sr.end(); err != nil {
		return nil, err
	}
	return &Flat{q: t, codes: codes, n: int(n)}, nil
}

func readQuantizer(sr *sectionReader) (*TQ, error) {
	qb, err := sr.section("quantizer", -1, maxQuantizerBytes)
	if err != nil {
		return nil, err
	}
	return UnmarshalTQ(qb)
}

// checkCodes rejects codes that decode to non-finite values (a NaN norm,
// correction, residual norm or radius): a file can carry a valid checksum and
// still hold codes no encoder writes.
func (t *TQ) checkCodes(codes []byte) error {
	cs := t.CodeSize()
	v := make([]float32, t.qDim)
	for i := 0; i+cs <= len(codes); i += cs {
		if err := t.q.Decode(v, codes[i:i+cs]); err != nil {
			return formatErr("code %d: %v", i/cs, err)
		}
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return formatErr("code %d decodes to a non-finite value", i/cs)
			}
		}
	}
	return nil
}
