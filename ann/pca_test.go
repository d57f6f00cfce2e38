package ann

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"testing"

	"github.com/turboquant-go/tq/internal/rng"
	"github.com/turboquant-go/tq/turboquant"
)

// lowRank returns n vectors of dimension d that lie near a rank-r subspace,
// off the origin: image-like data, where PCA should beat a random rotation.
func lowRank(n, d, r int, seed uint64) []float32 {
	g := rng.New(seed)
	mix := make([]float64, r*d)
	for i := range mix {
		mix[i] = g.Norm()
	}
	off := make([]float64, d)
	for j := range off {
		off[j] = 3 + g.Norm()
	}
	out := make([]float32, n*d)
	z := make([]float64, r)
	for i := range n {
		for k := range z {
			z[k] = g.Norm() / float64(k+1) // decaying spectrum
		}
		for j := range d {
			v := off[j] + 0.05*g.Norm()
			for k := range z {
				v += z[k] * mix[k*d+j]
			}
			out[i*d+j] = float32(v)
		}
	}
	return out
}

func mustPCA(t testing.TB, m Metric, xs []float32, d, bits int) *PCA {
	t.Helper()
	p, err := FitPCA(m, xs, d, bits)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPCAFitAndCodes: the allocation spends exactly bits·dim bits, more on
// the high-variance axes; decoding is close to the input at 4 bits.
func TestPCAFitAndCodes(t *testing.T) {
	const n, d = 3000, 64
	xs := lowRank(n, d, 12, 1)
	for _, bits := range []int{1, 2, 4} {
		p := mustPCA(t, L2, xs, d, bits)
		total := 0
		for i, b := range p.alloc {
			total += int(b)
			if i > 0 && b > p.alloc[i-1] {
				t.Errorf("bits %d: axis %d gets %d bits, more than axis %d's %d", bits, i, b, i-1, p.alloc[i-1])
			}
		}
		// The fields fill the code: at most a few bits are given back so
		// that none straddles a byte, and no two overlap.
		if total > bits*d || total < bits*d-8 || p.CodeSize() != bits*d/8 {
			t.Fatalf("bits %d: %d bits allocated, code size %d", bits, total, p.CodeSize())
		}
		var owner [][8]int
		owner = make([][8]int, p.CodeSize())
		for i, b := range p.alloc {
			if int(p.shift[i])+int(b) > 8 {
				t.Fatalf("bits %d: axis %d's %d-bit field starts at bit %d", bits, i, b, p.shift[i])
			}
			for k := range int(b) {
				o := &owner[p.fieldByte[i]][int(p.shift[i])+k]
				if *o != 0 {
					t.Fatalf("bits %d: axes %d and %d share a bit", bits, *o-1, i)
				}
				*o = i + 1
			}
		}
		if bits == 1 && p.Kept() >= d/2 {
			t.Errorf("1 bit: %d of %d axes kept on rank-12 data", p.Kept(), d)
		}
		codes := make([]byte, n*p.CodeSize())
		if err := p.Encode(codes, xs); err != nil {
			t.Fatal(err)
		}
		var errSq, normSq float64
		x := make([]float32, d)
		for i := range 200 {
			if err := p.Decode(x, codes[i*p.CodeSize():(i+1)*p.CodeSize()]); err != nil {
				t.Fatal(err)
			}
			for j, v := range xs[i*d : (i+1)*d] {
				e := float64(v - x[j])
				errSq += e * e
				c := float64(v - p.mean[j])
				normSq += c * c
			}
		}
		rel := errSq / normSq
		t.Logf("bits %d: %d axes kept, relative squared error of the centred vectors %.4f", bits, p.Kept(), rel)
		if bits == 4 && rel > 0.01 {
			t.Errorf("4 bits: relative squared error %.4f, want ≤ 0.01", rel)
		}
	}
}

// TestPCADistancesAndRecall: asymmetric distances track the exact ones for
// every metric, and on low-rank data PCA's recall at 2 bits beats TQ's best
// (MSENorm, centred) at the same bits.
func TestPCADistancesAndRecall(t *testing.T) {
	const n, nq, d, bits = 4000, 100, 64, 2
	all := lowRank(n+nq, d, 12, 2)
	base, queries := all[:n*d], all[n*d:]
	for _, m := range []Metric{L2, InnerProduct, Cosine} {
		p := mustPCA(t, m, base, d, bits)
		f := NewFlat(p)
		if err := f.Add(base); err != nil {
			t.Fatal(err)
		}
		// Distances against the exact ones on one query.
		qq := p.NewQuery()
		if err := qq.Reset(queries[:d]); err != nil {
			t.Fatal(err)
		}
		dist := make([]float32, n)
		if err := qq.Distances(dist, f.Codes()); err != nil {
			t.Fatal(err)
		}
		// The uint16 byte tables stay within their rounding bound of the
		// float terms they were built from: step/2 per code byte.
		pq := qq.(*pcaQuery)
		bound := float64(pq.lut.step)/2*float64(p.CodeSize()) + 1e-5*math.Abs(pq.base)
		for i := range n {
			c := f.Codes()[i*p.CodeSize() : (i+1)*p.CodeSize()]
			want := pq.base
			for i := range p.alloc {
				want += float64(pq.tab[p.offs[i]+p.field(c, i)])
			}
			if e := math.Abs(float64(dist[i]) - want); e > bound {
				t.Fatalf("%v: code %d: table distance %v, from the terms %v (bound %.3g)", m, i, dist[i], want, bound)
			}
		}
		var se, sv, mean float64
		for i := range n {
			mean += float64(ExactDistance(m, queries[:d], base[i*d:(i+1)*d])) / n
		}
		for i := range n {
			e := float64(ExactDistance(m, queries[:d], base[i*d:(i+1)*d]))
			se += (float64(dist[i]) - e) * (float64(dist[i]) - e)
			sv += (e - mean) * (e - mean)
		}
		if r := se / sv; r > 0.05 {
			t.Errorf("%v: squared distance error is %.3f of the distances' variance, want ≤ 0.05", m, r)
		}
		// The symmetric distance of a code to itself is the smallest.
		c0 := f.Codes()[:p.CodeSize()]
		self, _ := p.Distance(c0, c0)
		other, _ := p.Distance(c0, f.Codes()[p.CodeSize():2*p.CodeSize()])
		if !(self <= other) {
			t.Errorf("%v: symmetric distance to itself %v > to another code %v", m, self, other)
		}

		truth, err := ExactSearch(m, base, queries, d, 1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.SearchBatch(queries, SearchOptions{K: 1})
		if err != nil {
			t.Fatal(err)
		}
		mean32, err := Mean(m, base, d)
		if err != nil {
			t.Fatal(err)
		}
		tq := NewFlat(mustTQ(t, Config{Dim: d, Bits: bits, Method: MSENorm, Metric: m, Seed: 1, Mean: mean32}))
		if err := tq.Add(base); err != nil {
			t.Fatal(err)
		}
		gotTQ, err := tq.SearchBatch(queries, SearchOptions{K: 1})
		if err != nil {
			t.Fatal(err)
		}
		rp, rt := recallAt1(truth, got), recallAt1(truth, gotTQ)
		t.Logf("%v, %d bits: R1@1 PCA %.2f (%d B), TQ mse-norm centred %.2f (%d B)", m, bits, rp, p.CodeSize(), rt, tq.Quantizer().CodeSize())
		if rp <= rt {
			t.Errorf("%v: PCA recall %.2f does not beat TQ's %.2f on low-rank data", m, rp, rt)
		}
	}
}

// TestPCAFlatRoundTrip: a flat index over PCA codes reads back to the same
// bytes and the same results; corrupt or truncated files fail with ErrFormat.
func TestPCAFlatRoundTrip(t *testing.T) {
	good := pcaFlatBytes(t, Cosine, 50)
	ix, err := ReadFlat(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := ix.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), good) {
		t.Fatal("a PCA flat index does not re-encode to the same bytes")
	}
	if _, ok := ix.Quantizer().(*PCA); !ok {
		t.Fatalf("read back a %T", ix.Quantizer())
	}
	for _, n := range []int{10, 40, len(good) / 2, len(good) - 1} {
		if _, err := ReadFlat(bytes.NewReader(good[:n])); !errors.Is(err, ErrFormat) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	bad := bytes.Clone(good)
	bad[len(bad)/3] ^= 1
	if _, err := ReadFlat(bytes.NewReader(bad)); !errors.Is(err, ErrFormat) {
		t.Fatalf("flipped bit: %v", err)
	}
	// A quantizer of the first build (flags 0: bit-packed fields that may
	// straddle bytes) is refused, not read with the byte-aligned layout.
	q, err := ix.Quantizer().(*PCA).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint16(q[6:], 0)
	binary.LittleEndian.PutUint32(q[len(q)-4:], crc32.Checksum(q[:len(q)-4], castagnoli))
	if _, err := UnmarshalPCA(q); !errors.Is(err, ErrFormat) {
		t.Fatalf("flags 0: %v", err)
	}
}

func pcaFlatBytes(t testing.TB, m Metric, n int) []byte {
	xs := lowRank(n, 16, 4, 5)
	p := mustPCA(t, m, xs, 16, 2)
	f := NewFlat(p)
	if err := f.Add(xs); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	f.WriteTo(&buf)
	return buf.Bytes()
}

func TestPCABadInput(t *testing.T) {
	xs := lowRank(100, 16, 4, 6)
	for _, c := range []struct {
		name string
		m    Metric
		xs   []float32
		d, b int
		want error
	}{
		{"dim 1", L2, xs, 1, 2, ErrConfig},
		{"dim too large", L2, xs, MaxPCADim + 1, 2, ErrConfig},
		{"bits 0", L2, xs, 16, 0, ErrConfig},
		{"bits 9", L2, xs, 16, 9, ErrConfig},
		{"metric", Metric(9), xs, 16, 2, ErrConfig},
		{"one vector", L2, xs[:16], 16, 2, ErrDimension},
		{"ragged", L2, xs[:17], 16, 2, ErrDimension},
		{"NaN", L2, append([]float32{float32(math.NaN())}, xs[1:]...), 16, 2, turboquant.ErrNonFinite},
	} {
		if _, err := FitPCA(c.m, c.xs, c.d, c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	p := mustPCA(t, L2, xs, 16, 2)
	q := p.NewQuery()
	if err := q.Distances(make([]float32, 1), make([]byte, p.CodeSize())); !errors.Is(err, ErrConfig) {
		t.Errorf("a query used before Reset: %v", err)
	}
	if err := q.Reset(xs[:15]); !errors.Is(err, ErrDimension) {
		t.Errorf("short query: %v", err)
	}
	if err := p.Encode(make([]byte, 1), xs[:32]); !errors.Is(err, ErrConfig) {
		t.Errorf("short code buffer: %v", err)
	}
	if _, err := p.Distance(make([]byte, 1), make([]byte, p.CodeSize())); !errors.Is(err, ErrDimension) {
		t.Errorf("short code: %v", err)
	}
}
