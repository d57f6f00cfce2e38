package bitpack

// Bytes returns the number of bytes that n indices of the given width occupy.
func Bytes(n, bits int) int { return (n*bits + 7) / 8 }

// Pack writes len(idx) indices of width bits (1–8) into dst, which must hold
// at least Bytes(len(idx), bits) bytes. Index bits above the width are
// ignored. Pack panics on a width outside 1–8 or a short dst: those are
// programmer errors, not data errors.
func Pack(dst []byte, idx []uint8, bits int) {
	nb := Bytes(len(idx), bits)
	if bits < 1 || bits > 8 || len(dst) < nb {
		panic("bitpack: bad width or short destination")
	}
	dst = dst[:nb:nb]
	switch bits {
	case 8:
		copy(dst, idx)
	case 4:
		n := len(idx) / 2
		for i := 0; i < n; i++ {
			dst[i] = idx[2*i]&0xf | idx[2*i+1]<<4
		}
		if len(idx)%2 == 1 {
			dst[n] = idx[2*n] & 0xf
		}
	case 3:
		// Eight 3-bit indices fill exactly three bytes.
		n := len(idx) / 8
		for i := 0; i < n; i++ {
			s := idx[8*i : 8*i+8 : 8*i+8]
			w := uint32(s[0]&7) | uint32(s[1]&7)<<3 | uint32(s[2]&7)<<6 | uint32(s[3]&7)<<9 |
				uint32(s[4]&7)<<12 | uint32(s[5]&7)<<15 | uint32(s[6]&7)<<18 | uint32(s[7]&7)<<21
			o := dst[3*i : 3*i+3 : 3*i+3]
			o[0], o[1], o[2] = byte(w), byte(w>>8), byte(w>>16)
		}
		packTail(dst[3*n:], idx[8*n:], 3)
	case 2:
		n := len(idx) / 4
		for i := 0; i < n; i++ {
			s := idx[4*i : 4*i+4 : 4*i+4]
			dst[i] = s[0]&3 | (s[1]&3)<<2 | (s[2]&3)<<4 | s[3]<<6
		}
		packTail(dst[n:], idx[4*n:], 2)
	case 1:
		n := len(idx) / 8
		for i := 0; i < n; i++ {
			s := idx[8*i : 8*i+8 : 8*i+8]
			dst[i] = s[0]&1 | (s[1]&1)<<1 | (s[2]&1)<<2 | (s[3]&1)<<3 |
				(s[4]&1)<<4 | (s[5]&1)<<5 | (s[6]&1)<<6 | s[7]<<7
		}
		packTail(dst[n:], idx[8*n:], 1)
	default:
		packTail(dst, idx, bits)
	}
}

// packTail is the general bit-stream packer used for odd widths and tails.
func packTail(dst []byte, idx []uint8, bits int) {
	mask := uint64(1)<<bits - 1
	var acc uint64
	nacc, o := 0, 0
	for _, v := range idx {
		acc |= (uint64(v) & mask) << nacc
		nacc += bits
		for nacc >= 8 {
			dst[o] = byte(acc)
			o++
			acc >>= 8
			nacc -= 8
		}
	}
	if nacc > 0 {
		dst[o] = byte(acc)
	}
}

// Unpack reads len(dst) indices of width bits (1–8) from src, which must hold
// at least Bytes(len(dst), bits) bytes. It panics on a width outside 1–8 or a
// short src (programmer errors).
func Unpack(dst []uint8, src []byte, bits int) {
	nb := Bytes(len(dst), bits)
	if bits < 1 || bits > 8 || len(src) < nb {
		panic("bitpack: bad width or short source")
	}
	src = src[:nb:nb]
	switch bits {
	case 8:
		copy(dst, src)
	case 4:
		n := len(dst) / 2
		for i := 0; i < n; i++ {
			b := src[i]
			dst[2*i] = b & 0xf
			dst[2*i+1] = b >> 4
		}
		if len(dst)%2 == 1 {
			dst[2*n] = src[n] & 0xf
		}
	case 2:
		n := len(dst) / 4
		for i := 0; i < n; i++ {
			b := src[i]
			o := dst[4*i : 4*i+4 : 4*i+4]
			o[0], o[1], o[2], o[3] = b&3, b>>2&3, b>>4&3, b>>6
		}
		unpackTail(dst[4*n:], src[n:], 2)
	case 1:
		n := len(dst) / 8
		for i := 0; i < n; i++ {
			b := src[i]
			o := dst[8*i : 8*i+8 : 8*i+8]
			o[0], o[1], o[2], o[3] = b&1, b>>1&1, b>>2&1, b>>3&1
			o[4], o[5], o[6], o[7] = b>>4&1, b>>5&1, b>>6&1, b>>7
		}
		unpackTail(dst[8*n:], src[n:], 1)
	case 3:
		n := len(dst) / 8
		for i := 0; i < n; i++ {
			b := src[3*i : 3*i+3 : 3*i+3]
			w := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
			o := dst[8*i : 8*i+8 : 8*i+8]
			o[0], o[1], o[2], o[3] = uint8(w&7), uint8(w>>3&7), uint8(w>>6&7), uint8(w>>9&7)
			o[4], o[5], o[6], o[7] = uint8(w>>12&7), uint8(w>>15&7), uint8(w>>18&7), uint8(w>>21&7)
		}
		unpackTail(dst[8*n:], src[3*n:], 3)
	default:
		unpackTail(dst, src, bits)
	}
}

// unpackTail is the general bit-stream unpacker used for odd widths and tails.
func unpackTail(dst []uint8, src []byte, bits int) {
	mask := uint64(1)<<bits - 1
	var acc uint64
	nacc, o := 0, 0
	for i := range dst {
		for nacc < bits {
			acc |= uint64(src[o]) << nacc
			o++
			nacc += 8
		}
		dst[i] = uint8(acc & mask)
		acc >>= bits
		nacc -= bits
	}
}

// Get returns index i of a packed stream of width bits without unpacking the
// rest. It panics if the stream is too short.
func Get(src []byte, i, bits int) uint8 {
	bit := i * bits
	o, sh := bit/8, bit%8
	v := uint16(src[o]) >> sh
	if sh+bits > 8 {
		v |= uint16(src[o+1]) << (8 - sh)
	}
	return uint8(v & (1<<bits - 1))
}
