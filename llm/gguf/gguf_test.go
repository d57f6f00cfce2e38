package gguf

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func mustParse(t *testing.T, b []byte) *File {
	t.Helper()
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRoundTrip(t *testing.T) {
	w := sampleWriter(t)
	b, err := w.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	f := mustParse(t, b)
	if f.Version != 3 || f.Alignment != 32 || f.DataOffset%32 != 0 {
		t.Fatalf("version %d alignment %d data offset %d", f.Version, f.Alignment, f.DataOffset)
	}
	if !reflect.DeepEqual(f.Meta, w.meta) {
		for i := range f.Meta {
			if !reflect.DeepEqual(f.Meta[i], w.meta[i]) {
				t.Errorf("meta %d: got %#v want %#v", i, f.Meta[i], w.meta[i])
			}
		}
		t.Fatal("metadata differs")
	}
	if len(f.Tensors) != len(w.tensors) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), len(w.tensors))
	}
	for i, got := range f.Tensors {
		want := w.tensors[i]
		if got.Name != want.Name || got.Type != want.Type || !reflect.DeepEqual(got.Dims, want.Dims) || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("tensor %d: got %s %v %v (%d bytes), want %s %v %v (%d bytes)", i, got.Name, got.Type, got.Dims, len(got.Data), want.Name, want.Type, want.Dims, len(want.Data))
		}
		if got.Offset%32 != 0 {
			t.Errorf("tensor %s offset %d unaligned", got.Name, got.Offset)
		}
		if tt, ok := f.Tensor(got.Name); !ok || tt != got {
			t.Errorf("Tensor(%q) lookup failed", got.Name)
		}
	}
	if _, ok := f.Tensor("nope"); ok {
		t.Error("Tensor(nope) found")
	}
	// Deterministic bytes.
	b2, _ := sampleWriter(t).Bytes()
	if !bytes.Equal(b, b2) {
		t.Error("writer output is not deterministic")
	}
	// Re-writing the parsed file reproduces it byte for byte.
	w2 := NewWriter()
	for _, kv := range f.Meta {
		w2.Set(kv.Key, kv.Value)
	}
	for _, tt := range f.Tensors {
		if err := w2.AddTensor(tt.Name, tt.Dims, tt.Type, tt.Data); err != nil {
			t.Fatal(err)
		}
	}
	b3, err := w2.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b3) {
		t.Error("parse→write does not reproduce the file")
	}
}

func TestTensorShape(t *testing.T) {
	f := mustParse(t, sampleBytes(t))
	cases := []struct {
		name                  string
		cols, rows, elems, nb int
	}{
		{"token_embd.weight", 512, 4, 2048, 4 * 2 * 144},
		{"output.weight", 512, 4, 2048, 8 * 210},
		{"blk.0.ffn_down.weight", 5, 2, 10, 20},
		{"blk.0.attn_norm.weight", 7, 1, 7, 28},
		{"scalar", 1, 1, 1, 4},
		{"empty", 32, 0, 0, 0},
	}
	for _, c := range cases {
		tt, _ := f.Tensor(c.name)
		if tt.Cols() != c.cols || tt.Rows() != c.rows || tt.Elements() != c.elems || tt.Bytes() != c.nb {
			t.Errorf("%s: cols %d rows %d elems %d bytes %d, want %d %d %d %d", c.name, tt.Cols(), tt.Rows(), tt.Elements(), tt.Bytes(), c.cols, c.rows, c.elems, c.nb)
		}
	}
	tt, _ := f.Tensor("token_embd.weight")
	if tt.RowBytes() != 288 {
		t.Errorf("RowBytes %d", tt.RowBytes())
	}
	r, err := tt.Row(3)
	if err != nil || len(r) != 288 || &r[0] != &tt.Data[3*288] {
		t.Errorf("Row(3): %v %d", err, len(r))
	}
	if _, err := tt.Row(4); !errors.Is(err, ErrSize) {
		t.Errorf("Row(4): %v", err)
	}
	if _, err := tt.Row(-1); !errors.Is(err, ErrSize) {
		t.Errorf("Row(-1): %v", err)
	}
}

