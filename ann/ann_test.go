package ann

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/turboquant-go/tq/internal/rng"
	"github.com/turboquant-go/tq/turboquant"
)

// planted returns n base vectors and nq queries where query i has a planted
// nearest neighbour, base vector planted[i], at a small distance; the other
// base vectors are independent. Returns base, queries, planted ids.
func planted(n, nq, d int, seed uint64) ([]float32, []float32, []int) {
	base := gaussian(n, d, seed)
	r := rng.New(seed + 99)
	qs := make([]float32, nq*d)
	ids := make([]int, nq)
	for i := range nq {
		ids[i] = (i * 7919) % n
		x := base[ids[i]*d : (ids[i]+1)*d]
		for j := range d {
			qs[i*d+j] = x[j] + float32(0.05*r.Norm())
		}
		// Scale the planted vector up a little so it also wins under inner
		// product (which favours long vectors).
		for j := range x {
			x[j] *= 1.6
		}
	}
	return base, qs, ids
}

var allMetrics = []Metric{InnerProduct, Cosine, L2}

func TestRecallOnPlantedNeighbours(t *testing.T) {
	const n, nq, d = 4000, 60, 96
	base, qs, ids := planted(n, nq, d, 5)
	for _, m := range allMetrics {
		truth, err := ExactSearch(m, base, qs, d, 1)
		if err != nil {
			t.Fatal(err)
		}
		for i := range truth {
			if truth[i][0].ID != ids[i] {
				t.Fatalf("%v: exact search found %d for query %d, planted %d", m, truth[i][0].ID, i, ids[i])
			}
		}
		for _, c := range []struct {
			meth  Method
			bits  int
			floor float64 // recall@1@10
		}{{MSE, 2, 0.9}, {MSE, 3, 0.95}, {MSE, 4, 0.98}, {MSENorm, 4, 0.98}, {Prod, 4, 0.95}, {Polar, 0, 0.95}, {MSE, 8, 1}} {
			q := mustTQ(t, Config{Dim: d, Bits: c.bits, Method: c.meth, Metric: m, Seed: 3})
			f := NewFlat(q)
			if err := f.Add(base); err != nil {
				t.Fatal(err)
			}
			got, err := f.SearchBatch(qs, SearchOptions{K: 10})
			if err != nil {
				t.Fatal(err)
			}
			if r := recallAt1(truth, got); r < c.floor {
				t.Errorf("%v %v %d bits: recall@1@10 = %.3f < %.2f", m, c.meth, c.bits, r, c.floor)
			}
		}
	}
}

// The byte-LUT path must agree with turboquant's own prepared query.
func TestFastScanMatchesTurboquantQuery(t *testing.T) {
	const n, d = 300, 100
	xs, ys := gaussian(n, d, 1), gaussian(3, d, 2)
	for _, bits := range []int{1, 2, 4, 8} {
		for _, meth := range []Method{MSE, MSENorm} {
			q := mustTQ(t, Config{Dim: d, Bits: bits, Method: meth, Metric: InnerProduct, Seed: 9})
			if !q.fast {
				t.Fatalf("%v %d bits: not on the fast path", meth, bits)
			}
			codes := make([]byte, n*q.CodeSize())
			if err := q.Encode(codes, xs); err != nil {
				t.Fatal(err)
			}
			ref := q.Quantizer().NewQuery()
			qq := q.NewQuery()
			dist := make([]float32, n)
			want := make([]float32, n)
			for i := range 3 {
				y := ys[i*d : (i+1)*d]
				if err := qq.Reset(y); err != nil {
					t.Fatal(err)
				}
				_ = ref.Reset(y)
				if err := qq.Distances(dist, codes); err != nil {
					t.Fatal(err)
				}
				_ = ref.ScoreBatch(want, codes)
				yn := math.Sqrt(dot64(y, y))
				for j := range n {
					// The uint16 table rounds each byte's term by at most
					// 2^-17 of a row's range: bound the error by ‖x‖‖y‖.
					// Plain MSE inner products are scaled by ipScale
					// (the expected-alignment correction).
					s := float64(q.ipScale)
					tol := 1e-4 * s * yn * math.Sqrt(dot64(xs[j*d:(j+1)*d], xs[j*d:(j+1)*d]))
					if math.Abs(float64(-dist[j])-s*float64(want[j])) > tol {
						t.Fatalf("%v %d bits code %d: %v, turboquant says %v", meth, bits, j, -dist[j], want[j])
					}
				}
			}
		}
	}
}

