package simd

import (
	"math"

	"github.com/turboquant-go/tq/internal/half"
)

// Q8Rows is a batch of g activation rows of d values quantized to int8 in
// blocks of 32, as ggml quantizes the activations it multiplies into Q8_0
// and Q4_0 weights: block b of row r is Vals[r*d+32b:][:32] times its
// scale. Integer products of int8 activations and weights replace the
// float path's conversions and float multiplies, which is what makes a
// batch of rows cheaper than g single rows (DotQ8_0Q8).
//
// Scales are grouped four rows at a time, so that one load gives four rows'
// scales of a block: the scale of row r, block b is
// Scales[((r/4)*nb+b)*4+r%4], nb = d/32. Reuse one Q8Rows across calls.
type Q8Rows struct {
	Vals   []int8
	Scales []float32
	G, D   int
}

// q8Max is the largest activation magnitude after quantization: ±127, so
// that a block's scale is amax/127 and −128 never occurs.
const q8Max = 127

// Quantize sets a to the g = len(x)/d rows of x (d a positive multiple of
// 32), reusing a's storage. Each value is round-half-even(x·127/amax) and
// each block's scale amax/127 rounded to fp16, as ggml's Q8_0 blocks hold
// it (so a value is within half a step plus 127·2⁻¹¹ of a step of its
// input, and the engine stays close to llama.cpp). A block of zeros has
// scale 0. A block with an infinity or NaN gets a NaN scale and zero
// values, so the products it enters are NaN, as the float path's would be.
//
// The generic arithmetic is float32 with every product rounded (no
// fusion), and the vector kernels perform the same operations, so every
// platform quantizes to the same bits.
func (a *Q8Rows) Quantize(x []float32, d int) {
	check(d > 0 && d%QuantBlock == 0, "Q8Rows.Quantize: d must be a positive multiple of 32")
	g := len(x) / d
	check(len(x) == g*d, "Q8Rows.Quantize: len(x) must be a multiple of d")
	nb := d / QuantBlock
	a.G, a.D = g, d
	a.Vals = grow(a.Vals, g*d)
	a.Scales = grow(a.Scales, (g+3)/4*4*nb)
	clear(a.Scales) // the padding rows of the last group stay 0
	for r := range g {
		vals, scales := a.Vals[r*d:(r+1)*d], a.Scales[(r/4)*4*nb+r%4:(r/4+1)*4*nb]
		if k := active.quantizeQ8; k != nil {
			k(vals, scales, x[r*d:(r+1)*d])
			continue
		}
		for b := range nb {
			scales[4*b] = quantizeBlock8(vals[b*QuantBlock:], x[r*d+b*QuantBlock:])
		}
	}
}

