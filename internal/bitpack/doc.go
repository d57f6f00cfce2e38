// Package bitpack packs small unsigned indices (1–8 bits each) densely into
// bytes and back.
//
// Bit order: the packed form is one little-endian bit stream. Index i occupies
// stream bits [i·b, i·b+b), least significant bit first, and stream bit k is
// bit k%8 (value 1<<(k%8)) of byte k/8. So a 3-bit index can straddle two
// bytes, n indices take exactly ⌈n·b/8⌉ bytes, and the unused high bits of the
// last byte are zero.
package bitpack
