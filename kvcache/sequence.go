package kvcache

import (
	"github.com/turboquant-go/tq/turboquant"

	"fmt"
	"github.com/turboquant-go/tq/internal/simd"
	"io"
	"math"
	"sync"
	"sync/atomic"

	"github.com/turboquant-go/tq/internal/half"
	"github.com/turboquant-go/tq/internal/rng"
)

// Cache is the per-sequence KV cache a model's forward pass calls, layer by
// layer: Append the new tokens' keys and values, then Attend with their
// queries. Attention is computed by the cache, straight from its packed
// codes; nothing is dequantized in bulk and no fp16 copy of compressed tokens
// is kept.
//
// Layouts are row-major: keys and values [tokens][KVHeads][HeadDim], queries
// and outputs [tokens][QHeads][HeadDim]. Query head j attends with KV head
// j / (QHeads/KVHeads) (grouped-query attention).
//
// Concurrency: a Sequence takes a read lock for Attend, Logits and Stats and
// a write lock for everything else, so any number of goroutines may run
// attention on one sequence at once; appends wait for them. Different
// sequences are independent.
type Cache interface {
	// Append adds T tokens to a layer. On error the cache is unchanged.
	Append(layer int, keys, values []float32) error
	// AppendFP16 is Append for IEEE half inputs; AppendBF16 for bfloat16.
	AppendFP16(layer int, keys, values []uint16) error
	AppendBF16(layer int, keys, values []uint16) error
	// Attend computes attention for the queries of the layer's last T tokens
	// (T = len(queries)/(QHeads·HeadDim)) with exact softmax and a causal
	// mask: query i sees the tokens before the batch and batch tokens ≤ i.
	Attend(layer int, queries, out []float32) error
	// Logits writes the scaled logits of one query against every cached
	// token of a layer (no mask) into dst, for validation.
	Logits(layer, qHead int, query, dst []float32) error
	// Len is the number of tokens appended to every layer.
	Len() int
	// Truncate drops every token at position ≥ n (rollback).
	Truncate(n int) error
	// Reset drops every token and releases all memory, keeping the
	// sequence usable.
	Reset()
	// Close releases the sequence's memory; later calls return ErrClosed.
	Close() error
	// WriteTo writes a snapshot that Pool.ReadSequence restores
	// bit-identically.
	io.WriterTo
}

var _ Cache = (*Sequence)(nil)

// Pool hands out sequences that share one memory budget and one
// configuration. It is safe for concurrent use.
type Pool struct {
	cfg    Config
	budget int64
	layers []layerPlan

	mu   sync.Mutex
	used int64

	qmu    sync.Mutex
	quants map[string]*quantStore // by config: identical quantizers are shared

	states    sync.Pool // *attendState
	rowStates sync.Pool // *rowState
}

// layerPlan is what a layer's codecs cost.
type layerPlan struct {
	keys, values     Storage
	kSize, vSize     int
	blockBytes       int64
	upKeys, upValues Storage // the guard's codecs (guard pools only)
	upKSize, upVSize int
	base             *blockLayout // every head at keys and values
}

// NewPool validates the configuration and returns a pool whose sequences
// together hold at most budget bytes (≤ 0: unlimited).
func NewPool(cfg Config, budget int64) (*Pool, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &Pool{cfg: cfg, budget: budget, quants: map[string]*quantStore{}}
	p.layers = make([]layerPlan, cfg.Layers)
	sizes := map[Storage]int{} // sizing a codec builds a quantizer; layers share codecs
	size := func(cd Storage) int {
		if n, ok := sizes[cd]; ok {
			return n
		}
		sizes[cd] = cd.codeSize(cfg.HeadDim)
		return sizes[cd]
	}
	for l := range p.layers {
		k, v := cfg.codecs(l)
		lp := layerPlan{keys: k, values: v, kSize: size(k), vSize: size(v)}
		lp.blockBytes = int64(cfg.BlockTokens) * int64(cfg.KVHeads) * int64(lp.kSize+lp.vSize)
		if cfg.Guard.enabled() {
			lp.upKeys, lp.upValues = cfg.Guard.Keys, cfg.Guard.Values
			lp.upKSize, lp.upVSize = size(lp.upKeys), size(lp.upValues)
		}
		lp.base = newBlockLayout(&lp, cfg.KVHeads, cfg.BlockTokens, nil)
		p.layers[l] = lp
	}
	return p, nil
}

