package simd

import "math"

// Integer value sums: AxpyCodes with each token's weight times norm
// quantized to int8 and the centroids of 3- and 4-bit codes to the 7-bit
// table of DotCodesQ8, so that a vector kernel sums exact integer products,
// 64 per instruction, in place of one float FMA per 8. Tokens go in pieces
// of q8Piece; in each piece, per accumulator row, the weights are scaled
// by 127 over their largest magnitude and rounded half to even, the
// products summed in 32-bit integers, and the sum converted, scaled and
// added to the accumulator once. The integer sums are exact and the float
// steps are the same on every level, so the result is too. It differs from
// AxpyCodes by at most Σ_t (|w_t·norm_t|·εc + |c_t[j]|·εw + εw·εc) per
// coordinate plus float rounding, εw and εc the half-steps of the piece's
// weight scale and the codebook's (ValuesQ8Bound).

// q8Piece is the tokens whose weights share one integer scale: a run of
// one cache block (64 tokens by default) is one piece.
const q8Piece = 64

// WeightsQ8 is AxpyCodesQ8's working memory: one piece's weights for four
// accumulator rows.
type WeightsQ8 struct {
	w    [q8Piece * 4]int8 // quantized weights times norms, [quad][row][token]
	amax [4]float32
	sums [4]int32
	// The kernel's arguments (here, not on AxpyCodesQ8's stack: see
	// QueryQ8).
	scales [4]float32
	offs   [4]int32
	valid  [4]uint64  // per row, the tokens of the piece
	isum   []int32    // the generic twin's sums, one row
	second *WeightsQ8 // AxpyCodesQ8Pair's second part's (made on first use)
}

// axpyCodes8Kernel is an AxpyCodesQ8 vector kernel (axpyCodesQ8B<bits>x<rows>VBMI).
type axpyCodes8Kernel = func(acc []float32, accStride int, w []int8, scales *[4]float32, offs *[4]int32, tab *[64]uint8, codes []byte, stride, idxOff, n, d64, rows int, ahead []byte)

// dotCodes8PairKernel is a DotCodesQ8Pair AVX-512 kernel (dotCodesQ8P<bits><bits>VBMI).
type dotCodes8PairKernel = func(out []float32, outStride int, qa, qb []int8, scalesa, scalesb *[8]float32, sumsa, sumsb *[8]int32, bias *[4]float32, taba, tabb *[256]uint8, codes []byte, stride, idxa, norma, idxb, normb, n, d64a, d64b, rows int, ahead []byte)

// dotCodes8WideKernel is a DotCodesQ8 AVX-512 kernel (dotCodesQ8B<bits>x<rows>VBMI).
type dotCodes8WideKernel = func(out []float32, outStride int, q []int8, scales *[8]float32, sums *[8]int32, bias *[4]float32, tab *[256]uint8, codes []byte, stride, idxOff, normOff, n, d64, rows int, ahead []byte)

// ValuesQ8Kernels reports whether AxpyCodesQ8 runs a vector kernel for
// codes of this codebook and d coordinates: 3 or 4 bits, d a multiple of
// 64, on a level with the integer value kernels (AVX-512 VBMI and VNNI).
func (cb *Codebook) ValuesQ8Kernels(d int) bool {
	return (cb.bits == 3 || cb.bits == 4) && d > 0 && d%64 == 0 && active.axpyCodesQ8[cb.bits-3][2] != nil
}

// rowKernel is the index of the integer kernel for rows (1–4) rows: the
// one-, two- or four-row kernel.
func rowKernel(rows int) int { return min(rows, 3) - 1 }

// AxpyCodesQ8 adds Σ_t w[i*wStride+t]·norm_t·c_t[j] to acc[i*accStride+j]
// for the g accumulator rows, the n codes laid out as for AxpyCodes
// (cb.Bits() of 3 or 4) and j < d, with integer products as described
// above: AxpyCodes within ValuesQ8Bound. The weights must be finite. ahead
// (nil for none) is prefetched a few lines at a time while the vector
// kernels work: what the caller reads next.
func AxpyCodesQ8(acc []float32, accStride int, w []float32, wStride, g int, cb *Codebook, codes []byte, stride, idxOff, normOff, n, d int, buf *WeightsQ8, ahead []byte) {
	if n == 0 || g == 0 {
		return
	}
	check(cb.bits == 3 || cb.bits == 4, "AxpyCodesQ8: codes of 3 or 4 bits")
	check(accStride >= d && len(acc) >= (g-1)*accStride+d && wStride >= n && len(w) >= (g-1)*wStride+n, "AxpyCodesQ8: bad lengths")
	codeRows(cb, codes, stride, idxOff, normOff, n, d, "AxpyCodesQ8")
	ks := active.axpyCodesQ8[cb.bits-3]
	vec := cb.ValuesQ8Kernels(d)
	tab64, cstep := cb.table64()
	for t0 := 0; t0 < n; t0 += q8Piece {
		m := min(q8Piece, n-t0)
		c := codes[t0*stride:]
		for i := 0; i < g; i += 4 {
			rows := min(4, g-i)
			buf.quantize(w[i*wStride+t0:], wStride, rows, m, c, stride, normOff, cstep)
			if vec {
				k := ks[rowKernel(rows)]
				k(acc[i*accStride:], accStride, buf.w[:], &buf.scales, &buf.offs, tab64, c, stride, idxOff, m, d, rows, pieceAhead(ahead, i, t0, m, n))
				continue
			}
			buf.addGeneric(acc[i*accStride:], accStride, rows, tab64, cb.bits, c, stride, idxOff, m, d)
		}
	}
}

