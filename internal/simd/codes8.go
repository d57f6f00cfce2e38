package simd

import "math"

// Integer key scoring: DotCodes with the query rows quantized to int8 and
// the centroids of 3- and 4-bit codes to 7-bit integers (8-bit codes to
// 8-bit ones), so that a vector kernel sums exact integer products, 32 or
// 64 coordinates per instruction, in place of one float FMA per 8. The
// result differs from DotCodes by at most norm·(Σ_j|q_j|·εc + Σ_j|c_j|·εq
// + d·εq·εc) plus float rounding, εq and εc the half-steps of the query
// row's and the codebook's integer scales (Q8Bound); it is the same on
// every level (integer sums, then one float conversion and two products in
// a fixed order).

// q8TableMax is the largest centroid magnitude in table units: bytes
// c+64 stay in [1, 127], so that VPMADDUBSW's pairs of products, at most
// 2·127·127, never saturate.
const q8TableMax = 63

// q8Offset is the bias of a table byte: byte = centroid step count + 64.
const q8Offset = 64

// The table of 8-bit codes spans the whole byte: byte = step count + 128,
// the count within ±q8TableMax8 (VPDPBUSD's products, at most 255·127 in
// fours, need no more headroom).
const (
	q8TableMax8 = 127
	q8Offset8   = 128
)

// offset is the bias of the codebook's integer table.
func (cb *Codebook) offset() int32 {
	if cb.bits == 8 {
		return q8Offset8
	}
	return q8Offset
}

// wideRow is the bytes of one query row laid out for the AVX-512 kernels
// for bits-wide codes of d coordinates: for 3- and 4-bit codes each 8
// coordinates' even ones then odd ones (the order the kernels' table
// lookups give them in), for 8-bit codes each 32 twice over.
func wideRow(bits, d int) int {
	if bits == 8 {
		return 2 * d
	}
	return d
}

// wideKernelsTake reports whether the 3- and 4-bit AVX-512 key kernels
// take codes of this layout: they gather each norm with the two bytes
// before it (normOff ≥ 2) or after it (the indices'), and each code's bytes
// at 32-bit offsets stride·t (t < 16).
func wideKernelsTake(bits, stride, idxOff, normOff int) bool {
	return bits == 8 || stride <= 1<<26 && (normOff >= 2 || idxOff >= normOff+2)
}

// wideKernels returns the AVX-512 key kernels for bits-wide codes (by
// rows 1, 2, 4), or nil ones.
func wideKernels(bits int) [3]dotCodes8WideKernel {
	switch bits {
	case 3, 4:
		return active.dotCodesQ8Wide[bits-3]
	case 8:
		return active.dotCodesQ8Wide[2]
	}
	return [3]dotCodes8WideKernel{}
}

// QueryQ8 is a group of query rows quantized for DotCodesQ8.
type QueryQ8 struct {
	G, D, Bits int
	// vals holds the G rows of D int8 values, each 32 coordinates in the
	// kernels' order (codes8Pos), then zero rows up to a multiple of 4.
	vals []int8
	// step is each row's scale: q ≈ step·q8 (0 for the zero rows).
	step []float32
	// sum is each row's Σ q8, for the table's offset.
	sum []int32
	// wide holds the rows for the AVX-512 kernels (nil where the level
	// has none, or D is not a multiple of 64), laid out as wideRow says,
	// wideRow bytes each.
	wide, wideBuf []int8
	// The kernels' arguments, here rather than on DotCodesQ8's stack: a
	// kernel called through a function value would move them to the heap
	// on every call.
	scales [8]float32
	sums   [8]int32
	bias   [4]float32
	pad    [4 * 64]float32
	// argsCB and argsRow say for which codebook and rows the AVX-512
	// kernels' scales and sums were set (nil: none since Quantize).
	argsCB  *Codebook
	argsRow int
}

