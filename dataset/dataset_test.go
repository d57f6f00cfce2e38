package dataset

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sample(n, dim int) *Vectors {
	v := &Vectors{Dim: dim, Data: make([]float32, n*dim)}
	for i := range v.Data {
		v.Data[i] = float32(i%97) - 48.5 + float32(i)/1e3
	}
	return v
}

func rawBytes(t testing.TB, v *Vectors) []byte {
	var b bytes.Buffer
	if err := WriteRaw(&b, v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestRawRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 7, 3000} {
		v := sample(n, 13)
		b := rawBytes(t, v)
		if len(b) != rawHeaderBytes+4*13*n+4 {
			t.Fatalf("n=%d: %d bytes", n, len(b))
		}
		got, err := ReadRaw(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if got.Dim != 13 || got.Len() != n {
			t.Fatalf("n=%d: read %d×%d", n, got.Len(), got.Dim)
		}
		for i := range v.Data {
			if got.Data[i] != v.Data[i] {
				t.Fatalf("n=%d: value %d = %v, want %v", n, i, got.Data[i], v.Data[i])
			}
		}
	}
}

func TestRawFileRoundTripAndSizeCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.f32")
	v := sample(50, 8)
	if err := WriteRawFile(path, v); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRawFile(path)
	if err != nil || got.Len() != 50 {
		t.Fatalf("%v, %d vectors", err, got.Len())
	}
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, b[:len(b)-5], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRawFile(path); !errors.Is(err, ErrFormat) {
		t.Fatalf("truncated file: %v, want ErrFormat", err)
	}
}

func TestRawRejectsCorruption(t *testing.T) {
	good := rawBytes(t, sample(10, 4))
	cases := map[string]func(b []byte) []byte{
		"magic":          func(b []byte) []byte { b[0] = 'X'; return b },
		"header crc":     func(b []byte) []byte { b[8]++; return b },
		"data crc":       func(b []byte) []byte { b[rawHeaderBytes+3] ^= 1; return b },
		"truncated":      func(b []byte) []byte { return b[:len(b)-1] },
		"trailing bytes": func(b []byte) []byte { return append(b, 0) },
		"empty":          func(b []byte) []byte { return nil },
	}
	for name, f := range cases {
		b := f(bytes.Clone(good))
		if _, err := ReadRaw(bytes.NewReader(b)); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v, want ErrFormat", name, err)
		}
	}
}

// rawHeader builds a header with a valid checksum for any dim and count.
func rawHeader(dim uint32, count uint64) []byte {
	h := append([]byte(nil), rawMagic[:]...)
	h = binary.LittleEndian.AppendUint16(h, RawVersion)
	h = binary.LittleEndian.AppendUint16(h, 0)
	h = binary.LittleEndian.AppendUint32(h, dim)
	h = binary.LittleEndian.AppendUint32(h, 0)
	h = binary.LittleEndian.AppendUint64(h, count)
	return binary.LittleEndian.AppendUint32(h, crcOf(h))
}

func crcOf(b []byte) uint32 {
	var c uint32
	return crc32Update(c, b)
}

func TestRawHostileHeaderAllocatesLittle(t *testing.T) {
	h := rawHeader(1000, 1<<20) // promises 4 GB, holds nothing
	allocs := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ReadRaw(bytes.NewReader(h)); !errors.Is(err, ErrFormat) {
				b.Fatal(err)
			}
		}
	})
	if per := allocs.AllocedBytesPerOp(); per > 4<<20 {
		t.Fatalf("a header promising 4 GB made ReadRaw allocate %d bytes", per)
	}
	for _, h := range [][]byte{rawHeader(0, 1), rawHeader(MaxDim+1, 1), rawHeader(1<<16, 1<<20)} {
		if _, err := ReadRaw(bytes.NewReader(h)); !errors.Is(err, ErrFormat) {
			t.Errorf("header %x: %v, want ErrFormat", h, err)
		}
	}
}

