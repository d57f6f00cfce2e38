package main

import "fmt"

// inst is one A64 instruction that Go's assembler cannot spell, encoded by
// hand: its 32-bit word and the GNU syntax it stands for. The generated
// file carries the GNU text as a comment after each WORD, and the binutils
// test assembles that text and compares the words.
type inst struct {
	word uint32
	gnu  string
}

// vreg is a SIMD register number, V0–V31.
type vreg uint32

func (v vreg) check() vreg {
	if v > 31 {
		panic(fmt.Sprintf("neon: no register V%d", v))
	}
	return v
}

// threeSame encodes an Advanced SIMD three-register instruction: the
// opcode bits with Rm in [20:16], Rn in [9:5] and Rd in [4:0].
func threeSame(op uint32, mnem, arr string, d, n, m vreg) inst {
	return inst{
		op | uint32(m.check())<<16 | uint32(n.check())<<5 | uint32(d.check()),
		fmt.Sprintf("%s v%d.%s, v%d.%s, v%d.%s", mnem, d, arr, n, arr, m, arr),
	}
}

// twoReg encodes an Advanced SIMD two-register instruction (Rn, Rd).
func twoReg(op uint32, gnu string, d, n vreg) inst {
	return inst{op | uint32(n.check())<<5 | uint32(d.check()), fmt.Sprintf(gnu, d, n)}
}

// Vector floating-point arithmetic on four single-precision lanes (Q=1, sz=0).

func fadd4s(d, n, m vreg) inst  { return threeSame(0x4e20d400, "fadd", "4s", d, n, m) }
func fsub4s(d, n, m vreg) inst  { return threeSame(0x4ea0d400, "fsub", "4s", d, n, m) }
func fmul4s(d, n, m vreg) inst  { return threeSame(0x6e20dc00, "fmul", "4s", d, n, m) }
func faddp4s(d, n, m vreg) inst { return threeSame(0x6e20d400, "faddp", "4s", d, n, m) }

// fcmgt4s sets each lane of d to all ones where n > m, else zero.
func fcmgt4s(d, n, m vreg) inst { return threeSame(0x6ea0e400, "fcmgt", "4s", d, n, m) }

// faddpS is the scalar pairwise add: s<d> = v<n>.s[0] + v<n>.s[1].
func faddpS(d, n vreg) inst { return twoReg(0x7e30d800, "faddp s%d, v%d.2s", d, n) }

// fcvtl widens the low four halves of n to singles; fcvtl2 the high four.
func fcvtl(d, n vreg) inst  { return twoReg(0x0e217800, "fcvtl v%d.4s, v%d.4h", d, n) }
func fcvtl2(d, n vreg) inst { return twoReg(0x4e217800, "fcvtl2 v%d.4s, v%d.8h", d, n) }

// frintn4s rounds to an integral value, ties to even.
func frintn4s(d, n vreg) inst { return twoReg(0x4e218800, "frintn v%d.4s, v%d.4s", d, n) }

// fcvtzs4s converts to signed 32-bit integers, rounding toward zero.
func fcvtzs4s(d, n vreg) inst { return twoReg(0x4ea1b800, "fcvtzs v%d.4s, v%d.4s", d, n) }

// Integer lanes (size=10: 32-bit).

// ushl4s shifts each lane of n by the signed low byte of the lane of m:
// left where positive, right (logical) where negative.
func ushl4s(d, n, m vreg) inst { return threeSame(0x6ea04400, "ushl", "4s", d, n, m) }
func mul4s(d, n, m vreg) inst  { return threeSame(0x4ea09c00, "mul", "4s", d, n, m) }
func neg4s(d, n vreg) inst     { return twoReg(0x6ea0b800, "neg v%d.4s, v%d.4s", d, n) }

// bic16b is d = n AND NOT m over all 128 bits.
func bic16b(d, n, m vreg) inst { return threeSame(0x4e601c00, "bic", "16b", d, n, m) }

// fmlaElem4s is d += n · m.s[idx] (FMLA by element, single precision: the
// index is H:L, and Rm takes all five bits because M is its top bit).
func fmlaElem4s(d, n, m vreg, idx uint32) inst {
	if idx > 3 {
		panic(fmt.Sprintf("neon: lane %d of a .4s register", idx))
	}
	return inst{
		0x4f801000 | (idx&1)<<21 | uint32(m.check())<<16 | (idx>>1)<<11 | uint32(n.check())<<5 | uint32(d.check()),
		fmt.Sprintf("fmla v%d.4s, v%d.4s, v%d.s[%d]", d, n, m, idx),
	}
}

// Reductions and lane-wise maxima (no NaN reaches them: FMAX, not FMAXNM).

func fmax4s(d, n, m vreg) inst { return threeSame(0x4e20f400, "fmax", "4s", d, n, m) }
func umax4s(d, n, m vreg) inst { return threeSame(0x6ea06400, "umax", "4s", d, n, m) }

