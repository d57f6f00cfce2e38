package kvcache

import (
	"fmt"
	"github.com/turboquant-go/tq/internal/vec"
	"math"

	"github.com/turboquant-go/tq/internal/half"
	"github.com/turboquant-go/tq/internal/simd"
	"github.com/turboquant-go/tq/turboquant"
)

// Appending is prepare-then-commit, in five explicit steps (appendLocked):
//
//  1. plan: the heads' sides (built on a layer's first append, with their
//     Center means and outlier channels) and where the T tokens go: the
//     fp16 sinks, the fp16 window ring, and the window's overflow, oldest
//     first, which is compressed;
//  2. measure guard: for each block the append opens, each head's logit
//     error against its recent queries, which fixes the blocks' layouts;
//  3. reserve: every byte the append adds, from the pool's budget;
//  4. encode: every token to be compressed, into a private buffer;
//  5. commit: only now is the layer written.
//
// Steps 1–4 change nothing the sequence holds, so a failure leaves it as it
// was (and 4 gives back what 3 reserved).

// AppendFP16 is Append for IEEE half inputs.
func (s *Sequence) AppendFP16(layer int, keys, values []uint16) error {
	k, v := make([]float32, len(keys)), make([]float32, len(values))
	half.ToFloat32s(k, keys)
	half.ToFloat32s(v, values)
	return s.Append(layer, k, v)
}

// AppendBF16 is Append for bfloat16 inputs.
func (s *Sequence) AppendBF16(layer int, keys, values []uint16) error {
	k, v := make([]float32, len(keys)), make([]float32, len(values))
	half.BF16ToFloat32s(k, keys)
	half.BF16ToFloat32s(v, values)
	return s.Append(layer, k, v)
}

// Append adds T tokens' keys and values to a layer.
func (s *Sequence) Append(layer int, keys, values []float32) error {
	cfg := s.pool.cfg
	row := cfg.KVHeads * cfg.HeadDim
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLayer(layer); err != nil {
		return err
	}
	if len(keys) != len(values) || len(keys) == 0 || len(keys)%row != 0 {
		return fmt.Errorf("%w: %d keys and %d values are not the same whole number of [%d][%d] tokens",
			ErrLength, len(keys), len(values), cfg.KVHeads, cfg.HeadDim)
	}
	plan := &s.pool.layers[layer]
	if err := s.checkInput(layer, keys, plan.keys, plan.upKeys, keysKV); err != nil {
		return err
	}
	if err := s.checkInput(layer, values, plan.values, plan.upValues, valuesKV); err != nil {
		return err
	}
	return s.appendLocked(layer, keys, values)
}

// checkInput validates an append's keys (or values) xs against what they
// will be stored as: finite; within fp16 range where a window holds them;
// and, for a storage with an fp16 norm (base or the guard's), with a norm
// fp16 can hold. One vector pass decides the common case; the loops only
// run to name the offending component.
func (s *Sequence) checkInput(layer int, xs []float32, base, up Storage, which kv) error {
	cfg := s.pool.cfg
	d, row := cfg.HeadDim, cfg.KVHeads*cfg.HeadDim
	maxBits := simd.MaxAbsBits(xs)
	if maxBits >= 0x7f800000 { // ±Inf or NaN somewhere
		i := vec.NonFinite(xs)
		return fmt.Errorf("%w: component %d is %v", ErrNonFinite, i, xs[i])
	}
	if s.usesFP16Window() && math.Float32frombits(maxBits) >= fp16Limit {
		for i, v := range xs {
			if math.Abs(float64(v)) >= fp16Limit {
				return fmt.Errorf("%w: component %d (%v) does not fit the fp16 window", ErrOverflow, i, v)
			}
		}
	}
	// A vector whose norm (or PolarQuant radius) cannot be stored in fp16
	// is refused now: accepted into the window, it would fail to compress
	// later and block every following append.
	if !base.fp16Norm() && !(cfg.Guard.enabled() && up.fp16Norm()) {
		return nil
	}
	heads := s.layers[layer].heads
	// ‖x − μ‖ ≤ √d·(max|x_i| + max|μ_i|): when that bound stays below the
	// limit, as it does for any sane input, the norms need not be taken.
	// (Before μ exists, the first append's own mean is bounded by max|x_i|.)
	bound := float64(math.Float32frombits(maxBits))
	if cfg.Center {
		mu := bound
		if heads != nil {
			mu = 0
			for h := range heads {
				if m := heads[h].side(which).mu; m != nil {
					mu = max(mu, float64(math.Float32frombits(simd.MaxAbsBits(m))))
				}
			}
		}
		bound += mu
	}
	if math.Sqrt(float64(d))*bound < fp16Limit {
		return nil
	}
	// With centering the stored vector is x − μ, and ‖x − μ‖ ≤ ‖x‖ + ‖μ‖;
	// before μ exists it is the mean of this append's vectors, whose norm is
	// at most their largest.
	var muNorm float64
	if cfg.Center {
		for v := 0; v < len(xs); v += d {
			muNorm = max(muNorm, norm2(xs[v:v+d]))
		}
	}
	for v := 0; v < len(xs); v += d {
		n := norm2(xs[v : v+d])
		if cfg.Center && heads != nil {
			muNorm = norm2(heads[v%row/d].side(which).mu)
		}
		if n+muNorm >= fp16Limit {
			return fmt.Errorf("%w: token %d head %d has norm %g, beyond the storage's fp16 norm",
				ErrOverflow, v/row, v%row/d, n+muNorm)
		}
	}
	return nil
}

