package serve

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/llm"
)

// Finish reasons, as OpenAI names them.
const (
	finishStop   = "stop"   // an end-of-generation token or a stop string
	finishLength = "length" // max_tokens, the context, or the cache budget
)

// job is one admitted or queued request.
type job struct {
	ctx       context.Context
	prompt    []int32
	maxTokens int // ≥ 1, prompt+maxTokens ≤ context
	sampler   *llm.Sampler
	stops     []string
	charge    int64 // bytes reserved against the budget while admitted
	alone     bool  // planned past the budget: admitted only with nothing else
	ignoreEOS bool  // end-of-generation tokens do not stop it
	events    chan event
	queued    time.Time

	seq       *kvcache.Sequence
	next      int32 // the sampled token the next step feeds
	generated []int32
	text      textStream
	prefixHit int // prompt tokens taken from the prefix cache
}

// event is what the scheduler sends a request's handler: text as it is
// generated, then one final event with done set.
type event struct {
	text             string
	done             bool
	finish           string
	err              error
	promptTokens     int
	completionTokens int
	prefixTokens     int
}

// loop is the scheduler: the one goroutine that touches sequences.
func (s *Server) loop() {
	defer close(s.stopped)
	logits := make([]float32, s.model.Config.Vocab)
	var active []*job
	for {
		s.mu.Lock()
		s.dropCancelledLocked()
		var admitted []*job
		for len(s.queue) > 0 && len(active)+len(admitted) < s.cfg.MaxBatch {
			j := s.queue[0]
			if !s.admitLocked(j, len(active)+len(admitted)) {
				break
			}
			s.queue = s.queue[1:]
			admitted = append(admitted, j)
		}
		s.metrics.queued.Store(int64(len(s.queue)))
		if len(active) == 0 && len(admitted) == 0 {
			if s.draining && len(s.queue) == 0 {
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
			<-s.wake
			continue
		}
		s.mu.Unlock()
		for _, j := range admitted {
			if s.prefill(j, logits) {
				active = append(active, j)
			}
		}
		s.metrics.setActive(len(active))
		active = s.step(active)
		s.metrics.setActive(len(active))
	}
}

// cancelled is why j must stop now: its client went away, or Shutdown ran
// out of time.
func (s *Server) cancelled(j *job) error {
	if err := j.ctx.Err(); err != nil {
		return err
	}
	if s.aborted.Load() {
		return ErrDraining
	}
	return nil
}

// dropCancelledLocked answers queued requests whose clients went away.
func (s *Server) dropCancelledLocked() {
	s.queue = slices.DeleteFunc(s.queue, func(j *job) bool {
		if err := s.cancelled(j); err != nil {
			s.metrics.cancelled.Add(1)
			j.events <- event{done: true, err: err}
			return true
		}
		return false
	})
	s.metrics.queued.Store(int64(len(s.queue)))
}

// admitLocked reserves j's planned bytes if they fit next to the admitted
// sequences' and the cached prefixes' (evicting prefixes as needed).
func (s *Server) admitLocked(j *job, running int) bool {
	if j.alone {
		if running > 0 {
			return false
		}
		s.prefixes.evict(s.budget) // everything
		j.charge = s.budget - s.prefixes.charged
		s.committed += j.charge
		return true
	}
	if s.committed+j.charge > s.budget {
		s.prefixes.evict(s.committed + j.charge - s.budget)
	}
	if s.committed+j.charge > s.budget {
		return false
	}
	s.committed += j.charge
	return true
}

// finish closes j's sequence, gives back its reservation and answers its
// handler.
func (s *Server) finish(j *job, ev event) {
	if j.seq != nil {
		_ = j.seq.Close()
		j.seq = nil
	}
	s.mu.Lock()
	s.committed -= j.charge
	s.mu.Unlock()
	ev.done = true
	ev.promptTokens, ev.completionTokens, ev.prefixTokens = len(j.prompt), len(j.generated), j.prefixHit
	switch {
	case ev.err == nil:
		s.metrics.completed.Add(1)
	case s.cancelled(j) != nil:
		s.metrics.cancelled.Add(1)
	default:
		s.metrics.failed.Add(1)
	}
	j.events <- ev
	s.signal() // room may have opened for the queue
}

// prefill feeds j's prompt in chunks aligned to PrefixChunk, starting from
// the longest cached prefix, caches a fork at every chunk boundary, and
// samples the first token. It reports whether j goes on decoding.
func (s *Server) prefill(j *job, logits []float32) bool {
	if err := s.cancelled(j); err != nil {
		s.finish(j, event{err: err})
		return false
	}
	C := s.cfg.PrefixChunk
	seq, n := s.prefixes.lookup(j.prompt)
	if s.store != nil {
		if rs, rn := s.store.restore(j.ctx, j.prompt, n); rs != nil {
			if seq != nil {
				_ = seq.Close()
			}
			seq, n = rs, rn
			s.prefixes.add(j.prompt[:n], seq)
		}
	}
	if seq != nil {
		j.prefixHit = n
		s.metrics.prefixHits.Add(1)
		s.metrics.prefixTokens.Add(int64(n))
	} else {
		seq = s.pool.NewSequence()
	}
	j.seq = seq
	for pos := n; pos < len(j.prompt); {
		end := min(len(j.prompt), (pos/C+1)*C)
		if err := s.model.Forward(seq, j.prompt[pos:end], logits); err != nil {
			s.finishErr(j, err)
			return false
		}
		pos = end
		if pos%C == 0 {
			s.prefixes.add(j.prompt[:pos], seq)
			if s.store != nil {
				s.store.publish(j.prompt, pos, seq)
			}
		}
	}
	s.metrics.promptTokens.Add(int64(len(j.prompt) - n))
	return s.emit(j, j.sampler.Sample(logits))
}

// finishErr ends j after an engine error: a full cache is the "length"
// finish, anything else a failure.
func (s *Server) finishErr(j *job, err error) {
	if errors.Is(err, kvcache.ErrCacheFull) {
		s.metrics.cacheFull.Add(1)
		s.finish(j, event{finish: finishLength})
		return
	}
	s.finish(j, event{err: fmt.Errorf("serve: %w", err)})
}

// emit records j's newly sampled token, sends its text and reports whether
// j goes on (it finishes j otherwise).
func (s *Server) emit(j *job, tok int32) bool {
	j.generated = append(j.generated, tok)
	eog := s.model.Tokenizer.IsEOG(tok) && !j.ignoreEOS
	if !eog {
		s.metrics.tokens.Add(1)
	}
	length := len(j.generated) >= j.maxTokens || j.seq.Len() >= s.model.Config.Context
	out, stopped := j.text.update(s.model.Tokenizer.Decode(j.generated), j.stops, s.cleansSpaces, eog || length)
	if out != "" {
		j.events <- event{text: out}
	}
	switch {
	case eog || stopped:
		s.finish(j, event{finish: finishStop})
		return false
	case length:
		s.finish(j, event{finish: finishLength})
		return false
	}
	j.next = tok
	return true
}

// step runs one batched decode step over the active jobs and returns those
// that go on. A job the cache refuses is finished with "length" and the step
// retried without it.
func (s *Server) step(active []*job) []*job {
	active = slices.DeleteFunc(active, func(j *job) bool {
		if err := s.cancelled(j); err != nil {
			s.finish(j, event{err: err})
			return true
		}
		return false
	})
	for len(active) > 0 {
		caches := make([]llm.Cache, len(active))
		toks := make([]int32, len(active))
		for i, j := range active {
			caches[i], toks[i] = j.seq, j.next
		}
		s.batchLogits = slices.Grow(s.batchLogits[:0], len(active)*s.model.Config.Vocab)[:len(active)*s.model.Config.Vocab]
		err := s.model.DecodeBatch(caches, toks, s.batchLogits)
		var be *llm.BatchError
		if errors.As(err, &be) {
			s.finishErr(active[be.Index], be.Err)
			active = slices.Delete(active, be.Index, be.Index+1)
			continue
		}
		if err != nil {
			for _, j := range active {
				s.finishErr(j, err)
			}
			return nil
		}
		s.metrics.steps.Add(1)
		s.metrics.batchRows.Add(int64(len(active)))
		V := s.model.Config.Vocab
		sampleEach(active, s.batchLogits, V, toks)
		kept := active[:0]
		for i, j := range active {
			if s.emit(j, toks[i]) {
				kept = append(kept, j)
			}
		}
		clear(active[len(kept):])
		return kept
	}
	return active
}

// sampleEach draws every job's next token from its row of logits into toks,
// the jobs spread over the cores: with temperature each draw sorts the
// vocabulary, which would otherwise serialize the step. Each job has its own
// sampler, so the tokens do not depend on the spread.
func sampleEach(jobs []*job, logits []float32, vocab int, toks []int32) {
	workers := min(runtime.GOMAXPROCS(0), len(jobs))
	var next atomic.Int64
	work := func() {
		for i := int(next.Add(1) - 1); i < len(jobs); i = int(next.Add(1) - 1) {
			toks[i] = jobs[i].sampler.Sample(logits[i*vocab : (i+1)*vocab])
		}
	}
	if workers <= 1 {
		work()
		return
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(work)
	}
	wg.Wait()
}
