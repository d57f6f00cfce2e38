package polarquant

import (
	"testing"

	"github.com/turboquant-go/tq/internal/rng"
)

// benchCodes returns a quantizer, a rotated vector and 256 codes at d = 128
// (enough distinct codes that branch predictors cannot memorise one).
func benchCodes(b *testing.B) (*Quantizer, []float32, [][]byte) {
	q := mustNew(b, 128)
	src := rng.New(10)
	y := make([]float32, 128)
	codes := make([][]byte, 256)
	for i := range codes {
		unitVector(src, y)
		codes[i] = make([]byte, q.CodeSize())
		if err := q.Encode(codes[i], y); err != nil {
			b.Fatal(err)
		}
	}
	return q, y, codes
}

func BenchmarkEncode(b *testing.B) {
	q, _, _ := benchCodes(b)
	src := rng.New(11)
	ys := make([][]float32, 256)
	for i := range ys {
		ys[i] = make([]float32, 128)
		unitVector(src, ys[i])
	}
	code := make([]byte, q.CodeSize())
	b.SetBytes(128 * 4)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := q.Encode(code, ys[i&255]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkDecode(b *testing.B) {
	q, _, codes := benchCodes(b)
	dst := make([]float32, 128)
	b.SetBytes(int64(q.CodeSize()))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		q.Decode(dst, codes[i&255])
		i++
	}
}

func BenchmarkScore(b *testing.B) {
	q, y, codes := benchCodes(b)
	qq := q.NewQuery()
	qq.Reset(y)
	b.SetBytes(int64(q.CodeSize()))
	b.ReportAllocs()
	var sink float32
	i := 0
	for b.Loop() {
		sink += qq.Score(codes[i&255])
		i++
	}
	_ = sink
}

func BenchmarkReset(b *testing.B) {
	q, y, _ := benchCodes(b)
	qq := q.NewQuery()
	b.ReportAllocs()
	for b.Loop() {
		qq.Reset(y)
	}
}