// Config returns the pool's configuration, defaults filled in.
func (p *Pool) Config() Config { return p.cfg }

// Used returns the bytes currently held by the pool's sequences.
func (p *Pool) Used() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.used
}

// Budget returns the pool's budget in bytes (≤ 0: unlimited).
func (p *Pool) Budget() int64 { return p.budget }

func (p *Pool) reserve(n int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.budget > 0 && p.used+n > p.budget {
		return fmt.Errorf("%w: %d bytes needed, %d of %d in use", ErrCacheFull, n, p.used, p.budget)
	}
	p.used += n
	return nil
}

func (p *Pool) release(n int64) {
	p.mu.Lock()
	p.used -= n
	p.mu.Unlock()
}

// quantizer returns the store of a Quantizer for cfg. Without outlier
// channels every head of every sequence with the same storage shares one
// (so attention rebinds nothing between heads); quantizers with outlier
// channels belong to one sequence's heads and are not kept.
func (p *Pool) quantizer(cfg turboquant.Config) (*quantStore, error) {
	if cfg.Outliers != nil {
		q, err := turboquant.New(cfg)
		if err != nil {
			return nil, err
		}
		return newQuantStore(q), nil
	}
	key := fmt.Sprintf("%+v", cfg)
	p.qmu.Lock()
	defer p.qmu.Unlock()
	if q, ok := p.quants[key]; ok {
		return q, nil
	}
	q, err := turboquant.New(cfg)
	if err != nil {
		return nil, err
	}
	p.quants[key] = newQuantStore(q)
	return p.quants[key], nil
}

// codec builds the store of one (layer, head) for keys or values, with
// outlier channels chosen from xs ([T][KVHeads][HeadDim]) of that head.
func (p *Pool) codec(cd Storage, layer, head int, values bool, xs []float32) (store, *turboquant.Quantizer, error) {
	d := p.cfg.HeadDim
	switch cd.Kind {
	case Float16:
		return fp16Store{d}, nil, nil
	case Float32:
		return fp32Store{d}, nil, nil
	}
	var channels []int
	if cd.Outliers > 0 {
		h := p.cfg.KVHeads
		sub := make([]float32, 0, len(xs)/h)
		for t := 0; t < len(xs)/(h*d); t++ {
			sub = append(sub, xs[(t*h+head)*d:(t*h+head+1)*d]...)
		}
		var err error
		if channels, err = turboquant.TopChannels(sub, d, cd.Outliers); err != nil {
			return nil, nil, err
		}
	}
	qcfg, err := cd.quantizerConfig(d, p.codecSeed(layer, head, values, channels != nil), channels)
	if err != nil {
		return nil, nil, err
	}
	qs, err := p.quantizer(qcfg)
	if err != nil {
		return nil, nil, err
	}
	return qs, qs.q, nil
}

// codecSeed is the quantizer seed of one (layer, head, keys/values): its own
// stream when outlier channels make the quantizers differ, otherwise the
// pool's seed, so that identical configs share one quantizer.
func (p *Pool) codecSeed(layer, head int, values, outliers bool) uint64 {
	if !outliers {
		return p.cfg.Seed
	}
	stream := uint64(layer*p.cfg.KVHeads+head) << 1
	if values {
		stream |= 1
	}
	return rng.Derive(p.cfg.Seed, stream)
}

// Sequence is one sequence's cache: a Cache drawn from a Pool.
type Sequence struct {
	pool   *Pool
	mu     sync.RWMutex
	qmu    sync.Mutex // the guard's query rings, which Attend writes under mu's read lock
	layers []seqLayer
	closed bool
}

// seqLayer holds one layer's tokens: positions [0, nSink) in the fp16 sink
// buffer, [nSink, nSink+compressed) in blocks, the rest in the fp16 window
// ring.
type seqLayer struct {
	heads      []headCodecs // nil until the first append
	blocks     []*block
	compressed int
	alloc      bool   // sink and win are allocated (and counted in the pool)
	sink       []byte // fp16 [Sinks][KVHeads][2 (k,v)][HeadDim]
	nSink      int
	win        []byte // fp16 ring [winCap][KVHeads][2][HeadDim]
	winCap     int    // Window, or more while a prefill is deferred
	winStart   int
	winLen     int
	decoded    bool        // a single-token append has happened (ends a deferred prefill)
	guard      *layerGuard // guard pools only, allocated with sink and win
}

