package simd

import (
	"fmt"
	"math"

	"github.com/turboquant-go/tq/internal/half"
)

// Level is a kernel implementation level.
type Level int

// The levels: Generic is pure Go and always available.
const (
	Generic Level = iota
	AVX2          // amd64 with AVX2, FMA and F16C
	NEON          // arm64 Advanced SIMD
)

func (l Level) String() string {
	switch l {
	case Generic:
		return "generic"
	case AVX2:
		return "avx2"
	case NEON:
		return "neon"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// kernels is one implementation level's set of kernels. A nil entry means
// the level has no kernel for it and the generic twin runs.
type kernels struct {
	decodeSmall      func(dst []float32, tab *[8]float32, sh *[8]uint32, bits int, codes []byte, stride, idxOff, normOff, n, dstStride, d8 int)
	decode4          func(dst []float32, tab *[16]float32, codes []byte, stride, idxOff, normOff, n, dstStride, d8 int)
	decode8          func(dst []float32, tab *[256]float32, codes []byte, stride, idxOff, normOff, n, dstStride, d8 int)
	decode8Planes    func(dst []float32, planes *[4][256]uint8, codes []byte, stride, idxOff, normOff, n, dstStride, d64 int, ahead []byte) // from the table's byte planes (Codebook.planes)
	decodeF16        func(dst []float32, src []byte, stride, n, dstStride, d8 int)
	dot1, dot4       dotKernel[[]float32]
	axpy1, axpy4     axpyKernel[[]float32]
	dot1F16, dot4F16 dotKernel[[]byte]
	axpy1F16         axpyKernel[[]byte]
	axpy4F16         axpyKernel[[]byte]
	expSum           func(x []float32, m float32) float32
	fwhtFirst8       func(dst, src, signs []float32)
	fwhtRegs         func(dst, src, signs []float32) // the whole transform, 16 … 256 elements
	fwhtPass         [4]func(x []float32, h int)     // by levels per sweep (1–3)
	scale            func(x []float32, k float32)
	fill             func(x []float32, k float32)
	sumSquares       func(x []float32) float64
	encodeF16        func(dst []byte, src []float32)
	roundF16         func(dst, src []float32)
	prefetch         func(b []byte)
	max              func(x []float32) float32
	maxAbsBits       func(x []float32) uint32
	addF64           func(acc []float64, x []float32)
	sub              func(dst, x, y []float32)
	quantize         [5]func(dst []byte, x []float32, bounds *[15][8]float32) // by bits 1–4
	// The fused kernels, by kind (0: 1–3 bits, 1: 4 bits) and rows (1 or 4).
	dotCodes, axpyCodes [2][2]fusedKernel
	// The quantized-weight dot kernels, by query rows (1 or 4).
	dotQ8_0, dotQ4_0 [2]quantDotKernel
	// The int8-activation kernels, by activation rows (1 or 4).
	dotQ8_0Q8, dotQ4_0Q8 [2]quantDot8Kernel
	quantizeQ8           func(dst []int8, scales []float32, x []float32) // one row of Q8Rows.Quantize
	// The integer key-scoring kernels, by bits (3, 4), four query rows;
	// the AVX-512 ones take the rows laid out wide (QueryQ8.wide).
	dotCodesQ8     [2]dotCodes8Kernel
	dotCodesQ8Wide [3][3]dotCodes8WideKernel // by bits (3, 4, 8), then rows 1, 2, 4 (rowKernel)
	// The AVX-512 key kernels for codes of two parts, by the parts' bits
	// (3, 4; nil where there is none).
	dotCodesQ8Pair [2][2]dotCodes8PairKernel
	// The integer value kernels, by bits (3, 4), and their weight
	// quantizer (values8.go).
	axpyCodesQ8 [2][3]axpyCodes8Kernel // by bits, then rows 1, 2, 4 (rowKernel)
	weightsQ8   func(dst []int8, sums *[4]int32, amax *[4]float32, w []float32, wStride int, valid *[4]uint64, codes []byte, stride, normOff, m int)
	// weightsQ8Rows is weightsQ8 on AVX2, by rows (1–4): no valid masks.
	weightsQ8Rows [4]func(dst []int8, sums *[4]int32, amax *[4]float32, w []float32, wStride int, codes []byte, stride, normOff, m int)
	// weightsQ8Pair is weightsQ8 for two parts' norms in one call.
	weightsQ8Pair func(dsta, dstb []int8, sumsa, sumsb *[4]int32, amaxa, amaxb *[4]float32, w []float32, wStride int, valid *[4]uint64, codes []byte, stride, norma, normb, m int)
	// plainWeights: the level has four-row axpyCodes kernels that take
	// their weights times norms laid out once per token (plainWeights)
	// instead of forming them in each pass over the tokens, called
	// directly through axpyCodesWn so the weights stay on the caller's
	// stack.
	plainWeights bool
}

var (
	best   Level
	impls  = map[Level]*kernels{Generic: {}}
	active = impls[Generic]
	cur    = Generic
)

// Best returns the fastest level this CPU supports.
func Best() Level { return best }

// Active returns the level in use.
func Active() Level { return cur }

// Available reports whether level l runs on this CPU in this build.
func Available(l Level) bool { _, ok := impls[l]; return ok }

// Use switches every kernel to level l and returns a function that restores
// the previous level. It is for tests and benchmarks that compare levels;
// it is not safe to call while kernels run on other goroutines.
func Use(l Level) (restore func(), err error) {
	k, ok := impls[l]
	if !ok {
		return nil, fmt.Errorf("simd: level %v is not available on this CPU or build", l)
	}
	prevK, prevL := active, cur
	active, cur = k, l
	return func() { active, cur = prevK, prevL }, nil
}

func register(l Level, k *kernels) {
	impls[l] = k
	if l > best {
		best = l
	}
	active, cur = impls[best], best
}

// Slack is the number of bytes past the end of a code's index stream that
// the decode kernels may read (never write). Callers that keep codes in
// buffers with at least this much spare capacity get the vector path for
// every row; otherwise the last rows fall back to the generic twin.
const Slack = 4

func check(ok bool, what string) {
	if !ok {
		panic("simd: " + what)
	}
}

// Codebook is a table of 1<<bits centroids laid out for the kernels. Make
// one per codebook and reuse it.
type Codebook struct {
	bits int
	tab  []float32   // the centroids
	vec  [16]float32 // 1–3 bits: repeated to 8 entries; 4 bits: all 16
	sh   *[8]uint32
	// The integer table of 3- and 4-bit codes for the AVX2 kernels
	// (DotCodesQ8), the one of the AVX-512 kernels (those of 3 and 4 bits
	// repeated over the first 64 entries, AxpyCodesQ8 too), and their step
	// (setTable8).
	q8Tab  [32]uint8
	q8Wide [256]uint8
	q8Step float32
	// planes[b][k] is byte b of centroid k (8-bit codes: decode8Planes).
	planes *[4][256]uint8
}

// NewCodebook prepares the 1<<bits centroids cent (bits 1–8; widths 5–7
// have no vector kernel and run the generic twins).
func NewCodebook(cent []float32, bits int) *Codebook {
	check(bits >= 1 && bits <= 8, "NewCodebook: bits must be 1–8")
	check(len(cent) == 1<<bits, "NewCodebook: need 1<<bits centroids")
	cb := &Codebook{bits: bits, tab: append([]float32(nil), cent...)}
	switch {
	case bits <= 3:
		for i := range 8 {
			cb.vec[i] = cent[i%(1<<bits)]
		}
		cb.sh = &laneShifts[bits]
	case bits == 4:
		copy(cb.vec[:], cent)
		cb.sh = &laneShifts[4]
	}
	if bits == 8 {
		cb.planes = new([4][256]uint8)
		for k, c := range cent {
			for b := range cb.planes {
				cb.planes[b][k] = uint8(math.Float32bits(c) >> (8 * b))
			}
		}
	}
	if bits == 3 || bits == 4 || bits == 8 {
		cb.setTable8()
	}
	return cb
}

// Bits returns the index width.
func (cb *Codebook) Bits() int { return cb.bits }

// fused returns the kind index of the fused kernels for this width, or -1.
func (cb *Codebook) fused() int {
	switch {
	case cb.bits <= 3:
		return 0
	case cb.bits == 4:
		return 1
	}
	return -1
}

// laneShifts[b] shifts a broadcast 32-bit word so lane i holds index i of
// a group of eight b-bit indices in its low bits.
var laneShifts = func() (s [5][8]uint32) {
	for b := 1; b <= 4; b++ {
		for i := range 8 {
			s[b][i] = uint32(b * i)
		}
	}
	return s
}()

// DecodeCodes writes n rows of d floats to dst (row t at dst[t*dstStride:]):
// row t is norm_t · tab[index j of code t] for j < d, where code t starts at
// codes[t*stride], its fp16 norm at byte normOff and its bits-wide indices
// (LSB-first stream, internal/bitpack) at idxOff. cb holds the centroids.
// The kernel for 8-bit codes on AVX-512 prefetches ahead (nil for none) a
// few lines per row: what the caller reads next.
func DecodeCodes(dst []float32, dstStride int, cb *Codebook, codes []byte, stride, idxOff, normOff, n, d int, ahead []byte) {
	if n == 0 {
		return
	}
	bits, tab := cb.bits, cb.tab
	idxBytes := (d*bits + 7) / 8
	end := (n-1)*stride + idxOff + idxBytes
	check(dstStride >= d && len(dst) >= (n-1)*dstStride+d && len(codes) >= end && len(tab) >= 1<<bits && normOff >= 0 && normOff+2 <= stride && idxOff+idxBytes <= stride &&
		len(codes) >= (n-1)*stride+normOff+2, "DecodeCodes: short buffer or bad layout")
	d8 := d &^ 7
	vec := n
	if cap(codes) < end+Slack {
		vec = n - 1 // the last row's group loads could run past the buffer
	}
	if d8 > 0 && vec > 0 {
		switch {
		case bits <= 3 && active.decodeSmall != nil:
			active.decodeSmall(dst, (*[8]float32)(cb.vec[:8]), cb.sh, bits, codes, stride, idxOff, normOff, vec, dstStride, d8)
		case bits == 4 && active.decode4 != nil:
			active.decode4(dst, &cb.vec, codes, stride, idxOff, normOff, vec, dstStride, d8)
		case bits == 8 && active.decode8Planes != nil && d >= 64:
			// 64 coordinates at a time, then the 8-coordinate kernel
			d64 := d &^ 63
			active.decode8Planes(dst, cb.planes, codes, stride, idxOff, normOff, vec, dstStride, d64, ahead)
			if d8 > d64 {
				active.decode8(dst[d64:], (*[256]float32)(tab), codes, stride, idxOff+d64, normOff, vec, dstStride, d8-d64)
			}
		case bits == 8 && active.decode8 != nil:
			active.decode8(dst, (*[256]float32)(tab), codes, stride, idxOff, normOff, vec, dstStride, d8)
		default:
			vec, d8 = 0, 0
		}
	} else {
		vec, d8 = 0, 0
	}
	if vec < n || d8 < d {
		decodeCodesGeneric(dst, dstStride, tab, bits, codes, stride, idxOff, normOff, n, d, vec, d8)
	}
}

// decodeCodesGeneric fills what the vector kernel left: coordinates ≥ d8 of
// rows < vec, and all of rows ≥ vec.
func decodeCodesGeneric(dst []float32, dstStride int, tab []float32, bits int, codes []byte, stride, idxOff, normOff, n, d, vec, d8 int) {
	mask := uint32(1)<<bits - 1
	for t := range n {
		code := codes[t*stride:]
		norm := f16(uint16(code[normOff]) | uint16(code[normOff+1])<<8)
		idx := code[idxOff:]
		row := dst[t*dstStride : t*dstStride+d]
		from := 0
		if t < vec {
			from = d8
		}
		for j := from; j < d; j++ {
			bit := j * bits
			w := uint32(idx[bit>>3])
			if bit&7+bits > 8 {
				w |= uint32(idx[bit>>3+1]) << 8
			}
			row[j] = norm * tab[(w>>(bit&7))&mask]
		}
	}
}

// codeRows checks a run of codes and returns how many of its rows the
// vector kernels may read (all, or all but the last when the buffer lacks
// Slack spare bytes after it).
func codeRows(cb *Codebook, codes []byte, stride, idxOff, normOff, n, d int, what string) int {
	idxBytes := (d*cb.bits + 7) / 8
	end := (n-1)*stride + idxOff + idxBytes
	if !(len(codes) >= end && normOff >= 0 && normOff+2 <= stride && idxOff+idxBytes <= stride && len(codes) >= (n-1)*stride+normOff+2) {
		panic("simd: " + what + ": short codes or bad layout")
	}
	if cap(codes) < end+Slack {
		return n - 1
	}
	return n
}

// DotCodes adds norm_t·Σ_j q[i*qStride+j]·c_t[j] to out[i*outStride+t] for
// the g query rows i and the n codes t (code t at codes[t*stride:], fp16
// norm at normOff, cb.Bits()-wide indices at idxOff, c_t[j] the centroid of
// index j), for j < d. It reads each code once for all g rows.
func DotCodes(out []float32, outStride int, q []float32, qStride, g int, cb *Codebook, codes []byte, stride, idxOff, normOff, n, d int, ahead []byte) {
	if n == 0 || g == 0 {
		return
	}
	check(outStride >= n && len(out) >= (g-1)*outStride+n && qStride >= d && len(q) >= (g-1)*qStride+d, "DotCodes: bad lengths")
	vec, d8 := runFused(active.dotCodes, out, outStride, q, qStride, g, cb, codes, stride, idxOff, normOff, n, d, d&^7, "DotCodes", ahead)
	dotCodesGeneric(out, outStride, q, qStride, g, cb, codes, stride, idxOff, normOff, n, d, vec, d8)
}

// DotCodesPadded is DotCodes for query rows zero-padded to a multiple of 8
// coordinates: qStride ≥ d rounded up to 8, and q[i*qStride+j] = 0 for d ≤ j
// below that. The vector kernels then also run the last, partial group of
// indices (its extra lanes read index bits past the code, within Slack, and
// multiply them by zero), so dimensions like 100 need no per-row generic
// tail. Codes must be finite (a decoded centroid times zero is zero).
func DotCodesPadded(out []float32, outStride int, q []float32, qStride, g int, cb *Codebook, codes []byte, stride, idxOff, normOff, n, d int) {
	if n == 0 || g == 0 {
		return
	}
	dp := (d + 7) &^ 7
	check(outStride >= n && len(out) >= (g-1)*outStride+n && qStride >= dp && len(q) >= (g-1)*qStride+dp, "DotCodesPadded: bad lengths")
	vec, d8 := runFused(active.dotCodes, out, outStride, q, qStride, g, cb, codes, stride, idxOff, normOff, n, d, dp, "DotCodesPadded", nil)
	dotCodesGeneric(out, outStride, q, qStride, g, cb, codes, stride, idxOff, normOff, n, d, vec, d8)
}

// fusedKernel is a fused code kernel: DotCodes' (x = out, y = q) or
// AxpyCodes' (x = acc, y = w) loop over one or four row pairs.
type fusedKernel = func(x []float32, xStride int, y []float32, yStride int, tab *[16]float32, sh *[8]uint32, bits int, codes []byte, stride, idxOff, normOff, n, d8 int, ahead []byte)

// runFused runs the level's fused kernels for cb's width (by kind: one row,
// four rows) on the first d8 coordinates (a multiple of 8) over the g row
// pairs of x and y, four at a time, and returns the rows (vec) and
// coordinates (d8) they covered; (0, 0) when there is no kernel for this
// width or d8 is 0.
func runFused(ks [2][2]fusedKernel, x []float32, xStride int, y []float32, yStride, g int, cb *Codebook, codes []byte, stride, idxOff, normOff, n, d, d8 int, what string, ahead []byte) (vec, covered int) {
	vec, kind := codeRows(cb, codes, stride, idxOff, normOff, n, d, what), cb.fused()
	if kind < 0 || d8 == 0 || ks[kind][0] == nil || vec == 0 {
		return 0, 0
	}
	i := 0
	for ; i+4 <= g; i += 4 {
		ks[kind][1](x[i*xStride:], xStride, y[i*yStride:], yStride, &cb.vec, cb.sh, cb.bits, codes, stride, idxOff, normOff, vec, d8, ahead)
		ahead = nil
	}
	for ; i < g; i++ {
		ks[kind][0](x[i*xStride:], xStride, y[i*yStride:], yStride, &cb.vec, cb.sh, cb.bits, codes, stride, idxOff, normOff, vec, d8, nil)
	}
	return vec, d8
}

// dotCodesGeneric adds what the vector kernels left: coordinates ≥ d8 of
// rows < vec, and all of rows ≥ vec.
func dotCodesGeneric(out []float32, outStride int, q []float32, qStride, g int, cb *Codebook, codes []byte, stride, idxOff, normOff, n, d, vec, d8 int) {
	eachCentroidRun(cb, codes, stride, idxOff, normOff, n, d, vec, d8, func(t, j0 int, norm float32, c []float32) {
		for i := range g {
			var s float32
			for j, x := range c {
				s += q[i*qStride+j0+j] * x
			}
			out[i*outStride+t] += norm * s
		}
	})
}

// eachCentroidRun calls f with the centroids c of coordinates [j0, j0+len(c))
// of code t and its norm, for the parts the vector kernels left
// (coordinates ≥ d8 of rows < vec, all of rows ≥ vec), in runs of at most 64.
func eachCentroidRun(cb *Codebook, codes []byte, stride, idxOff, normOff, n, d, vec, d8 int, f func(t, j0 int, norm float32, c []float32)) {
	if vec == n && d8 >= d {
		return
	}
	var buf [64]float32
	for t := range n {
		from := 0
		if t < vec {
			from = d8
		}
		norm := f16(uint16(codes[t*stride+normOff]) | uint16(codes[t*stride+normOff+1])<<8)
		for j0 := from; j0 < d; j0 += len(buf) {
			c := buf[:min(len(buf), d-j0)]
			centroids(c, cb, codes[t*stride+idxOff:], j0)
			f(t, j0, norm, c)
		}
	}
}

// centroids sets c[j] to the centroid of index j0+j of the packed stream idx.
func centroids(c []float32, cb *Codebook, idx []byte, j0 int) {
	bits := cb.bits
	mask := uint32(1)<<bits - 1
	for j := range c {
		bit := (j0 + j) * bits
		w := uint32(idx[bit>>3])
		if bit&7+bits > 8 {
			w |= uint32(idx[bit>>3+1]) << 8
		}
		c[j] = cb.tab[(w>>(bit&7))&mask]
	}
}

// AxpyCodes adds Σ_t w[i*wStride+t]·norm_t·c_t[j] to acc[i*accStride+j] for
// the g accumulator rows i, the n codes t (laid out as for DotCodes) and
// j < d, reading each code once for all g rows.
func AxpyCodes(acc []float32, accStride int, w []float32, wStride, g int, cb *Codebook, codes []byte, stride, idxOff, normOff, n, d int, ahead []byte) {
	if n == 0 || g == 0 {
		return
	}
	check(accStride >= d && len(acc) >= (g-1)*accStride+d && wStride >= n && len(w) >= (g-1)*wStride+n, "AxpyCodes: bad lengths")
	if g >= 4 && d >= 8 && active.plainWeights && cb.fused() >= 0 {
		parts := [1]codePart{{cb, idxOff, normOff, d, 0}}
		axpyCodesParts(acc, accStride, w, wStride, g, parts[:], codes, stride, n, ahead)
		return
	}
	vec, d8 := runFused(active.axpyCodes, acc, accStride, w, wStride, g, cb, codes, stride, idxOff, normOff, n, d, d&^7, "AxpyCodes", ahead)
	axpyCodesGeneric(acc, accStride, w, wStride, g, cb, codes, stride, idxOff, normOff, n, d, vec, d8)
}

// AxpyCodesPair adds the values of codes of two parts (a code's first part
// with its indices at idxa and norm at norma, codebook cba, da coordinates,
// added to acc[i*accStride+j]; its second at idxb and normb, cbb, db, added
// to acc[i*accStride+da+j]): the bits of AxpyCodes with cba, then
// AxpyCodes with cbb (ahead split between them). Where the level lays out
// the weights times norms for its four-row kernels, the parts take each
// piece of codes in turn, and where they share their norm (norma ==
// normb: a Split code) its weights times norm are laid out once.
func AxpyCodesPair(acc []float32, accStride int, w []float32, wStride, g int, cba, cbb *Codebook, codes []byte, stride, idxa, norma, idxb, normb, n, da, db int, ahead []byte) {
	if n == 0 || g == 0 {
		return
	}
	check(accStride >= da+db && len(acc) >= (g-1)*accStride+da+db && wStride >= n && len(w) >= (g-1)*wStride+n, "AxpyCodesPair: bad lengths")
	if g >= 4 && min(da, db) >= 8 && active.plainWeights && cba.fused() >= 0 && cbb.fused() >= 0 &&
		codeRows(cba, codes, stride, idxa, norma, n, da, "AxpyCodesPair") == codeRows(cbb, codes, stride, idxb, normb, n, db, "AxpyCodesPair") {
		parts := [2]codePart{{cba, idxa, norma, da, 0}, {cbb, idxb, normb, db, da}}
		axpyCodesParts(acc, accStride, w, wStride, g, parts[:], codes, stride, n, ahead)
		return
	}
	h := len(ahead) / 2
	AxpyCodes(acc, accStride, w, wStride, g, cba, codes, stride, idxa, norma, n, da, ahead[:h])
	AxpyCodes(acc[da:], accStride, w, wStride, g, cbb, codes, stride, idxb, normb, n, db, ahead[h:])
}

// codePart is one part of the codes that axpyCodesParts adds: its
// codebook, where its indices and norm are in a code, its coordinates, and
// where they start in an accumulator row.
type codePart struct {
	cb                      *Codebook
	idxOff, normOff, d, off int
}

// axpyCodesParts is AxpyCodes for parts of codes on a level with
// laid-out-weight kernels (g ≥ 4, each part at least 8 coordinates and
// with a fused kernel, and the same codes left to the generic twin for
// every part): the first g&^3 rows bcTokens codes at a time, each part in
// turn with its weights times norms laid out (plainWeights; once for
// consecutive parts that share the norm); then the generic twin on what
// the kernels left; then the last rows with the per-row kernels. Each
// accumulator takes AxpyCodes' adds for its part in the same order, so the
// same bits.
func axpyCodesParts(acc []float32, accStride int, w []float32, wStride, g int, parts []codePart, codes []byte, stride, n int, ahead []byte) {
	g4 := g &^ 3
	p0 := parts[0]
	vec := codeRows(p0.cb, codes, stride, p0.idxOff, p0.normOff, n, p0.d, "AxpyCodes")
	var wn [bcTokens * 4]float32
	for t0 := 0; t0 < vec; t0 += bcTokens {
		m := min(bcTokens, vec-t0)
		c := codes[t0*stride:]
		for i := 0; i < g4; i += 4 {
			var pf []byte
			if i == 0 {
				pf = ahead[t0*len(ahead)/vec : (t0+m)*len(ahead)/vec]
			}
			for k, p := range parts {
				if k == 0 || p.normOff != parts[k-1].normOff {
					plainWeights(&wn, w[i*wStride+t0:], wStride, m, c, stride, p.normOff)
				}
				share := pf[k*len(pf)/len(parts) : (k+1)*len(pf)/len(parts)]
				axpyCodesWn(acc[i*accStride+p.off:], accStride, wn[:m*4], &p.cb.vec, p.cb.sh, p.cb.bits, c, stride, p.idxOff, m, p.d&^7, share)
			}
		}
	}
	for _, p := range parts {
		a := acc[p.off:]
		axpyCodesGeneric(a, accStride, w, wStride, g4, p.cb, codes, stride, p.idxOff, p.normOff, n, p.d, vec, p.d&^7)
		if g4 < g {
			a, w := a[g4*accStride:], w[g4*wStride:]
			vec, d8 := runFused(active.axpyCodes, a, accStride, w, wStride, g-g4, p.cb, codes, stride, p.idxOff, p.normOff, n, p.d, p.d&^7, "AxpyCodes", nil)
			axpyCodesGeneric(a, accStride, w, wStride, g-g4, p.cb, codes, stride, p.idxOff, p.normOff, n, p.d, vec, d8)
		}
	}
}

// axpyCodesGeneric adds what the vector kernels left, as dotCodesGeneric.
func axpyCodesGeneric(acc []float32, accStride int, w []float32, wStride, g int, cb *Codebook, codes []byte, stride, idxOff, normOff, n, d, vec, d8 int) {
	eachCentroidRun(cb, codes, stride, idxOff, normOff, n, d, vec, d8, func(t, j0 int, norm float32, c []float32) {
		for i := range g {
			wt := w[i*wStride+t] * norm
			a := acc[i*accStride+j0 : i*accStride+j0+len(c)]
			for j, x := range c {
				a[j] += wt * x
			}
		}
	})
}

// DecodeF16 converts n rows of d little-endian fp16 values, row t at
// src[t*stride:], to dst (row t at dst[t*dstStride:]).
func DecodeF16(dst []float32, dstStride int, src []byte, stride, n, d int) {
	if n == 0 {
		return
	}
	check(dstStride >= d && len(dst) >= (n-1)*dstStride+d && len(src) >= (n-1)*stride+2*d && stride >= 2*d,
		"DecodeF16: short buffer or bad layout")
	d8 := d &^ 7
	from := 0
	if d8 > 0 && active.decodeF16 != nil {
		active.decodeF16(dst, src, stride, n, dstStride, d8)
		from = d8
	}
	for t := range n {
		s := src[t*stride:]
		row := dst[t*dstStride : t*dstStride+d]
		for j := from; j < d; j++ {
			row[j] = f16(uint16(s[2*j]) | uint16(s[2*j+1])<<8)
		}
	}
}

// rowData is the element storage of the rows Dot and Axpy read: float32,
// or little-endian fp16 bytes (DotF16, AxpyF16).
type rowData interface{ []float32 | []byte }

// rowLen is the number of elements of rows.
func rowLen[R rowData](rows R) int {
	if b, ok := any(rows).([]byte); ok {
		return len(b) / 2
	}
	return len(rows)
}

// rowAt is element i of rows as float32.
func rowAt[R rowData](rows R, i int) float32 {
	switch r := any(rows).(type) {
	case []float32:
		return r[i]
	case []byte:
		return f16(uint16(r[2*i]) | uint16(r[2*i+1])<<8)
	}
	panic("unreachable")
}

type (
	dotKernel[R rowData]  func(out []float32, outStride int, q []float32, rows R, n, d, d8, rowStride int, ahead []byte, pfLines int)
	axpyKernel[R rowData] func(acc, w []float32, wStride int, rows R, n, d, d8, rowStride int, ahead []byte, pfLines int)
)

// bcTokens is the most tokens whose weights plainWeights lays out at once
// (32 tokens × 4 rows: 512 bytes).
const bcTokens = 32

// Dot adds Σ_j q[i*d+j]·rows[t*rowStride+j] to out[i*outStride+t] for the
// g query rows i < g (g = len(q)/d) and the n rows t < n. The vector
// kernels prefetch ahead (nil for nothing) a few lines per row as they go:
// what the caller reads next, asked for while this work keeps the core busy.
func Dot(out []float32, outStride int, q, rows []float32, n, d, rowStride int, ahead []byte) {
	dotRows(active.dot1, active.dot4, out, outStride, q, rows, n, d, rowStride, ahead)
}

// DotF16 is Dot over rows of little-endian fp16 (rowStride in elements),
// converted to float32 as they are loaded.
func DotF16(out []float32, outStride int, q []float32, rows []byte, n, d, rowStride int, ahead []byte) {
	dotRows(active.dot1F16, active.dot4F16, out, outStride, q, rows, n, d, rowStride, ahead)
}

// linesPer is the prefetch lines per step that spread ahead evenly over
// steps steps (at least one while any is left).
func linesPer(ahead []byte, steps int) int { return max(1, ((len(ahead)+63)/64+steps-1)/max(steps, 1)) }

func dotRows[R rowData](k1, k4 dotKernel[R], out []float32, outStride int, q []float32, rows R, n, d, rowStride int, ahead []byte) {
	if n == 0 || len(q) == 0 {
		return
	}
	g := len(q) / d
	check(len(q) == g*d && outStride >= n && len(out) >= (g-1)*outStride+n && rowStride >= d &&
		rowLen(rows) >= (n-1)*rowStride+d, "Dot: bad lengths")
	d8 := d &^ 7
	from := 0
	if d8 > 0 && k1 != nil {
		i, pf := 0, linesPer(ahead, n)
		if k4 != nil {
			for ; i+4 <= g; i += 4 {
				k4(out[i*outStride:], outStride, q[i*d:], rows, n, d, d8, rowStride, ahead, pf)
				ahead = nil
			}
		}
		for ; i < g; i++ {
			k1(out[i*outStride:], outStride, q[i*d:], rows, n, d, d8, rowStride, ahead, pf)
			ahead = nil
		}
		from = d8
	}
	if from == d {
		return
	}
	for i := range g { // what the vector kernels left: coordinates ≥ d8, or all
		qi := q[i*d+from : i*d+d]
		for t := range n {
			var s0, s1 float32
			j := 0
			for ; j+2 <= len(qi); j += 2 {
				s0 += qi[j] * rowAt(rows, t*rowStride+from+j)
				s1 += qi[j+1] * rowAt(rows, t*rowStride+from+j+1)
			}
			if j < len(qi) {
				s0 += qi[j] * rowAt(rows, t*rowStride+from+j)
			}
			out[i*outStride+t] += s0 + s1
		}
	}
}

// Axpy adds Σ_t w[i*wStride+t]·rows[t*rowStride+j] to acc[i*d+j] for the g
// accumulator rows i < g (g = len(acc)/d), the n rows t and j < d. The
// vector kernels prefetch ahead (nil for nothing) as Dot's do.
func Axpy(acc, w []float32, wStride int, rows []float32, n, d, rowStride int, ahead []byte) {
	axpyRows(active.axpy1, active.axpy4, acc, w, wStride, rows, n, d, rowStride, ahead)
}

// AxpyF16 is Axpy over rows of little-endian fp16 (rowStride in elements),
// converted to float32 as they are loaded.
func AxpyF16(acc, w []float32, wStride int, rows []byte, n, d, rowStride int, ahead []byte) {
	axpyRows(active.axpy1F16, active.axpy4F16, acc, w, wStride, rows, n, d, rowStride, ahead)
}

func axpyRows[R rowData](k1, k4 axpyKernel[R], acc, w []float32, wStride int, rows R, n, d, rowStride int, ahead []byte) {
	if n == 0 || len(acc) == 0 {
		return
	}
	g := len(acc) / d
	check(len(acc) == g*d && wStride >= n && len(w) >= (g-1)*wStride+n && rowStride >= d &&
		rowLen(rows) >= (n-1)*rowStride+d, "Axpy: bad lengths")
	d8 := d &^ 7
	from := 0
	if d8 > 0 && k1 != nil {
		// The kernels walk the rows once per 16 (four rows) or 32 (one
		// row) coordinates, prefetching as they go.
		i := 0
		if k4 != nil {
			for ; i+4 <= g; i += 4 {
				k4(acc[i*d:], w[i*wStride:], wStride, rows, n, d, d8, rowStride, ahead, linesPer(ahead, n*((d8+15)/16)))
				ahead = nil
			}
		}
		for ; i < g; i++ {
			k1(acc[i*d:], w[i*wStride:], wStride, rows, n, d, d8, rowStride, ahead, linesPer(ahead, n*((d8+31)/32)))
			ahead = nil
		}
		from = d8
	}
	if from == d {
		return
	}
	for i := range g { // what the vector kernels left: coordinates ≥ d8, or all
		a := acc[i*d+from : i*d+d]
		for t, wt := range w[i*wStride : i*wStride+n] {
			for j := range a {
				a[j] += wt * rowAt(rows, t*rowStride+from+j)
			}
		}
	}
}

// ExpSum replaces every x[i] by exp(x[i] − m) and returns their sum. m must
// be ≥ every x[i] (the softmax maximum), so each result is in [0, 1]; a
// result below e^−87.3 (about 1e−38) is flushed to zero. The generic and
// vector versions evaluate the same polynomial; they differ only by the
// vector version's fused multiply-adds (≤ 2 ulp) and summation order.
func ExpSum(x []float32, m float32) float32 {
	if active.expSum != nil {
		return active.expSum(x, m)
	}
	return expSumGeneric(x, m)
}

// The exp polynomial: e^x = 2^k · e^r with k = round(x·log2 e) and
// r = x − k·ln2 in [−ln2/2, ln2/2], e^r by a degree-6 Taylor-like minimax
// polynomial (Cephes expf coefficients). Relative error ≤ 2 ulp.
const (
	expLo    = -87.33654 // below: flushed to zero
	expLog2e = 1.44269504088896341
	expLn2Hi = 0.693359375
	expLn2Lo = -2.12194440e-4
	expP0    = 1.9875691500e-4
	expP1    = 1.3981999507e-3
	expP2    = 8.3334519073e-3
	expP3    = 4.1665795894e-2
	expP4    = 1.6666665459e-1
	expP5    = 5.0000001201e-1
)

func expSumGeneric(x []float32, m float32) float32 {
	var sum float32
	for i, v := range x {
		e := exp32(v - m)
		x[i] = e
		sum += e
	}
	return sum
}

// exp32 evaluates e^x for x ≤ 0 by the package's polynomial. Every product
// is converted explicitly so the compiler cannot fuse it into an add.
func exp32(x float32) float32 {
	if x < expLo {
		return 0
	}
	k := float32(math.RoundToEven(float64(float32(x * expLog2e))))
	r := x - float32(k*expLn2Hi)
	r = r - float32(k*expLn2Lo)
	p := float32(expP0)
	p = float32(p*r) + expP1
	p = float32(p*r) + expP2
	p = float32(p*r) + expP3
	p = float32(p*r) + expP4
	p = float32(p*r) + expP5
	r2 := float32(r * r)
	p = float32(p*r2) + r
	p = p + 1
	return p * math.Float32frombits(uint32(int32(k)+127)<<23)
}

// f16 converts an IEEE half to float32 (exact).
func f16(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch exp {
	case 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		f := float32(man) * (1.0 / (1 << 24)) // subnormal: man·2^−24, exact
		if sign != 0 {
			f = -f
		}
		return f
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
}

// FWHT sets dst = H·(signs∘src), the unnormalised Walsh–Hadamard transform
// of src with the signs applied first (signs nil: none), and reports true;
// it reports false, touching nothing, when no vector kernel runs, so the
// caller's own loop (the oracle, bit-identical to this one: the same
// butterflies in the same order) does the work. len(dst) must be a power of
// two ≥ 8, src and signs (if any) as long.
func FWHT(dst, src, signs []float32) bool {
	n := len(dst)
	if active.fwhtFirst8 == nil || n < 8 || n&(n-1) != 0 {
		return false
	}
	check(len(src) == n && (signs == nil || len(signs) == n), "FWHT: lengths differ")
	if active.fwhtRegs != nil && n >= 16 && n <= 256 {
		active.fwhtRegs(dst, src, signs)
		return true
	}
	active.fwhtFirst8(dst, src, signs)
	h := 8
	for ; 8*h <= n; h *= 8 {
		active.fwhtPass[3](dst, h)
	}
	if 4*h <= n {
		active.fwhtPass[2](dst, h)
		h *= 4
	}
	if 2*h <= n {
		active.fwhtPass[1](dst, h)
	}
	return true
}

// Scale multiplies x by k (one rounding per element, so every level gives
// the same bits).
func Scale(x []float32, k float32) {
	from := 0
	if active.scale != nil {
		active.scale(x, k)
		from = len(x) &^ 7
	}
	for i := from; i < len(x); i++ {
		x[i] *= k
	}
}

// Bounds holds the 2^bits − 1 ascending boundaries of a scalar quantizer
// (bits 1–4) laid out for QuantizePack.
type Bounds struct {
	bits int
	b    []float32
	vec  [15][8]float32 // boundary k broadcast to 8 lanes
}

// NewBounds prepares the boundaries b (len 2^bits − 1, ascending).
func NewBounds(b []float32, bits int) *Bounds {
	check(bits >= 1 && bits <= 4 && len(b) == 1<<bits-1, "NewBounds: need 2^bits − 1 boundaries, bits 1–4")
	qb := &Bounds{bits: bits, b: append([]float32(nil), b...)}
	for k, v := range b {
		for i := range 8 {
			qb.vec[k][i] = v
		}
	}
	return qb
}

// QuantizePack writes the index of each x[j] (the number of boundaries
// strictly below it; NaN counts as below none) to dst as an LSB-first
// stream of bits-wide indices (internal/bitpack's layout), filling exactly
// (len(x)·bits+7)/8 bytes.
func QuantizePack(dst []byte, x []float32, qb *Bounds) {
	bits := qb.bits
	check(len(dst) >= (len(x)*bits+7)/8, "QuantizePack: short destination")
	from := 0
	if k := active.quantize[bits]; k != nil {
		k(dst, x, &qb.vec)
		from = len(x) &^ 7
	}
	quantizePackGeneric(dst[from*bits/8:], x[from:], qb)
}

func quantizePackGeneric(dst []byte, x []float32, qb *Bounds) {
	bits := qb.bits
	nb := (len(x)*bits + 7) / 8
	clear(dst[:nb])
	for j, v := range x {
		var idx uint32
		for _, b := range qb.b {
			if v > b {
				idx++
			}
		}
		bit := j * bits
		dst[bit>>3] |= byte(idx << (bit & 7))
		if bit&7+bits > 8 {
			dst[bit>>3+1] |= byte(idx >> (8 - bit&7))
		}
	}
}

// SumSquares returns ‖x‖² accumulated in float64: eight partial sums s_k
// over the elements ≡ k mod 8 of the first len(x)&^7, combined as
// ((s0+s4)+(s2+s6)) + ((s1+s5)+(s3+s7)), then the tail added in order. Every
// level computes exactly this (squares of float32 are exact in float64), so
// norms, and the codes derived from them, are the same on every platform.
func SumSquares(x []float32) float64 {
	n8 := len(x) &^ 7
	var s float64
	if active.sumSquares != nil {
		s = active.sumSquares(x)
	} else {
		var p [8]float64
		for i := 0; i < n8; i += 8 {
			c := x[i : i+8 : i+8]
			for k, v := range c {
				a := float64(v)
				p[k] += float64(a * a)
			}
		}
		s = ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]))
	}
	for _, v := range x[n8:] {
		a := float64(v)
		s += float64(a * a)
	}
	return s
}

