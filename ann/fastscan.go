package ann

import (
	"fmt"
	"math"
)

// FastScan is a flat index over 4-bit MSE or MSENorm codes in the fast-scan
// layout (André et al.; FAISS's PQFastScan): codes transposed in blocks of
// 32, scored by 16-entry uint8 lookup tables, one per coordinate, with 16-bit
// accumulation. With AVX2 a table is a register and one vpshufb looks up a
// coordinate of 16 codes, so the scan reads each code's 4-bit index once and
// does byte arithmetic instead of float multiplies.
//
// Accuracy: the float table entry rq_j·c_k is stored as round((rq_j·c_k −
// min_k rq_j·c_k)/Δ) with one step Δ = max_j range_j / 255, so each
// coordinate's term is off by at most Δ/2 and the inner product with the
// unit reconstruction by at most dim·Δ/2 (typically √dim·Δ/√12). Sums are
// exact: a 16-bit accumulator takes at most fastScanChunk coordinate pairs
// (2·128·255 = 65280 < 2^16) before it is widened to 32 bits.
//
// A FastScan is built from a Flat and is read-only; searches may run
// concurrently.
type FastScan struct {
	t      *TQ
	n      int
	pairs  int       // coordinate pairs, ⌈qDim/2⌉
	blocks []byte    // ⌈n/32⌉ blocks of pairs·32 bytes
	scale  []float32 // per vector: norm·correction, the multiplier of ⟨rq, ĉ⟩
	norm2  []float32 // per vector: stored norm², for L2
}

// fastScanBlock is the number of codes a block transposes.
const fastScanBlock = 32

// fastScanChunk bounds the coordinate pairs one 16-bit accumulation covers.
const fastScanChunk = 128

// NewFastScan builds the fast-scan layout of f's codes, which must be 4-bit
// MSE or MSENorm codes of a TQ quantizer; f is not changed.
func NewFastScan(f *Flat) (*FastScan, error) {
	t, ok := f.q.(*TQ)
	if !ok || !t.mse || t.layout.Bits != 4 {
		return nil, fmt.Errorf("%w: fast scan needs 4-bit MSE or MSENorm codes", ErrConfig)
	}
	l := &t.layout
	cs := t.CodeSize()
	pairs := (t.qDim + 1) / 2
	nb := (f.n + fastScanBlock - 1) / fastScanBlock
	fs := &FastScan{
		t: t, n: f.n, pairs: pairs, blocks: make([]byte, nb*pairs*32),
		scale: make([]float32, f.n), norm2: make([]float32, f.n),
	}
	for i := range f.n {
		c := f.codes[i*cs : (i+1)*cs]
		nrm := t.scalar(c[l.NormOffset:])
		fs.norm2[i] = nrm * nrm
		fs.scale[i] = nrm
		if l.CorrectionOffset >= 0 {
			fs.scale[i] *= t.scalar(c[l.CorrectionOffset:])
		}
		blk := fs.blocks[(i/fastScanBlock)*pairs*32:]
		slot, shift := i%16, uint(4*(i%fastScanBlock/16))
		idx := c[l.IndexOffset:]
		for j := range t.qDim {
			v := idx[j/2] >> (4 * uint(j%2)) & 15
			blk[(j/2)*32+(j%2)*16+slot] |= v << shift
		}
	}
	return fs, nil
}

// Len is the number of indexed vectors.
func (fs *FastScan) Len() int { return fs.n }

// BytesPerVector is the storage of one vector: its 4-bit indices and two
// float32 scalars.
func (fs *FastScan) BytesPerVector() int { return fs.pairs + 8 }

// fastQuery is a query prepared for the fast scan.
type fastQuery struct {
	qq   *tqQuery
	lut  []byte // pairs·32: for pair p, the 16 entries of coordinate 2p then of 2p+1
	bias float32
	step float32
	sums [fastScanBlock]uint32
	part [fastScanBlock]uint16
	dist [fastScanBlock]float32
}

func (fs *FastScan) newQuery() *fastQuery {
	return &fastQuery{qq: fs.t.newQuery(), lut: make([]byte, fs.pairs*32)}
}

