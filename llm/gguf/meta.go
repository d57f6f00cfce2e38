package gguf

import (
	"fmt"
	"math"
)

// ValueType is a GGUF metadata value type id.
type ValueType uint32

// GGUF metadata value types (the spec's gguf_metadata_value_type).
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("valuetype(%d)", uint32(t))
}

// scalarSize is the encoded size of a fixed-size value type, 0 for string and
// array (variable) and unknown types.
func (t ValueType) scalarSize() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// Value is one metadata value. For scalars, Type is the value's type and V
// holds the matching Go type (uint8, int8, uint16, int16, uint32, int32,
// float32, bool, string, uint64, int64, float64). For arrays, Type is
// TypeArray, Elem is the element type, and V holds a typed slice of the same
// Go types ([]string, []float32, …), or []Value when Elem is TypeArray
// (nested arrays, each element again a TypeArray Value).
type Value struct {
	Type ValueType
	Elem ValueType
	V    any
}

// KV is one metadata key/value pair, in file order.
type KV struct {
	Key   string
	Value Value
}

// Len is the element count of an array value (0 for scalars).
func (v Value) Len() int {
	switch a := v.V.(type) {
	case []uint8:
		return len(a)
	case []int8:
		return len(a)
	case []uint16:
		return len(a)
	case []int16:
		return len(a)
	case []uint32:
		return len(a)
	case []int32:
		return len(a)
	case []float32:
		return len(a)
	case []bool:
		return len(a)
	case []string:
		return len(a)
	case []uint64:
		return len(a)
	case []int64:
		return len(a)
	case []float64:
		return len(a)
	case []Value:
		return len(a)
	}
	return 0
}

// asInt64 widens any integer scalar; ok is false for non-integers and for a
// uint64 above MaxInt64.
func asInt64(x any) (int64, bool) {
	switch v := x.(type) {
	case uint8:
		return int64(v), true
	case int8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case int16:
		return int64(v), true
	case uint32:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case uint64:
		if v > math.MaxInt64 {
			return 0, false
		}
		return int64(v), true
	}
	return 0, false
}

// intSlice widens any integer array to []int64; ok false otherwise or when a
// uint64 element is above MaxInt64.
func intSlice(x any) ([]int64, bool) {
	var out []int64
	switch a := x.(type) {
	case []uint8:
		out = make([]int64, len(a))
		for i, v := range a {
			out[i] = int64(v)
		}
	case []int8:
		out = make([]int64, len(a))
		for i, v := range a {
			out[i] = int64(v)
		}
	case []uint16:
		out = make([]int64, len(a))
		for i, v := range a {
			out[i] = int64(v)
		}
	case []int16:
		out = make([]int64, len(a))
		for i, v := range a {
			out[i] = int64(v)
		}
	case []uint32:
		out = make([]int64, len(a))
		for i, v := range a {
			out[i] = int64(v)
		}
	case []int32:
		out = make([]int64, len(a))
		for i, v := range a {
			out[i] = int64(v)
		}
	case []int64:
		out = append([]int64(nil), a...)
	case []uint64:
		out = make([]int64, len(a))
		for i, v := range a {
			if v > math.MaxInt64 {
				return nil, false
			}
			out[i] = int64(v)
		}
	default:
		return nil, false
	}
	return out, true
}

// Lookup returns the raw value stored under key.
func (f *File) Lookup(key string) (Value, bool) {
	i, ok := f.metaIndex[key]
	if !ok {
		return Value{}, false
	}
	return f.Meta[i].Value, true
}

// Has reports whether key is present (of any type).
func (f *File) Has(key string) bool { _, ok := f.metaIndex[key]; return ok }

func (f *File) get(key string) (Value, error) {
	v, ok := f.Lookup(key)
	if !ok {
		return Value{}, fmt.Errorf("%w: %q", ErrKeyNotFound, key)
	}
	return v, nil
}

func typeErr(key string, v Value, want string) error {
	got := v.Type.String()
	if v.Type == TypeArray {
		got = "array of " + v.Elem.String()
	}
	return fmt.Errorf("%w: %q is %s, want %s", ErrMetaType, key, got, want)
}

