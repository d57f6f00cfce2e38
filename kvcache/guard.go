package kvcache

// The runtime fidelity guardrail. While tokens wait in the fp16 window the
// cache still knows their exact keys; when the first token of a new block is
// about to be compressed, the guard measures, for every (layer, KV head)
// not yet upgraded, how far the base key storage moves that block's logits
// against the most recent queries the head attended with. A head whose
// error exceeds the budget stores that block and every later one with the
// guard's storages (e.g. 4 instead of 3 bits); the choice is recorded per
// (block, head) and reported by Stats.
//
// Definition. For head h, let Q be the recent query vectors of h's query
// heads (at most GuardConfig.Queries, oldest dropped first) and X the keys
// of the new block that are known when its first token is compressed (in
// the window or in the append: the whole block when Window ≥ BlockTokens−1),
// as stored (fp16-rounded when a window is used, minus μ_k with Center).
// With x̃ the base storage's reconstruction of x, the error is
//
//	E = sqrt( mean over q ∈ Q, x ∈ X of (Scale · q·(x − x̃))² )   [nats]
//
// and the head upgrades when E > Budget. The unit is absolute (nats of
// logit), not relative: softmax is shift-invariant but not scale-invariant,
// so an error of 0.1 nat moves attention probabilities by about 10% however
// large the logits are.
//
// Determinism. E is computed in float64 from float32 operands whose
// products are exact in float64 (so fused multiply-adds cannot change the
// result), with the squares rounded explicitly, in a fixed order; encoding
// and decoding are bit-identical at every kernel level. The decision is
// therefore a function of the keys and values appended and of the queries
// attended, in order, and nothing else — not the platform, not how appends
// were batched (given Window ≥ BlockTokens−1), not the goroutine count.
// Concurrent Attend calls on one sequence record their queries in whichever
// order they take the ring's lock: only sequential callers get a defined
// order. Logits does not record its query (it is for validation).
//
// Scope. Upgrades are sticky: Truncate keeps them and the recorded queries
// (a rolled-back query still happened); Reset clears both. A fork copies
// them. Without any recorded query (a prefill compressed before its first
// Attend) nothing is measured and blocks use the base storages, which is why
// the guard presets defer the prefill: its blocks are then compressed at
// the first decode step, after the prompt's queries were attended.
//
// Cost. While a head is not upgraded, each of its compressed tokens is
// encoded and decoded once more and scored against the recorded queries
// (Queries·HeadDim multiply-adds); nothing once it is upgraded, nothing on
// the attention path beyond one more prepared query per head and query.

import (
	"fmt"
	"math"
)

// GuardConfig configures the fidelity guardrail (see guard.go). The
// zero value is off.
type GuardConfig struct {
	// Budget is the largest RMS error, in nats, of a new block's scaled
	// logits against the recent queries that a head may show with the base
	// storages before it is upgraded. 0: no guard.
	Budget float64
	// Queries is how many recent query vectors are kept per (layer, KV
	// head) (default 8 per query head: 8·QHeads/KVHeads).
	Queries int
	// Keys and Values are the storages of an upgraded head's blocks:
	// quantized without outlier channels, or a passthrough storage.
	Keys, Values Storage
}

func (g GuardConfig) enabled() bool { return g.Budget != 0 }

// guardMaxQueries bounds GuardConfig.Queries.
const guardMaxQueries = 1 << 12

func (c Config) validateGuard() error {
	g := c.Guard
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: guard: "+format, append([]any{ErrConfig}, args...)...)
	}
	if !g.enabled() {
		if g != (GuardConfig{}) {
			return bad("budget 0 (off) with other fields set: %+v", g)
		}
		return nil
	}
	switch {
	case math.IsNaN(g.Budget) || math.IsInf(g.Budget, 0) || g.Budget < 0:
		return bad("budget %v must be a positive number of nats", g.Budget)
	case g.Queries < 1 || g.Queries > guardMaxQueries:
		return bad("%d recent queries outside [1, %d]", g.Queries, guardMaxQueries)
	}
	for _, cd := range []Storage{g.Keys, g.Values} {
		if cd.Outliers != 0 {
			return bad("upgrade codec with %d outlier channels (they would need their own channel choice)", cd.Outliers)
		}
		if _, err := cd.quantizerConfig(c.HeadDim, 0, nil); err != nil {
			return fmt.Errorf("guard upgrade codec: %w", err)
		}
	}
	return nil
}

// guardRingBytes is the recent-query memory of one layer.
func (c Config) guardRingBytes() int64 {
	if !c.Guard.enabled() {
		return 0
	}
	return int64(c.KVHeads) * int64(c.Guard.Queries) * int64(c.HeadDim) * 4
}