// pieceAhead is the share of ahead that the kernel of the piece of m
// codes at t0 (of n) prefetches: all of it for its first rows, none for
// the others.
func pieceAhead(ahead []byte, i, t0, m, n int) []byte {
	switch {
	case i > 0:
		return nil
	case m == n: // one piece: no divisions
		return ahead
	}
	return ahead[t0*len(ahead)/n : (t0+m)*len(ahead)/n]
}

// AxpyCodesQ8Pair adds the values of codes of two parts (a code's first
// part at idxa and norma within each code, da coordinates, added to
// acc[i*accStride+j]; its second at idxb and normb, db coordinates, added
// to acc[i*accStride+da+j]): the bits of AxpyCodesQ8 with cba, then
// AxpyCodesQ8 with cbb, with buf as both calls' working memory. Where the
// level has the kernels for both parts, each piece's weights are
// quantized for the two parts' norms in one call, or once where the parts
// share their norm (norma == normb: a Split code).
func AxpyCodesQ8Pair(acc []float32, accStride int, w []float32, wStride, g int, cba, cbb *Codebook, codes []byte, stride, idxa, norma, idxb, normb, n, da, db int, buf *WeightsQ8, ahead []byte) {
	if buf.second == nil {
		buf.second = new(WeightsQ8)
	}
	bufb := buf.second
	h := len(ahead) / 2
	if n == 0 || g == 0 || active.weightsQ8Pair == nil || !cba.ValuesQ8Kernels(da) || !cbb.ValuesQ8Kernels(db) ||
		!normGathers(stride, norma) || !normGathers(stride, normb) {
		AxpyCodesQ8(acc, accStride, w, wStride, g, cba, codes, stride, idxa, norma, n, da, buf, ahead[:h])
		AxpyCodesQ8(acc[da:], accStride, w, wStride, g, cbb, codes, stride, idxb, normb, n, db, bufb, ahead[h:])
		return
	}
	check(accStride >= da+db && len(acc) >= (g-1)*accStride+da+db && wStride >= n && len(w) >= (g-1)*wStride+n, "AxpyCodesQ8Pair: bad lengths")
	codeRows(cba, codes, stride, idxa, norma, n, da, "AxpyCodesQ8Pair")
	codeRows(cbb, codes, stride, idxb, normb, n, db, "AxpyCodesQ8Pair")
	ka, kb := active.axpyCodesQ8[cba.bits-3], active.axpyCodesQ8[cbb.bits-3]
	taba, stepa := cba.table64()
	tabb, stepb := cbb.table64()
	for t0 := 0; t0 < n; t0 += q8Piece {
		m := min(q8Piece, n-t0)
		c := codes[t0*stride:]
		for i := 0; i < g; i += 4 {
			rows := min(4, g-i)
			buf.setValid(rows, m)
			wb := bufb.w[:]
			if norma == normb { // a Split code: one norm, so the parts' weights are the same
				active.weightsQ8(buf.w[:], &buf.sums, &buf.amax, w[i*wStride+t0:], wStride, &buf.valid, c, stride, norma, m)
				bufb.sums, bufb.amax, wb = buf.sums, buf.amax, buf.w[:]
			} else {
				active.weightsQ8Pair(buf.w[:], bufb.w[:], &buf.sums, &bufb.sums, &buf.amax, &bufb.amax, w[i*wStride+t0:], wStride, &buf.valid, c, stride, norma, normb, m)
			}
			buf.setScales(stepa)
			bufb.setScales(stepb)
			k := rowKernel(rows)
			ka[k](acc[i*accStride:], accStride, buf.w[:], &buf.scales, &buf.offs, taba, c, stride, idxa, m, da, rows, pieceAhead(ahead[:h], i, t0, m, n))
			kb[k](acc[i*accStride+da:], accStride, wb, &bufb.scales, &bufb.offs, tabb, c, stride, idxb, m, db, rows, pieceAhead(ahead[h:], i, t0, m, n))
		}
	}
}

// normGathers reports whether the weight kernels can read the norm at
// normOff of codes stride bytes apart: as a doubleword from normOff−2 when
// normOff ≥ 2, else from normOff, at 32-bit offsets.
func normGathers(stride, normOff int) bool {
	return (normOff >= 2 || normOff+4 <= stride) && stride < 1<<25
}

