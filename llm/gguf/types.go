package gguf

import (
	"fmt"
	"math"
)

// Type is a ggml tensor type id as stored in a GGUF tensor info.
type Type uint32

// ggml type ids. The gaps (4, 5, 31–33, 36–38) are ids ggml retired; they are
// rejected like any other unknown id.
const (
	F32     Type = 0
	F16     Type = 1
	Q4_0    Type = 2
	Q4_1    Type = 3
	Q5_0    Type = 6
	Q5_1    Type = 7
	Q8_0    Type = 8
	Q8_1    Type = 9
	Q2_K    Type = 10
	Q3_K    Type = 11
	Q4_K    Type = 12
	Q5_K    Type = 13
	Q6_K    Type = 14
	Q8_K    Type = 15
	IQ2_XXS Type = 16
	IQ2_XS  Type = 17
	IQ3_XXS Type = 18
	IQ1_S   Type = 19
	IQ4_NL  Type = 20
	IQ3_S   Type = 21
	IQ2_S   Type = 22
	IQ4_XS  Type = 23
	I8      Type = 24
	I16     Type = 25
	I32     Type = 26
	I64     Type = 27
	F64     Type = 28
	IQ1_M   Type = 29
	BF16    Type = 30
	TQ1_0   Type = 34
	TQ2_0   Type = 35
	MXFP4   Type = 39
)

// typeInfo is what the parser needs to size a tensor (block geometry) and
// whether this package can convert it to float32.
type typeInfo struct {
	name       string
	blockSize  int // values per block
	blockBytes int // bytes per block
	supported  bool
}

// Block geometry from ggml's type traits (ggml-common.h block structs).
var typeTable = map[Type]typeInfo{
	F32:     {"F32", 1, 4, true},
	F16:     {"F16", 1, 2, true},
	Q4_0:    {"Q4_0", 32, 18, true},
	Q4_1:    {"Q4_1", 32, 20, false},
	Q5_0:    {"Q5_0", 32, 22, false},
	Q5_1:    {"Q5_1", 32, 24, false},
	Q8_0:    {"Q8_0", 32, 34, true},
	Q8_1:    {"Q8_1", 32, 36, false},
	Q2_K:    {"Q2_K", 256, 84, false},
	Q3_K:    {"Q3_K", 256, 110, false},
	Q4_K:    {"Q4_K", 256, 144, true},
	Q5_K:    {"Q5_K", 256, 176, false},
	Q6_K:    {"Q6_K", 256, 210, true},
	Q8_K:    {"Q8_K", 256, 292, false},
	IQ2_XXS: {"IQ2_XXS", 256, 66, false},
	IQ2_XS:  {"IQ2_XS", 256, 74, false},
	IQ3_XXS: {"IQ3_XXS", 256, 98, false},
	IQ1_S:   {"IQ1_S", 256, 50, false},
	IQ4_NL:  {"IQ4_NL", 32, 18, false},
	IQ3_S:   {"IQ3_S", 256, 110, false},
	IQ2_S:   {"IQ2_S", 256, 82, false},
	IQ4_XS:  {"IQ4_XS", 256, 136, false},
	I8:      {"I8", 1, 1, false},
	I16:     {"I16", 1, 2, false},
	I32:     {"I32", 1, 4, false},
	I64:     {"I64", 1, 8, false},
	F64:     {"F64", 1, 8, false},
	IQ1_M:   {"IQ1_M", 256, 56, false},
	BF16:    {"BF16", 1, 2, true},
	TQ1_0:   {"TQ1_0", 256, 54, false},
	TQ2_0:   {"TQ2_0", 256, 66, false},
	MXFP4:   {"MXFP4", 32, 17, false},
}

// String returns ggml's name for the type ("Q4_K"), or "type(N)" for an id
// this package does not know.
func (t Type) String() string {
	if ti, ok := typeTable[t]; ok {
		return ti.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// Known reports whether the id names a ggml type whose block geometry this
// package knows (so a tensor of it can be parsed and sized).
func (t Type) Known() bool { _, ok := typeTable[t]; return ok }

// Supported reports whether DequantizeRow and Quantize handle the type.
func (t Type) Supported() bool { return typeTable[t].supported }

// BlockSize is the number of values in one block (1 for plain types, 32 for
// Q4_0/Q8_0, 256 for the K-quants); 0 for an unknown type.
func (t Type) BlockSize() int { return typeTable[t].blockSize }

// BlockBytes is the encoded size of one block; 0 for an unknown type.
func (t Type) BlockBytes() int { return typeTable[t].blockBytes }

// RowBytes is the encoded size of n consecutive values of type t. n must be a
// non-negative multiple of t's block size.
func RowBytes(t Type, n int) (int, error) {
	ti, ok := typeTable[t]
	if !ok {
		return 0, fmt.Errorf("%w: %v", ErrUnsupportedType, t)
	}
	if n < 0 || n%ti.blockSize != 0 {
		return 0, fmt.Errorf("%w: %d values of %v is not a whole number of %d-value blocks", ErrSize, n, t, ti.blockSize)
	}
	blocks := n / ti.blockSize
	if blocks > math.MaxInt/ti.blockBytes {
		return 0, fmt.Errorf("%w: %d values of %v overflows int", ErrSize, n, t)
	}
	return blocks * ti.blockBytes, nil
}
