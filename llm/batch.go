package llm

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// BatchError reports which sequence of a DecodeBatch step failed; it wraps
// that sequence's error (e.g. kvcache.ErrCacheFull, ErrContext).
type BatchError struct {
	Index int // the failing sequence's index in the batch
	Err   error
}

func (e *BatchError) Error() string { return fmt.Sprintf("llm: batch sequence %d: %v", e.Index, e.Err) }
func (e *BatchError) Unwrap() error { return e.Err }

// DecodeBatch runs one decode step of len(caches) sequences together:
// tokens[i] goes in at position caches[i].Len() of sequence i, and
// sequence i's next-token logits are written to logits[i·Vocab:(i+1)·Vocab].
// The weight products take all the sequences' rows in one pass over each
// matrix (the weights are read once per step, not once per sequence);
// attention runs per sequence on its own cache, the sequences spread over
// the cores. Each sequence's logits are those Forward gives for its token
// alone.
//
// Nothing is appended if a token or a position is out of range, or if a
// Reserver cannot reserve the step. If another cache refuses an append,
// every cache is truncated back to its length before the step. Either way a
// *BatchError names the sequence, so a caller can drop it and retry the rest.
func (m *Model) DecodeBatch(caches []Cache, tokens []int32, logits []float32) error {
	cfg := m.Config
	B := len(caches)
	if B == 0 || len(tokens) != B || len(logits) != B*cfg.Vocab {
		return fmt.Errorf("%w: %d caches, %d tokens, %d logits (vocab %d)", ErrArgument, B, len(tokens), len(logits), cfg.Vocab)
	}
	pos := make([]int, B)
	for i, c := range caches {
		pos[i] = c.Len()
		if pos[i]+1 > cfg.Context {
			return &BatchError{i, fmt.Errorf("%w: %d cached + 1 new token > context %d", ErrContext, pos[i], cfg.Context)}
		}
		if t := tokens[i]; t < 0 || int(t) >= cfg.Vocab {
			return &BatchError{i, fmt.Errorf("%w: token %d (vocab %d)", ErrToken, t, cfg.Vocab)}
		}
	}
	for i, c := range caches {
		release, err := reserve(c, 1)
		if err != nil {
			return &BatchError{i, fmt.Errorf("llm: %w", err)}
		}
		defer release()
	}
	d, qRow, kvRow := cfg.Dim, cfg.Heads*cfg.HeadDim, cfg.KVHeads*cfg.HeadDim
	a, _ := m.acts.Get().(*activations)
	if a == nil {
		a = new(activations)
	}
	defer m.acts.Put(a)
	a.take(cfg, B)
	for i, t := range tokens {
		if err := m.embed.Row(int(t), a.x[i*d:(i+1)*d]); err != nil {
			return err
		}
	}
	rollback := func() {
		for i, c := range caches { // layers may differ in length: Truncate evens them
			_ = c.Truncate(pos[i])
		}
	}
	for li := range m.layers {
		l := &m.layers[li]
		if err := m.projectQKV(l, a); err != nil {
			rollback()
			return err
		}
		for i := range B {
			m.rope(a.q[i*qRow:(i+1)*qRow], cfg.Heads, pos[i], a.cos, a.sin)
			m.rope(a.k[i*kvRow:(i+1)*kvRow], cfg.KVHeads, pos[i], a.cos, a.sin)
		}
		for i, c := range caches {
			if err := c.Append(li, a.k[i*kvRow:(i+1)*kvRow], a.v[i*kvRow:(i+1)*kvRow]); err != nil {
				rollback()
				return &BatchError{i, fmt.Errorf("llm: layer %d: %w", li, err)}
			}
		}
		if i, err := attendEach(caches, li, a.q, a.att, qRow); err != nil {
			rollback()
			return &BatchError{i, fmt.Errorf("llm: layer %d: %w", li, err)}
		}
		if err := m.outputAndFFN(l, a); err != nil {
			rollback()
			return err
		}
	}
	rmsNorm(a.x, a.x, m.outputNorm, cfg.RMSEps)
	return m.output.MulT(logits, a.x)
}

// attendEach runs each cache's attention for its query row of q into the
// same row of out, on up to GOMAXPROCS goroutines; it returns the first
// failing index and its error.
func attendEach(caches []Cache, layer int, q, out []float32, row int) (int, error) {
	workers := min(runtime.GOMAXPROCS(0), len(caches))
	var next atomic.Int64
	var mu sync.Mutex
	failed, firstErr := -1, error(nil)
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= len(caches) {
				return
			}
			if err := caches[i].Attend(layer, q[i*row:(i+1)*row], out[i*row:(i+1)*row]); err != nil {
				mu.Lock()
				if failed < 0 || i < failed {
					failed, firstErr = i, err
				}
				mu.Unlock()
			}
		}
	}
	if workers <= 1 {
		work()
		return failed, firstErr
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(work)
	}
	wg.Wait()
	return failed, firstErr
}