// quantize lays out and quantizes the weights of rows (≤ 4) rows for the
// m (≤ q8Piece) codes: weight times fp16 norm (one float32 product), then
// per row round-half-even(wn·(127/amax)), amax the row's largest |wn|
// (nothing where it is 0); the missing rows and the tokens of the last
// quad past m are 0. scales[i] is (amax/127)·cstep, offs[i] q8Offset times
// the row's sum of quantized weights.
func (b *WeightsQ8) quantize(w []float32, wStride, rows, m int, codes []byte, stride, normOff int, cstep float32) {
	switch k, kr := active.weightsQ8, active.weightsQ8Rows[rows-1]; {
	case k != nil && normGathers(stride, normOff):
		b.setValid(rows, m)
		k(b.w[:], &b.sums, &b.amax, w, wStride, &b.valid, codes, stride, normOff, m)
	case kr != nil && normGathers(stride, normOff):
		kr(b.w[:], &b.sums, &b.amax, w, wStride, codes, stride, normOff, m)
	default:
		b.quantizeGeneric(w, wStride, rows, m, codes, stride, normOff)
	}
	b.setScales(cstep)
}

// setValid marks the m tokens of the first rows rows for the weight
// kernels.
func (b *WeightsQ8) setValid(rows, m int) {
	for i := range b.valid {
		b.valid[i] = 0
		if i < rows {
			b.valid[i] = math.MaxUint64 >> (64 - m)
		}
	}
}

// setScales derives the value kernels' scales and offsets from the
// quantized weights' maxima and sums.
func (b *WeightsQ8) setScales(cstep float32) {
	for i := range 4 {
		b.scales[i] = float32(b.amax[i]/127) * cstep
		b.offs[i] = q8Offset * b.sums[i]
	}
}

// quantizeGeneric is weightsQ8AVX512: the weights times norms of rows
// rows and m tokens, quantized to w, with amax and sums.
func (b *WeightsQ8) quantizeGeneric(w []float32, wStride, rows, m int, codes []byte, stride, normOff int) {
	clear(b.w[:])
	var wn [q8Piece]float32
	for i := range 4 {
		b.amax[i], b.sums[i] = 0, 0
		if i >= rows {
			continue
		}
		var amax float32
		for t := range m {
			code := codes[t*stride+normOff:]
			wn[t] = w[i*wStride+t] * f16(uint16(code[0])|uint16(code[1])<<8)
			amax = max(amax, float32(math.Abs(float64(wn[t]))))
		}
		inv := float32(0)
		if amax != 0 {
			inv = 127 / amax
		}
		var s int32
		for t, v := range wn[:m] {
			// |v·inv| ≤ 127 (rounding may add a few ulps): adding and
			// taking away 1.5·2²³ rounds it half to even.
			k := int8(float32(float32(v*inv)+roundMagic) - roundMagic)
			b.w[(t>>2)*16+i*4+t&3] = k
			s += int32(k)
		}
		b.amax[i], b.sums[i] = amax, s
	}
}

// addGeneric is the axpyCodesQ8 kernels' work: the rows' integer sums over
// the m codes, then acc += float32(sum − off)·scale, coordinate by
// coordinate.
func (b *WeightsQ8) addGeneric(acc []float32, accStride, rows int, tab *[64]uint8, bits int, codes []byte, stride, idxOff, m, d int) {
	b.isum = grow(b.isum, d)
	mask := uint32(1)<<bits - 1
	for i := range rows {
		clear(b.isum)
		for t := range m {
			wt := int32(b.w[(t>>2)*16+i*4+t&3])
			idx := codes[t*stride+idxOff:]
			for j := range d {
				bit := j * bits
				v := uint32(idx[bit>>3])
				if bit&7+bits > 8 {
					v |= uint32(idx[bit>>3+1]) << 8
				}
				b.isum[j] += wt * int32(tab[(v>>(bit&7))&mask])
			}
		}
		row := acc[i*accStride : i*accStride+d]
		for j, s := range b.isum {
			row[j] += float32(float32(s-b.offs[i]) * b.scales[i])
		}
	}
}

// table64 returns the integer table of DotCodesQ8 repeated over 64 bytes
// (entry k is that of index k mod 2^bits), and its step.
func (cb *Codebook) table64() (*[64]uint8, float32) {
	return (*[64]uint8)(cb.q8Wide[:64]), cb.q8Step
}

// ValuesQ8Bound returns the bound on |AxpyCodesQ8 − AxpyCodes| at
// coordinate j for one accumulator row, given the piece's weights times
// norms wn (one row, at most q8Piece tokens) and the centroids c_t[j] of
// those tokens at j: Σ_t (|wn_t|·εc + |c_t|·εw + εw·εc).
func ValuesQ8Bound(cb *Codebook, wn, c []float32) float64 {
	var amax float64
	for _, v := range wn {
		amax = max(amax, math.Abs(float64(v)))
	}
	ew, ec := amax/127/2, float64(cb.q8Step)/2
	var b float64
	for t, v := range wn {
		b += math.Abs(float64(v))*ec + math.Abs(float64(c[t]))*ew + ew*ec
	}
	return b
}