// quantizeBlock8 writes the 32 int8 values of src to dst and returns the
// block's scale. Rounding adds and subtracts 1.5·2²³, which rounds a
// float32 of magnitude ≤ 127 half to even; each step is a separate float32
// operation, so no platform fuses or widens it.
func quantizeBlock8(dst []int8, src []float32) float32 {
	src, dst = src[:QuantBlock], dst[:QuantBlock]
	var amax uint32
	for _, v := range src {
		amax = max(amax, math.Float32bits(v)&0x7fffffff) // NaNs order above infinity
	}
	switch {
	case amax >= 0x7f800000: // ±Inf or NaN
		clear(dst)
		return float32(math.NaN())
	case amax == 0:
		clear(dst)
		return 0
	}
	a := math.Float32frombits(amax)
	inv := q8Max / a
	const magic = 0x1.8p23
	for j, v := range src {
		y := float32(v * inv)
		q := float32(float32(y+magic) - magic)
		dst[j] = int8(min(max(q, -q8Max), q8Max))
	}
	return half.ToFloat32(half.FromFloat32(a / q8Max))
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// quantDot8Kernel is a DotQ8_0Q8/DotQ4_0Q8 vector kernel. The four-row
// kernels take four activation rows (len(xq) = 4·d; xs their group's
// scales, 4·nb of them) and any n; the one-row kernels take one row
// (len(xq) = d; xs its scales at stride 4, starting at its own) and a
// multiple of four weight rows, n.
type quantDot8Kernel = func(out []float32, outStride int, xq []int8, xs []float32, rows []byte, n, d int)

// DotQ8_0Q8 adds Σ_j A[i][j]·W[t][j] to out[i*outStride+t] for the a.G
// quantized activation rows i of a and the n weight rows t of rows, a
// matrix of a.D columns in ggml's Q8_0 format (see DotQ8_0). Lengths that
// do not fit panic.
//
// The sum is exact integer arithmetic within a block, so only the scaling
// is rounded: for each block b, with s the product in int32 of the 32
// int8 pairs, w the block's weight scale and x the activations' scale,
//
//	acc[b&1] += float32(s) · (w·x)   (each product rounded to float32)
//
// and out += acc[0] + acc[1]. Every level (AVX2, NEON, generic) performs
// exactly these operations, so all give the same bits, and a row's result
// does not depend on how many rows are in the batch.
func DotQ8_0Q8(out []float32, outStride int, a *Q8Rows, rows []byte, n int) {
	dotQuant8(&active.dotQ8_0Q8, Q8_0BlockBytes, out, outStride, a, rows, n)
}

// DotQ4_0Q8 is DotQ8_0Q8 for a matrix in ggml's Q4_0 format.
func DotQ4_0Q8(out []float32, outStride int, a *Q8Rows, rows []byte, n int) {
	dotQuant8(&active.dotQ4_0Q8, Q4_0BlockBytes, out, outStride, a, rows, n)
}

func unpackQ8_0(w *[32]int8, blk []byte) {
	for j := range w {
		w[j] = int8(blk[2+j])
	}
}

func unpackQ4_0(w *[32]int8, blk []byte) {
	for j := range 16 {
		b := blk[2+j]
		w[j] = int8(b&15) - 8
		w[j+16] = int8(b>>4) - 8
	}
}

// dotQuant8 checks a DotQ8_0Q8/DotQ4_0Q8 call and runs the level's kernels
// (ks: one and four activation rows): four rows at a time, then single
// rows over the weight rows in fours, and the generic loop for the rest.
func dotQuant8(ks *[2]quantDot8Kernel, blockBytes int, out []float32, outStride int, a *Q8Rows, rows []byte, n int) {
	g, d := a.G, a.D
	check(d > 0 && d%QuantBlock == 0 && g >= 0, "DotQ8_0Q8/DotQ4_0Q8: activations not quantized")
	nb := d / QuantBlock
	rowBytes := nb * blockBytes
	check(len(a.Vals) >= g*d && len(a.Scales) >= (g+3)/4*4*nb, "DotQ8_0Q8/DotQ4_0Q8: activations not quantized")
	check(n >= 0 && len(rows) >= n*rowBytes, "DotQ8_0Q8/DotQ4_0Q8: bad lengths")
	if n == 0 || g == 0 {
		return
	}
	check(outStride >= n && len(out) >= (g-1)*outStride+n, "DotQ8_0Q8/DotQ4_0Q8: bad lengths")
	rows = rows[: n*rowBytes : n*rowBytes]
	i := 0
	if ks[1] != nil {
		for ; i+4 <= g; i += 4 {
			ks[1](out[i*outStride:(i+3)*outStride+n], outStride, a.Vals[i*d:(i+4)*d:(i+4)*d],
				a.Scales[i/4*4*nb:(i/4+1)*4*nb:(i/4+1)*4*nb], rows, n, d)
		}
	}
	n4 := 0
	if ks[0] != nil {
		n4 = n &^ 3
	}
	for ; i < g; i++ {
		xq := a.Vals[i*d : (i+1)*d : (i+1)*d]
		xs := a.Scales[i/4*4*nb+i%4 : (i/4+1)*4*nb]
		if n4 > 0 {
			ks[0](out[i*outStride:i*outStride+n4], outStride, xq, xs, rows, n4, d)
		}
		dotQuant8Row(out[i*outStride+n4:i*outStride+n], xq, xs, rows[n4*rowBytes:], nb, blockBytes)
	}
}

// dotQuant8Row adds one activation row's (xq, its scales xs at stride 4)
// products with the len(out) weight rows of rows, in the format with
// blockBytes per block, to out.
func dotQuant8Row(out []float32, xq []int8, xs []float32, rows []byte, nb, blockBytes int) {
	var w [32]int8
	rowBytes := nb * blockBytes
	for t := range out {
		var acc [2]float32
		row := rows[t*rowBytes : (t+1)*rowBytes]
		for b := range nb {
			blk := row[b*blockBytes : (b+1)*blockBytes]
			if blockBytes == Q8_0BlockBytes {
				unpackQ8_0(&w, blk)
			} else {
				unpackQ4_0(&w, blk)
			}
			x := xq[b*QuantBlock : (b+1)*QuantBlock]
			var s int32
			for j := range w {
				s += int32(w[j]) * int32(x[j])
			}
			scale := float32(f16(uint16(blk[0])|uint16(blk[1])<<8) * xs[4*b])
			acc[b&1] += float32(float32(s) * scale)
		}
		out[t] += acc[0] + acc[1]
	}
}
