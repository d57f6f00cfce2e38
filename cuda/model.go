package cuda

// Go models of the kernels. Each follows its kernel's thread and block
// decomposition, the order of every sum and the tree reductions exactly, in
// float32 with every product rounded before it is added (the PTX is built
// with -ffp-contract=off, so the device does not fuse either). The one
// operation not reproduced bit for bit is the hardware's ex2.approx inside
// fast_exp (≤ 2 ulp), modelled by a correctly rounded 2^x. The tests hold
// these models to the generic CPU path; on a GPU, gpucheck.sh holds the
// kernels to the models.

import (
	"encoding/binary"
	"github.com/turboquant-go/tq/internal/gpucode"
	"math"

	"github.com/turboquant-go/tq/internal/half"
	"github.com/turboquant-go/tq/kvcache"
)

const log2e = float32(1.4426950408889634)

func modelExp(x float32) float32 { return float32(math.Exp2(float64(float32(x * log2e)))) }

func loadScalar(b []byte, prec int32) float32 {
	if prec != 0 {
		return math.Float32frombits(binary.LittleEndian.Uint32(b))
	}
	return half.ToFloat32(binary.LittleEndian.Uint16(b))
}

func loadHalf(b []byte, i int) float32 { return half.ToFloat32(binary.LittleEndian.Uint16(b[2*i:])) }

// loadIndex is codes.cuh's load_index.
func loadIndex(idx []byte, j int, bits int32) uint32 {
	bit := uint32(j) * uint32(bits)
	byt, shift := bit>>3, bit&7
	w := uint32(idx[byt])
	if shift+uint32(bits) > 8 {
		w |= uint32(idx[byt+1]) << 8
	}
	return w >> shift & (1<<bits - 1)
}

func partFactor(c []byte, p []int32) float32 {
	f := loadScalar(c[p[gpucode.POffNorm]:], p[gpucode.PPrec])
	if p[gpucode.PCorr] != 0 {
		f = float32(f * loadScalar(c[p[gpucode.POffCorr]:], p[gpucode.PPrec]))
	}
	return f
}

// scoreCode is codes.cuh's score_code.
func scoreCode(code []byte, lay []int32, q, proj, cent []float32) float32 {
	var total float32
	for pi := range int(lay[0]) {
		p := lay[2+pi*gpucode.LayoutPart:]
		c := code[p[gpucode.POffCode]:]
		qp := q[p[gpucode.PRot]:]
		dim := int(p[gpucode.PDim])
		var s float32
		switch p[gpucode.PKind] {
		case gpucode.KindF16:
			for j := range dim {
				s += float32(qp[j] * loadHalf(c, j))
			}
			total += s
			continue
		case gpucode.KindF32:
			for j := range dim {
				s += float32(qp[j] * math.Float32frombits(binary.LittleEndian.Uint32(c[4*j:])))
			}
			total += s
			continue
		}
		if bits := p[gpucode.PBits]; bits > 0 {
			cb := cent[p[gpucode.PCent]:]
			idx := c[p[gpucode.POffIdx]:]
			for j := range dim {
				s += float32(qp[j] * cb[loadIndex(idx, j, bits)])
			}
		}
		if p[gpucode.PKind] == gpucode.KindProd {
			pr := proj[p[gpucode.PProj]:]
			sg := c[p[gpucode.POffSigns]:]
			var e float32
			for i := range int(p[gpucode.PRows]) {
				if sg[i>>3]>>(i&7)&1 == 1 {
					e += pr[i]
				} else {
					e -= pr[i]
				}
			}
			g := loadScalar(c[p[gpucode.POffGamma]:], p[gpucode.PPrec])
			s += float32(float32(g*math.Float32frombits(uint32(p[gpucode.PQJLScale]))) * e)
		}
		total += float32(partFactor(c, p) * s)
	}
	return total
}

// valueCoord is codes.cuh's value_coord.
func valueCoord(code []byte, lay []int32, cent []float32, j int) (float32, float32) {
	pi := 0
	if lay[0] > 1 && int32(j) >= lay[2+gpucode.LayoutPart+gpucode.PRot] {
		pi = 1
	}
	p := lay[2+pi*gpucode.LayoutPart:]
	c := code[p[gpucode.POffCode]:]
	jj := j - int(p[gpucode.PRot])
	switch p[gpucode.PKind] {
	case gpucode.KindF16:
		return loadHalf(c, jj), 1
	case gpucode.KindF32:
		return math.Float32frombits(binary.LittleEndian.Uint32(c[4*jj:])), 1
	}
	f := partFactor(c, p)
	if p[gpucode.PBits] == 0 {
		return 0, f
	}
	return cent[int(p[gpucode.PCent])+int(loadIndex(c[p[gpucode.POffIdx]:], jj, p[gpucode.PBits]))], f
}

