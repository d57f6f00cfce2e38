package kvcache

import (
	"fmt"
	"sync"

	"github.com/turboquant-go/tq/internal/rng"
	"github.com/turboquant-go/tq/turboquant"
)

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

	codeStates sync.Pool // *codeState
	rowStates  sync.Pool // *rowState
}

// layerPlan is what a layer's storages cost.
type layerPlan struct {
	keys, values     Storage
	kSize, vSize     int
	upKeys, upValues Storage // the guard's codecs (guard pools only)
	upKSize, upVSize int
	kDrift, vDrift   int          // bytes of a block's drift code per head (BlockCenter; 0: none)
	base             *blockLayout // every head at keys and values
	maxBlockBytes    int64        // the largest block the guard can lay out
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
	size := func(cd Storage) int { return cd.codeSize(cfg.HeadDim) } // arithmetic: Config.CodeSize
	for l := range p.layers {
		k, v := cfg.storages(l)
		lp := layerPlan{keys: k, values: v, kSize: size(k), vSize: size(v)}
		if cfg.BlockCenter {
			lp.kDrift, lp.vDrift = driftSize(k, lp.kSize), driftSize(v, lp.vSize)
		}
		if cfg.Guard.enabled() {
			lp.upKeys, lp.upValues = cfg.Guard.Keys, cfg.Guard.Values
			lp.upKSize, lp.upVSize = size(lp.upKeys), size(lp.upValues)
		}
		lp.base = newBlockLayout(&lp, cfg.KVHeads, cfg.BlockTokens, nil)
		lp.maxBlockBytes = lp.base.bytes
		if cfg.Guard.enabled() {
			allUp := make([]bool, cfg.KVHeads)
			for h := range allUp {
				allUp[h] = true
			}
			lp.maxBlockBytes = max(lp.maxBlockBytes, newBlockLayout(&lp, cfg.KVHeads, cfg.BlockTokens, allUp).bytes)
		}
		p.layers[l] = lp
	}
	return p, nil
}

// driftSize is the bytes of a block's drift code for one head of a side:
// a code of the side's own storage, none for the passthrough ones.
func driftSize(cd Storage, size int) int {
	if cd.Kind != Quantized {
		return 0
	}
	return size
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

// NewSequence returns an empty sequence.
func (p *Pool) NewSequence() *Sequence {
	return &Sequence{pool: p, layers: make([]seqLayer, p.cfg.Layers)}
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
	if sp := cfg.Split; sp != nil { // the pointer's value, not its address
		c := cfg
		c.Split = nil
		key = fmt.Sprintf("%+v split %+v", c, *sp)
	}
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

// newSide builds the side of one (layer, head) for keys or values, with
// outlier channels chosen from xs ([T][KVHeads][HeadDim]) of that head.
func (p *Pool) newSide(cd Storage, layer, head int, which kv, xs []float32) (side, error) {
	d := p.cfg.HeadDim
	switch cd.Kind {
	case Float16:
		return side{store: fp16Store{d}}, nil
	case Float32:
		return side{store: fp32Store{d}}, nil
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
			return side{}, err
		}
	}
	qcfg, err := cd.quantizerConfig(d, p.quantizerSeed(layer, head, which, channels != nil), channels)
	if err != nil {
		return side{}, err
	}
	qs, err := p.quantizer(qcfg)
	if err != nil {
		return side{}, err
	}
	return side{store: qs, q: qs.q}, nil
}

// codecSeed is the quantizer seed of one (layer, head, keys/values): its own
// stream when outlier channels make the quantizers differ, otherwise the
// pool's seed, so that identical configs share one quantizer.
func (p *Pool) quantizerSeed(layer, head int, which kv, outliers bool) uint64 {
	if !outliers {
		return p.cfg.Seed
	}
	stream := uint64(layer*p.cfg.KVHeads+head) << 1
	stream |= uint64(which) // keys 0, values 1
	return rng.Derive(p.cfg.Seed, stream)
}