func (l *seqLayer) len() int { return l.nSink + l.compressed + l.winLen }

// fixedBytes is what the layer's sink and window buffers hold.
func (s *Sequence) fixedBytes(l *seqLayer) int64 {
	if !l.alloc {
		return 0
	}
	return int64(s.pool.cfg.Sinks+l.winCap)*s.pool.cfg.fp16TokenBytes() + s.pool.cfg.guardRingBytes()
}

type headCodecs struct {
	k, v     store
	kq, vq   *turboquant.Quantizer // nil for passthrough codecs
	muK, muV []float32             // subtracted before encoding (Center); nil: none
	// uk and uv are the guard's upgraded codecs (nil without a guard);
	// upgraded blocks store x − μ too.
	uk, uv   store
	ukq, uvq *turboquant.Quantizer
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
	for i, v := range x {
		dst[i] = v - mu[i]
	}
	return dst
}

// block holds BlockTokens compressed tokens of one layer: key codes
// [head][token], then value codes [head][token], each head's codes where
// and as large as its layout says (the guard's upgraded heads are larger).
// Blocks are shared between forked sequences and copied before a shared
// block is written.
type block struct {
	refs atomic.Int32
	data []byte
	lay  *blockLayout
}

// NewSequence returns an empty sequence.
func (p *Pool) NewSequence() *Sequence {
	return &Sequence{pool: p, layers: make([]seqLayer, p.cfg.Layers)}
}

func (s *Sequence) tokenStride() int { return 2 * s.pool.cfg.KVHeads * s.pool.cfg.HeadDim * 2 }

// Len is the number of tokens appended to every layer.
func (s *Sequence) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lenLocked()
}

func (s *Sequence) lenLocked() int {
	n := math.MaxInt
	for i := range s.layers {
		n = min(n, s.layers[i].len())
	}
	return n
}

// LayerLen is the number of tokens in one layer.
func (s *Sequence) LayerLen(layer int) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if layer < 0 || layer >= len(s.layers) {
		return 0
	}
	return s.layers[layer].len()
}

func (s *Sequence) checkLayer(layer int) error {
	if s.closed {
		return ErrClosed
	}
	if layer < 0 || layer >= len(s.layers) {
		return fmt.Errorf("%w: layer %d of %d", ErrLength, layer, len(s.layers))
	}
	return nil
}

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
	plan := s.pool.layers[layer]
	for kv, xs := range [][]float32{keys, values} {
		// One vector pass validates the common case; the loops below only
		// run to name the offending component.
		maxBits := simd.MaxAbsBits(xs)
		if maxBits >= 0x7f800000 { // ±Inf or NaN somewhere
			i := checkFinite(xs)
			return fmt.Errorf("%w: component %d is %v", ErrNonFinite, i, xs[i])
		}
		if s.usesFP16Window() && math.Float32frombits(maxBits) >= fp16Limit {
			for i, v := range xs {
				if math.Abs(float64(v)) >= fp16Limit {
					return fmt.Errorf("%w: component %d (%v) does not fit the fp16 window", ErrOverflow, i, v)
				}
			}
		}
		// A vector whose norm (or PolarQuant radius) cannot be stored in
		// fp16 is refused now: accepted into the window, it would fail to
		// compress later and block every following append.
		cd, up := plan.keys, plan.upKeys
		if kv == 1 {
			cd, up = plan.values, plan.upValues
		}
		fp16Norm := func(cd Storage) bool {
			return cd.Kind == Quantized && (cd.Norm == turboquant.FP16 || cd.Method == turboquant.Polar)
		}
		if fp16Norm(cd) || (cfg.Guard.enabled() && fp16Norm(up)) {
			// With centering the stored vector is x − μ, and ‖x − μ‖ ≤
			// ‖x‖ + ‖μ‖; before μ exists it is the mean of this append's
			// vectors, whose norm is at most their largest.
			var muNorm float64
			if cfg.Center {
				for v := 0; v < len(xs); v += cfg.HeadDim {
					muNorm = max(muNorm, norm2(xs[v:v+cfg.HeadDim]))
				}
			}
			heads := s.layers[layer].heads
			for v := 0; v < len(xs); v += cfg.HeadDim {
				n := norm2(xs[v : v+cfg.HeadDim])
				if cfg.Center && heads != nil {
					mu := heads[v%row/cfg.HeadDim].muK
					if kv == 1 {
						mu = heads[v%row/cfg.HeadDim].muV
					}
					muNorm = norm2(mu)
				}
				if n+muNorm >= fp16Limit {
					return fmt.Errorf("%w: token %d head %d has norm %g, beyond the codec's fp16 norm",
						ErrOverflow, v/row, v%row/cfg.HeadDim, n+muNorm)
				}
			}
		}
	}
	return s.appendLocked(layer, keys, values)
}