// fp16Norm reports whether the storage keeps an fp16 norm (or fp16 radii).
func (cd Storage) fp16Norm() bool {
	return cd.Kind == Quantized && (cd.Norm == turboquant.FP16 || cd.Method == turboquant.Polar)
}

// usesFP16Window reports whether tokens may pass through the fp16 window
// before they are compressed.
func (s *Sequence) usesFP16Window() bool {
	return s.pool.cfg.Window > 0 || s.pool.cfg.DeferPrefill
}

// appendLocked runs the five steps of an append (see the top of this file).
func (s *Sequence) appendLocked(layer int, keys, values []float32) error {
	a, err := s.planAppend(layer, keys, values)
	if err != nil {
		return err
	}
	if err := a.measureGuard(); err != nil {
		return err
	}
	if err := a.reserve(); err != nil {
		return err
	}
	if err := a.encode(); err != nil {
		s.pool.release(a.need)
		return err
	}
	a.commit()
	return nil
}

// appendPlan is one append between planning and commit.
type appendPlan struct {
	s            *Sequence
	layer        int
	l            *seqLayer
	plan         *layerPlan
	keys, values []float32
	T            int
	heads        []headStores // the layer's, or new ones on its first append

	placement

	lays    []*blockLayout // the layouts of the blocks this append opens
	nextLay *blockLayout   // the layout of the layer's next block after it
	gHeads  []guardHead    // the guard's head states after it (nil: unchanged)

	need    int64 // bytes reserved
	cowTail bool  // the shared tail block is copied before it is written

	codes      []byte // the encoded tokens: [evict][H][kMax+vMax]
	kMax, vMax int
	tk, tv     []float32 // scratch for stored

	// drifts are the drift codes of the blocks this append opens
	// (BlockCenter): [opens][H][kDrift+vDrift]; driftVec caches the decoded
	// drift of a block and head as it is encoded against.
	drifts   []byte
	driftVec map[[2]int][2][]float32
}

// placement is where an append's tokens go: toSink to the sinks, the rest
// to the window, whose evict oldest tokens (evictOld of them already there,
// evictNew from this append) are compressed into the layer's blocks, opens
// of them new; the window ring then holds newCap slots.
type placement struct {
	toSink, toWin, evict, evictOld, evictNew, newCap, opens int
}

// place is the placement of T tokens appended to l: sinks first, then the
// window, whose overflow (oldest first) is compressed — unless a prefill is
// deferred, in which case the window grows to hold it.
func (s *Sequence) place(l *seqLayer, T int) placement {
	cfg := s.pool.cfg
	var p placement
	p.toSink = min(T, cfg.Sinks-l.nSink)
	p.toWin = T - p.toSink
	p.evict, p.newCap = max(0, l.winLen+p.toWin-cfg.Window), cfg.Window
	if cfg.DeferPrefill && !l.decoded && T > 1 {
		p.evict, p.newCap = 0, max(l.winCap, l.winLen+p.toWin, cfg.Window)
	}
	p.evictOld = min(p.evict, l.winLen)
	p.evictNew = p.evict - p.evictOld
	p.opens = (l.compressed+p.evict+cfg.BlockTokens-1)/cfg.BlockTokens - len(l.blocks)
	return p
}

