// Package gguf reads and writes GGUF, the single-file model format of ggml and
// llama.cpp, and converts its tensor encodings to float32.
//
// A GGUF file is a little-endian header ("GGUF", version u32, tensor count
// u64, metadata count u64), then typed metadata key/value pairs (13 value
// types: 8- to 64-bit integers, float32/64, bool, length-prefixed strings and
// possibly nested arrays), then one info per tensor (name, up to 4 dims with
// dims[0] the innermost/contiguous one, ggml type id, offset), then a data
// section starting at the next multiple of general.alignment (default 32) in
// which every tensor's offset is aligned. Tensors are stored as runs of
// blocks: plain types (F32, F16, BF16) are blocks of one value; Q8_0 and Q4_0
// are 32-value blocks with an fp16 scale; the K-quants Q4_K and Q6_K are
// 256-value super-blocks whose sub-block scales are themselves quantized.
//
// Versions 2 and 3 are read (they share one layout; v3 only allowed
// big-endian files, which are recognised and rejected with ErrBigEndian);
// version 1 (32-bit counts) is rejected with ErrVersion. Writer emits v3.
//
// Parsing treats the file as hostile: every count and length is checked
// against the bytes actually present before anything is allocated for it,
// size arithmetic cannot overflow, tensor data must lie inside the file on an
// aligned offset, and duplicate keys or tensor names are errors. Errors wrap
// the package's sentinels (ErrFormat, ErrTruncated, …) for errors.Is.
//
// Tensor types: a file may hold any type ggml knows (Q5_K, IQ4_XS, …); it
// parses and its tensors are sized and bounds-checked, so metadata-only use
// and tools work on any model. DequantizeRow and Quantize handle F32, F16,
// BF16, Q8_0, Q4_0, Q4_K and Q6_K and return an error wrapping
// ErrUnsupportedType (naming the tensor and type, via Tensor.DequantizeRow)
// for the rest, so an engine fails clearly at load time rather than
// producing garbage. A type id ggml does not define cannot even be sized and
// fails Parse with ErrUnsupportedType.
package gguf