// fmaxvS and umaxvS reduce the four lanes of n to their maximum in s<d>.
func fmaxvS(d, n vreg) inst { return twoReg(0x6e30f800, "fmaxv s%d, v%d.4s", d, n) }
func umaxvS(d, n vreg) inst { return twoReg(0x6eb0a800, "umaxv s%d, v%d.4s", d, n) }

// Double-precision lanes (Q=1, sz=1).

func fadd2d(d, n, m vreg) inst { return threeSame(0x4e60d400, "fadd", "2d", d, n, m) }

// fmla2d is d += n·m, one rounding per lane.
func fmla2d(d, n, m vreg) inst { return threeSame(0x4e60cc00, "fmla", "2d", d, n, m) }

// faddpD is the scalar pairwise add: d<d> = v<n>.d[0] + v<n>.d[1].
func faddpD(d, n vreg) inst { return twoReg(0x7e70d800, "faddp d%d, v%d.2d", d, n) }

// fcvtlD widens the low two singles of n to doubles; fcvtl2D the high two.
func fcvtlD(d, n vreg) inst  { return twoReg(0x0e617800, "fcvtl v%d.2d, v%d.2s", d, n) }
func fcvtl2D(d, n vreg) inst { return twoReg(0x4e617800, "fcvtl2 v%d.2d, v%d.4s", d, n) }

// fcvtn narrows four singles of n to halves in the low half of d (the
// high half cleared); fcvtn2 writes the high half, keeping the low. Both
// round by FPCR, which Go leaves at round-to-nearest-even.
func fcvtn(d, n vreg) inst  { return twoReg(0x0e216800, "fcvtn v%d.4h, v%d.4s", d, n) }
func fcvtn2(d, n vreg) inst { return twoReg(0x4e216800, "fcvtn2 v%d.8h, v%d.4s", d, n) }

// Widening and conversion for the quantized-weight kernels.

// sxtl8h sign-extends the low eight bytes of n to 16-bit lanes (SSHLL #0);
// sxtl28h the high eight. sxtl4s and sxtl24s do the same from 16-bit to
// 32-bit lanes.
func sxtl8h(d, n vreg) inst  { return twoReg(0x0f08a400, "sshll v%d.8h, v%d.8b, #0", d, n) }
func sxtl28h(d, n vreg) inst { return twoReg(0x4f08a400, "sshll2 v%d.8h, v%d.16b, #0", d, n) }
func sxtl4s(d, n vreg) inst  { return twoReg(0x0f10a400, "sshll v%d.4s, v%d.4h, #0", d, n) }
func sxtl24s(d, n vreg) inst { return twoReg(0x4f10a400, "sshll2 v%d.4s, v%d.8h, #0", d, n) }

// scvtf4s converts four signed 32-bit integers to singles (exact below 2^24).
func scvtf4s(d, n vreg) inst { return twoReg(0x4e21d800, "scvtf v%d.4s, v%d.4s", d, n) }

// Widening integer products and pairwise sums for the int8-activation
// kernels: bytes to 16-bit lanes, 16-bit lanes to 32-bit.

// long3 encodes a three-register widening instruction: d in arrangement
// da, n and m in na.
func long3(op uint32, mnem, da, na string, d, n, m vreg) inst {
	return inst{
		op | uint32(m.check())<<16 | uint32(n.check())<<5 | uint32(d.check()),
		fmt.Sprintf("%s v%d.%s, v%d.%s, v%d.%s", mnem, d, da, n, na, m, na),
	}
}

// smull8h sets the eight 16-bit lanes of d to the products of the low
// eight signed bytes of n and m (exact: |product| ≤ 2¹⁴); smull28h uses
// the high eight. smlal8h and smlal28h add the products to d instead,
// wrapping at 16 bits.
func smull8h(d, n, m vreg) inst  { return long3(0x0e20c000, "smull", "8h", "8b", d, n, m) }
func smull28h(d, n, m vreg) inst { return long3(0x4e20c000, "smull2", "8h", "16b", d, n, m) }
func smlal8h(d, n, m vreg) inst  { return long3(0x0e208000, "smlal", "8h", "8b", d, n, m) }
func smlal28h(d, n, m vreg) inst { return long3(0x4e208000, "smlal2", "8h", "16b", d, n, m) }

// saddlp4s sets each 32-bit lane of d to the sum of the two signed 16-bit
// lanes of n it covers; sadalp4s adds that sum to d.
func saddlp4s(d, n vreg) inst { return twoReg(0x4e602800, "saddlp v%d.4s, v%d.8h", d, n) }
func sadalp4s(d, n vreg) inst { return twoReg(0x4e606800, "sadalp v%d.4s, v%d.8h", d, n) }
