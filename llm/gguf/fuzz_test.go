package gguf

import (
	"bytes"
	"errors"
	"testing"
)

var sentinels = []error{ErrFormat, ErrTruncated, ErrVersion, ErrBigEndian, ErrUnsupportedType}

// FuzzParse checks that Parse never panics, that every error wraps a
// sentinel, that a parsed file's tensors are consistent and decodable, and
// that writing a parsed file and parsing it again is a fixed point.
// Without -fuzz it runs the seed corpus as a normal test.
func FuzzParse(f *testing.F) {
	full := sampleBytes(f)
	f.Add(full)
	for _, n := range []int{0, 3, 4, 8, 16, 23, 24, 40, 100, 400, 1000, len(full) / 2, len(full) - 1} {
		f.Add(full[:min(n, len(full))])
	}
	small := NewWriter()
	small.SetUint32("general.alignment", 8)
	small.SetStrings("tokenizer.ggml.tokens", []string{"a", "b"})
	for _, typ := range []Type{F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K} {
		n := typ.BlockSize() * 2
		if err := small.AddTensor("t."+typ.String(), []int{n / 2, 2}, typ, quantized(f, typ, gaussian(n, 1, 1))); err != nil {
			f.Fatal(err)
		}
	}
	sb, err := small.Bytes()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sb)
	v2 := bytes.Clone(sb)
	v2[4] = 2
	f.Add(v2)
	f.Add(new(raw).header(3, 1<<60, 0).u64(0).u64(0).Bytes())

	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse(data)
		if err != nil {
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		for _, tt := range g.Tensors {
			rb, err := RowBytes(tt.Type, tt.Cols())
			if err != nil || len(tt.Data) != rb*tt.Rows() || tt.Offset%uint64(g.Alignment) != 0 {
				t.Fatalf("tensor %q: %d bytes, row %d × %d rows (%v), offset %d", tt.Name, len(tt.Data), rb, tt.Rows(), err, tt.Offset)
			}
			if tt.Rows() == 0 || tt.Cols() > 1<<16 {
				continue
			}
			row := make([]float32, tt.Cols())
			for _, i := range []int{0, tt.Rows() - 1} {
				err := tt.DequantizeRow(i, row)
				if tt.Type.Supported() != (err == nil) {
					t.Fatalf("tensor %q (%v) row %d: %v", tt.Name, tt.Type, i, err)
				}
			}
		}
		for _, kv := range g.Meta {
			// Typed accessors must not panic whatever the value's type.
			g.String(kv.Key)
			g.Uint(kv.Key)
			g.Int(kv.Key)
			g.Float(kv.Key)
			g.Bool(kv.Key)
			g.Strings(kv.Key)
			g.Float32s(kv.Key)
			g.Int32s(kv.Key)
			g.Ints(kv.Key)
			kv.Value.Len()
		}
		once := rewrite(t, g)
		g2, err := Parse(once)
		if err != nil {
			t.Fatalf("re-parsing written file: %v", err)
		}
		if twice := rewrite(t, g2); !bytes.Equal(once, twice) {
			t.Fatal("write(parse(write(parse(x)))) differs from write(parse(x))")
		}
	})
}

func rewrite(t *testing.T, g *File) []byte {
	w := NewWriter()
	for _, kv := range g.Meta {
		w.Set(kv.Key, kv.Value)
	}
	for _, tt := range g.Tensors {
		if err := w.AddTensor(tt.Name, tt.Dims, tt.Type, tt.Data); err != nil {
			t.Fatalf("re-adding tensor: %v", err)
		}
	}
	b, err := w.Bytes()
	if err != nil {
		t.Fatalf("re-writing: %v", err)
	}
	return b
}