func TestScanBytesMatchesNaive(t *testing.T) {
	r := rng.New(4)
	for _, nb := range []int{1, 7, 8, 13, 50, 64, 101} {
		rows := make([][256]uint16, nb)
		for p := range rows {
			for v := range rows[p] {
				rows[p][v] = uint16(r.Uint64())
			}
		}
		const n, stride = 37, 113
		codes := make([]byte, (n-1)*stride+nb+3)
		for i := range codes {
			codes[i] = byte(r.Uint64())
		}
		sums := make([]uint32, n)
		scanBytes(sums, rows, codes, stride)
		for i := range n {
			var want uint32
			for p := range nb {
				want += uint32(rows[p][codes[i*stride+p]])
			}
			if sums[i] != want {
				t.Fatalf("nb=%d code %d: %d, want %d", nb, i, sums[i], want)
			}
		}
	}
}

func TestSymmetricDistance(t *testing.T) {
	const d = 64
	xs := gaussian(2, d, 11)
	for _, m := range allMetrics {
		for _, meth := range []Method{MSE, MSENorm, Prod, Polar} {
			bits := 4
			if meth == Polar {
				bits = 0
			}
			q := mustTQ(t, Config{Dim: d, Bits: bits, Method: meth, Metric: m, Seed: 1})
			codes := make([]byte, 2*q.CodeSize())
			if err := q.Encode(codes, xs); err != nil {
				t.Fatal(err)
			}
			a, b := codes[:q.CodeSize()], codes[q.CodeSize():]
			got, err := q.Distance(a, b)
			if err != nil {
				t.Fatal(err)
			}
			// Reference: decode both, inner product in float64, stored norms for L2.
			va, vb := make([]float32, d), make([]float32, d)
			_ = q.Quantizer().Decode(va, a)
			_ = q.Quantizer().Decode(vb, b)
			ip := dot64(va, vb)
			var want float64
			switch m {
			case InnerProduct:
				want = -ip
			case Cosine:
				want = 1 - ip
			case L2:
				na, nb := float64(q.norm(a)), float64(q.norm(b))
				want = na*na + nb*nb - 2*ip
			}
			if !near(float64(got), want, 1e-3) {
				t.Errorf("%v %v: %v, want %v", m, meth, got, want)
			}
			if self, _ := q.Distance(a, a); m == Cosine && math.Abs(float64(self)) > 0.2 {
				t.Errorf("%v %v: self distance %v", m, meth, self)
			}
		}
	}
}

func TestRerankRestoresExactTopK(t *testing.T) {
	const n, nq, d, k = 2000, 20, 48, 10
	base, qs := gaussian(n, d, 21), gaussian(nq, d, 22)
	for _, m := range allMetrics {
		truth, _ := ExactSearch(m, base, qs, d, k)
		q := mustTQ(t, Config{Dim: d, Bits: 2, Method: MSE, Metric: m, Seed: 1})
		f := NewFlat(q)
		_ = f.Add(base)
		plain, _ := f.SearchBatch(qs, SearchOptions{K: k})
		full, err := f.SearchBatch(qs, SearchOptions{K: k, Rerank: n, Originals: base})
		if err != nil {
			t.Fatal(err)
		}
		rr, _ := f.SearchBatch(qs, SearchOptions{K: k, Rerank: 20, Originals: base})
		exactHits, rrHits, plainHits := 0, 0, 0
		for i := range truth {
			if !slices.Equal(ids(full[i]), ids(truth[i])) {
				t.Fatalf("%v query %d: re-rank of everything gave %v, exact %v", m, i, ids(full[i]), ids(truth[i]))
			}
			exactHits += overlap(truth[i], full[i])
			rrHits += overlap(truth[i], rr[i])
			plainHits += overlap(truth[i], plain[i])
			for j := range full[i] {
				if full[i][j].Distance != truth[i][j].Distance {
					t.Fatalf("%v: re-ranked distance %v, exact %v", m, full[i][j].Distance, truth[i][j].Distance)
				}
			}
		}
		if rrHits < plainHits || rrHits < nq*k*9/10 {
			t.Errorf("%v: re-rank ×20 found %d of %d true neighbours (no re-rank: %d)", m, rrHits, nq*k, plainHits)
		}
		// Single-query sharded search agrees with the batch path.
		one, err := f.Search(qs[:d], SearchOptions{K: k, Workers: 3})
		if err != nil || !slices.Equal(ids(one), ids(plain[0])) {
			t.Fatalf("%v: Search %v, SearchBatch %v (%v)", m, ids(one), ids(plain[0]), err)
		}
	}
}