func TestTensorDequantize(t *testing.T) {
	f := mustParse(t, sampleBytes(t))
	x := gaussian(4*512, 1, 1)
	for _, tt := range f.Tensors {
		if !tt.Type.Supported() {
			err := tt.DequantizeRow(0, make([]float32, tt.Cols()))
			if !errors.Is(err, ErrUnsupportedType) || !strings.Contains(err.Error(), tt.Name) || !strings.Contains(err.Error(), tt.Type.String()) {
				t.Errorf("%s: DequantizeRow on %v: %v", tt.Name, tt.Type, err)
			}
			if err := tt.Dequantize(make([]float32, tt.Elements())); !errors.Is(err, ErrUnsupportedType) {
				t.Errorf("%s: Dequantize: %v", tt.Name, err)
			}
			continue
		}
		all := make([]float32, tt.Elements())
		if err := tt.Dequantize(all); err != nil {
			t.Fatalf("%s: %v", tt.Name, err)
		}
		row := make([]float32, tt.Cols())
		for i := 0; i < tt.Rows(); i++ {
			if err := tt.DequantizeRow(i, row); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(row, all[i*tt.Cols():(i+1)*tt.Cols()]) {
				t.Fatalf("%s row %d differs from whole-tensor decode", tt.Name, i)
			}
		}
		tol := map[Type]float64{F32: 0, F16: 1e-3, BF16: 1e-2, Q8_0: 0.02, Q4_0: 0.4, Q4_1: 0.4, Q5_0: 0.2, Q5_1: 0.2, Q2_K: 1.2, Q3_K: 0.7, Q4_K: 0.35, Q5_K: 0.2, Q6_K: 0.1}[tt.Type]
		for i, v := range all {
			if math.Abs(float64(v-x[i])) > tol*3 {
				t.Fatalf("%s[%d] = %v, source %v", tt.Name, i, v, x[i])
			}
		}
		if err := tt.DequantizeRow(0, make([]float32, tt.Cols()+1)); tt.Rows() > 0 && !errors.Is(err, ErrSize) {
			t.Errorf("%s: wrong dst length: %v", tt.Name, err)
		}
		if err := tt.Dequantize(make([]float32, tt.Elements()+1)); !errors.Is(err, ErrSize) {
			t.Errorf("%s: wrong dst length: %v", tt.Name, err)
		}
	}
}

