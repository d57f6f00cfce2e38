package gguf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Writer builds a GGUF v3 file: metadata in insertion order, then tensor
// infos and data in AddTensor order. Output is deterministic: the same calls
// give the same bytes. Tests across the engine use it to build synthetic
// models; tools use it to write real ones.
type Writer struct {
	meta    []KV
	index   map[string]int
	tensors []*Tensor
	names   map[string]bool
}

// NewWriter returns an empty Writer.
func NewWriter() *Writer {
	return &Writer{index: map[string]int{}, names: map[string]bool{}}
}

// Set stores v under key. Setting an existing key replaces its value and
// keeps its original position. v is checked when the file is written.
func (w *Writer) Set(key string, v Value) {
	if i, ok := w.index[key]; ok {
		w.meta[i].Value = v
		return
	}
	w.index[key] = len(w.meta)
	w.meta = append(w.meta, KV{Key: key, Value: v})
}

// SetString stores a string value.
func (w *Writer) SetString(key, v string) { w.Set(key, Value{Type: TypeString, V: v}) }

// SetUint32 stores a uint32 value (the type llama.cpp uses for counts and
// general.alignment).
func (w *Writer) SetUint32(key string, v uint32) { w.Set(key, Value{Type: TypeUint32, V: v}) }

// SetUint64 stores a uint64 value.
func (w *Writer) SetUint64(key string, v uint64) { w.Set(key, Value{Type: TypeUint64, V: v}) }

// SetInt32 stores an int32 value.
func (w *Writer) SetInt32(key string, v int32) { w.Set(key, Value{Type: TypeInt32, V: v}) }

// SetFloat32 stores a float32 value.
func (w *Writer) SetFloat32(key string, v float32) { w.Set(key, Value{Type: TypeFloat32, V: v}) }

// SetBool stores a bool value.
func (w *Writer) SetBool(key string, v bool) { w.Set(key, Value{Type: TypeBool, V: v}) }

// SetStrings stores an array of strings (copied).
func (w *Writer) SetStrings(key string, v []string) {
	w.Set(key, Value{Type: TypeArray, Elem: TypeString, V: append([]string{}, v...)})
}

// SetFloat32s stores an array of float32 (copied).
func (w *Writer) SetFloat32s(key string, v []float32) {
	w.Set(key, Value{Type: TypeArray, Elem: TypeFloat32, V: append([]float32{}, v...)})
}

// SetInt32s stores an array of int32 (copied).
func (w *Writer) SetInt32s(key string, v []int32) {
	w.Set(key, Value{Type: TypeArray, Elem: TypeInt32, V: append([]int32{}, v...)})
}

// AddTensor appends a tensor. dims are ggml order (dims[0] innermost), at
// most 4; len(data) must equal the encoded size for dims and t. data is not
// copied: leave it unchanged until WriteTo returns.
func (w *Writer) AddTensor(name string, dims []int, t Type, data []byte) error {
	if w.names[name] {
		return fmt.Errorf("%w: duplicate tensor name %q", ErrFormat, name)
	}
	if len(dims) > maxDims {
		return fmt.Errorf("%w: tensor %q has %d dims (max %d)", ErrSize, name, len(dims), maxDims)
	}
	if !t.Known() {
		return fmt.Errorf("%w: tensor %q: %v", ErrUnsupportedType, name, t)
	}
	rows := 1
	for i, d := range dims {
		if d < 0 {
			return fmt.Errorf("%w: tensor %q dim %d = %d", ErrSize, name, i, d)
		}
		if i > 0 {
			if d != 0 && rows > math.MaxInt/d {
				return fmt.Errorf("%w: tensor %q element count overflows", ErrSize, name)
			}
			rows *= d
		}
	}
	cols := 1
	if len(dims) > 0 {
		cols = dims[0]
	}
	rb, err := RowBytes(t, cols)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", name, err)
	}
	if rows != 0 && rb > math.MaxInt/rows {
		return fmt.Errorf("%w: tensor %q byte size overflows", ErrSize, name)
	}
	if len(data) != rb*rows {
		return fmt.Errorf("%w: tensor %q %v %v needs %d bytes, got %d", ErrSize, name, t, dims, rb*rows, len(data))
	}
	w.names[name] = true
	w.tensors = append(w.tensors, &Tensor{Name: name, Dims: append([]int{}, dims...), Type: t, Data: data})
	return nil
}

