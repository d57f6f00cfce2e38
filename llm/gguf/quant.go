package gguf

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/turboquant-go/tq/internal/half"
)

// Quantize encodes src into dst as type t. len(src) must be a multiple of t's
// block size and len(dst) must equal RowBytes(t, len(src)).
//
// F32, F16, BF16, Q8_0 and Q4_0 follow ggml's quantize_row_*_ref exactly
// (same rounding, same scale choice), so their bytes match ggml's. Q4_K and
// Q6_K produce the correct ggml layout with a simpler scale search than
// ggml's (documented on quantQ4K and quantQ6K); their bytes may differ from
// ggml's, their error is of the same order. The quantizers exist to build
// test models and tools, not for speed.
func Quantize(t Type, dst []byte, src []float32) error {
	ti, ok := typeTable[t]
	if !ok || !ti.supported {
		return fmt.Errorf("%w: cannot quantize to %v", ErrUnsupportedType, t)
	}
	rb, err := RowBytes(t, len(src))
	if err != nil {
		return err
	}
	if len(dst) != rb {
		return fmt.Errorf("%w: %d values of %v encode to %d bytes, dst holds %d", ErrSize, len(src), t, rb, len(dst))
	}
	le := binary.LittleEndian
	switch t {
	case F32:
		for i, x := range src {
			le.PutUint32(dst[4*i:], math.Float32bits(x))
		}
	case F16:
		for i, x := range src {
			le.PutUint16(dst[2*i:], half.FromFloat32(x))
		}
	case BF16:
		for i, x := range src {
			le.PutUint16(dst[2*i:], half.BF16FromFloat32(x))
		}
	case Q8_0:
		for b := 0; b < len(src)/32; b++ {
			quantQ8_0(dst[34*b:34*b+34], src[32*b:32*b+32])
		}
	case Q4_0:
		for b := 0; b < len(src)/32; b++ {
			quantQ4_0(dst[18*b:18*b+18], src[32*b:32*b+32])
		}
	case Q4_K:
		for b := 0; b < len(src)/256; b++ {
			quantQ4K(dst[144*b:144*b+144], src[256*b:256*b+256])
		}
	case Q6_K:
		for b := 0; b < len(src)/256; b++ {
			quantQ6K(dst[210*b:210*b+210], src[256*b:256*b+256])
		}
	}
	return nil
}