func TestAccessors(t *testing.T) {
	f := mustParse(t, sampleBytes(t))
	if s, err := f.String("general.architecture"); err != nil || s != "llama" {
		t.Errorf("String: %q %v", s, err)
	}
	if n, err := f.Uint("llama.block_count"); err != nil || n != 2 {
		t.Errorf("Uint: %d %v", n, err)
	}
	if n, err := f.Uint("llama.context_length"); err != nil || n != 1<<40 {
		t.Errorf("Uint u64: %d %v", n, err)
	}
	if n, err := f.Uint("test.u8"); err != nil || n != 200 {
		t.Errorf("Uint u8: %d %v", n, err)
	}
	if _, err := f.Uint("test.int32"); !errors.Is(err, ErrMetaType) {
		t.Errorf("Uint of negative: %v", err)
	}
	if n, err := f.Int("test.int32"); err != nil || n != -7 {
		t.Errorf("Int: %d %v", n, err)
	}
	if n, err := f.Int("test.i64"); err != nil || n != -1<<50 {
		t.Errorf("Int i64: %d %v", n, err)
	}
	if n, err := f.Int("test.i16"); err != nil || n != -30000 {
		t.Errorf("Int i16: %d %v", n, err)
	}
	if v, err := f.Float("llama.rope.freq_base"); err != nil || v != 10000 {
		t.Errorf("Float: %v %v", v, err)
	}
	if v, err := f.Float("test.f64"); err != nil || v != math.Pi {
		t.Errorf("Float f64: %v %v", v, err)
	}
	if _, err := f.Float("llama.block_count"); !errors.Is(err, ErrMetaType) {
		t.Errorf("Float of u32: %v", err)
	}
	if b, err := f.Bool("tokenizer.ggml.add_bos_token"); err != nil || !b {
		t.Errorf("Bool: %v %v", b, err)
	}
	if s, err := f.Strings("tokenizer.ggml.tokens"); err != nil || !reflect.DeepEqual(s, []string{"<unk>", "<s>", "</s>", "▁a", ""}) {
		t.Errorf("Strings: %q %v", s, err)
	}
	if s, err := f.Float32s("tokenizer.ggml.scores"); err != nil || len(s) != 5 || s[3] != -1.5 || !math.IsInf(float64(s[4]), -1) {
		t.Errorf("Float32s: %v %v", s, err)
	}
	if s, err := f.Float32s("test.f64s"); err != nil || s[0] != float32(0.1) {
		t.Errorf("Float32s of f64: %v %v", s, err)
	}
	if s, err := f.Int32s("tokenizer.ggml.token_type"); err != nil || !reflect.DeepEqual(s, []int32{2, 3, 3, 1, 1}) {
		t.Errorf("Int32s: %v %v", s, err)
	}
	if s, err := f.Int32s("test.u8s"); err != nil || !reflect.DeepEqual(s, []int32{1, 2, 255}) {
		t.Errorf("Int32s of u8: %v %v", s, err)
	}
	if _, err := f.Int32s("test.u32s"); !errors.Is(err, ErrMetaType) {
		t.Errorf("Int32s out of range: %v", err)
	}
	if _, err := f.Ints("test.u64s"); !errors.Is(err, ErrMetaType) {
		t.Errorf("Ints of 2^63: %v", err)
	}
	if s, err := f.Ints("test.i64s"); err != nil || !reflect.DeepEqual(s, []int64{-5, 1 << 62}) {
		t.Errorf("Ints: %v %v", s, err)
	}
	if _, err := f.Strings("tokenizer.ggml.scores"); !errors.Is(err, ErrMetaType) || !strings.Contains(err.Error(), "array of float32") {
		t.Errorf("Strings of float array: %v", err)
	}
	for _, get := range []func(string) error{
		func(k string) error { _, err := f.String(k); return err },
		func(k string) error { _, err := f.Uint(k); return err },
		func(k string) error { _, err := f.Int(k); return err },
		func(k string) error { _, err := f.Float(k); return err },
		func(k string) error { _, err := f.Bool(k); return err },
		func(k string) error { _, err := f.Strings(k); return err },
		func(k string) error { _, err := f.Float32s(k); return err },
		func(k string) error { _, err := f.Int32s(k); return err },
		func(k string) error { _, err := f.Ints(k); return err },
	} {
		if err := get("missing.key"); !errors.Is(err, ErrKeyNotFound) || !strings.Contains(err.Error(), "missing.key") {
			t.Errorf("missing key: %v", err)
		}
		if err := get("test.nested"); !errors.Is(err, ErrMetaType) {
			t.Errorf("nested array through a typed accessor: %v", err)
		}
	}
	if !f.Has("test.nested") || f.Has("missing.key") {
		t.Error("Has")
	}
	v, ok := f.Lookup("test.nested")
	if !ok || v.Len() != 3 || v.V.([]Value)[1].V.([]Value)[0].V.([]int32)[1] != -2 {
		t.Errorf("nested: %#v", v)
	}
	// Copies: mutating a result must not change the file.
	s, _ := f.Strings("tokenizer.ggml.tokens")
	s[0] = "x"
	if s2, _ := f.Strings("tokenizer.ggml.tokens"); s2[0] != "<unk>" {
		t.Error("Strings returned the internal slice")
	}
}