func TestRawRejectsNonFinite(t *testing.T) {
	v := sample(2, 3)
	v.Data[4] = float32(math.Inf(1))
	if err := WriteRaw(io.Discard, v); !errors.Is(err, ErrArgument) {
		t.Fatalf("writer: %v, want ErrArgument", err)
	}
	b := rawBytes(t, sample(2, 3))
	binary.LittleEndian.PutUint32(b[rawHeaderBytes+8:], math.Float32bits(float32(math.NaN())))
	binary.LittleEndian.PutUint32(b[len(b)-4:], crcOf(b[rawHeaderBytes:len(b)-4]))
	if _, err := ReadRaw(bytes.NewReader(b)); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "NaN") {
		t.Fatalf("reader: %v, want ErrFormat naming the NaN", err)
	}
}

func FuzzReadRaw(f *testing.F) {
	f.Add(rawBytes(f, sample(3, 5)))
	f.Add(rawBytes(f, sample(0, 1)))
	f.Add(rawHeader(4, 1<<30))
	f.Add([]byte("TQVF"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ReadRaw(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		if len(data) != rawHeaderBytes+4*len(v.Data)+4 || v.Dim < 1 || len(v.Data)%v.Dim != 0 {
			t.Fatalf("accepted %d bytes as %d values of dim %d", len(data), len(v.Data), v.Dim)
		}
		if !bytes.Equal(rawBytes(t, v), data) {
			t.Fatal("re-encoding differs")
		}
	})
}

func TestSplitIsDeterministicAndDisjoint(t *testing.T) {
	v := &Vectors{Dim: 2}
	for i := range 1000 {
		v.Data = append(v.Data, float32(i), float32(-i))
	}
	b1, q1, err := v.Split(600, 50, 7)
	if err != nil {
		t.Fatal(err)
	}
	b2, q2, _ := v.Split(600, 50, 7)
	b3, _, _ := v.Split(600, 50, 8)
	if fmt.Sprint(b1.Data) != fmt.Sprint(b2.Data) || fmt.Sprint(q1.Data) != fmt.Sprint(q2.Data) {
		t.Fatal("same seed, different split")
	}
	if fmt.Sprint(b1.Data) == fmt.Sprint(b3.Data) {
		t.Fatal("different seeds, same split")
	}
	seen := map[float32]bool{}
	for _, s := range []*Vectors{b1, q1} {
		for i := range s.Len() {
			r := s.Row(i)
			if r[1] != -r[0] || seen[r[0]] {
				t.Fatalf("row %v repeated or torn", r)
			}
			seen[r[0]] = true
		}
	}
	if len(seen) != 650 {
		t.Fatalf("%d distinct rows", len(seen))
	}
	if _, _, err := v.Split(990, 20, 1); !errors.Is(err, ErrArgument) {
		t.Fatalf("oversized split: %v", err)
	}
}

const gloveJSON = `{"precision":8,"l2NormIndex":3,"wordIndex":4,"size":2,"dimensions":3,
 "words":["the",","],"vectors":{"the":[0.5,-1.25,2,2.4,0],",":[1e-3,0,-7,7,1]}}`

func TestConvertGloVeJSON(t *testing.T) {
	var out bytes.Buffer
	n, dim, err := ConvertGloVeJSON(strings.NewReader(gloveJSON), &out)
	if err != nil || n != 2 || dim != 3 {
		t.Fatalf("%d×%d, %v", n, dim, err)
	}
	v, err := ReadRaw(&out)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(v.Data); got != "[0.5 -1.25 2 0.001 0 -7]" {
		t.Fatalf("vectors %s", got)
	}
	for _, bad := range []string{
		strings.Replace(gloveJSON, `"size":2`, `"size":3`, 1),
		strings.Replace(gloveJSON, `"size":2`, `"size":1`, 1),
		strings.Replace(gloveJSON, `[1e-3,0,-7,7,1]`, `[1e-3,0]`, 1),
		strings.Replace(gloveJSON, `-1.25`, `1e99`, 1),
		`{"vectors":{}}`, `[]`, ``,
	} {
		if _, _, err := ConvertGloVeJSON(strings.NewReader(bad), io.Discard); !errors.Is(err, ErrFormat) {
			t.Errorf("%q: %v, want ErrFormat", bad, err)
		}
	}
}

func TestConvertGloVeTarball(t *testing.T) {
	var tgz bytes.Buffer
	zw := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(zw)
	for _, f := range []struct{ name, body string }{{"package/README.md", "hi"}, {gloveJSONPath, gloveJSON}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body))})
		tw.Write([]byte(f.body))
	}
	tw.Close()
	zw.Close()
	n, _, err := ConvertGloVeTarball(&tgz, io.Discard)
	if err != nil || n != 2 {
		t.Fatalf("%d vectors, %v", n, err)
	}
	if _, _, err := ConvertGloVeTarball(strings.NewReader("not gzip"), io.Discard); !errors.Is(err, ErrFormat) {
		t.Fatalf("not a tarball: %v", err)
	}
}