// quantQ8_0 is ggml's reference: d = max|x|/127, q = round(x/d) with halves
// away from zero (C roundf).
func quantQ8_0(dst []byte, x []float32) {
	var amax float32
	for _, v := range x {
		amax = max(amax, abs32(v))
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	binary.LittleEndian.PutUint16(dst, half.FromFloat32(d))
	for j, v := range x {
		dst[2+j] = byte(int8(math.Round(float64(v * id))))
	}
}

// quantQ4_0 is ggml's reference: the signed value of largest magnitude maps
// to −8 (d = max/−8), q = trunc(x/d + 8.5) clamped to 15.
func quantQ4_0(dst []byte, x []float32) {
	var amax, mx float32
	for _, v := range x {
		if a := abs32(v); amax < a {
			amax, mx = a, v
		}
	}
	d := mx / -8
	var id float32
	if d != 0 {
		id = 1 / d
	}
	binary.LittleEndian.PutUint16(dst, half.FromFloat32(d))
	q := func(v float32) byte {
		// float32(...) keeps the product rounded before the add, as in C.
		return byte(min(15, int8(float32(v*id)+8.5)))
	}
	for j := 0; j < 16; j++ {
		dst[2+j] = q(x[j]) | q(x[j+16])<<4
	}
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// nearestInt rounds half to even, like ggml's nearest_int for the K-quants.
func nearestInt(v float32) int { return int(math.RoundToEven(float64(v))) }

// fitScaleMin finds scale ≥ 0 and offset ≤ 0 with x ≈ scale·q + offset,
// q ∈ [0, nmax]. Like ggml's make_qkx2_quants it tries 21 inverse scales
// around nmax/(max−min), reassigns q for each, refits (scale, offset) by least
// squares and keeps the best; unlike it, every value has weight 1.
func fitScaleMin(x []float32, nmax int) (scale, offset float32) {
	lo, hi := x[0], x[0]
	for _, v := range x {
		lo, hi = min(lo, v), max(hi, v)
	}
	lo = min(lo, 0)
	if hi == lo {
		return 0, lo
	}
	n := float32(len(x))
	bestErr := float32(math.Inf(1))
	scale, offset = (hi-lo)/float32(nmax), lo
	for step := -10; step <= 10; step++ {
		iscale := (float32(nmax) + 0.1*float32(step)) / (hi - lo)
		var sl, sl2, sx, slx float32
		for _, v := range x {
			l := float32(max(0, min(nmax, nearestInt(iscale*(v-lo)))))
			sl += l
			sl2 += l * l
			sx += v
			slx += l * v
		}
		det := n*sl2 - sl*sl
		if det <= 0 {
			continue
		}
		s := (n*slx - sl*sx) / det
		o := (sl2*sx - sl*slx) / det
		if o > 0 { // the format only stores a subtracted (non-negative) min
			o = 0
			s = slx / sl2
		}
		if s <= 0 {
			continue
		}
		var e float32
		for _, v := range x {
			l := float32(max(0, min(nmax, nearestInt((v-o)/s))))
			r := s*l + o - v
			e += r * r
		}
		if e < bestErr {
			bestErr, scale, offset = e, s, o
		}
	}
	return scale, offset
}

// quantQ4K: per 32-value sub-block a (scale, min) from fitScaleMin; the eight
// scales and eight mins are then quantized to 6 bits against the super-block
// d = max scale/63 and dmin = max min/63 (both fp16), and the values are
// requantized against the decoded sub-block scales, as ggml does.
func quantQ4K(dst []byte, x []float32) {
	var scales, mins [8]float32
	var maxScale, maxMin float32
	for j := 0; j < 8; j++ {
		s, o := fitScaleMin(x[32*j:32*j+32], 15)
		scales[j], mins[j] = s, -o
		maxScale, maxMin = max(maxScale, s), max(maxMin, -o)
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	var ls, lm [8]uint8
	for j := 0; j < 8; j++ {
		ls[j] = uint8(min(63, nearestInt(invScale*scales[j])))
		lm[j] = uint8(min(63, nearestInt(invMin*mins[j])))
	}
	sc := dst[4:16]
	clear(sc)
	for j := 0; j < 8; j++ {
		if j < 4 {
			sc[j] = ls[j]
			sc[j+4] = lm[j]
		} else {
			sc[j+4] = ls[j]&0xf | lm[j]&0xf<<4
			sc[j-4] |= ls[j] >> 4 << 6
			sc[j] |= lm[j] >> 4 << 6
		}
	}
	dh := half.FromFloat32(maxScale / 63)
	mh := half.FromFloat32(maxMin / 63)
	binary.LittleEndian.PutUint16(dst[0:], dh)
	binary.LittleEndian.PutUint16(dst[2:], mh)
	d, dmin := half.ToFloat32(dh), half.ToFloat32(mh)

	var L [256]uint8
	for j := 0; j < 8; j++ {
		s, m := scaleMinK4(j, sc)
		dd := d * float32(s)
		if dd == 0 {
			continue
		}
		dm := dmin * float32(m)
		for i := 32 * j; i < 32*j+32; i++ {
			L[i] = uint8(max(0, min(15, nearestInt((x[i]+dm)/dd))))
		}
	}
	q := dst[16:144]
	for r := 0; r < 4; r++ {
		for l := 0; l < 32; l++ {
			q[32*r+l] = L[64*r+l] | L[64*r+32+l]<<4
		}
	}
}

// fitSymmetric returns a signed scale with x ≈ scale·q, q ∈ [−nmax, nmax−1].
// Like ggml's make_qx_quants (rmse_type 1) it maps the value of largest
// magnitude to −nmax, tries 19 nearby inverse scales, fits each by weighted
// least squares with weights x², and keeps the best.
func fitSymmetric(x []float32, nmax int) float32 {
	var amax, mx float32
	for _, v := range x {
		if a := abs32(v); a > amax {
			amax, mx = a, v
		}
	}
	if amax == 0 {
		return 0
	}
	var best, bestScale float32
	for step := -9; step <= 9; step++ {
		iscale := -(float32(nmax) + 0.1*float32(step)) / mx
		var slx, sl2 float32
		for _, v := range x {
			l := float32(max(-nmax, min(nmax-1, nearestInt(iscale*v))))
			w := v * v
			slx += w * v * l
			sl2 += w * l * l
		}
		if sl2 > 0 && slx*slx > best*sl2 {
			best = slx * slx / sl2
			bestScale = slx / sl2
		}
	}
	return bestScale
}

// quantQ6K: per 16-value sub-block a signed scale from fitSymmetric; the 16
// scales become int8 against d = −(scale of largest magnitude)/128 (fp16),
// and the values are requantized to [−32, 31] against the decoded scales.
func quantQ6K(dst []byte, x []float32) {
	var scales [16]float32
	var maxScale, maxAbs float32
	for j := range scales {
		s := fitSymmetric(x[16*j:16*j+16], 32)
		scales[j] = s
		if a := abs32(s); a > maxAbs {
			maxAbs, maxScale = a, s
		}
	}
	sc := dst[192:208]
	clear(dst)
	if maxAbs == 0 {
		return // all zero bytes, d = 0, as ggml writes an all-zero block
	}
	iscale := -128 / maxScale
	for j, s := range scales {
		sc[j] = byte(int8(min(127, nearestInt(iscale*s))))
	}
	dh := half.FromFloat32(1 / iscale)
	binary.LittleEndian.PutUint16(dst[208:], dh)
	d := half.ToFloat32(dh)

	var L [256]uint8
	for j := range scales {
		dd := d * float32(int8(sc[j]))
		for i := 16 * j; i < 16*j+16; i++ {
			l := 0
			if dd != 0 {
				l = max(-32, min(31, nearestInt(x[i]/dd)))
			}
			L[i] = uint8(l + 32)
		}
	}
	for h := 0; h < 2; h++ {
		ql := dst[64*h : 64*h+64]
		qh := dst[128+32*h : 128+32*h+32]
		y := L[128*h : 128*h+128]
		for l := 0; l < 32; l++ {
			ql[l] = y[l]&0xf | y[l+64]&0xf<<4
			ql[l+32] = y[l+32]&0xf | y[l+96]&0xf<<4
			qh[l] = y[l]>>4 | y[l+32]>>4<<2 | y[l+64]>>4<<4 | y[l+96]>>4<<6
		}
	}
}