// layerMemory is what tq_attend_partial reads of one layer: on the device,
// buffers; in the model, the host slices.
type layerMemory struct {
	klay, vlay   []int32
	cent         []float32
	blocks       [][]byte
	B, H         int
	ksize, vsize int
	// ksd and vsd are the bytes of a block's key and value drift code per
	// KV head (BlockCenter; 0: none), stored after the value codes: each
	// head's key drift code, then each head's value drift code.
	ksd, vsd   int
	sink, win  []byte
	nsink      int
	winStart   int
	winCap     int
	winLen     int
	compressed int
}

// queryBatch is the per-call input of tq_attend_partial.
type queryBatch struct {
	T, g, d, P    int
	qrot, qproj   []float32 // [T][QH][d], [T][QH][P]
	qraw, qmu     []float32 // [T][QH][d], [T][QH]
	scale         float32
	chunk, nsplit int
}

// locate is attend.cu's locate: the key and value bytes of token pos of
// KV head h, and whether they are fp16.
func (m *layerMemory) locate(pos, h, d int) (k, v []byte, raw bool) {
	if pos < m.nsink || pos >= m.nsink+m.compressed {
		base, slot := m.sink, pos
		if pos >= m.nsink {
			base, slot = m.win, (m.winStart+pos-m.nsink-m.compressed)%m.winCap
		}
		o := (slot*m.H + h) * 2 * d * 2
		return base[o : o+2*d], base[o+2*d : o+4*d], true
	}
	c := pos - m.nsink
	blk := m.blocks[c/m.B]
	j := c % m.B
	ko := (h*m.B + j) * m.ksize
	vo := m.H*m.B*m.ksize + (h*m.B+j)*m.vsize
	return blk[ko : ko+m.ksize], blk[vo : vo+m.vsize], false
}

// drift returns KV head h's key and value drift codes of compressed block
// b (nil where the side has none), as attend.cu's drift_codes.
func (m *layerMemory) drift(b, h int) (kd, vd []byte) {
	base := m.H * m.B * (m.ksize + m.vsize)
	blk := m.blocks[b]
	if m.ksd > 0 {
		kd = blk[base+h*m.ksd : base+(h+1)*m.ksd]
	}
	if m.vsd > 0 {
		o := base + m.H*m.ksd + h*m.vsd
		vd = blk[o : o+m.vsd]
	}
	return kd, vd
}

// treeMax and treeSum are block_max and block_sum: red holds one value
// per thread.
func treeMax(red []float32) float32 {
	for s := threadsPerBlock / 2; s > 0; s >>= 1 {
		for tid := range s {
			if red[tid+s] > red[tid] {
				red[tid] = red[tid+s]
			}
		}
	}
	return red[0]
}

func treeSum(red []float32) float32 {
	for s := threadsPerBlock / 2; s > 0; s >>= 1 {
		for tid := range s {
			red[tid] += red[tid+s]
		}
	}
	return red[0]
}