// reset prepares y: the rotated query, then the uint8 tables.
func (fq *fastQuery) reset(fs *FastScan, y []float32) error {
	if err := fq.qq.Reset(y); err != nil {
		return err
	}
	rq := fq.qq.rq[:fs.t.qDim]
	cent := fs.t.layout.Centroids
	lo, hi := cent[0], cent[len(cent)-1]
	// Centroids ascend, so row j spans |rq_j|·(hi − lo) from min(rq_j·lo, rq_j·hi).
	var span float32
	for _, r := range rq {
		span = max(span, float32(math.Abs(float64(r)))*(hi-lo))
	}
	step := span / 255
	if step == 0 || math.IsNaN(float64(step)) || math.IsInf(float64(step), 0) {
		step = 1
	}
	inv := 1 / step
	clear(fq.lut)
	var bias float64
	for j, r := range rq {
		m := min(r*lo, r*hi)
		bias += float64(m)
		row := fq.lut[(j/2)*32+(j%2)*16:]
		for k, c := range cent {
			e := math.Round(float64((r*c - m) * inv))
			row[k] = byte(min(max(e, 0), 255))
		}
	}
	fq.bias, fq.step = float32(bias), step
	return nil
}

// scanBlock sets fq.sums to the table sums of the 32 codes of block b.
func (fq *fastQuery) scanBlock(fs *FastScan, b int) {
	blk := fs.blocks[b*fs.pairs*32 : (b+1)*fs.pairs*32]
	fq.sums = [fastScanBlock]uint32{}
	for p := 0; p < fs.pairs; p += fastScanChunk {
		q := min(fs.pairs, p+fastScanChunk)
		fastScan4(&fq.part, blk[p*32:q*32], fq.lut[p*32:q*32], q-p)
		for i, v := range fq.part {
			fq.sums[i] += uint32(v)
		}
	}
}

// search offers every vector's distance to h.
func (fq *fastQuery) search(fs *FastScan, h *topK) {
	t := fs.t
	qq := fq.qq
	s, shift := t.ipScale, qq.shift
	for b := 0; b*fastScanBlock < fs.n; b++ {
		fq.scanBlock(fs, b)
		lo := b * fastScanBlock
		m := min(fastScanBlock, fs.n-lo)
		for i := range m {
			ip := s * fs.scale[lo+i] * (fq.bias + fq.step*float32(fq.sums[i]))
			switch t.cfg.Metric {
			case InnerProduct:
				fq.dist[i] = -(ip + shift)
			case Cosine:
				fq.dist[i] = 1 - (ip + shift)
			default:
				fq.dist[i] = qq.qNorm2 - 2*ip + fs.norm2[lo+i]
			}
		}
		h.pushDistances(fq.dist[:m], lo)
	}
}

// Search returns the K nearest neighbours of query, best first, scanning on
// one goroutine (SearchBatch parallelizes across queries).
func (fs *FastScan) Search(query []float32, o SearchOptions) ([]Result, error) {
	if len(query) != fs.t.Dim() {
		return nil, fmt.Errorf("%w: query has %d components, index dim is %d", ErrDimension, len(query), fs.t.Dim())
	}
	o.Workers = 1
	res, err := fs.SearchBatch(query, o)
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// SearchBatch searches every query (row-major) across Options.Workers
// goroutines and re-ranks when asked, as Flat.SearchBatch does.
func (fs *FastScan) SearchBatch(queries []float32, o SearchOptions) ([][]Result, error) {
	keep, err := o.check(fs.n, fs.t.Dim())
	if err != nil {
		return nil, err
	}
	return searchBatch(fs.t, queries, o, keep, func() func(Query, []float32, *topK) error {
		fq := fs.newQuery()
		return func(_ Query, y []float32, h *topK) error {
			if err := fq.reset(fs, y); err != nil {
				return err
			}
			fq.search(fs, h)
			return nil
		}
	})
}

// fastScan4 sets out[i] = Σ_p lut[p·32 + 16·lane + nibble] over the pairs
// p < pairs and both lanes, for code i of a block (low nibbles: codes 0–15,
// high nibbles: codes 16–31). codes and lut hold pairs·32 bytes, pairs ≤
// fastScanChunk. The SIMD kernel replacing it is bit-identical.
var fastScan4 = fastScan4Go

// FastScanKernel names the kernel the fast scan runs: "avx2" or "go".
var FastScanKernel = "go"

func fastScan4Go(out *[fastScanBlock]uint16, codes, lut []byte, pairs int) {
	*out = [fastScanBlock]uint16{}
	for p := range pairs {
		c := codes[p*32 : p*32+32 : p*32+32]
		l := lut[p*32 : p*32+32 : p*32+32]
		for lane := 0; lane < 32; lane += 16 {
			tab := l[lane : lane+16 : lane+16]
			for i, v := range c[lane : lane+16] {
				out[i] += uint16(tab[v&15])
				out[16+i] += uint16(tab[v>>4])
			}
		}
	}
}
