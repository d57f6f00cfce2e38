package main

import "fmt"

// quantizePack emits quantizePack<bits>NEON. The 2^bits − 1 boundaries
// (each broadcast to 8 lanes in bounds; one 4-lane row of each is loaded)
// stay in V16–V30. Each group of eight values counts, per lane, the
// boundaries it exceeds (FCMGT gives −1 where x > b: NaN exceeds none, as
// in the generic twin), shifts lane i's count left by bits·i, and ORs the
// lanes together (ADDV: the fields do not overlap) into bits bytes.
func quantizePack(f *file, bits int) {
	name := fmt.Sprintf("quantizePack%dNEON", bits)
	f.text(name, "dst []byte, x []float32, bounds *[15][8]float32", "",
		fmt.Sprintf("%s is quantizePackGeneric for %d-bit indices on the first len(x)&^7 values.", name, bits))
	f.op("MOVD %s, R0", f.arg("dst_base"))
	f.op("MOVD %s, R1", f.arg("x_base"))
	loadLen8(f, "x", "R2")
	f.op("MOVD %s, R3", f.arg("bounds"))
	nb := 1<<bits - 1
	for k := range nb {
		f.op("VLD1 (R3), [V%d.S4]", 16+k)
		f.op("ADD $32, R3, R3")
	}
	f.comment(fmt.Sprintf("V4, V5: the lane shifts %d·i", bits))
	for i := range 8 {
		f.op("MOVW $%d, R10", bits*i)
		f.op("VMOV R10, V%d.S[%d]", 4+i/4, i%4)
	}
	l := fmt.Sprintf("qpack%d", bits)
	loop8(f, l, "R2", func() {
		f.op("VLD1.P 32(R1), [V0.S4, V1.S4]")
		zero(f, 2, 3)
		for k := range vreg(nb) {
			f.w(fcmgt4s(6, 0, 16+k))
			f.w(fcmgt4s(7, 1, 16+k))
			f.op("VSUB V6.S4, V2.S4, V2.S4")
			f.op("VSUB V7.S4, V3.S4, V3.S4")
		}
		f.w(ushl4s(2, 2, 4))
		f.w(ushl4s(3, 3, 5))
		f.op("VORR V3.B16, V2.B16, V2.B16")
		f.op("VADDV V2.S4, V2")
		f.op("VMOV V2.S[0], R10")
		switch bits {
		case 1:
			f.op("MOVB R10, (R0)")
		case 2:
			f.op("MOVH R10, (R0)")
		case 3:
			f.op("MOVH R10, (R0)")
			f.op("LSR $16, R10, R10")
			f.op("MOVB R10, 2(R0)")
		case 4:
			f.op("MOVW R10, (R0)")
		}
		f.op("ADD $%d, R0, R0", bits)
	}, func() {})
}
