package simd

// The ggml block formats of quantized weights: blocks of 32 values, each an
// fp16 scale (little-endian) followed by the quantized values.
//   - Q8_0: 34 bytes, 32 int8 q; value j = scale·q[j].
//   - Q4_0: 18 bytes, 16 bytes of nibbles; byte j's low nibble is value j,
//     its high nibble value j+16 (j < 16); value = scale·(nibble − 8).
//
// A row of d values (d a multiple of 32) is d/32 consecutive blocks.
const (
	QuantBlock     = 32 // values per block
	Q8_0BlockBytes = 34 // bytes per Q8_0 block
	Q4_0BlockBytes = 18 // bytes per Q4_0 block
)

// quantDotKernel is a DotQ8_0/DotQ4_0 kernel over g = len(q)/d query rows:
// the generic twins take any g, the vector kernels one row (len(q) = d) or
// four (len(q) = 4·d).
type quantDotKernel = func(out []float32, outStride int, q []float32, rows []byte, n, d int)

// DotQ8_0 adds Σ_j q[i*d+j]·W[t][j] to out[i*outStride+t] for the g =
// len(q)/d query rows i and the n weight rows t of rows, a matrix in ggml's
// Q8_0 format: row t is the d/32 blocks at rows[t*d/32*34:], and W[t][j]
// its value j (scale·q, exact in float32). d must be a positive multiple
// of 32; lengths that do not fit panic. Subnormal activations are slow on
// some CPUs (on AMD Zen 5, 1% of them cost 1.3×, 10% 1.8×: FMA assists).
//
// Each row's sum is formed block by block (the block's 32 products, then
// one multiplication by its scale), in the order dotQ8_0Generic spells out.
// The AVX2 and NEON kernels fuse its multiply-adds the same way and give
// the same bits as each other; the generic twin agrees with them to
// float32 rounding (Go may or may not fuse). A row's result does not
// depend on g: decode (g = 1) and prefill (g > 1) give the same bits on
// each level.
func DotQ8_0(out []float32, outStride int, q []float32, rows []byte, n, d int) {
	dotQuant(&active.dotQ8_0, dotQ8_0Generic, Q8_0BlockBytes, out, outStride, q, rows, n, d, "DotQ8_0")
}

// DotQ4_0 is DotQ8_0 for a matrix in ggml's Q4_0 format: row t is the d/32
// blocks at rows[t*d/32*18:].
func DotQ4_0(out []float32, outStride int, q []float32, rows []byte, n, d int) {
	dotQuant(&active.dotQ4_0, dotQ4_0Generic, Q4_0BlockBytes, out, outStride, q, rows, n, d, "DotQ4_0")
}

// dotQuant checks a DotQ8_0/DotQ4_0 call and runs the level's kernels (ks:
// one and four query rows) on it, four query rows at a time, or the
// generic twin where the level has none.
func dotQuant(ks *[2]quantDotKernel, generic quantDotKernel, blockBytes int, out []float32, outStride int, q []float32, rows []byte, n, d int, what string) {
	if !(d > 0 && d%QuantBlock == 0) {
		panic("simd: " + what + ": d must be a positive multiple of 32")
	}
	g := len(q) / d
	rowBytes := d / QuantBlock * blockBytes
	if !(len(q) == g*d && n >= 0 && len(rows) >= n*rowBytes) {
		panic("simd: " + what + ": bad lengths")
	}
	if n == 0 || g == 0 {
		return
	}
	if !(outStride >= n && len(out) >= (g-1)*outStride+n) {
		panic("simd: " + what + ": bad lengths") // built only when failing: a message per call allocates
	}
	rows = rows[: n*rowBytes : n*rowBytes]
	if ks[0] == nil {
		generic(out, outStride, q, rows, n, d)
		return
	}
	i := 0
	for ; i+4 <= g && ks[1] != nil; i += 4 {
		ks[1](out[i*outStride:(i+3)*outStride+n], outStride, q[i*d:(i+4)*d:(i+4)*d], rows, n, d)
	}
	for ; i < g; i++ {
		ks[0](out[i*outStride:i*outStride+n], outStride, q[i*d:(i+1)*d:(i+1)*d], rows, n, d)
	}
}

// dotQ8_0Generic is DotQ8_0's loop (its arguments already checked), the
// oracle of the vector kernels and their order of operations: for each
// query row i and weight row t, with acc[2][8] zero, for each block b,
//
//	blk[l] = Σ_{k=0..3} q[i*d+32b+8k+l]·w[8k+l]   (l < 8; in k order)
//	acc[b&1][l] += blk[l]·scale_b
//
// where w are the block's 32 integers, then out[i*outStride+t] += s with
// a = acc[0]+acc[1] and s = ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)).
func dotQ8_0Generic(out []float32, outStride int, q []float32, rows []byte, n, d int) {
	dotQuantGeneric(out, outStride, q, rows, n, d, Q8_0BlockBytes, func(w *[32]float32, blk []byte) {
		for j := range w {
			w[j] = float32(int8(blk[2+j]))
		}
	})
}

// dotQ4_0Generic is dotQ8_0Generic for Q4_0: w[j] = nibble j − 8.
func dotQ4_0Generic(out []float32, outStride int, q []float32, rows []byte, n, d int) {
	dotQuantGeneric(out, outStride, q, rows, n, d, Q4_0BlockBytes, func(w *[32]float32, blk []byte) {
		for j := range 16 {
			b := blk[2+j]
			w[j] = float32(int32(b&15) - 8)
			w[j+16] = float32(int32(b>>4) - 8)
		}
	})
}

// dotQuantGeneric runs dotQ8_0Generic's loop for up to four query rows at a
// time, unpacking each block (into w, by unpack) once for all of them.
func dotQuantGeneric(out []float32, outStride int, q []float32, rows []byte, n, d, blockBytes int, unpack func(w *[32]float32, blk []byte)) {
	g, nb := len(q)/d, d/QuantBlock
	rowBytes := nb * blockBytes
	var w [32]float32
	for i0 := 0; i0 < g; i0 += 4 {
		m := min(4, g-i0)
		for t := range n {
			var acc [4][2][8]float32
			row := rows[t*rowBytes : (t+1)*rowBytes]
			for b := range nb {
				blk := row[b*blockBytes : (b+1)*blockBytes]
				unpack(&w, blk)
				s := f16(uint16(blk[0]) | uint16(blk[1])<<8)
				for i := range m {
					qb := (*[32]float32)(q[(i0+i)*d+32*b:])
					var sum [8]float32
					for l := range sum {
						sum[l] = qb[l] * w[l]
					}
					for k := 8; k < 32; k += 8 {
						for l := range sum {
							sum[l] += qb[k+l] * w[k+l]
						}
					}
					a := &acc[i][b&1]
					for l := range a {
						a[l] += sum[l] * s
					}
				}
			}
			for i := range m {
				a := &acc[i]
				for l := range a[0] {
					a[0][l] += a[1][l]
				}
				x := a[0]
				out[(i0+i)*outStride+t] += ((x[0] + x[4]) + (x[2] + x[6])) + ((x[1] + x[5]) + (x[3] + x[7]))
			}
		}
	}
}