// EncodeF16 writes src as little-endian IEEE halves to dst (len ≥ 2·len(src)),
// rounding to nearest even; values beyond the fp16 range become ±Inf.
// Every level gives the same bits as half.FromFloat32 for non-NaN input.
func EncodeF16(dst []byte, src []float32) {
	check(len(dst) >= 2*len(src), "EncodeF16: short destination")
	from := 0
	if active.encodeF16 != nil {
		active.encodeF16(dst, src)
		from = len(src) &^ 7
	}
	encodeF16Generic(dst[2*from:], src[from:])
}

func encodeF16Generic(dst []byte, src []float32) {
	for i, v := range src {
		h := half.FromFloat32(v)
		dst[2*i], dst[2*i+1] = byte(h), byte(h>>8)
	}
}

// RoundF16 sets dst[i] to src[i] rounded to fp16 and back (dst and src may
// be the same slice).
func RoundF16(dst, src []float32) {
	check(len(dst) >= len(src), "RoundF16: short destination")
	from := 0
	if active.roundF16 != nil {
		active.roundF16(dst, src)
		from = len(src) &^ 7
	}
	for i := from; i < len(src); i++ {
		dst[i] = half.ToFloat32(half.FromFloat32(src[i]))
	}
}

// Prefetch hints that b will be read soon, so its cache lines start
// arriving while the caller works on something else. It reads nothing and
// has no effect on levels without a prefetch instruction.
func Prefetch(b []byte) {
	if active.prefetch != nil && len(b) > 0 {
		active.prefetch(b)
	}
}