func idxBytes(dims []uint32, data []byte) []byte {
	b := []byte{0, 0, 8, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return append(b, data...)
}

func TestReadIDX(t *testing.T) {
	x, err := ReadIDX(bytes.NewReader(idxBytes([]uint32{2, 2, 3}, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255})))
	if err != nil {
		t.Fatal(err)
	}
	v, err := x.Images()
	if err != nil || v.Dim != 6 || v.Len() != 2 || v.Data[11] != 255 {
		t.Fatalf("%+v %v", v, err)
	}
	for _, bad := range [][]byte{
		idxBytes([]uint32{2, 2, 3}, []byte{1, 2}),          // truncated
		{0, 0, 9, 1, 0, 0, 0, 1, 0},                        // int type
		{0, 0, 8, 0},                                       // no dims
		idxBytes([]uint32{1 << 16, 1 << 16, 1 << 16}, nil), // too large
		idxBytes([]uint32{1 << 31, 3}, []byte{1, 2, 3}),    // hostile count
	} {
		if _, err := ReadIDX(bytes.NewReader(bad)); !errors.Is(err, ErrFormat) {
			t.Errorf("% x: %v, want ErrFormat", bad[:min(len(bad), 12)], err)
		}
	}
}

func FuzzReadIDX(f *testing.F) {
	f.Add(idxBytes([]uint32{2, 2, 3}, make([]byte, 12)))
	f.Add(idxBytes([]uint32{3}, []byte{1, 2, 3}))
	f.Add(idxBytes([]uint32{1 << 30, 1}, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := ReadIDX(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		n := 1
		for _, d := range x.Dims {
			n *= d
		}
		if n != len(x.Data) || 4+4*len(x.Dims)+n > len(data) {
			t.Fatalf("dims %v with %d bytes from %d input bytes", x.Dims, len(x.Data), len(data))
		}
	})
}

func TestLoadAbsentNamesFetchCommand(t *testing.T) {
	t.Setenv("TQ_DATA_DIR", t.TempDir())
	d, _ := Lookup("glove")
	_, err := d.Load()
	if !errors.Is(err, ErrNotFetched) || !strings.Contains(err.Error(), "tqbench data fetch glove100") {
		t.Fatalf("%v", err)
	}
	if in, err := d.Stat(); err != nil || in.Fetched {
		t.Fatalf("%+v %v", in, err)
	}
	if _, err := Lookup("mnist"); !errors.Is(err, ErrArgument) {
		t.Fatal(err)
	}
}

// loadOrSkip loads a fetched dataset, skipping the test when it is absent.
func loadOrSkip(t *testing.T, name string) *Vectors {
	d, _ := Lookup(name)
	v, err := d.Load()
	if errors.Is(err, ErrNotFetched) {
		t.Skipf("%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestGloVeCacheFile(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 137 MB")
	}
	v := loadOrSkip(t, "glove100")
	if v.Len() != 341_479 || v.Dim != 100 {
		t.Fatalf("%d×%d, want 341479×100", v.Len(), v.Dim)
	}
	// "the" is the first word; its norm is in the JSON (l2NormIndex) as 5.821154.
	var ss float64
	for _, x := range v.Row(0) {
		ss += float64(x) * float64(x)
	}
	if n := math.Sqrt(ss); math.Abs(n-5.821154) > 1e-4 {
		t.Fatalf("‖the‖ = %v", n)
	}
}

func TestFashionMNISTCacheFile(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 220 MB")
	}
	v := loadOrSkip(t, "fmnist")
	if v.Len() != 70_000 || v.Dim != 784 {
		t.Fatalf("%d×%d, want 70000×784", v.Len(), v.Dim)
	}
}
