package gguf

import "testing"

// BenchmarkDequantizeRow decodes one 4096-value row (a typical hidden size);
// SetBytes counts the encoded bytes read.
func BenchmarkDequantizeRow(b *testing.B) {
	const n = 4096
	x := gaussian(n, 1, 5)
	for _, typ := range []Type{F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K} {
		src := quantized(b, typ, x)
		dst := make([]float32, n)
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				if err := DequantizeRow(dst, typ, src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParse parses the sample file (metadata of every type, 10 tensors).
func BenchmarkParse(b *testing.B) {
	data := sampleBytes(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