func TestAlignment(t *testing.T) {
	for _, a := range []uint32{1, 8, 64, 4096} {
		w := sampleWriter(t)
		w.SetUint32("general.alignment", a)
		b, err := w.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		f := mustParse(t, b)
		if f.Alignment != int(a) || f.DataOffset%int64(a) != 0 {
			t.Fatalf("alignment %d: got %d, data at %d", a, f.Alignment, f.DataOffset)
		}
		for _, tt := range f.Tensors {
			if tt.Offset%uint64(a) != 0 {
				t.Errorf("alignment %d: %s at %d", a, tt.Name, tt.Offset)
			}
		}
	}
	for _, a := range []uint32{0, 3, 48, 1 << 31} {
		w := sampleWriter(t)
		w.SetUint32("general.alignment", a)
		if _, err := w.Bytes(); !errors.Is(err, ErrFormat) {
			t.Errorf("writer alignment %d: %v", a, err)
		}
		// Hand-built file with that alignment.
		r := new(raw).header(3, 0, 1)
		r.str("general.alignment").u32(uint32(TypeUint32)).u32(a)
		if _, err := Parse(r.Bytes()); !errors.Is(err, ErrFormat) {
			t.Errorf("parse alignment %d: %v", a, err)
		}
	}
	r := new(raw).header(3, 0, 1)
	r.str("general.alignment").u32(uint32(TypeString)).str("32")
	if _, err := Parse(r.Bytes()); !errors.Is(err, ErrFormat) {
		t.Errorf("string alignment: %v", err)
	}
	// Misaligned tensor offset.
	r = new(raw).header(3, 1, 0)
	r.str("t").u32(1).u64(1).u32(uint32(F32)).u64(4)
	r.pad(32).Write(make([]byte, 64))
	if _, err := Parse(r.Bytes()); !errors.Is(err, ErrFormat) {
		t.Errorf("misaligned offset: %v", err)
	}
}

func TestVersions(t *testing.T) {
	b := sampleBytes(t)
	set := func(v [4]byte) []byte {
		c := bytes.Clone(b)
		copy(c[4:8], v[:])
		return c
	}
	// v2 and v3 share a layout for little-endian files.
	f, err := Parse(set([4]byte{2, 0, 0, 0}))
	if err != nil || f.Version != 2 || len(f.Tensors) != 16 {
		t.Fatalf("v2: %v", err)
	}
	for _, v := range [][4]byte{{1, 0, 0, 0}, {4, 0, 0, 0}, {0, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff}} {
		if _, err := Parse(set(v)); !errors.Is(err, ErrVersion) {
			t.Errorf("version %v: %v", v, err)
		}
	}
	for _, v := range [][4]byte{{0, 0, 0, 3}, {0, 0, 0, 2}} {
		if _, err := Parse(set(v)); !errors.Is(err, ErrBigEndian) {
			t.Errorf("big-endian %v: %v", v, err)
		}
	}
	c := bytes.Clone(b)
	copy(c, "GGUG")
	if _, err := Parse(c); !errors.Is(err, ErrFormat) {
		t.Errorf("bad magic: %v", err)
	}
}

func TestTruncations(t *testing.T) {
	b := sampleBytes(t)
	f := mustParse(t, b)
	end := 0
	for _, tt := range f.Tensors {
		end = max(end, int(f.DataOffset)+int(tt.Offset)+tt.Bytes())
	}
	for n := 0; n < len(b); n++ {
		_, err := Parse(b[:n])
		if n < end && !errors.Is(err, ErrTruncated) {
			t.Fatalf("prefix %d of %d: %v, want ErrTruncated", n, len(b), err)
		}
		if n >= end && err != nil {
			t.Fatalf("prefix %d (data ends at %d): %v", n, end, err)
		}
	}
	// A metadata-only file may end right after its last pair.
	w := NewWriter()
	w.SetString("general.architecture", "llama")
	mb, _ := w.Bytes()
	if f, err := Parse(mb); err != nil || len(f.Tensors) != 0 || f.DataOffset%32 != 0 {
		t.Fatalf("metadata-only: %v", err)
	}
	if len(mb)%32 == 0 {
		t.Log("metadata-only file happens to be aligned")
	}
}