// Quantize quantizes the g rows x[i*xStride : i*xStride+d] (d a multiple
// of 32, the rows finite) for codes of bits 3, 4 or 8: each row to int8
// with the scale max|x|/127, rounded half to even.
func (q *QueryQ8) Quantize(x []float32, xStride, g, d, bits int) {
	check(d > 0 && d%32 == 0 && g > 0 && (bits == 3 || bits == 4 || bits == 8) && xStride >= d && len(x) >= (g-1)*xStride+d, "QueryQ8.Quantize: bad shape")
	q.G, q.D, q.Bits = g, d, bits
	q.argsCB = nil
	g4 := (g + 3) &^ 3
	q.vals = grow(q.vals, g4*d)
	q.step = grow(q.step, g4)
	q.sum = grow(q.sum, g4)
	clear(q.vals[g*d:])
	clear(q.step[g:])
	clear(q.sum[g:])
	perm := &codes8Perm[min(bits-3, 2)]
	q.wide = nil
	if wideKernels(bits)[2] != nil && d%64 == 0 {
		q.wide = grow(q.wideBuf, g4*wideRow(bits, d))
		q.wideBuf = q.wide
		clear(q.wide[g*wideRow(bits, d):])
	}
	for i := range g {
		row := x[i*xStride : i*xStride+d]
		amax := math.Float32frombits(MaxAbsBits(row)) // the rows are finite
		q.step[i] = amax / 127
		inv := float32(0)
		if amax > 0 {
			inv = 127 / amax
		}
		var s int32
		vals := q.vals[i*d : (i+1)*d]
		for j0 := 0; j0 < d; j0 += 32 {
			chunk := vals[j0 : j0+32]
			var nat [32]int8
			for j, v := range row[j0 : j0+32] {
				// |v·inv| ≤ 127: adding and taking away 1.5·2²³ rounds it
				// half to even in float32 (the conversion stops a fused
				// multiply-add).
				k := int8(float32(float32(v*inv)+roundMagic) - roundMagic)
				chunk[perm[j]] = k
				nat[j] = k
				s += int32(k)
			}
			switch w := q.wide; {
			case w == nil:
			case bits == 8: // the 32 coordinates twice over
				w = w[i*2*d+j0*2 : i*2*d+j0*2+64]
				copy(w, nat[:])
				copy(w[32:], nat[:])
			default: // 3, 4 bits: per 8 coordinates the even ones, then the odd ones
				w = w[i*d+j0 : i*d+j0+32]
				for k := range 16 {
					w[k/4*8+k%4], w[k/4*8+4+k%4] = nat[2*k], nat[2*k+1]
				}
			}
		}
		q.sum[i] = s
	}
}

// roundMagic is 1.5·2²³: x + roundMagic − roundMagic is x rounded half to
// even for |x| < 2²².
const roundMagic = 12582912

// codes8Perm[i][j] is codes8Pos(bits, j) for bits 3, 4 and 8.
var codes8Perm = func() (p [3][32]uint8) {
	for b, bits := range []int{3, 4, 8} {
		for j := range p[b] {
			p[b][j] = uint8(codes8Pos(bits, j))
		}
	}
	return p
}()

// codes8Pos is where a kernel keeps coordinate j (< 32) of a chunk: the
// order its index unpacking leaves the 32 table bytes in.
func codes8Pos(bits, j int) int {
	if bits == 8 { // no kernel unpacks them in chunks of 32
		return j
	}
	if bits == 4 { // low nibbles in the low lane, high nibbles in the high one
		return j>>1 + 16*(j&1)
	}
	switch { // two vectors of 16-bit words packed lane by lane
	case j >= 8 && j < 16:
		return j + 8
	case j >= 16 && j < 24:
		return j - 8
	}
	return j
}