// Max returns the largest element of x (len(x) ≥ 1, no NaN).
func Max(x []float32) float32 {
	check(len(x) > 0, "Max: empty")
	m := x[0]
	from := 1
	if active.max != nil && len(x) >= 8 {
		m = active.max(x)
		from = len(x) &^ 7
	}
	for _, v := range x[from:] {
		m = max(m, v)
	}
	return m
}

// MaxAbsBits returns the largest of the bit patterns of |x[i]| (the sign
// cleared). Non-negative floats order like their bit patterns, so the result
// is ≥ 0x7f800000 exactly when some element is ±Inf or NaN, and otherwise is
// the bits of max|x[i]|: one pass validates and range-checks a whole input.
func MaxAbsBits(x []float32) uint32 {
	from, m := 0, uint32(0)
	if active.maxAbsBits != nil && len(x) >= 8 {
		m = active.maxAbsBits(x)
		from = len(x) &^ 7
	}
	for _, v := range x[from:] {
		m = max(m, math.Float32bits(v)&0x7fffffff)
	}
	return m
}

// Sub writes x − y to dst (len(dst), len(y) ≥ len(x)); dst may be x.
// Each difference is the one rounding of float32 subtraction on every
// level.
func Sub(dst, x, y []float32) {
	check(len(dst) >= len(x) && len(y) >= len(x), "Sub: short operands")
	from := 0
	if active.sub != nil {
		active.sub(dst, x, y)
		from = len(x) &^ 7
	}
	for i := from; i < len(x); i++ {
		dst[i] = x[i] - y[i]
	}
}

// AddF64 adds x, widened to float64, into acc (len ≥ len(x)). Each element
// is one exact-input float64 add, so every level gives the same bits.
func AddF64(acc []float64, x []float32) {
	check(len(acc) >= len(x), "AddF64: short accumulator")
	from := 0
	if active.addF64 != nil {
		active.addF64(acc, x)
		from = len(x) &^ 7
	}
	for i := from; i < len(x); i++ {
		acc[i] += float64(x[i])
	}
}