// growth is what an append placed at p adds to l besides the blocks it
// opens: the sink and window buffers on the layer's first append, the
// window's growth, and the copy of a shared tail block that it writes.
func (s *Sequence) growth(l *seqLayer, p placement) (bytes int64, cowTail bool) {
	cfg := s.pool.cfg
	tb := cfg.fp16TokenBytes()
	if !l.alloc {
		bytes += int64(cfg.Sinks)*tb + cfg.guardRingBytes()
	}
	bytes += int64(max(0, p.newCap-l.winCap)) * tb
	cowTail = p.evict > 0 && l.compressed%cfg.BlockTokens != 0 && l.blocks[len(l.blocks)-1].refs.Load() > 1
	if cowTail {
		bytes += l.blocks[len(l.blocks)-1].lay.bytes
	}
	return bytes, cowTail
}

// planAppend is step 1: the heads' sides and the placement of the tokens.
func (s *Sequence) planAppend(layer int, keys, values []float32) (*appendPlan, error) {
	cfg := s.pool.cfg
	l := &s.layers[layer]
	d, H := cfg.HeadDim, cfg.KVHeads
	a := &appendPlan{s: s, layer: layer, l: l, plan: &s.pool.layers[layer], keys: keys, values: values,
		T: len(keys) / (H * d), heads: l.heads, tk: make([]float32, d), tv: make([]float32, d)}
	if a.heads == nil {
		var err error
		if a.heads, err = s.pool.newHeads(layer, keys, values); err != nil {
			return nil, err
		}
	}
	a.placement = s.place(l, a.T)
	a.lays = make([]*blockLayout, a.opens)
	a.nextLay = a.plan.base
	if l.guard != nil {
		a.nextLay = l.guard.lay
	}
	return a, nil
}

// newHeads builds a layer's sides on its first append: quantizers (outlier
// channels chosen from this append's keys or values) and, with Center, the
// means of this append's vectors per head.
func (p *Pool) newHeads(layer int, keys, values []float32) ([]headStores, error) {
	cfg := p.cfg
	plan := &p.layers[layer]
	d, H := cfg.HeadDim, cfg.KVHeads
	heads := make([]headStores, H)
	for h := range heads {
		hs := &heads[h]
		var err error
		if hs.keys, err = p.newSide(plan.keys, layer, h, keysKV, keys); err != nil {
			return nil, err
		}
		if hs.values, err = p.newSide(plan.values, layer, h, valuesKV, values); err != nil {
			return nil, err
		}
		if cfg.Guard.enabled() {
			if hs.upKeys, err = p.newSide(plan.upKeys, layer, h, keysKV, keys); err != nil {
				return nil, err
			}
			if hs.upValues, err = p.newSide(plan.upValues, layer, h, valuesKV, values); err != nil {
				return nil, err
			}
		}
		if cfg.Center && hs.keys.q != nil {
			hs.keys.mu = headMean(keys, h, H, d)
		}
		if cfg.Center && hs.values.q != nil {
			hs.values.mu = headMean(values, h, H, d)
		}
	}
	return heads, nil
}

// stored returns into dst the key (or value) of the compressed token with
// index c (≥ l.compressed: in the window or in this append) of head h, as
// it is encoded: fp16-rounded where a window is used, minus μ with Center.
func (a *appendPlan) stored(dst []float32, c, h int, which kv) []float32 {
	cfg, l := a.s.pool.cfg, a.l
	d, H := cfg.HeadDim, cfg.KVHeads
	var x []float32
	if i := c - l.compressed; i < l.winLen {
		kx, vx := widenFP16(l.win, a.s.winSlot(l, i), h, d, H, a.tk, a.tv)
		x = kx
		if which == valuesKV {
			x = vx
		}
	} else {
		t := a.toSink + i - l.winLen
		src := a.keys
		if which == valuesKV {
			src = a.values
		}
		x = src[(t*H+h)*d : (t*H+h+1)*d]
		if a.s.usesFP16Window() {
			// Encode what the window would have held, so a token's code
			// does not depend on how the appends were batched.
			x = roundFP16(a.tk, x)
		}
	}
	mu := a.heads[h].side(which).mu
	if mu == nil {
		return dst[:copy(dst, x)]
	}
	return subtract(dst, x, mu)
}