func ids(r []Result) []int {
	out := make([]int, len(r))
	for i, x := range r {
		out[i] = x.ID
	}
	return out
}

func overlap(a, b []Result) int {
	n := 0
	for _, x := range a {
		for _, y := range b {
			if x.ID == y.ID {
				n++
				break
			}
		}
	}
	return n
}

func TestBadInputs(t *testing.T) {
	q := mustTQ(t, Config{Dim: 8, Bits: 3, Method: MSE, Metric: L2, Seed: 1})
	f := NewFlat(q)
	check := func(name string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	_, err := f.Search(make([]float32, 8), SearchOptions{K: 1})
	check("empty index", err, ErrEmpty)
	check("ragged add", f.Add(make([]float32, 12)), ErrDimension)
	bad := gaussian(3, 8, 1)
	bad[17] = float32(math.NaN())
	check("NaN add", f.Add(bad), turboquant.ErrNonFinite)
	if f.Len() != 0 {
		t.Fatalf("a failed Add changed the index: %d vectors", f.Len())
	}
	if err := f.Add(gaussian(5, 8, 2)); err != nil {
		t.Fatal(err)
	}
	_, err = f.Search(make([]float32, 7), SearchOptions{K: 1})
	check("query dim", err, ErrDimension)
	_, err = f.Search(make([]float32, 8), SearchOptions{K: 6})
	check("k > n", err, ErrK)
	if err != nil && !strings.Contains(err.Error(), "k=6") {
		t.Errorf("k > n message %q does not name k", err)
	}
	_, err = f.Search(make([]float32, 8), SearchOptions{K: 0})
	check("k = 0", err, ErrK)
	_, err = f.Search(make([]float32, 8), SearchOptions{K: 2, Rerank: 2})
	check("re-rank without originals", err, ErrDimension)
	_, err = f.Search(make([]float32, 8), SearchOptions{K: 2, Rerank: -1})
	check("negative re-rank", err, ErrK)
	_, err = f.SearchBatch(make([]float32, 9), SearchOptions{K: 1})
	check("ragged queries", err, ErrDimension)
	_, err = ExactSearch(L2, nil, make([]float32, 8), 8, 1)
	check("exact on empty", err, ErrEmpty)
	for name, cfg := range map[string]Config{
		"dim 1":        {Dim: 1, Bits: 2, Method: MSE, Metric: L2},
		"bits 9":       {Dim: 8, Bits: 9, Method: MSE, Metric: L2},
		"no metric":    {Dim: 8, Bits: 2, Method: MSE},
		"no method":    {Dim: 8, Bits: 2, Metric: L2},
		"polar bits 4": {Dim: 16, Bits: 4, Method: Polar, Metric: L2},
	} {
		_, err := NewTQ(cfg)
		check(name, err, ErrConfig)
	}
	_, err = q.Distance(make([]byte, 3), make([]byte, q.CodeSize()))
	check("short code", err, ErrDimension)
	cq := mustTQ(t, Config{Dim: 8, Bits: 3, Method: MSE, Metric: Cosine})
	_, err = NewIVF(cq, IVFConfig{Lists: 2})
	check("cosine IVF", err, ErrConfig)
	ix, _ := NewIVF(q, IVFConfig{Lists: 4})
	check("add before train", ix.Add(gaussian(5, 8, 1)), ErrConfig)
	check("too few to train", ix.Train(gaussian(3, 8, 1), IVFConfig{Lists: 4}), ErrK)
}

func TestIVF(t *testing.T) {
	const n, nq, d = 6000, 40, 64
	base, qs, _ := planted(n, nq, d, 8)
	for _, m := range []Metric{InnerProduct, L2} {
		truth, _ := ExactSearch(m, base, qs, d, 1)
		q := mustTQ(t, Config{Dim: d, Bits: 4, Method: MSE, Metric: m, Seed: 2})
		cfg := IVFConfig{Lists: 32, Seed: 1}
		ix, err := NewIVF(q, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := ix.Train(base, cfg); err != nil {
			t.Fatal(err)
		}
		if err := ix.Add(base[:n/2*d]); err != nil {
			t.Fatal(err)
		}
		if err := ix.Add(base[n/2*d:]); err != nil {
			t.Fatal(err)
		}
		all, err := ix.SearchBatch(qs, SearchOptions{K: 10, NProbe: 32})
		if err != nil {
			t.Fatal(err)
		}
		few, _ := ix.SearchBatch(qs, SearchOptions{K: 10, NProbe: 4})
		if r := recallAt1(truth, all); r < 0.97 {
			t.Errorf("%v: recall@1@10 with every list probed %.3f", m, r)
		}
		if r := recallAt1(truth, few); r < 0.6 {
			t.Errorf("%v: recall@1@10 with 4 of 32 lists %.3f", m, r)
		}
		one, err := ix.Search(qs[:d], SearchOptions{K: 10, NProbe: 32, Rerank: 4, Originals: base})
		if err != nil || one[0].ID != truth[0][0].ID {
			t.Errorf("%v: re-ranked IVF search %v (%v), truth %v", m, one[:1], err, truth[0][0])
		}
		// Round trip.
		var buf bytes.Buffer
		if _, err := ix.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		back, err := ReadIVF(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		again, _ := back.SearchBatch(qs, SearchOptions{K: 10, NProbe: 4})
		for i := range few {
			if !slices.Equal(ids(few[i]), ids(again[i])) {
				t.Fatalf("%v: read-back index answers %v, original %v", m, ids(again[i]), ids(few[i]))
			}
		}
		var buf2 bytes.Buffer
		back.WriteTo(&buf2)
		if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
			t.Fatal("IVF format is not canonical")
		}
	}
}

func flatBytes(t testing.TB, cfg Config, n int) []byte {
	q := mustTQ(t, cfg)
	f := NewFlat(q)
	if n > 0 {
		if err := f.Add(gaussian(n, cfg.Dim, 1)); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFlatRoundTrip(t *testing.T) {
	for _, cfg := range []Config{
		{Dim: 100, Bits: 4, Method: MSE, Metric: InnerProduct, Seed: 5},
		{Dim: 33, Bits: 3, Method: MSENorm, Metric: Cosine, Seed: 6, Rounds: 1},
		{Dim: 40, Bits: 2, Method: Prod, Metric: L2},
		{Dim: 20, Method: Polar, Metric: InnerProduct},
		{Dim: 24, Bits: 2, Method: MSENorm, Metric: L2, Mean: gaussian(1, 24, 11)},
		{Dim: 20, Method: Polar, Metric: Cosine, Mean: gaussian(1, 20, 12)},
	} {
		b := flatBytes(t, cfg, 50)
		f, err := ReadFlat(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
		if f.Len() != 50 || !reflect.DeepEqual(f.Quantizer().(*TQ).Config(), cfg) {
			t.Fatalf("%+v: read %d vectors, config %+v", cfg, f.Len(), f.Quantizer().(*TQ).Config())
		}
		var again bytes.Buffer
		f.WriteTo(&again)
		if !bytes.Equal(b, again.Bytes()) {
			t.Fatalf("%+v: not canonical", cfg)
		}
		y := gaussian(1, cfg.Dim, 7)
		orig := NewFlat(mustTQ(t, cfg))
		orig.Add(gaussian(50, cfg.Dim, 1))
		r1, _ := orig.Search(y, SearchOptions{K: 5})
		r2, _ := f.Search(y, SearchOptions{K: 5})
		if !slices.Equal(r1, r2) {
			t.Fatalf("%+v: %v vs %v after the round trip", cfg, r1, r2)
		}
	}
	// Empty indexes round-trip too, and search as empty.
	f, err := ReadFlat(bytes.NewReader(flatBytes(t, Config{Dim: 8, Bits: 1, Method: MSE, Metric: L2}, 0)))
	if err != nil || f.Len() != 0 {
		t.Fatal(err)
	}
}

func TestFlatReadRejectsCorruption(t *testing.T) {
	good := flatBytes(t, Config{Dim: 16, Bits: 4, Method: MSE, Metric: L2}, 10)
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x20
		if _, err := ReadFlat(bytes.NewReader(b)); !errors.Is(err, ErrFormat) {
			t.Fatalf("flipped byte %d: %v, want ErrFormat", i, err)
		}
	}
	for _, n := range []int{0, 5, len(good) / 2, len(good) - 1} {
		if _, err := ReadFlat(bytes.NewReader(good[:n])); !errors.Is(err, ErrFormat) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	if _, err := ReadFlat(bytes.NewReader(append(bytes.Clone(good), 0))); !errors.Is(err, ErrFormat) {
		t.Fatal("trailing byte accepted")
	}
}

func FuzzReadFlat(f *testing.F) {
	f.Add(flatBytes(f, Config{Dim: 16, Bits: 4, Method: MSE, Metric: L2}, 3))
	f.Add(flatBytes(f, Config{Dim: 16, Bits: 2, Method: MSENorm, Metric: Cosine}, 2))
	f.Add(flatBytes(f, Config{Dim: 16, Bits: 2, Method: Prod, Metric: InnerProduct}, 1))
	f.Add(flatBytes(f, Config{Dim: 16, Method: Polar, Metric: InnerProduct}, 0))
	f.Add(flatBytes(f, Config{Dim: 16, Bits: 4, Method: MSENorm, Metric: L2, Mean: gaussian(1, 16, 3)}, 2))
	f.Add(pcaFlatBytes(f, L2, 12))
	f.Add(pcaFlatBytes(f, Cosine, 3))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := ReadFlat(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		var buf bytes.Buffer
		ix.WriteTo(&buf)
		if !bytes.Equal(buf.Bytes(), data) {
			t.Fatal("accepted input does not re-encode to itself")
		}
		if ix.Len() > 0 {
			if _, err := ix.Search(make([]float32, ix.Quantizer().Dim()), SearchOptions{K: 1}); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func ivfBytes(t testing.TB, m Metric, n, lists int) []byte {
	q := mustTQ(t, Config{Dim: 16, Bits: 2, Method: MSE, Metric: m, Seed: 1})
	ix, _ := NewIVF(q, IVFConfig{Lists: lists})
	if n > 0 {
		xs := gaussian(n, 16, 4)
		if err := ix.Train(xs, IVFConfig{Lists: lists}); err != nil {
			t.Fatal(err)
		}
		if err := ix.Add(xs); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	ix.WriteTo(&buf)
	return buf.Bytes()
}

func FuzzReadIVF(f *testing.F) {
	f.Add(ivfBytes(f, L2, 6, 2))
	f.Add(ivfBytes(f, InnerProduct, 3, 3))
	f.Add(ivfBytes(f, L2, 0, 2))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := ReadIVF(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		var buf bytes.Buffer
		ix.WriteTo(&buf)
		if !bytes.Equal(buf.Bytes(), data) {
			t.Fatal("accepted input does not re-encode to itself")
		}
		if ix.Len() > 0 {
			if _, err := ix.Search(make([]float32, 16), SearchOptions{K: 1, NProbe: 2}); err != nil {
				t.Fatal(err)
			}
		}
	})
}