// setTable8 fills the codebook's integer tables: bytes round(c/step) + 64
// for 3- and 4-bit codes (q8Tab, both 16-byte lanes alike, and q8Wide's
// first 64 bytes, the entries repeated), round(c/step) + 128 for 8-bit
// ones (q8Wide). The step is the one of at least max|c|/tmax (tmax 63 or
// 127, so that the bytes stay in range) and at most 4/3 of it that rounds
// the centroids with the least squared error: 1.3–1.8× less than
// max|c|/63 on Lloyd–Max codebooks of 3 and 4 bits.
func (cb *Codebook) setTable8() {
	tmax, off := float64(q8TableMax), int(cb.offset())
	if cb.bits == 8 {
		tmax = q8TableMax8
	}
	var amax float64
	for _, c := range cb.tab {
		amax = max(amax, math.Abs(float64(c)))
	}
	best := float32(0)
	if amax > 0 {
		bestErr := math.Inf(1)
		for i := range 256 {
			step := float32(amax / tmax * (1 + float64(i)/768))
			var e float64
			for _, c := range cb.tab {
				r := float64(c) - float64(step)*math.RoundToEven(float64(c/step))
				e += r * r
			}
			if e < bestErr && math.Abs(math.RoundToEven(amax/float64(step))) <= tmax {
				best, bestErr = step, e
			}
		}
	}
	cb.q8Step = best
	byteOf := func(k int) uint8 {
		if best == 0 {
			return uint8(off)
		}
		return uint8(off + int(math.RoundToEven(float64(cb.tab[k]/best))))
	}
	n := 1 << cb.bits
	for k := range cb.q8Wide {
		if k < 64 || cb.bits == 8 {
			cb.q8Wide[k] = byteOf(k % n)
		}
	}
	if cb.bits == 8 {
		return
	}
	for k := range 16 {
		v := uint8(off) // entries past the codebook's: centroid 0
		if k < n {
			v = byteOf(k)
		}
		cb.q8Tab[k], cb.q8Tab[16+k] = v, v
	}
}

// table8 returns the AVX2 kernels' table and the step.
func (cb *Codebook) table8() (*[32]uint8, float32) { return &cb.q8Tab, cb.q8Step }

// intTable returns the integer table, entry k that of index k.
func (cb *Codebook) intTable() []uint8 { return cb.q8Wide[:1<<cb.bits] }

// Q8Bound returns the bound on |DotCodesQ8 − DotCodes| for one query row
// and one code before its norm: Σ|q_j|·εc + Σ|c_j|·εq + d·εq·εc, with
// c the code's float centroids.
func (q *QueryQ8) Q8Bound(row int, x []float32, cb *Codebook, c []float32) float64 {
	_, step := cb.table8()
	ec, eq := float64(step)/2, float64(q.step[row])/2
	var b float64
	for j := range q.D {
		b += math.Abs(float64(x[j]))*ec + math.Abs(float64(c[j]))*eq + eq*ec
	}
	return b
}

// Q8Kernels reports whether DotCodesQ8 runs a vector kernel for codes of
// this codebook and d coordinates: 3 or 4 bits and d a multiple of 32 on a
// level that has the integer kernels, or 8 bits and d a multiple of 64 on
// one with the AVX-512 ones.
func (cb *Codebook) Q8Kernels(d int) bool {
	switch cb.bits {
	case 3, 4:
		return d > 0 && d%32 == 0 && active.dotCodesQ8[cb.bits-3] != nil
	case 8:
		return d > 0 && d%64 == 0 && wideKernels(8)[2] != nil
	}
	return false
}

// dotCodes8Kernel is a DotCodesQ8 vector kernel: four query rows, an even
// number of codes.
type dotCodes8Kernel = func(out []float32, outStride int, q []int8, scales *[8]float32, sums *[8]int32, tab *[32]uint8, codes []byte, stride, idxOff, normOff, n, d32 int)

