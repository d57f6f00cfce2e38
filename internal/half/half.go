package half

import "math"

// FromFloat32 rounds f to the nearest fp16 value (ties to even). Values beyond
// the fp16 range become ±Inf; NaN stays NaN (quiet, sign and top payload bits kept).
func FromFloat32(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	man := b & 0x7fffff
	switch {
	case exp == 0xff: // Inf or NaN
		if man == 0 {
			return sign | 0x7c00
		}
		return sign | 0x7e00 | uint16(man>>13)
	case exp > 127+15: // overflow
		return sign | 0x7c00
	case exp >= 127-14: // normal fp16 range
		e := uint32(exp-127+15) << 10
		m := man >> 13
		rest := man & 0x1fff
		h := e | m
		if rest > 0x1000 || (rest == 0x1000 && m&1 == 1) {
			h++ // carries into the exponent correctly, up to Inf
		}
		return sign | uint16(h)
	case exp >= 127-25: // subnormal fp16
		m := man | 0x800000
		shift := uint32(126 - 14 - exp + 13 + 1) // 14..24
		h := m >> shift
		rest := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rest > half || (rest == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	default:
		return sign
	}
}

// ToFloat32 widens an fp16 value exactly.
func ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
	case man == 0:
		return math.Float32frombits(sign)
	default: // subnormal: value = man · 2^-24, exact in float32
		f := float32(man) * (1.0 / (1 << 24))
		return math.Float32frombits(sign | math.Float32bits(f))
	}
}

// BF16FromFloat32 rounds f to the nearest bfloat16 (ties to even); NaN stays NaN.
func BF16FromFloat32(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// BF16ToFloat32 widens a bfloat16 value exactly (a shift).
func BF16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// ToFloat32s widens src into dst (len(dst) must be ≥ len(src)).
func ToFloat32s(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = ToFloat32(h)
	}
}

// BF16ToFloat32s widens bf16 src into dst (len(dst) must be ≥ len(src)).
func BF16ToFloat32s(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = BF16ToFloat32(h)
	}
}