// usesFP16Window reports whether tokens may pass through the fp16 window
// before they are compressed.
func (s *Sequence) usesFP16Window() bool {
	return s.pool.cfg.Window > 0 || s.pool.cfg.DeferPrefill
}

func (s *Sequence) appendLocked(layer int, keys, values []float32) error {
	p, cfg := s.pool, s.pool.cfg
	plan := &p.layers[layer]
	l := &s.layers[layer]
	d, H, B := cfg.HeadDim, cfg.KVHeads, cfg.BlockTokens
	row := H * d
	T := len(keys) / row

	heads := l.heads
	if heads == nil {
		heads = make([]headCodecs, H)
		for h := range heads {
			var err error
			hc := &heads[h]
			if hc.k, hc.kq, err = p.codec(plan.keys, layer, h, false, keys); err != nil {
				return err
			}
			if hc.v, hc.vq, err = p.codec(plan.values, layer, h, true, values); err != nil {
				return err
			}
			if cfg.Guard.enabled() {
				if hc.uk, hc.ukq, err = p.codec(plan.upKeys, layer, h, false, keys); err != nil {
					return err
				}
				if hc.uv, hc.uvq, err = p.codec(plan.upValues, layer, h, true, values); err != nil {
					return err
				}
			}
			if cfg.Center && hc.kq != nil {
				hc.muK = headMean(keys, h, H, d)
			}
			if cfg.Center && hc.vq != nil {
				hc.muV = headMean(values, h, H, d)
			}
		}
	}

	// Where the T tokens go: sinks first, then the window, whose overflow
	// (oldest first) is compressed — unless a prefill is deferred, in which
	// case the window grows to hold it.
	deferring := cfg.DeferPrefill && !l.decoded && T > 1
	toSink := min(T, cfg.Sinks-l.nSink)
	toWin := T - toSink
	evict, newCap := max(0, l.winLen+toWin-cfg.Window), cfg.Window
	if deferring {
		evict, newCap = 0, max(l.winCap, l.winLen+toWin, cfg.Window)
	}
	evictOld := min(evict, l.winLen)
	evictNew := evict - evictOld

	// stored returns into dst the key (or value) of the compressed token
	// with index c (≥ l.compressed, known: in the window or this append) of
	// head h, as it is encoded: fp16-rounded where a window is used, minus
	// μ with Center.
	tk, tv := make([]float32, d), make([]float32, d)
	stored := func(dst []float32, c, h int, value bool) []float32 {
		var x []float32
		if i := c - l.compressed; i < l.winLen {
			kx, vx := widenFP16(l.win, s.winSlot(l, i), h, d, H, tk, tv)
			x = kx
			if value {
				x = vx
			}
		} else {
			t := toSink + i - l.winLen
			src := keys
			if value {
				src = values
			}
			x = src[(t*H+h)*d : (t*H+h+1)*d]
			if s.usesFP16Window() {
				// Encode what the window would have held, so a token's
				// code does not depend on how the appends were batched.
				x = roundFP16(tk, x)
			}
		}
		mu := heads[h].muK
		if value {
			mu = heads[h].muV
		}
		if mu == nil {
			return dst[:copy(dst, x)]
		}
		return subtract(dst, x, mu)
	}

	// The blocks this append opens, and their layouts: the guard measures
	// each new block, in order, for the heads not yet upgraded.
	newBlocks := (l.compressed+evict+B-1)/B - len(l.blocks)
	lays := make([]*blockLayout, newBlocks)
	var gHeads []guardHead // the guard's head states after this append (nil: unchanged)
	nextLay := plan.base
	if l.guard != nil {
		nextLay = l.guard.lay
	}
	if g := l.guard; g != nil && g.n > 0 && newBlocks > 0 {
		known := l.compressed + l.winLen + toWin // compressed indices whose tokens are at hand
		xs := make([]float32, B*d)
		code, dec := make([]byte, plan.kSize), make([]float32, d)
		for nb := range lays {
			c0 := (len(l.blocks) + nb) * B
			m := min(B, known-c0)
			var up []bool
			for h := range H {
				if (gHeads != nil && gHeads[h].up) || (gHeads == nil && g.heads[h].up) {
					continue
				}
				for t := range m {
					stored(xs[t*d:(t+1)*d], c0+t, h, false)
				}
				e, err := guardError(g, heads[h], h, d, cfg.Scale, xs[:m*d], code, dec)
				if err != nil {
					return fmt.Errorf("layer %d head %d guard: %w", layer, h, err)
				}
				if e > cfg.Guard.Budget {
					if gHeads == nil {
						gHeads = append([]guardHead(nil), g.heads...)
					}
					gHeads[h] = guardHead{up: true, pos: cfg.Sinks + c0, err: e}
					up = make([]bool, H)
				}
			}
			if up != nil {
				for h := range H {
					up[h] = gHeads[h].up
				}
				nextLay = newBlockLayout(plan, H, B, up)
			}
			lays[nb] = nextLay
		}
	} else {
		for nb := range lays {
			lays[nb] = nextLay
		}
	}

	// Memory: sink buffer (and guard ring) on the first append, window
	// growth, new blocks, and a private copy of a shared tail block that is
	// about to be written.
	tb := cfg.fp16TokenBytes()
	var need int64
	if !l.alloc {
		need += int64(cfg.Sinks)*tb + cfg.guardRingBytes()
	}
	need += int64(max(0, newCap-l.winCap)) * tb
	for _, lay := range lays {
		need += lay.bytes
	}
	cowTail := evict > 0 && l.compressed%B != 0 && l.blocks[len(l.blocks)-1].refs.Load() > 1
	if cowTail {
		need += l.blocks[len(l.blocks)-1].lay.bytes
	}
	if err := p.reserve(need); err != nil {
		return err
	}
	layOf := func(c int) *blockLayout {
		if b := c / B; b < len(l.blocks) {
			return l.blocks[b].lay
		} else {
			return lays[b-len(l.blocks)]
		}
	}

	// Encode every token that will be compressed before touching the layer,
	// so a failure leaves it as it was.
	kMax, vMax := max(plan.kSize, plan.upKSize), max(plan.vSize, plan.upVSize)
	codes := make([]byte, evict*H*(kMax+vMax))
	ck, cv := make([]float32, d), make([]float32, d)
	for e := range evict {
		lay := layOf(l.compressed + e)
		for h := range H {
			kx := stored(ck, l.compressed+e, h, false)
			vx := stored(cv, l.compressed+e, h, true)
			kc, vc := heads[h].k, heads[h].v
			if lay.upgraded(h) {
				kc, vc = heads[h].uk, heads[h].uv
			}
			off := (e*H + h) * (kMax + vMax)
			if err := kc.encode(codes[off:off+lay.kSize[h]], kx); err != nil {
				p.release(need)
				return fmt.Errorf("layer %d head %d key: %w", layer, h, err)
			}
			if err := vc.encode(codes[off+kMax:off+kMax+lay.vSize[h]], vx); err != nil {
				p.release(need)
				return fmt.Errorf("layer %d head %d value: %w", layer, h, err)
			}
		}
	}

	// Commit.
	l.heads = heads
	stride := s.tokenStride()
	if !l.alloc {
		l.sink = make([]byte, cfg.Sinks*stride)
		l.alloc = true
		if cfg.Guard.enabled() {
			l.guard = newLayerGuard(cfg, plan.base)
		}
	}
	if gHeads != nil {
		l.guard.heads = gHeads
	}
	if l.guard != nil {
		l.guard.lay = nextLay
	}
	for t := range toSink {
		putFP16Token(l.sink[(l.nSink+t)*s.tokenStride():], keys[t*row:(t+1)*row], values[t*row:(t+1)*row], H, d)
	}
	l.nSink += toSink
	if cowTail {
		last := len(l.blocks) - 1
		old := l.blocks[last]
		nb := &block{data: append(newBlockData(old.lay.bytes)[:0], old.data...), lay: old.lay}
		nb.refs.Store(1)
		s.dropBlock(old)
		l.blocks[last] = nb
	}
	for _, lay := range lays {
		nb := &block{data: newBlockData(lay.bytes), lay: lay}
		nb.refs.Store(1)
		l.blocks = append(l.blocks, nb)
	}
	for e := range evict {
		pos := l.compressed + e
		b := l.blocks[pos/B]
		blk, lay := b.data, b.lay
		j := pos % B
		for h := range H {
			off := (e*H + h) * (kMax + vMax)
			copy(blk[lay.kOff[h]+j*lay.kSize[h]:], codes[off:off+lay.kSize[h]])
			copy(blk[lay.vOff[h]+j*lay.vSize[h]:], codes[off+kMax:off+kMax+lay.vSize[h]])
		}
	}
	l.compressed += evict
	if newCap != l.winCap {
		// Grow for a deferred prefill, or shrink back to Window after it:
		// the surviving tokens move to the front of a new ring.
		win := make([]byte, newCap*stride)
		for i := evictOld; i < l.winLen; i++ {
			copy(win[(i-evictOld)*stride:(i-evictOld+1)*stride], l.win[s.winSlot(l, i)*stride:])
		}
		if newCap < l.winCap {
			p.release(int64(l.winCap-newCap) * tb)
		}
		l.win, l.winCap, l.winStart = win, newCap, 0
	} else {
		l.winStart = (l.winStart + evictOld) % max(l.winCap, 1)
	}
	l.winLen -= evictOld
	for t := toSink + evictNew; t < T; t++ {
		slot := s.winSlot(l, l.winLen)
		putFP16Token(l.win[slot*stride:], keys[t*row:(t+1)*row], values[t*row:(t+1)*row], H, d)
		l.winLen++
	}
	if T == 1 {
		l.decoded = true
	}
	return nil
}