// layerGuard is one layer's guard state.
type layerGuard struct {
	// ring holds the recent queries, [KVHeads][cap][HeadDim]: the i-th
	// oldest of the n held is in slot (next − n + i) mod cap.
	ring         []float32
	cap, n, next int
	heads        []guardHead
	lay          *blockLayout // the layout of the layer's next block
}

// guardHead is one KV head's guard state.
type guardHead struct {
	up  bool
	pos int     // layer position of the first token of the block it upgraded at
	err float64 // the error that exceeded the budget, nats
}

func newLayerGuard(cfg Config, base *blockLayout) *layerGuard {
	q := cfg.Guard.Queries
	return &layerGuard{ring: make([]float32, cfg.KVHeads*q*cfg.HeadDim), cap: q,
		heads: make([]guardHead, cfg.KVHeads), lay: base}
}

func (g *layerGuard) clone() *layerGuard {
	c := *g
	c.ring = append([]float32(nil), g.ring...)
	c.heads = append([]guardHead(nil), g.heads...)
	return &c
}

// query returns the i-th oldest recorded query of head h.
func (g *layerGuard) query(h, i, d int) []float32 {
	slot := (g.next - g.n + i + g.cap) % g.cap
	return g.ring[(h*g.cap+slot)*d : (h*g.cap+slot+1)*d]
}

// RecordQueries records queries ([T][QHeads][HeadDim]) in a layer's guard
// as Attend does before attending with them: the hook for backends that
// attend on their own kernels (the metal package), so that the guard
// measures new blocks against the queries the sequence really attended
// with. Without a guard it only checks its arguments.
func (s *Sequence) RecordQueries(layer int, queries []float32) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkLayer(layer); err != nil {
		return err
	}
	if row := s.pool.cfg.QHeads * s.pool.cfg.HeadDim; len(queries)%row != 0 {
		return fmt.Errorf("%w: %d query floats are not whole [%d][%d] rows", ErrLength, len(queries), s.pool.cfg.QHeads, s.pool.cfg.HeadDim)
	}
	if err := checkQueries(queries); err != nil {
		return err
	}
	s.recordQueries(layer, queries)
	return nil
}

// recordQueries adds an Attend call's queries ([T][QHeads][HeadDim]) to
// the layer's rings, in order (token, then query head); only the last cap
// per KV head can stay, so only those are copied.
func (s *Sequence) recordQueries(layer int, queries []float32) {
	g := s.layers[layer].guard
	if g == nil {
		return
	}
	cfg := s.pool.cfg
	d, H, QH := cfg.HeadDim, cfg.KVHeads, cfg.QHeads
	G := QH / H
	total := len(queries) / (QH * d) * G
	s.qmu.Lock()
	defer s.qmu.Unlock()
	for v := max(0, total-g.cap); v < total; v++ {
		i, gi := v/G, v%G
		for h := range H {
			copy(g.ring[(h*g.cap+g.next)*d:(h*g.cap+g.next+1)*d], queries[(i*QH+h*G+gi)*d:])
		}
		g.next = (g.next + 1) % g.cap
		g.n = min(g.n+1, g.cap)
	}
}

// guardError is E (see the top of this file) of head h's base key storage
// on the block keys xs (m vectors of d, as stored: centred, fp16-rounded),
// against the recorded queries. code and dec are scratch.
func guardError(g *layerGuard, hc headStores, h, d int, scale float32, xs []float32, code []byte, dec []float32) (float64, error) {
	m := len(xs) / d
	var acc float64
	for t := range m {
		x := xs[t*d : (t+1)*d]
		if err := hc.keys.store.encode(code, x); err != nil {
			return 0, err
		}
		hc.keys.store.decode(dec, code)
		for j := range dec {
			dec[j] = x[j] - dec[j]
		}
		for i := range g.n {
			q := g.query(h, i, d)
			var e float64
			for j, v := range dec {
				e += float64(q[j]) * float64(v) // exact products: no fused rounding differences
			}
			e *= float64(scale)
			acc += float64(e * e)
		}
	}
	return math.Sqrt(acc / float64(m*g.n)), nil
}

// HeadUpgrade is one (layer, KV head) the guard stores with its upgraded
// storages.
type HeadUpgrade struct {
	Layer, Head int
	// Position is the layer position of the first token of the block at
	// which the head was upgraded; Error is the RMS logit error (nats) the
	// guard measured there, above its budget.
	Position int
	Error    float64
	// Blocks is the number of the sequence's blocks that hold this head
	// upgraded, ExtraBytes what they cost beyond the base storages.
	Blocks     int
	ExtraBytes int64
}
