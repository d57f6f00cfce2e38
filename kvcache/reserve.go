package kvcache

import "fmt"

// Reserve sets aside, from the pool's budget, every byte that appending n
// more tokens to each layer can take (with the guard, as if it upgraded
// every head), so that those appends cannot fail with ErrCacheFull. An
// engine that appends layer by layer reserves before a step: a step the
// budget cannot hold is then refused before any layer changes, where a
// refusal at a later layer could only be truncated away, leaving the tokens
// that step pushed out of the fp16 window compressed.
//
// Appends draw on what is reserved before the pool. release gives back what
// they did not draw; it is safe to call more than once, and Reset and Close
// give back every reservation's remainder.
func (s *Sequence) Reserve(n int) (release func(), err error) {
	if n <= 0 {
		return nil, fmt.Errorf("%w: reserve %d tokens", ErrLength, n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	var need int64
	for i := range s.layers {
		l := &s.layers[i]
		p := s.place(l, n)
		g, _ := s.growth(l, p)
		need += g + int64(p.opens)*s.pool.layers[i].maxBlockBytes
	}
	if err := s.pool.reserve(need); err != nil {
		return nil, err
	}
	s.reserved += need
	done := false
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if done {
			return
		}
		done = true
		back := min(need, s.reserved)
		s.reserved -= back
		s.pool.release(back)
	}, nil
}

// take draws n bytes for an append: first from what Reserve set aside, the
// rest from the pool's budget.
func (s *Sequence) take(n int64) error {
	r := min(n, s.reserved)
	if err := s.pool.reserve(n - r); err != nil {
		return err
	}
	s.reserved -= r
	return nil
}