// measureGuard is step 2: the layouts of the blocks this append opens. The
// guard measures each new block, in order, for the heads not yet upgraded
// (guard.go); without a guard, or before any query was recorded, every new
// block takes the layer's next layout.
func (a *appendPlan) measureGuard() error {
	cfg, l, plan := a.s.pool.cfg, a.l, a.plan
	d, H, B := cfg.HeadDim, cfg.KVHeads, cfg.BlockTokens
	g := l.guard
	if g == nil || g.n == 0 || len(a.lays) == 0 {
		for nb := range a.lays {
			a.lays[nb] = a.nextLay
		}
		return nil
	}
	known := l.compressed + l.winLen + a.toWin // compressed indices whose tokens are at hand
	xs := make([]float32, B*d)
	code, dec := make([]byte, plan.kSize), make([]float32, d)
	for nb := range a.lays {
		c0 := (len(l.blocks) + nb) * B
		m := min(B, known-c0)
		var up []bool
		for h := range H {
			if (a.gHeads != nil && a.gHeads[h].up) || (a.gHeads == nil && g.heads[h].up) {
				continue
			}
			for t := range m {
				a.stored(xs[t*d:(t+1)*d], c0+t, h, keysKV)
			}
			e, err := guardError(g, a.heads[h], h, d, cfg.Scale, xs[:m*d], code, dec)
			if err != nil {
				return fmt.Errorf("layer %d head %d guard: %w", a.layer, h, err)
			}
			if e > cfg.Guard.Budget {
				if a.gHeads == nil {
					a.gHeads = append([]guardHead(nil), g.heads...)
				}
				a.gHeads[h] = guardHead{up: true, pos: cfg.Sinks + c0, err: e}
				up = make([]bool, H)
			}
		}
		if up != nil {
			for h := range H {
				up[h] = a.gHeads[h].up
			}
			a.nextLay = newBlockLayout(plan, H, B, up)
		}
		a.lays[nb] = a.nextLay
	}
	return nil
}

// reserve is step 3: the sink buffer (and guard ring) on the first append,
// window growth, new blocks, and a private copy of a shared tail block that
// is about to be written.
func (a *appendPlan) reserve() error {
	a.need, a.cowTail = a.s.growth(a.l, a.placement)
	for _, lay := range a.lays {
		a.need += lay.bytes
	}
	return a.s.take(a.need)
}

// layoutOf is the layout of the block that will hold compressed token c.
func (a *appendPlan) layoutOf(c int) *blockLayout {
	B := a.s.pool.cfg.BlockTokens
	if b := c / B; b < len(a.l.blocks) {
		return a.l.blocks[b].lay
	}
	return a.lays[c/B-len(a.l.blocks)]
}

// encode is step 4: every token that will be compressed, before the layer
// is touched.
func (a *appendPlan) encode() error {
	cfg, l, plan := a.s.pool.cfg, a.l, a.plan
	d, H := cfg.HeadDim, cfg.KVHeads
	a.kMax, a.vMax = max(plan.kSize, plan.upKSize), max(plan.vSize, plan.upVSize)
	a.codes = make([]byte, a.evict*H*(a.kMax+a.vMax))
	ck, cv := make([]float32, d), make([]float32, d)
	for e := range a.evict {
		lay := a.layoutOf(l.compressed + e)
		for h := range H {
			kx := a.stored(ck, l.compressed+e, h, keysKV)
			vx := a.stored(cv, l.compressed+e, h, valuesKV)
			if lay.kDOff != nil {
				dk, dv, err := a.drift((l.compressed+e)/cfg.BlockTokens, h)
				if err != nil {
					return err
				}
				if dk != nil {
					kx = subtract(kx, kx, dk)
				}
				if dv != nil {
					vx = subtract(vx, vx, dv)
				}
			}
			ks, vs := a.heads[h].keys, a.heads[h].values
			if lay.upgraded(h) {
				ks, vs = a.heads[h].upKeys, a.heads[h].upValues
			}
			off := (e*H + h) * (a.kMax + a.vMax)
			if err := ks.store.encode(a.codes[off:off+lay.kSize[h]], kx); err != nil {
				return fmt.Errorf("layer %d head %d key: %w", a.layer, h, err)
			}
			if err := vs.store.encode(a.codes[off+a.kMax:off+a.kMax+lay.vSize[h]], vx); err != nil {
				return fmt.Errorf("layer %d head %d value: %w", a.layer, h, err)
			}
		}
	}
	return nil
}

