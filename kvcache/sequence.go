package kvcache

import (
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/turboquant-go/tq/turboquant"
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

// Sequence is one sequence's cache: a Cache drawn from a Pool.
type Sequence struct {
	pool   *Pool
	mu     sync.RWMutex
	qmu    sync.Mutex // the guard's query rings, which Attend writes under mu's read lock
	layers []seqLayer
	closed bool
	// reserved is what Reserve set aside from the pool's budget and appends
	// have not yet drawn (counted in the pool's Used).
	reserved int64
}

// seqLayer holds one layer's tokens: positions [0, nSink) in the fp16 sink
// buffer, [nSink, nSink+compressed) in blocks, the rest in the fp16 window
// ring.
type seqLayer struct {
	heads      []headStores // nil until the first append
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

// kv names one of a head's keys and values where code treats them alike:
// it picks the side, the half of an fp16 token, and the seed stream of a
// quantizer with outlier channels.
type kv uint8

const (
	keysKV   kv = 0
	valuesKV kv = 1
)

func (which kv) String() string {
	if which == valuesKV {
		return "value"
	}
	return "key"
}

// side is how one (layer, KV head) stores one of keys or values.
type side struct {
	store store
	q     *turboquant.Quantizer // nil for passthrough storages
	mu    []float32             // subtracted before encoding (Center); nil: none
}

// headStores is one (layer, KV head)'s sides: its keys and values, and the
// guard's upgraded keys and values (zero sides without a guard). Upgraded
// blocks store x − μ with the base sides' means: upKeys.mu and upValues.mu
// stay nil.
type headStores struct{ keys, values, upKeys, upValues side }

// side returns the keys' or the values' side.
func (hs *headStores) side(which kv) side {
	if which == valuesKV {
		return hs.values
	}
	return hs.keys
}

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

// layer returns layer index layer, or why it cannot be used (the caller
// holds s.mu).
func (s *Sequence) layer(layer int) (*seqLayer, error) {
	if err := s.checkLayer(layer); err != nil {
		return nil, err
	}
	return &s.layers[layer], nil
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

// Truncate drops every token at position ≥ n in every layer (rollback, e.g.
// after rejected speculative tokens). Rolling back within the fp16 window is
// exact: appending the same tokens again gives the same cache. Tokens already
// compressed stay compressed. It never allocates, so it cannot fail for lack
// of memory.
func (s *Sequence) Truncate(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if n < 0 || n > s.lenLocked() {
		return fmt.Errorf("%w: truncate to %d of %d tokens", ErrLength, n, s.lenLocked())
	}
	for layer := range s.layers {
		s.truncateLayer(layer, n)
	}
	return nil
}

func (s *Sequence) truncateLayer(layer, n int) {
	l := &s.layers[layer]
	B := s.pool.cfg.BlockTokens
	switch {
	case n >= l.nSink+l.compressed:
		l.winLen = min(l.winLen, n-l.nSink-l.compressed)
		return
	case n >= l.nSink:
		l.compressed = n - l.nSink
	default:
		l.nSink, l.compressed = n, 0
	}
	l.winStart, l.winLen = 0, 0
	// A shared tail block keeps the other sequences' tokens; ours past the
	// new end are ignored, and the block is copied before it is written.
	keep := (l.compressed + B - 1) / B
	for _, b := range l.blocks[keep:] {
		s.dropBlock(b)
	}
	clear(l.blocks[keep:])
	l.blocks = l.blocks[:keep]
}

// Reset drops every token and releases all of the sequence's memory; the
// sequence stays usable, and the next append chooses outlier channels anew.
func (s *Sequence) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
}

func (s *Sequence) resetLocked() {
	s.pool.release(s.reserved)
	s.reserved = 0
	for layer := range s.layers {
		l := &s.layers[layer]
		s.truncateLayer(layer, 0)
		s.pool.release(s.fixedBytes(l))
		*l = seqLayer{}
	}
}

// Close releases the sequence's memory. Further calls return ErrClosed.
func (s *Sequence) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.resetLocked()
	s.closed = true
	return nil
}

// Fork returns a new sequence with the same tokens. Compressed blocks are
// shared copy-on-write; only the fp16 sink and window buffers are copied.
// The fork counts against the same pool budget.
func (s *Sequence) Fork() (*Sequence, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	var need int64
	for i := range s.layers {
		need += s.fixedBytes(&s.layers[i])
	}
	if err := s.pool.reserve(need); err != nil {
		return nil, err
	}
	f := s.pool.NewSequence()
	for i := range s.layers {
		src, dst := &s.layers[i], &f.layers[i]
		*dst = *src
		dst.blocks = append([]*block(nil), src.blocks...)
		for _, b := range dst.blocks {
			b.refs.Add(1)
		}
		if src.alloc {
			dst.sink = append([]byte(nil), src.sink...)
			dst.win = append([]byte(nil), src.win...)
		}
		if src.guard != nil { // the recent queries and upgrades carry over
			dst.guard = src.guard.clone()
		}
	}
	return f, nil
}

// ForkPrefix returns a new sequence holding the first n tokens of s (a
// shared prompt prefix), sharing its blocks copy-on-write.
func (s *Sequence) ForkPrefix(n int) (*Sequence, error) {
	if l := s.Len(); n < 0 || n > l {
		return nil, fmt.Errorf("%w: prefix of %d of %d tokens", ErrLength, n, l)
	}
	f, err := s.Fork()
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(n); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// CacheStats describes a sequence's memory.
type Stats struct {
	Tokens int // tokens in every layer
	// StoredBytes is what the sequence holds: fp16 sink and window buffers
	// and every block it references (a block shared with a fork counts in
	// full here and once in the pool).
	StoredBytes int64
	// SharedBytes is the part of StoredBytes in blocks shared with forks.
	SharedBytes int64
	// LiveBytes is the bytes of the tokens themselves (no unused block or
	// window space).
	LiveBytes int64
	// FP16Bytes is what the same tokens take in an fp16 cache.
	FP16Bytes int64
	// Ratio is FP16Bytes / StoredBytes.
	Ratio float64
	// Upgrades lists the (layer, KV head)s the guard has upgraded, in
	// order (nil without a guard or an upgrade); UpgradeBytes is what the
	// upgraded blocks cost beyond the base storages, part of StoredBytes.
	Upgrades     []HeadUpgrade
	UpgradeBytes int64
}

// Stats reports the sequence's memory.
func (s *Sequence) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	cfg := s.pool.cfg
	var st Stats
	st.Tokens = s.lenLocked()
	B := cfg.BlockTokens
	for i := range s.layers {
		l, plan := &s.layers[i], &s.pool.layers[i]
		st.StoredBytes += s.fixedBytes(l)
		st.LiveBytes += int64(l.nSink+l.winLen) * cfg.fp16TokenBytes()
		for bi, b := range l.blocks {
			st.StoredBytes += b.lay.bytes
			if b.refs.Load() > 1 {
				st.SharedBytes += b.lay.bytes
			}
			st.LiveBytes += int64(min(B, l.compressed-bi*B)) * b.lay.tokenBytes
		}
		st.FP16Bytes += int64(l.len()) * cfg.fp16TokenBytes()
		if l.guard == nil {
			continue
		}
		extra := int64(B) * int64(plan.upKSize+plan.upVSize-plan.kSize-plan.vSize)
		for h, gh := range l.guard.heads {
			if !gh.up {
				continue
			}
			u := HeadUpgrade{Layer: i, Head: h, Position: gh.pos, Error: gh.err}
			for _, b := range l.blocks {
				if b.lay.upgraded(h) {
					u.Blocks++
					u.ExtraBytes += extra
				}
			}
			st.UpgradeBytes += u.ExtraBytes
			st.Upgrades = append(st.Upgrades, u)
		}
	}
	if st.StoredBytes > 0 {
		st.Ratio = float64(st.FP16Bytes) / float64(st.StoredBytes)
	}
	return st
}
