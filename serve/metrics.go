package serve

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// metrics are the scheduler's counters and gauges.
type metrics struct {
	active, activePeak, queued, prefixEntries atomic.Int64
	tokens, promptTokens, steps, batchRows    atomic.Int64
	completed, cancelled, failed, rejected    atomic.Int64
	prefixHits, prefixTokens, cacheFull       atomic.Int64

	rateMu     sync.Mutex
	rateAt     time.Time
	rateTokens int64
	rate       float64
}

func (m *metrics) setActive(n int) {
	m.active.Store(int64(n))
	for {
		p := m.activePeak.Load()
		if int64(n) <= p || m.activePeak.CompareAndSwap(p, int64(n)) {
			return
		}
	}
}

// tokenRate is generated tokens per second since the previous call at
// least half a second ago (the last value in between).
func (m *metrics) tokenRate(now time.Time) float64 {
	m.rateMu.Lock()
	defer m.rateMu.Unlock()
	n := m.tokens.Load()
	if dt := now.Sub(m.rateAt).Seconds(); dt >= 0.5 {
		if !m.rateAt.IsZero() {
			m.rate = float64(n-m.rateTokens) / dt
		}
		m.rateAt, m.rateTokens = now, n
	}
	return m.rate
}

// writeMetrics writes the Prometheus text exposition.
func (s *Server) writeMetrics(w io.Writer) error {
	s.mu.Lock()
	committed, queued := s.committed, len(s.queue)
	s.mu.Unlock()
	m := &s.metrics
	var err error
	put := func(name, typ, help string, v any) {
		if err == nil {
			_, err = fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %v\n", name, help, name, typ, name, v)
		}
	}
	if err == nil { // an info metric: what the server runs, in labels
		_, err = fmt.Fprintf(w, "# HELP tqserve_info The model and cache configuration.\n# TYPE tqserve_info gauge\ntqserve_info{model=%q,preset=%q,window=\"%d\"} 1\n",
			s.name, s.cfg.Preset, s.window)
	}
	put("tqserve_kv_bytes_used", "gauge", "Bytes the KV cache pool holds now.", s.pool.Used())
	put("tqserve_kv_bytes_budget", "gauge", "The KV cache budget in bytes.", s.budget)
	put("tqserve_kv_bytes_committed", "gauge", "Bytes planned for admitted sequences and cached prefixes.", committed)
	put("tqserve_kv_bits_per_value", "gauge", "Stored bits per cached key or value coordinate (preset).", s.bits)
	put("tqserve_sequences_active", "gauge", "Sequences decoding.", m.active.Load())
	put("tqserve_sequences_active_peak", "gauge", "Most sequences decoding at once since start.", m.activePeak.Load())
	put("tqserve_sequences_queued", "gauge", "Requests waiting for admission.", queued)
	put("tqserve_tokens_per_second", "gauge", "Generated tokens per second since the previous scrape.", s.metrics.tokenRate(time.Now()))
	put("tqserve_generated_tokens_total", "counter", "Tokens generated.", m.tokens.Load())
	put("tqserve_prompt_tokens_total", "counter", "Prompt tokens prefilled (prefix hits excluded).", m.promptTokens.Load())
	put("tqserve_decode_steps_total", "counter", "Batched decode steps.", m.steps.Load())
	put("tqserve_decode_rows_total", "counter", "Sequence rows over all decode steps (rows/steps = mean batch).", m.batchRows.Load())
	put("tqserve_prefix_hits_total", "counter", "Requests that forked a cached prompt prefix.", m.prefixHits.Load())
	put("tqserve_prefix_tokens_total", "counter", "Prompt tokens taken from cached prefixes.", m.prefixTokens.Load())
	put("tqserve_prefix_entries", "gauge", "Cached prompt prefixes.", m.prefixEntries.Load())
	put("tqserve_requests_completed_total", "counter", "Requests that finished generating.", m.completed.Load())
	put("tqserve_requests_cancelled_total", "counter", "Requests whose client went away.", m.cancelled.Load())
	put("tqserve_requests_failed_total", "counter", "Requests that ended in an engine error.", m.failed.Load())
	put("tqserve_requests_rejected_total", "counter", "Requests refused with 429 (queue full).", m.rejected.Load())
	put("tqserve_cache_full_total", "counter", "Sequences ended with length because the cache was full.", m.cacheFull.Load())
	if s.store != nil {
		st := s.store.st.Stats()
		put("tqserve_kvstore_hits_total", "counter", "Requests that restored a prefix from the shared KV store.", st.Hits)
		put("tqserve_kvstore_misses_total", "counter", "Shared KV store lookups that restored nothing.", st.Misses)
		put("tqserve_kvstore_tokens_restored_total", "counter", "Prompt tokens restored from the shared KV store.", st.TokensRestored)
		put("tqserve_kvstore_bytes_fetched_total", "counter", "Value bytes read from the shared KV store.", st.BytesFetched)
		put("tqserve_kvstore_corrupt_total", "counter", "Shared KV store values that failed their checks and were ignored.", st.Corrupt)
		put("tqserve_kvstore_errors_total", "counter", "Shared KV store backend failures (each a miss or a lost publication).", st.Errors)
		put("tqserve_kvstore_puts_total", "counter", "Prefixes published to the shared KV store.", st.Puts)
		put("tqserve_kvstore_bytes_put_total", "counter", "Value bytes published to the shared KV store.", st.BytesPut)
		put("tqserve_kvstore_publish_dropped_total", "counter", "Publications dropped because the publish queue was full.", s.store.dropped.Load())
	}
	return err
}