// roundFP16 writes x rounded to fp16 precision into dst.
func roundFP16(dst, x []float32) []float32 {
	simd.RoundF16(dst[:len(x)], x)
	return dst[:len(x)]
}

// winSlot is the ring slot of the i-th oldest window token.
func (s *Sequence) winSlot(l *seqLayer, i int) int {
	return (l.winStart + i) % l.winCap
}

// putFP16Token stores one token's keys and values ([H][d] each) as fp16
// [H][2][d] little-endian.
func putFP16Token(dst []byte, k, v []float32, H, d int) {
	for h := range H {
		base := h * 2 * d * 2
		simd.EncodeF16(dst[base:base+2*d], k[h*d:(h+1)*d])
		simd.EncodeF16(dst[base+2*d:base+4*d], v[h*d:(h+1)*d])
	}
}

// widenFP16 widens the key and value of head h of token slot of an fp16
// token buffer into k and v.
func widenFP16(buf []byte, slot, h, d, H int, k, v []float32) ([]float32, []float32) {
	kb, vb := fp16Vec(buf, slot, h, d, H)
	simd.DecodeF16(k, d, kb, 2*d, 1, d)
	simd.DecodeF16(v, d, vb, 2*d, 1, d)
	return k, v
}

// newBlockData allocates a block's bytes with simd.Slack spare capacity, so
// the decode kernels' word loads past the last code stay inside it.
func newBlockData(n int64) []byte { return make([]byte, n, n+simd.Slack) }

// fp16Vec returns the fp16 key and value bytes of head h of token slot in an
// fp16 token buffer ([t][H][2][d]).
func fp16Vec(buf []byte, slot, h, d, H int) (k, v []byte) {
	base := (slot*H + h) * 2 * d * 2
	return buf[base : base+2*d], buf[base+2*d : base+4*d]
}

func (s *Sequence) dropBlock(b *block) {
	if b.refs.Add(-1) == 0 {
		s.pool.release(b.lay.bytes)
	}
}