// DotCodesQ8 adds norm_t·step_i·stepc·(Σ_j q8[i][j]·c8_t[j]) to
// out[i*outStride+t] for the q.G query rows i and the n codes t laid out as
// for DotCodes (q.Bits-wide indices, q.D coordinates), c8 the centroids in
// the codebook's integer table: DotCodes within Q8Bound. With init (len ≥
// q.G), it sets out[i*outStride+t] to init[i] + the score instead: the same
// bits as filling the rows with init first, without the pass over out. The
// AVX-512 kernels prefetch ahead (nil for none) a few lines at a time as
// they go.
func DotCodesQ8(out []float32, outStride int, init []float32, q *QueryQ8, cb *Codebook, codes []byte, stride, idxOff, normOff, n int, ahead []byte) {
	if n == 0 {
		return
	}
	g, d := q.G, q.D
	check(cb.bits == q.Bits, "DotCodesQ8: query quantized for other codes")
	check(outStride >= n && len(out) >= (g-1)*outStride+n, "DotCodesQ8: bad lengths")
	check(init == nil || len(init) >= g, "DotCodesQ8: init shorter than the rows")
	vec := codeRows(cb, codes, stride, idxOff, normOff, n, d, "DotCodesQ8") &^ 1
	wd := wideRow(cb.bits, d)
	if kw := wideKernels(cb.bits); kw[2] != nil && len(q.wide) >= ((g+3)&^3)*wd && wideKernelsTake(cb.bits, stride, idxOff, normOff) {
		for i := 0; i < g; i += 4 {
			q.setKernelArgs(cb, i)
			rows := min(4, g-i)
			var bias *[4]float32
			if init != nil {
				bias = &q.bias
				copy(bias[:], init[i:i+rows])
			}
			kw[rowKernel(rows)](out[i*outStride:], outStride, q.wide[i*wd:(i+4)*wd], &q.scales, &q.sums, bias, &cb.q8Wide, codes, stride, idxOff, normOff, n, d, rows, ahead)
			ahead = nil
		}
		return
	}
	FillRows(out, outStride, init[:min(len(init), g)], n)
	tab, cstep := cb.table8()
	var k dotCodes8Kernel
	if cb.bits < 8 {
		k = active.dotCodesQ8[cb.bits-3]
	}
	if k == nil || vec == 0 {
		dotCodesQ8Generic(out, outStride, q, cb, codes, stride, idxOff, normOff, n, 0, 0)
		return
	}
	scales, sums, buf := &q.scales, &q.sums, q.pad[:]
	q.argsCB = nil // the AVX2 kernels' arguments overwrite the AVX-512 ones
	for i := 0; i < g; i += 4 {
		for r := range 4 {
			scales[r], scales[4+r] = q.step[i+r]*cstep, q.step[i+r]*cstep
			sums[r], sums[4+r] = q8Offset*q.sum[i+r], q8Offset*q.sum[i+r]
		}
		if i+4 <= g {
			k(out[i*outStride:], outStride, q.vals[i*d:(i+4)*d], scales, sums, tab, codes, stride, idxOff, normOff, vec, d)
			continue
		}
		// The last rows, padded with zero rows: scored into scratch in
		// pieces, then added (0 + v, then out + v: the generic sums).
		for t0 := 0; t0 < vec; t0 += 64 {
			m := min(64, vec-t0)
			clear(buf)
			k(buf, 64, q.vals[i*d:(i+4)*d], scales, sums, tab, codes[t0*stride:], stride, idxOff, normOff, m, d)
			for r := range g - i {
				for t := range m {
					out[(i+r)*outStride+t0+t] += buf[r*64+t]
				}
			}
		}
	}
	dotCodesQ8Generic(out, outStride, q, cb, codes, stride, idxOff, normOff, n, vec, g)
}

// DotCodesQ8Pair scores codes of two parts (a code's first part at idxa
// and norma within each code, its second at idxb and normb), qa scoring
// the first and qb the second: the bits of DotCodesQ8 with qa, cba and
// init, then DotCodesQ8 with qb and cbb adding to its scores. Where the
// level has a kernel for the pair (AVX-512, parts of 3 and 4 bits or 4 and
// 3, d a multiple of 64) and init is not nil, one pass over the codes does
// both, reading each group of sixteen codes once and storing their scores
// once.
func DotCodesQ8Pair(out []float32, outStride int, init []float32, qa, qb *QueryQ8, cba, cbb *Codebook, codes []byte, stride, idxa, norma, idxb, normb, n int, ahead []byte) {
	if n == 0 {
		return
	}
	g := qa.G
	check(qb.G == g, "DotCodesQ8Pair: parts with different rows")
	var pk dotCodes8PairKernel
	if (cba.bits == 3 || cba.bits == 4) && (cbb.bits == 3 || cbb.bits == 4) {
		pk = active.dotCodesQ8Pair[cba.bits-3][cbb.bits-3]
	}
	wa, wb := wideRow(cba.bits, qa.D), wideRow(cbb.bits, qb.D)
	g4 := (g + 3) &^ 3
	if pk == nil || init == nil || len(qa.wide) < g4*wa || len(qb.wide) < g4*wb || // the kernels take init
		!wideKernelsTake(cba.bits, stride, idxa, norma) || !wideKernelsTake(cbb.bits, stride, idxb, normb) {
		h := len(ahead) / 2
		DotCodesQ8(out, outStride, init, qa, cba, codes, stride, idxa, norma, n, ahead[:h])
		DotCodesQ8(out, outStride, nil, qb, cbb, codes, stride, idxb, normb, n, ahead[h:])
		return
	}
	check(cba.bits == qa.Bits && cbb.bits == qb.Bits, "DotCodesQ8Pair: query quantized for other codes")
	check(outStride >= n && len(out) >= (g-1)*outStride+n, "DotCodesQ8Pair: bad lengths")
	check(len(init) >= g, "DotCodesQ8Pair: init shorter than the rows")
	codeRows(cba, codes, stride, idxa, norma, n, qa.D, "DotCodesQ8Pair")
	codeRows(cbb, codes, stride, idxb, normb, n, qb.D, "DotCodesQ8Pair")
	for i := 0; i < g; i += 4 {
		qa.setKernelArgs(cba, i)
		qb.setKernelArgs(cbb, i)
		rows := min(4, g-i)
		copy(qa.bias[:], init[i:i+rows])
		pk(out[i*outStride:], outStride, qa.wide[i*wa:(i+4)*wa], qb.wide[i*wb:(i+4)*wb], &qa.scales, &qb.scales, &qa.sums, &qb.sums, &qa.bias,
			&cba.q8Wide, &cbb.q8Wide, codes, stride, idxa, norma, idxb, normb, n, qa.D, qb.D, rows, ahead)
		ahead = nil
	}
}