// drift returns the decoded key and value drifts of head h in block b (nil
// for a passthrough side), encoding them first for a block this append
// opens.
func (a *appendPlan) drift(b, h int) (k, v []float32, err error) {
	if dv, ok := a.driftVec[[2]int{b, h}]; ok {
		return dv[0], dv[1], nil
	}
	l, plan, hs := a.l, a.plan, &a.heads[h]
	var kd, vd []byte // the block's drift codes
	if b < len(l.blocks) {
		kd, vd = l.blocks[b].lay.drift(l.blocks[b].data, h)
	} else {
		if a.drifts == nil {
			a.drifts = make([]byte, a.opens*a.s.pool.cfg.KVHeads*(plan.kDrift+plan.vDrift))
		}
		off := ((b-len(l.blocks))*a.s.pool.cfg.KVHeads + h) * (plan.kDrift + plan.vDrift)
		kd, vd = a.drifts[off:off+plan.kDrift], a.drifts[off+plan.kDrift:off+plan.kDrift+plan.vDrift]
		if err := a.encodeDrift(b, h, kd, vd); err != nil {
			return nil, nil, err
		}
	}
	d := a.s.pool.cfg.HeadDim
	k, v = decodeOrNil(hs.keys.store, kd, d), decodeOrNil(hs.values.store, vd, d)
	if a.driftVec == nil {
		a.driftVec = map[[2]int][2][]float32{}
	}
	a.driftVec[[2]int{b, h}] = [2][]float32{k, v}
	return k, v, nil
}

// encodeDrift writes the drift codes of head h in block b, which this
// append opens: the mean of block b−1's reconstructions less μ (zero for
// block 0), that is block b−1's drift plus the mean of its decoded codes.
func (a *appendPlan) encodeDrift(b, h int, kd, vd []byte) error {
	d, B := a.s.pool.cfg.HeadDim, a.s.pool.cfg.BlockTokens
	hs := &a.heads[h]
	mk, mv := make([]float32, d), make([]float32, d)
	if b > 0 {
		pk, pv, err := a.drift(b-1, h)
		if err != nil {
			return err
		}
		copy(mk, pk)
		copy(mv, pv)
		tok := make([]float32, d)
		addMean := func(mean []float32, st store, code []byte) {
			st.decode(tok, code)
			for i, x := range tok {
				mean[i] += x / float32(B)
			}
		}
		for j := range B { // block b−1 is full: its tokens are committed or in this append
			kc, vc := a.tokenCodes((b-1)*B+j, h)
			if len(kd) > 0 {
				addMean(mk, hs.keys.store, kc)
			}
			if len(vd) > 0 {
				addMean(mv, hs.values.store, vc)
			}
		}
	}
	if len(kd) > 0 {
		if err := hs.keys.store.encode(kd, mk); err != nil {
			return fmt.Errorf("layer %d head %d key drift: %w", a.layer, h, err)
		}
	}
	if len(vd) > 0 {
		if err := hs.values.store.encode(vd, mv); err != nil {
			return fmt.Errorf("layer %d head %d value drift: %w", a.layer, h, err)
		}
	}
	return nil
}

// tokenCodes returns the key and value codes of head h of compressed token
// c: in its block if committed, else as this append encoded them.
func (a *appendPlan) tokenCodes(c, h int) (k, v []byte) {
	l, B := a.l, a.s.pool.cfg.BlockTokens
	if c < l.compressed {
		blk := l.blocks[c/B]
		lay, j := blk.lay, c%B
		return blk.data[lay.kOff[h]+j*lay.kSize[h]:][:lay.kSize[h]], blk.data[lay.vOff[h]+j*lay.vSize[h]:][:lay.vSize[h]]
	}
	off := ((c-l.compressed)*a.s.pool.cfg.KVHeads + h) * (a.kMax + a.vMax)
	return a.codes[off : off+a.plan.kSize], a.codes[off+a.kMax : off+a.kMax+a.plan.vSize]
}

// decodeOrNil decodes code into a new vector of dim d, or returns nil for
// an empty code (a passthrough side has no drift).
func decodeOrNil(st store, code []byte, d int) []float32 {
	if len(code) == 0 {
		return nil
	}
	x := make([]float32, d)
	st.decode(x, code)
	return x
}