// modelAttendPartial runs tq_attend_partial's grid (nsplit, H, T) into out
// ([T][QH][nsplit][4+2d]).
func modelAttendPartial(m *layerMemory, q *queryBatch, out []float32) {
	g, d, P, chunk := q.g, q.d, q.P, q.chunk
	QH := m.H * g
	n := m.nsink + m.compressed + m.winLen
	lg := make([]float32, g*chunk)
	red := make([]float32, threadsPerBlock)
	stride := 4 + 2*d
	for t := range q.T {
		for h := range m.H {
			qs := q.qrot[(t*QH+h*g)*d : (t*QH+h*g+g)*d]
			qr := q.qraw[(t*QH+h*g)*d : (t*QH+h*g+g)*d]
			qp := q.qproj[(t*QH+h*g)*P : (t*QH+h*g+g)*P]
			for split := range q.nsplit {
				limit := n - q.T + t + 1
				start := split * chunk
				end := min(start+chunk, limit)
				ln := max(end-start, 0)
				// Phase 0: the key drift scores of the split's blocks.
				b0, ds := 0, []float32(nil)
				if m.ksd > 0 {
					c0, c1 := max(start-m.nsink, 0), min(end-m.nsink, m.compressed)
					if c1 > c0 {
						b0 = c0 / m.B
						ds = make([]float32, ((c1-1)/m.B-b0+1)*g)
						for i := range ds {
							kd, _ := m.drift(b0+i/g, h)
							gi := i % g
							ds[i] = scoreCode(kd, m.klay, qs[gi*d:], qp[gi*P:], m.cent)
						}
					}
				}
				// Phase 1.
				for i := range ln {
					k, _, raw := m.locate(start+i, h, d)
					for gi := range g {
						var x float32
						if raw {
							var s float32
							for j := range d {
								s += float32(qr[gi*d+j] * loadHalf(k, j))
							}
							x = s
						} else {
							x = scoreCode(k, m.klay, qs[gi*d:], qp[gi*P:], m.cent) + q.qmu[t*QH+h*g+gi]
							if m.ksd > 0 {
								x += ds[((start+i-m.nsink)/m.B-b0)*g+gi]
							}
						}
						lg[gi*chunk+i] = float32(x * q.scale)
					}
				}
				// Phase 2.
				mx, l, wc := make([]float32, g), make([]float32, g), make([]float32, g)
				for gi := range g {
					row := lg[gi*chunk:]
					for tid := range threadsPerBlock {
						v := float32(math.Inf(-1))
						for i := tid; i < ln; i += threadsPerBlock {
							if row[i] > v {
								v = row[i]
							}
						}
						red[tid] = v
					}
					mx[gi] = treeMax(red)
					sc := make([]float32, threadsPerBlock)
					for tid := range threadsPerBlock {
						var s, c float32
						for i := tid; i < ln; i += threadsPerBlock {
							e := modelExp(row[i] - mx[gi])
							row[i] = e
							s += e
							if pos := start + i; pos >= m.nsink && pos < m.nsink+m.compressed {
								c += e
							}
						}
						red[tid], sc[tid] = s, c
					}
					l[gi] = treeSum(red)
					wc[gi] = treeSum(sc)
				}
				// Phase 3. A block's value drift is added with the block's
				// summed weights when the walk leaves the block.
				ac, ar, bw := make([]float32, g), make([]float32, g), make([]float32, g)
				flush := func(vd []byte, j int) {
					c, f := valueCoord(vd, m.vlay, m.cent, j)
					for gi := range g {
						ac[gi] += float32(float32(bw[gi]*f) * c)
						bw[gi] = 0
					}
				}
				for j := range d {
					clear(ac)
					clear(ar)
					cur := -1 // the block whose weights bw sums
					for i := range ln {
						_, v, raw := m.locate(start+i, h, d)
						b := -1
						if !raw && m.vsd > 0 {
							b = (start + i - m.nsink) / m.B
						}
						if b != cur {
							if cur >= 0 {
								_, vd := m.drift(cur, h)
								flush(vd, j)
							}
							cur = b
						}
						if raw {
							x := loadHalf(v, j)
							for gi := range g {
								ar[gi] += float32(lg[gi*chunk+i] * x)
							}
						} else {
							c, f := valueCoord(v, m.vlay, m.cent, j)
							for gi := range g {
								ac[gi] += float32(float32(lg[gi*chunk+i]*f) * c)
							}
							if cur >= 0 {
								for gi := range g {
									bw[gi] += lg[gi*chunk+i]
								}
							}
						}
					}
					if cur >= 0 {
						_, vd := m.drift(cur, h)
						flush(vd, j)
					}
					for gi := range g {
						o := out[((t*QH+h*g+gi)*q.nsplit+split)*stride:]
						o[4+j], o[4+d+j] = ac[gi], ar[gi]
					}
				}
				for gi := range g {
					o := out[((t*QH+h*g+gi)*q.nsplit+split)*stride:]
					o[0], o[1], o[2], o[3] = mx[gi], l[gi], wc[gi], 0
				}
			}
		}
	}
}

