package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// raw assembles GGUF bytes by hand, so tests can state malformed files that
// Writer refuses to produce.
type raw struct{ bytes.Buffer }

func (r *raw) u32(v uint32) *raw { r.Write(binary.LittleEndian.AppendUint32(nil, v)); return r }
func (r *raw) u64(v uint64) *raw { r.Write(binary.LittleEndian.AppendUint64(nil, v)); return r }
func (r *raw) str(s string) *raw { r.u64(uint64(len(s))); r.WriteString(s); return r }
func (r *raw) header(version uint32, nTensors, nKV uint64) *raw {
	r.WriteString("GGUF")
	return r.u32(version).u64(nTensors).u64(nKV)
}
func (r *raw) pad(align int) *raw {
	for r.Len()%align != 0 {
		r.WriteByte(0)
	}
	return r
}

// gaussian returns n deterministic N(0, sigma²) values.
func gaussian(n int, sigma float64, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * sigma)
	}
	return x
}

func quantized(t testing.TB, typ Type, x []float32) []byte {
	t.Helper()
	n, err := RowBytes(typ, len(x))
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	if err := Quantize(typ, b, x); err != nil {
		t.Fatal(err)
	}
	return b
}

// sampleWriter builds a small file exercising every metadata type and every
// supported tensor type plus one known-but-unsupported type.
func sampleWriter(t testing.TB) *Writer {
	w := NewWriter()
	w.SetString("general.architecture", "llama")
	w.SetString("general.name", "tiny ünïcode ▁test")
	w.SetUint32("llama.block_count", 2)
	w.SetUint64("llama.context_length", 1<<40)
	w.SetInt32("test.int32", -7)
	w.SetFloat32("llama.rope.freq_base", 10000)
	w.SetBool("tokenizer.ggml.add_bos_token", true)
	w.SetStrings("tokenizer.ggml.tokens", []string{"<unk>", "<s>", "</s>", "▁a", ""})
	w.SetFloat32s("tokenizer.ggml.scores", []float32{0, 0, 0, -1.5, float32(math.Inf(-1))})
	w.SetInt32s("tokenizer.ggml.token_type", []int32{2, 3, 3, 1, 1})
	w.Set("test.u8", Value{Type: TypeUint8, V: uint8(200)})
	w.Set("test.i8", Value{Type: TypeInt8, V: int8(-100)})
	w.Set("test.u16", Value{Type: TypeUint16, V: uint16(60000)})
	w.Set("test.i16", Value{Type: TypeInt16, V: int16(-30000)})
	w.Set("test.i64", Value{Type: TypeInt64, V: int64(-1 << 50)})
	w.Set("test.f64", Value{Type: TypeFloat64, V: math.Pi})
	w.Set("test.bools", Value{Type: TypeArray, Elem: TypeBool, V: []bool{true, false, true}})
	w.Set("test.u8s", Value{Type: TypeArray, Elem: TypeUint8, V: []uint8{1, 2, 255}})
	w.Set("test.i8s", Value{Type: TypeArray, Elem: TypeInt8, V: []int8{-1, 2, -128}})
	w.Set("test.u16s", Value{Type: TypeArray, Elem: TypeUint16, V: []uint16{1, 65535}})
	w.Set("test.i16s", Value{Type: TypeArray, Elem: TypeInt16, V: []int16{-32768, 5}})
	w.Set("test.u32s", Value{Type: TypeArray, Elem: TypeUint32, V: []uint32{1 << 31, 3}})
	w.Set("test.u64s", Value{Type: TypeArray, Elem: TypeUint64, V: []uint64{1 << 63, 3}})
	w.Set("test.i64s", Value{Type: TypeArray, Elem: TypeInt64, V: []int64{-5, 1 << 62}})
	w.Set("test.f64s", Value{Type: TypeArray, Elem: TypeFloat64, V: []float64{0.1, -2}})
	w.Set("test.empty", Value{Type: TypeArray, Elem: TypeFloat32, V: []float32{}})
	w.Set("test.nested", Value{Type: TypeArray, Elem: TypeArray, V: []Value{
		{Type: TypeArray, Elem: TypeString, V: []string{"a", "bc"}},
		{Type: TypeArray, Elem: TypeArray, V: []Value{{Type: TypeArray, Elem: TypeInt32, V: []int32{1, -2}}}},
		{Type: TypeArray, Elem: TypeUint8, V: []uint8{}},
	}})

	x := gaussian(4*512, 1, 1)
	add := func(name string, dims []int, typ Type, data []byte) {
		if err := w.AddTensor(name, dims, typ, data); err != nil {
			t.Fatal(err)
		}
	}
	add("token_embd.weight", []int{512, 4}, Q4_K, quantized(t, Q4_K, x))
	add("output.weight", []int{512, 2, 2}, Q6_K, quantized(t, Q6_K, x))
	add("blk.0.attn_q.weight", []int{64, 3}, Q8_0, quantized(t, Q8_0, x[:192]))
	add("blk.0.attn_k.weight", []int{32, 5}, Q4_0, quantized(t, Q4_0, x[:160]))
	add("blk.0.attn_norm.weight", []int{7}, F32, quantized(t, F32, x[:7]))
	add("blk.0.ffn_up.weight", []int{3, 3}, F16, quantized(t, F16, x[:9]))
	add("blk.0.ffn_down.weight", []int{5, 1, 1, 2}, BF16, quantized(t, BF16, x[:10]))
	add("blk.1.attn_q.weight", []int{32, 2}, Q4_1, quantized(t, Q4_1, x[:64]))
	add("blk.1.attn_k.weight", []int{32, 2}, Q5_0, quantized(t, Q5_0, x[:64]))
	add("blk.1.attn_v.weight", []int{64}, Q5_1, quantized(t, Q5_1, x[:64]))
	add("blk.1.ffn_gate.weight", []int{256, 3}, Q5_K, quantized(t, Q5_K, x[:768]))
	add("blk.1.ffn_up.weight", []int{256, 2}, Q3_K, quantized(t, Q3_K, x[:512]))
	add("blk.1.ffn_down.weight", []int{512}, Q2_K, quantized(t, Q2_K, x[:512]))
	add("blk.1.iq4xs", []int{256}, IQ4_XS, make([]byte, 136))
	add("scalar", nil, F32, quantized(t, F32, x[:1]))
	add("empty", []int{32, 0}, Q8_0, nil)
	return w
}

func sampleBytes(t testing.TB) []byte {
	b, err := sampleWriter(t).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