// commit is step 5: it writes the layer and cannot fail.
func (a *appendPlan) commit() {
	s, p, cfg, l := a.s, a.s.pool, a.s.pool.cfg, a.l
	d, H, B := cfg.HeadDim, cfg.KVHeads, cfg.BlockTokens
	row := H * d
	keys, values := a.keys, a.values
	l.heads = a.heads
	stride := cfg.fp16TokenStride()
	if !l.alloc {
		l.sink = make([]byte, cfg.Sinks*stride)
		l.alloc = true
		if cfg.Guard.enabled() {
			l.guard = newLayerGuard(cfg, a.plan.base)
		}
	}
	if a.gHeads != nil {
		l.guard.heads = a.gHeads
	}
	if l.guard != nil {
		l.guard.lay = a.nextLay
	}
	for t := range a.toSink {
		putFP16Token(l.sink[(l.nSink+t)*stride:], keys[t*row:(t+1)*row], values[t*row:(t+1)*row], H, d)
	}
	l.nSink += a.toSink
	if a.cowTail {
		last := len(l.blocks) - 1
		old := l.blocks[last]
		nb := &block{data: append(newBlockData(old.lay.bytes)[:0], old.data...), lay: old.lay}
		nb.refs.Store(1)
		s.dropBlock(old)
		l.blocks[last] = nb
	}
	for ob, lay := range a.lays {
		nb := &block{data: newBlockData(lay.bytes), lay: lay}
		nb.refs.Store(1)
		if a.drifts != nil {
			off := ob * H * (a.plan.kDrift + a.plan.vDrift)
			for h := range H {
				kd, vd := lay.drift(nb.data, h)
				copy(kd, a.drifts[off:off+a.plan.kDrift])
				copy(vd, a.drifts[off+a.plan.kDrift:off+a.plan.kDrift+a.plan.vDrift])
				off += a.plan.kDrift + a.plan.vDrift
			}
		}
		l.blocks = append(l.blocks, nb)
	}
	for e := range a.evict {
		pos := l.compressed + e
		b := l.blocks[pos/B]
		blk, lay := b.data, b.lay
		j := pos % B
		for h := range H {
			off := (e*H + h) * (a.kMax + a.vMax)
			copy(blk[lay.kOff[h]+j*lay.kSize[h]:], a.codes[off:off+lay.kSize[h]])
			copy(blk[lay.vOff[h]+j*lay.vSize[h]:], a.codes[off+a.kMax:off+a.kMax+lay.vSize[h]])
		}
	}
	l.compressed += a.evict
	if a.newCap != l.winCap {
		// Grow for a deferred prefill, or shrink back to Window after it:
		// the surviving tokens move to the front of a new ring.
		win := make([]byte, a.newCap*stride)
		for i := a.evictOld; i < l.winLen; i++ {
			copy(win[(i-a.evictOld)*stride:(i-a.evictOld+1)*stride], l.win[s.winSlot(l, i)*stride:])
		}
		if a.newCap < l.winCap {
			p.release(int64(l.winCap-a.newCap) * cfg.fp16TokenBytes())
		}
		l.win, l.winCap, l.winStart = win, a.newCap, 0
	} else {
		l.winStart = (l.winStart + a.evictOld) % max(l.winCap, 1)
	}
	l.winLen -= a.evictOld
	for t := a.toSink + a.evictNew; t < a.T; t++ {
		slot := s.winSlot(l, l.winLen)
		putFP16Token(l.win[slot*stride:], keys[t*row:(t+1)*row], values[t*row:(t+1)*row], H, d)
		l.winLen++
	}
	if a.T == 1 {
		l.decoded = true
	}
}

// headMean is the mean over tokens of head h's vectors in xs ([T][H][d]).
func headMean(xs []float32, h, H, d int) []float32 {
	T := len(xs) / (H * d)
	acc := make([]float64, d)
	for t := range T {
		simd.AddF64(acc, xs[(t*H+h)*d:(t*H+h+1)*d])
	}
	mu := make([]float32, d)
	for i, v := range acc {
		mu[i] = float32(v / float64(T))
	}
	return mu
}

// subtract writes x − mu into dst (mu nil: x itself).
func subtract(dst, x, mu []float32) []float32 {
	if mu == nil {
		return x
	}
	dst = dst[:len(x)]
	simd.Sub(dst, x, mu)
	return dst
}

// roundFP16 writes x rounded to fp16 precision into dst.
func roundFP16(dst, x []float32) []float32 {
	simd.RoundF16(dst[:len(x)], x)
	return dst[:len(x)]
}
