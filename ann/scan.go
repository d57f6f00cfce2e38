package ann

import "encoding/binary"

// scanBytes sets sums[i] = Σ_p rows[p][codes[i·stride+p]] for i < len(sums)
// and p < len(rows): the integer lookup-table sum of each code's index
// bytes. codes starts at the first code's index bytes and holds at least
// (len(sums)−1)·stride + len(rows) bytes.
//
// It is the one inner loop of the flat scan; a SIMD kernel (e.g. a
// 16-bit gather or a pshufb split of the table) replaces it behind this
// signature and is tested bit-identical against scanBytesGo.
var scanBytes = scanBytesGo

// scanBytesGo is the pure-Go kernel: eight index bytes per 64-bit load,
// four independent accumulators.
func scanBytesGo(sums []uint32, rows [][256]uint16, codes []byte, stride int) {
	nb := len(rows)
	full := nb &^ 7
	for i := range sums {
		c := codes[i*stride : i*stride+nb : i*stride+nb]
		var s0, s1, s2, s3 uint32
		for p := 0; p < full; p += 8 {
			w := binary.LittleEndian.Uint64(c[p : p+8])
			r := rows[p : p+8 : p+8]
			s0 += uint32(r[0][byte(w)]) + uint32(r[4][byte(w>>32)])
			s1 += uint32(r[1][byte(w>>8)]) + uint32(r[5][byte(w>>40)])
			s2 += uint32(r[2][byte(w>>16)]) + uint32(r[6][byte(w>>48)])
			s3 += uint32(r[3][byte(w>>24)]) + uint32(r[7][byte(w>>56)])
		}
		for p := full; p < nb; p++ {
			s0 += uint32(rows[p][c[p]])
		}
		sums[i] = s0 + s1 + s2 + s3
	}
}