// alignment is general.alignment when set (any unsigned integer type), else 32.
func (w *Writer) alignment() (int, error) {
	i, ok := w.index["general.alignment"]
	if !ok {
		return DefaultAlignment, nil
	}
	a, ok := asInt64(w.meta[i].Value.V)
	if !ok || a <= 0 || a > maxAlignment || a&(a-1) != 0 {
		return 0, fmt.Errorf("%w: general.alignment = %v is not a power of two in [1, 2^30]", ErrFormat, w.meta[i].Value.V)
	}
	return int(a), nil
}

// WriteTo writes the file (GGUF v3, little-endian). Every tensor's data starts
// on an alignment boundary and is zero-padded to the next one.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	align, err := w.alignment()
	if err != nil {
		return 0, err
	}
	var h bytes.Buffer
	h.WriteString("GGUF")
	putU32(&h, 3)
	putU64(&h, uint64(len(w.tensors)))
	putU64(&h, uint64(len(w.meta)))
	for _, kv := range w.meta {
		putString(&h, kv.Key)
		putU32(&h, uint32(kv.Value.Type))
		if err := putValue(&h, kv.Value, 0); err != nil {
			return 0, fmt.Errorf("metadata %q: %w", kv.Key, err)
		}
	}
	offset := 0
	for _, t := range w.tensors {
		putString(&h, t.Name)
		putU32(&h, uint32(len(t.Dims)))
		for _, d := range t.Dims {
			putU64(&h, uint64(d))
		}
		putU32(&h, uint32(t.Type))
		putU64(&h, uint64(offset))
		offset += padded(len(t.Data), align)
	}
	if len(w.tensors) > 0 {
		h.Write(make([]byte, padded(h.Len(), align)-h.Len()))
	}
	n, err := out.Write(h.Bytes())
	total := int64(n)
	if err != nil {
		return total, err
	}
	zeros := make([]byte, align)
	for _, t := range w.tensors {
		n, err := out.Write(t.Data)
		total += int64(n)
		if err != nil {
			return total, err
		}
		n, err = out.Write(zeros[:padded(len(t.Data), align)-len(t.Data)])
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Bytes returns the encoded file (WriteTo into memory).
func (w *Writer) Bytes() ([]byte, error) {
	var b bytes.Buffer
	if _, err := w.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func padded(n, align int) int { return (n + align - 1) / align * align }

func putU32(b *bytes.Buffer, v uint32) { b.Write(binary.LittleEndian.AppendUint32(nil, v)) }
func putU64(b *bytes.Buffer, v uint64) { b.Write(binary.LittleEndian.AppendUint64(nil, v)) }
func putString(b *bytes.Buffer, s string) {
	putU64(b, uint64(len(s)))
	b.WriteString(s)
}

func mismatch(v Value) error {
	if v.Type == TypeArray {
		return fmt.Errorf("%w: array of %v holds %T", ErrMetaType, v.Elem, v.V)
	}
	return fmt.Errorf("%w: %v value holds %T", ErrMetaType, v.Type, v.V)
}

// putValue encodes v's payload (not its type tag), checking that V's Go type
// matches the declared type.
func putValue(b *bytes.Buffer, v Value, depth int) error {
	le := binary.LittleEndian
	switch v.Type {
	case TypeArray:
		if depth >= maxArrayDepth {
			return fmt.Errorf("%w: arrays nested deeper than %d", ErrFormat, maxArrayDepth)
		}
		return putArray(b, v, depth)
	case TypeString:
		s, ok := v.V.(string)
		if !ok {
			return mismatch(v)
		}
		putString(b, s)
		return nil
	}
	var buf []byte
	ok := true
	switch x := v.V.(type) {
	case uint8:
		ok = v.Type == TypeUint8
		buf = []byte{x}
	case int8:
		ok = v.Type == TypeInt8
		buf = []byte{byte(x)}
	case bool:
		ok = v.Type == TypeBool
		buf = []byte{0}
		if x {
			buf[0] = 1
		}
	case uint16:
		ok = v.Type == TypeUint16
		buf = le.AppendUint16(nil, x)
	case int16:
		ok = v.Type == TypeInt16
		buf = le.AppendUint16(nil, uint16(x))
	case uint32:
		ok = v.Type == TypeUint32
		buf = le.AppendUint32(nil, x)
	case int32:
		ok = v.Type == TypeInt32
		buf = le.AppendUint32(nil, uint32(x))
	case float32:
		ok = v.Type == TypeFloat32
		buf = le.AppendUint32(nil, math.Float32bits(x))
	case uint64:
		ok = v.Type == TypeUint64
		buf = le.AppendUint64(nil, x)
	case int64:
		ok = v.Type == TypeInt64
		buf = le.AppendUint64(nil, uint64(x))
	case float64:
		ok = v.Type == TypeFloat64
		buf = le.AppendUint64(nil, math.Float64bits(x))
	default:
		ok = false
	}
	if !ok {
		return mismatch(v)
	}
	b.Write(buf)
	return nil
}

func putArray(b *bytes.Buffer, v Value, depth int) error {
	le := binary.LittleEndian
	n := v.Len()
	putU32(b, uint32(v.Elem))
	var want ValueType
	switch v.V.(type) {
	case []uint8:
		want = TypeUint8
	case []int8:
		want = TypeInt8
	case []bool:
		want = TypeBool
	case []uint16:
		want = TypeUint16
	case []int16:
		want = TypeInt16
	case []uint32:
		want = TypeUint32
	case []int32:
		want = TypeInt32
	case []float32:
		want = TypeFloat32
	case []uint64:
		want = TypeUint64
	case []int64:
		want = TypeInt64
	case []float64:
		want = TypeFloat64
	case []string:
		want = TypeString
	case []Value:
		want = TypeArray
	default:
		return mismatch(v)
	}
	if want != v.Elem {
		return mismatch(v)
	}
	putU64(b, uint64(n))
	switch a := v.V.(type) {
	case []uint8:
		b.Write(a)
	case []int8:
		for _, x := range a {
			b.WriteByte(byte(x))
		}
	case []bool:
		for _, x := range a {
			if x {
				b.WriteByte(1)
			} else {
				b.WriteByte(0)
			}
		}
	case []uint16:
		for _, x := range a {
			b.Write(le.AppendUint16(nil, x))
		}
	case []int16:
		for _, x := range a {
			b.Write(le.AppendUint16(nil, uint16(x)))
		}
	case []uint32:
		for _, x := range a {
			putU32(b, x)
		}
	case []int32:
		for _, x := range a {
			putU32(b, uint32(x))
		}
	case []float32:
		for _, x := range a {
			putU32(b, math.Float32bits(x))
		}
	case []uint64:
		for _, x := range a {
			putU64(b, x)
		}
	case []int64:
		for _, x := range a {
			putU64(b, uint64(x))
		}
	case []float64:
		for _, x := range a {
			putU64(b, math.Float64bits(x))
		}
	case []string:
		for _, s := range a {
			putString(b, s)
		}
	case []Value:
		for i, e := range a {
			if e.Type != TypeArray {
				return fmt.Errorf("%w: element %d of a nested array is %v", ErrMetaType, i, e.Type)
			}
			// An element of an array of arrays is a bare array payload
			// (element type, count, values): its own type is implied.
			if err := putValue(b, e, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