// modelAttendReduce runs tq_attend_reduce over rows rows of part into out
// ([rows][4+2d]).
func modelAttendReduce(part []float32, rows, nsplit, d int, out []float32) {
	stride := 4 + 2*d
	for row := range rows {
		p := part[row*nsplit*stride:]
		M := float32(math.Inf(-1))
		for s := range nsplit {
			if p[s*stride+1] > 0 && p[s*stride] > M {
				M = p[s*stride]
			}
		}
		factor := func(s int) float32 {
			if p[s*stride+1] > 0 {
				return modelExp(p[s*stride] - M)
			}
			return 0
		}
		var l, wc float32
		for s := range nsplit {
			f := factor(s)
			l += float32(p[s*stride+1] * f)
			wc += float32(p[s*stride+2] * f)
		}
		o := out[row*stride:]
		for j := range 2 * d {
			var a float32
			for s := range nsplit {
				a += float32(p[s*stride+4+j] * factor(s))
			}
			o[4+j] = a
		}
		o[0], o[1], o[2], o[3] = l, wc, 0, 0
	}
}

// modelEncodeMSE runs tq_encode_mse: one block per vector of xs ([n][d]).
func modelEncodeMSE(xs []float32, d, bits int, prec int32, plan *gpucode.RotationPlan, bounds []float32,
	codes []byte, codeSize, offIdx int, status []int32) {
	ss := make([]float64, d)
	u := make([]float32, d)
	idx := make([]byte, d)
	for v := range len(xs) / d {
		x := xs[v*d : (v+1)*d]
		for j := range d {
			ss[j] = float64(x[j]) * float64(x[j])
			u[j] = x[j]
		}
		for s := d / 2; s > 0; s >>= 1 {
			for j := range s {
				ss[j] += ss[j+s]
			}
		}
		nrm := math.Sqrt(ss[0])
		fits := nrm < 65520
		if prec != 0 {
			fits = nrm <= math.MaxFloat32
		}
		if !fits {
			status[v] = 1
			continue
		}
		var inv float32
		if nrm > 0 {
			inv = float32(1 / nrm)
		}
		for r := range plan.Rounds {
			for j := range d {
				u[j] = float32(u[j] * plan.Signs[r*d+j])
			}
			for h := 1; h < d; h <<= 1 {
				for j := range d {
					if j&h == 0 {
						a, b := u[j], u[j+h]
						u[j], u[j+h] = a+b, a-b
					}
				}
			}
		}
		for j := range d {
			var y float32
			if nrm > 0 {
				y = float32(u[j] * float32(plan.Final*inv))
			}
			k := 0
			for _, b := range bounds[:1<<bits-1] {
				if b < y {
					k++
				}
			}
			idx[j] = byte(k)
		}
		code := codes[v*codeSize : (v+1)*codeSize]
		nbytes := (d*bits + 7) / 8
		for b := range nbytes {
			var acc uint32
			lo, hi := 8*b/bits, (8*b+7)/bits
			for c := lo; c <= hi && c < d; c++ {
				shift := c*bits - 8*b
				w := uint32(idx[c])
				if shift >= 0 {
					acc |= w << shift
				} else {
					acc |= w >> -shift
				}
			}
			code[offIdx+b] = byte(acc)
		}
		status[v] = 0
		f := float32(nrm)
		if prec != 0 {
			binary.LittleEndian.PutUint32(code, math.Float32bits(f))
		} else {
			binary.LittleEndian.PutUint16(code, half.FromFloat32(f))
		}
	}
}

// runModel runs the partial and reduce models for one batch and returns
// the reduced rows ([T·QH][4+2d]).
func runModel(m *layerMemory, q *queryBatch) []float32 {
	rows := q.T * m.H * q.g
	stride := 4 + 2*q.d
	part := make([]float32, rows*q.nsplit*stride)
	modelAttendPartial(m, q, part)
	out := make([]float32, rows*stride)
	modelAttendReduce(part, rows, q.nsplit, q.d, out)
	return out
}

// hostMemory is the layerMemory of a layer view: the model reads the host
// slices that the device path uploads.
func hostMemory(v kvcache.LayerView, lc *layerCodecs, B, H int) *layerMemory {
	return &layerMemory{klay: lc.klay, vlay: lc.vlay, cent: lc.cent, blocks: v.Blocks, B: B, H: H,
		ksize: v.KeyCodeSize, vsize: v.ValueCodeSize, ksd: lc.ksd, vsd: lc.vsd, sink: v.SinkTokens, win: v.WindowRing,
		nsink: v.Sinks, winStart: v.WindowStart, winCap: max(v.WindowCap, 1), winLen: v.Window, compressed: v.Compressed}
}
