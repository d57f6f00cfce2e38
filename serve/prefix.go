package serve

import (
	"slices"

	"github.com/turboquant-go/tq/kvcache"
)

// prefixCache holds forks of sequences at chunk boundaries of their
// prompts, most recently used last. Each entry is charged its planned bytes
// against the server's budget (through the server's committed count), so
// the budget bounds live sequences and cached prefixes together. Only the
// scheduler goroutine uses it.
type prefixCache struct {
	s       *Server
	max     int
	entries []*prefixEntry
	charged int64
}

type prefixEntry struct {
	tokens []int32
	seq    *kvcache.Sequence
	charge int64
}

// lookup forks the longest cached prefix of prompt that leaves at least one
// prompt token to prefill; it returns nil, 0 on a miss (or when the fork
// does not fit).
func (p *prefixCache) lookup(prompt []int32) (*kvcache.Sequence, int) {
	best := -1
	for i, e := range p.entries {
		if len(e.tokens) < len(prompt) && slices.Equal(e.tokens, prompt[:len(e.tokens)]) &&
			(best < 0 || len(e.tokens) > len(p.entries[best].tokens)) {
			best = i
		}
	}
	if best < 0 {
		return nil, 0
	}
	e := p.entries[best]
	f, err := e.seq.Fork()
	if err != nil {
		return nil, 0
	}
	p.entries = append(slices.Delete(p.entries, best, best+1), e) // most recent last
	return f, len(e.tokens)
}

// add caches a fork of seq (which holds exactly tokens) unless the same
// prefix is cached or its planned bytes do not fit the budget.
func (p *prefixCache) add(tokens []int32, seq *kvcache.Sequence) {
	if p.max <= 0 {
		return
	}
	for _, e := range p.entries {
		if slices.Equal(e.tokens, tokens) {
			return
		}
	}
	charge, err := p.s.pool.Config().PlanBytes(len(tokens))
	if err != nil {
		return
	}
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(p.entries) >= p.max {
		p.dropLocked(0)
	}
	if s.committed+charge > s.budget {
		return
	}
	f, err := seq.Fork()
	if err != nil {
		return
	}
	s.committed += charge
	p.charged += charge
	p.entries = append(p.entries, &prefixEntry{tokens: slices.Clone(tokens), seq: f, charge: charge})
	s.metrics.prefixEntries.Store(int64(len(p.entries)))
}

// evict drops least recently used entries until need bytes are freed or
// none is left; the caller holds Server.mu.
func (p *prefixCache) evict(need int64) {
	for freed := int64(0); freed < need && len(p.entries) > 0; {
		freed += p.entries[0].charge
		p.dropLocked(0)
	}
}

// dropLocked closes entry i; the caller holds Server.mu.
func (p *prefixCache) dropLocked(i int) {
	e := p.entries[i]
	_ = e.seq.Close()
	p.s.committed -= e.charge
	p.charged -= e.charge
	p.entries = slices.Delete(p.entries, i, i+1)
	p.s.metrics.prefixEntries.Store(int64(len(p.entries)))
}

// closeAll drops every entry.
func (p *prefixCache) closeAll() {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	p.evict(1 << 62)
}