// setKernelArgs sets the AVX-512 key kernels' scales and sums for rows
// i…i+3 of q and codebook cb, unless they hold them already: attention
// scores every run of a step with the same query and codebook.
func (q *QueryQ8) setKernelArgs(cb *Codebook, i int) {
	if q.argsCB == cb && q.argsRow == i {
		return
	}
	q.argsCB, q.argsRow = cb, i
	for r := range 4 {
		q.scales[r] = q.step[i+r] * cb.q8Step
		q.sums[r] = cb.offset() * q.sum[i+r]
	}
}

// FillRows sets the first n floats of each row i of out (len(init) rows,
// outStride apart) to init[i]: what DotCodesQ8's init means, for callers
// whose other kernels add to rows filled first.
func FillRows(out []float32, outStride int, init []float32, n int) {
	for i, x := range init {
		row := out[i*outStride : i*outStride+n]
		from := 0
		if active.fill != nil {
			active.fill(row, x)
			from = n &^ 7
		}
		for t := from; t < n; t++ {
			row[t] = x
		}
	}
}

// dotCodesQ8Generic scores what the vector kernels left: codes ≥ vec of
// rows < rows4, and every code of the rows ≥ rows4, in their order.
func dotCodesQ8Generic(out []float32, outStride int, q *QueryQ8, cb *Codebook, codes []byte, stride, idxOff, normOff, n, vec, rows4 int) {
	d, bits, tab, cstep, off := q.D, cb.bits, cb.intTable(), cb.q8Step, cb.offset()
	mask := uint32(1)<<bits - 1
	var c8 [32]int32
	for t := range n {
		from := 0
		if t < vec {
			from = rows4
		}
		if from == q.G {
			continue
		}
		code := codes[t*stride:]
		norm := f16(uint16(code[normOff]) | uint16(code[normOff+1])<<8)
		idx := code[idxOff:]
		var acc [64]int32 // per row; G ≤ 64 checked below
		check(q.G <= len(acc), "DotCodesQ8: more than 64 query rows")
		for j0 := 0; j0 < d; j0 += 32 {
			for j := range 32 {
				bit := (j0 + j) * bits
				w := uint32(idx[bit>>3])
				if bit&7+bits > 8 {
					w |= uint32(idx[bit>>3+1]) << 8
				}
				c8[codes8Pos(bits, j)] = int32(tab[(w>>(bit&7))&mask])
			}
			for i := from; i < q.G; i++ {
				row := q.vals[i*d+j0 : i*d+j0+32]
				var s int32
				for p, v := range row {
					s += int32(v) * c8[p]
				}
				acc[i] += s
			}
		}
		for i := from; i < q.G; i++ {
			v := float32(acc[i]-off*q.sum[i]) * (q.step[i] * cstep)
			out[i*outStride+t] += float32(v * norm) // rounded: no fused multiply-add
		}
	}
}