// TestHostile feeds hand-built malformed files; each must fail with the right
// sentinel, quickly and without large allocations.
func TestHostile(t *testing.T) {
	kv := func(key string, vt ValueType) *raw {
		r := new(raw).header(3, 0, 1)
		r.str(key).u32(uint32(vt))
		return r
	}
	tensor := func(name string, dims []uint64, typ Type, off uint64) *raw {
		r := new(raw).header(3, 1, 0)
		r.str(name).u32(uint32(len(dims)))
		for _, d := range dims {
			r.u64(d)
		}
		r.u32(uint32(typ)).u64(off)
		return r.pad(32)
	}
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"2^60 tensors", append(new(raw).header(3, 1<<60, 0).Bytes(), make([]byte, 16)...), ErrTruncated},
		{"2^64-1 kvs", append(new(raw).header(3, 0, math.MaxUint64).Bytes(), make([]byte, 16)...), ErrTruncated},
		{"huge key length", new(raw).header(3, 0, 1).u64(1 << 62).u64(0).Bytes(), ErrTruncated},
		{"huge string value", kv("k", TypeString).u64(math.MaxUint64).Bytes(), ErrTruncated},
		{"huge array", kv("k", TypeArray).u32(uint32(TypeUint64)).u64(1 << 61).u64(0).Bytes(), ErrTruncated},
		{"huge string array", kv("k", TypeArray).u32(uint32(TypeString)).u64(1 << 40).u64(0).Bytes(), ErrTruncated},
		{"huge array of arrays", kv("k", TypeArray).u32(uint32(TypeArray)).u64(1 << 40).u64(0).u64(0).Bytes(), ErrTruncated},
		{"unknown value type", kv("k", 13).u64(0).Bytes(), ErrFormat},
		{"unknown array type", kv("k", TypeArray).u32(99).u64(0).Bytes(), ErrFormat},
		{"bool 2", append(kv("k", TypeBool).Bytes(), 2), ErrFormat},
		{"bool array 7", append(kv("k", TypeArray).u32(uint32(TypeBool)).u64(1).Bytes(), 7), ErrFormat},
		{"duplicate key", func() []byte {
			r := new(raw).header(3, 0, 2)
			r.str("k").u32(uint32(TypeUint8)).WriteByte(1)
			r.str("k").u32(uint32(TypeUint8)).WriteByte(2)
			return r.Bytes()
		}(), ErrFormat},
		{"deep nesting", func() []byte {
			r := kv("k", TypeArray)
			for i := 0; i < 100; i++ {
				r.u32(uint32(TypeArray)).u64(1)
			}
			r.u32(uint32(TypeUint8)).u64(0)
			return r.Bytes()
		}(), ErrFormat},
		{"5 dims", tensor("t", []uint64{1, 1, 1, 1, 1}, F32, 0).Bytes(), ErrFormat},
		{"dims overflow", tensor("t", []uint64{1 << 32, 1 << 32, 1 << 32}, F32, 0).Bytes(), ErrFormat},
		{"dim above int64", tensor("t", []uint64{1 << 63}, F32, 0).Bytes(), ErrFormat},
		{"bytes overflow", tensor("t", []uint64{1 << 31, 1 << 31}, F32, 0).Bytes(), ErrFormat},
		{"unknown tensor type", tensor("t", []uint64{32}, 4, 0).Bytes(), ErrUnsupportedType},
		{"partial block", append(tensor("t", []uint64{33}, Q8_0, 0).Bytes(), make([]byte, 64)...), ErrFormat},
		{"data past end", append(tensor("t", []uint64{32}, F32, 0).Bytes(), make([]byte, 127)...), ErrTruncated},
		{"offset past end", append(tensor("t", []uint64{1}, F32, 1<<62).Bytes(), make([]byte, 32)...), ErrTruncated},
		{"huge elements in a small file", append(tensor("t", []uint64{1 << 12, 1 << 12}, F32, 0).Bytes(), make([]byte, 32)...), ErrTruncated},
		{"duplicate tensor", func() []byte {
			r := new(raw).header(3, 2, 0)
			r.str("t").u32(1).u64(1).u32(uint32(F32)).u64(0)
			r.str("t").u32(1).u64(1).u32(uint32(F32)).u64(32)
			r.pad(32).Write(make([]byte, 64))
			return r.Bytes()
		}(), ErrFormat},
	}
	for _, c := range cases {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := Parse(c.b)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
			t.Errorf("%s: allocated %d bytes", c.name, alloc)
		}
	}
}