// String returns a string value.
func (f *File) String(key string) (string, error) {
	v, err := f.get(key)
	if err != nil {
		return "", err
	}
	s, ok := v.V.(string)
	if !ok {
		return "", typeErr(key, v, "string")
	}
	return s, nil
}

// Uint returns an integer value of any integer type, which must be ≥ 0 (the
// spec lets writers pick u32 or u64 for counts; some write signed types).
func (f *File) Uint(key string) (uint64, error) {
	v, err := f.get(key)
	if err != nil {
		return 0, err
	}
	if u, ok := v.V.(uint64); ok {
		return u, nil
	}
	i, ok := asInt64(v.V)
	if !ok || i < 0 {
		return 0, typeErr(key, v, "a non-negative integer")
	}
	return uint64(i), nil
}

// Int returns an integer value of any integer type that fits in int64.
func (f *File) Int(key string) (int64, error) {
	v, err := f.get(key)
	if err != nil {
		return 0, err
	}
	i, ok := asInt64(v.V)
	if !ok {
		return 0, typeErr(key, v, "an integer fitting int64")
	}
	return i, nil
}

// Float returns a float32 or float64 value as float64 (a float32 widens exactly).
func (f *File) Float(key string) (float64, error) {
	v, err := f.get(key)
	if err != nil {
		return 0, err
	}
	switch x := v.V.(type) {
	case float32:
		return float64(x), nil
	case float64:
		return x, nil
	}
	return 0, typeErr(key, v, "float32 or float64")
}

// Bool returns a bool value.
func (f *File) Bool(key string) (bool, error) {
	v, err := f.get(key)
	if err != nil {
		return false, err
	}
	b, ok := v.V.(bool)
	if !ok {
		return false, typeErr(key, v, "bool")
	}
	return b, nil
}

// Strings returns a copy of an array of strings (tokenizer.ggml.tokens,
// tokenizer.ggml.merges).
func (f *File) Strings(key string) ([]string, error) {
	v, err := f.get(key)
	if err != nil {
		return nil, err
	}
	a, ok := v.V.([]string)
	if !ok {
		return nil, typeErr(key, v, "array of string")
	}
	return append([]string(nil), a...), nil
}

// Float32s returns a copy of an array of float32 (tokenizer.ggml.scores); an
// array of float64 is narrowed.
func (f *File) Float32s(key string) ([]float32, error) {
	v, err := f.get(key)
	if err != nil {
		return nil, err
	}
	switch a := v.V.(type) {
	case []float32:
		return append([]float32(nil), a...), nil
	case []float64:
		out := make([]float32, len(a))
		for i, x := range a {
			out[i] = float32(x)
		}
		return out, nil
	}
	return nil, typeErr(key, v, "array of float32")
}

// Int32s returns an integer array as []int32 (tokenizer.ggml.token_type is
// int32 in llama.cpp's files); any integer element type is accepted as long
// as every element fits in int32.
func (f *File) Int32s(key string) ([]int32, error) {
	v, err := f.get(key)
	if err != nil {
		return nil, err
	}
	if a, ok := v.V.([]int32); ok {
		return append([]int32(nil), a...), nil
	}
	wide, ok := intSlice(v.V)
	if !ok {
		return nil, typeErr(key, v, "array of int32")
	}
	out := make([]int32, len(wide))
	for i, x := range wide {
		if x < math.MinInt32 || x > math.MaxInt32 {
			return nil, fmt.Errorf("%w: %q element %d = %d does not fit int32", ErrMetaType, key, i, x)
		}
		out[i] = int32(x)
	}
	return out, nil
}

// Ints returns an integer array of any element type as []int64 (per-layer
// hyperparameter arrays some architectures store).
func (f *File) Ints(key string) ([]int64, error) {
	v, err := f.get(key)
	if err != nil {
		return nil, err
	}
	out, ok := intSlice(v.V)
	if !ok {
		return nil, typeErr(key, v, "array of integers fitting int64")
	}
	return out, nil
}