func TestWriterErrors(t *testing.T) {
	w := NewWriter()
	if err := w.AddTensor("a", []int{32, 2}, Q8_0, make([]byte, 67)); !errors.Is(err, ErrSize) {
		t.Errorf("wrong size: %v", err)
	}
	if err := w.AddTensor("a", []int{33}, Q8_0, make([]byte, 34)); !errors.Is(err, ErrSize) {
		t.Errorf("partial block: %v", err)
	}
	if err := w.AddTensor("a", []int{1, 1, 1, 1, 1}, F32, make([]byte, 4)); !errors.Is(err, ErrSize) {
		t.Errorf("5 dims: %v", err)
	}
	if err := w.AddTensor("a", []int{-1}, F32, nil); !errors.Is(err, ErrSize) {
		t.Errorf("negative dim: %v", err)
	}
	if err := w.AddTensor("a", []int{1}, 4, make([]byte, 4)); !errors.Is(err, ErrUnsupportedType) {
		t.Errorf("unknown type: %v", err)
	}
	if err := w.AddTensor("a", []int{32, 2}, Q8_0, make([]byte, 68)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("a", []int{1}, F32, make([]byte, 4)); !errors.Is(err, ErrFormat) {
		t.Errorf("duplicate: %v", err)
	}
	for _, v := range []Value{
		{Type: TypeUint32, V: int32(1)},
		{Type: TypeString, V: 5},
		{Type: TypeArray, Elem: TypeInt32, V: []uint32{1}},
		{Type: TypeArray, Elem: TypeArray, V: []Value{{Type: TypeUint8, V: uint8(1)}}},
		{Type: 77, V: uint8(1)},
	} {
		w := NewWriter()
		w.Set("k", v)
		if _, err := w.Bytes(); !errors.Is(err, ErrMetaType) {
			t.Errorf("%#v: %v", v, err)
		}
	}
	// Replacing a key keeps its position.
	w = NewWriter()
	w.SetUint32("a", 1)
	w.SetUint32("b", 2)
	w.SetString("a", "x")
	f := mustParse(t, must(w.Bytes()))
	if f.Meta[0].Key != "a" || f.Meta[0].Value.V != "x" || f.Meta[1].Key != "b" {
		t.Errorf("replace: %#v", f.Meta)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		n := w.n
		w.n = 0
		return n, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestWriteToErrors(t *testing.T) {
	w := sampleWriter(t)
	full := len(must(w.Bytes()))
	for _, n := range []int{0, 10, 1000, full - 1} {
		got, err := w.WriteTo(&failWriter{n: n})
		if err == nil || got != int64(n) {
			t.Errorf("limit %d: wrote %d, %v", n, got, err)
		}
	}
	if got, err := w.WriteTo(&failWriter{n: full}); err != nil || got != int64(full) {
		t.Errorf("exact fit: %d %v", got, err)
	}
}

func TestOpen(t *testing.T) {
	b := sampleBytes(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	g := mustParse(t, b)
	if !reflect.DeepEqual(f.Meta, g.Meta) || len(f.Tensors) != len(g.Tensors) {
		t.Fatal("Open and Parse disagree")
	}
	for i := range f.Tensors {
		if !bytes.Equal(f.Tensors[i].Data, g.Tensors[i].Data) {
			t.Fatalf("tensor %s data differs", f.Tensors[i].Name)
		}
	}
	name, _ := f.String("general.name")
	tq, _ := f.Tensor("token_embd.weight")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tq.DequantizeRow(0, make([]float32, tq.Cols())); !errors.Is(err, ErrSize) {
		t.Errorf("DequantizeRow after Close: %v", err)
	}
	if err := tq.Dequantize(make([]float32, tq.Elements())); !errors.Is(err, ErrSize) {
		t.Errorf("Dequantize after Close: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if name != "tiny ünïcode ▁test" || f.Meta[1].Value.V != "tiny ünïcode ▁test" {
		t.Error("metadata must survive Close")
	}
	if err := g.Close(); err != nil {
		t.Error("Close of a parsed file:", err)
	}

	if _, err := Open(filepath.Join(dir, "missing.gguf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	short := filepath.Join(dir, "short.gguf")
	os.WriteFile(short, b[:len(b)/2], 0o644)
	if _, err := Open(short); !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "short.gguf") {
		t.Errorf("truncated: %v", err)
	}
	empty := filepath.Join(dir, "empty.gguf")
	os.WriteFile(empty, nil, 0o644)
	if _, err := Open(empty); !errors.Is(err, ErrTruncated) {
		t.Errorf("empty: %v", err)
	}
}

func TestTypes(t *testing.T) {
	for typ, ti := range typeTable {
		if typ.String() != ti.name || !typ.Known() || typ.BlockSize() <= 0 || typ.BlockBytes() <= 0 {
			t.Errorf("%d: %v", typ, ti)
		}
		n, err := RowBytes(typ, 3*ti.blockSize)
		if err != nil || n != 3*ti.blockBytes {
			t.Errorf("%v RowBytes: %d %v", typ, n, err)
		}
	}
	if Type(4).String() != "type(4)" || Type(4).Known() || Type(4).Supported() || Type(4).BlockSize() != 0 {
		t.Error("retired id 4")
	}
	if _, err := RowBytes(Type(99), 32); !errors.Is(err, ErrUnsupportedType) {
		t.Error(err)
	}
	if _, err := RowBytes(Q4_K, 128); !errors.Is(err, ErrSize) {
		t.Error(err)
	}
	if _, err := RowBytes(Q4_K, -256); !errors.Is(err, ErrSize) {
		t.Error(err)
	}
	if _, err := RowBytes(F32, math.MaxInt/2); !errors.Is(err, ErrSize) {
		t.Error(err)
	}
	want := map[Type][2]int{F32: {1, 4}, F16: {1, 2}, BF16: {1, 2}, Q4_0: {32, 18}, Q4_1: {32, 20}, Q5_0: {32, 22}, Q5_1: {32, 24}, Q8_0: {32, 34}, Q2_K: {256, 84}, Q3_K: {256, 110}, Q4_K: {256, 144}, Q5_K: {256, 176}, Q6_K: {256, 210}}
	for typ, g := range want {
		if typ.BlockSize() != g[0] || typ.BlockBytes() != g[1] || !typ.Supported() {
			t.Errorf("%v: %d/%d", typ, typ.BlockSize(), typ.BlockBytes())
		}
	}
	for typ := range typeTable {
		if _, ok := want[typ]; typ.Supported() != ok {
			t.Errorf("%v: Supported() = %v", typ, typ.Supported())
		}
	}
	if ValueType(3).String() != "int16" || ValueType(40).String() != "valuetype(40)" {
		t.Error("ValueType.String")
	}
}
