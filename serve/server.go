package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/kvstore"
	"github.com/turboquant-go/tq/llm"
)

// Config configures a Server. Zero fields take the defaults named.
type Config struct {
	// Model is the engine; it must carry a tokenizer.
	Model *llm.Model
	// ModelName is the id /v1/models lists and requests may name
	// (default: the model's own name, or "model").
	ModelName string
	// Preset is the kvcache preset (default "tq3").
	Preset string
	// Window and Sinks, when set, override the preset's fp16 window and
	// sink tokens (kvcache.Config.Window, Sinks).
	Window, Sinks *int
	// KVBudget is the bytes every sequence and cached prefix together may
	// hold (required, > 0).
	KVBudget int64
	// MaxQueue bounds the requests waiting for admission (default 64); a
	// request past it gets 429.
	MaxQueue int
	// MaxBatch bounds the sequences decoding at once (default 256).
	MaxBatch int
	// PrefixChunk is the prefill chunk and prefix-cache granule, tokens
	// (default 64).
	PrefixChunk int
	// PrefixEntries bounds the cached prefixes (default 32; < 0: none).
	PrefixEntries int
	// RetryAfter is the Retry-After a 429 carries (default 1 s).
	RetryAfter time.Duration
	// KVStore, when set, shares prompt prefixes with other replicas
	// (kvstore.Open): a request restores the longest prefix published
	// under this model and cache config and prefills the rest; new
	// prefixes are published asynchronously. The server closes it on
	// Shutdown.
	KVStore kvstore.Backend
	// KVStoreModelID names the weights in the store's keys (default:
	// the model name and its shape); replicas share entries only when
	// it and the cache config agree.
	KVStoreModelID string
}

// Server is the inference server: an http.Handler and the scheduler
// goroutine behind it. Close it with Shutdown.
type Server struct {
	cfg    Config
	model  *llm.Model
	pool   *kvcache.Pool
	budget int64
	name   string
	bits   float64 // stored bits per cached value, keys and values averaged
	window int     // fp16 window tokens of the cache configuration in use
	// cleansSpaces: the tokenizer's Decode rewrites spaces, so streams hold
	// back a short tail after a space.
	cleansSpaces bool
	mux          *http.ServeMux

	mu        sync.Mutex
	queue     []*job
	committed int64 // bytes charged to admitted jobs and cached prefixes
	draining  bool

	aborted  atomic.Bool
	wake     chan struct{}
	stopped  chan struct{}
	prefixes prefixCache
	store    *sharedStore // nil without Config.KVStore
	seeds    atomic.Uint64

	batchLogits []float32 // the scheduler's
	metrics     metrics
	started     time.Time
}

// New validates cfg, builds the pool and starts the scheduler.
func New(cfg Config) (*Server, error) {
	if cfg.Model == nil || cfg.Model.Tokenizer == nil {
		return nil, fmt.Errorf("%w: a model with a tokenizer is required", ErrConfig)
	}
	if cfg.KVBudget <= 0 {
		return nil, fmt.Errorf("%w: KV budget %d bytes must be positive", ErrConfig, cfg.KVBudget)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&cfg.MaxQueue, 64)
	def(&cfg.MaxBatch, 256)
	def(&cfg.PrefixChunk, 64)
	def(&cfg.PrefixEntries, 32)
	if cfg.Preset == "" {
		cfg.Preset = "tq3"
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = time.Second
	}
	if cfg.MaxQueue < 0 || cfg.MaxBatch < 0 || cfg.PrefixChunk < 0 {
		return nil, fmt.Errorf("%w: max queue %d, max batch %d, prefix chunk %d", ErrConfig, cfg.MaxQueue, cfg.MaxBatch, cfg.PrefixChunk)
	}
	mc := cfg.Model.Config
	kc, err := kvcache.Preset(cfg.Preset, mc.Layers, mc.KVHeads, mc.Heads, mc.HeadDim)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.Window != nil {
		kc.Window = *cfg.Window
	}
	if cfg.Sinks != nil {
		kc.Sinks = *cfg.Sinks
	}
	one, err := kc.PlanBytes(1)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if one > cfg.KVBudget {
		return nil, fmt.Errorf("%w: KV budget %d bytes is below one sequence's %d", ErrConfig, cfg.KVBudget, one)
	}
	pool, err := kvcache.NewPool(kc, cfg.KVBudget)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	s := &Server{cfg: cfg, model: cfg.Model, pool: pool, budget: cfg.KVBudget, name: cfg.ModelName,
		wake: make(chan struct{}, 1), stopped: make(chan struct{}), started: time.Now()}
	if s.name == "" {
		s.name = mc.Name
	}
	if s.name == "" {
		s.name = "model"
	}
	s.bits = (kc.Keys.BitsPerValue(mc.HeadDim) + kc.Values.BitsPerValue(mc.HeadDim)) / 2
	s.window = kc.Window
	s.prefixes = prefixCache{s: s, max: cfg.PrefixEntries}
	if cfg.KVStore != nil {
		id := cfg.KVStoreModelID
		if id == "" {
			id = fmt.Sprintf("%s %+v", s.name, mc)
		}
		chunk := cfg.PrefixChunk
		if chunk == 0 {
			return nil, fmt.Errorf("%w: a KV store needs a prefill chunk (its block)", ErrConfig)
		}
		if s.store, err = newSharedStore(cfg.KVStore, pool, id, chunk); err != nil {
			return nil, err
		}
	}
	s.cleansSpaces = decodeCleansSpaces(cfg.Model.Tokenizer)
	s.seeds.Store(uint64(time.Now().UnixNano()))
	s.routes()
	go s.loop()
	return s, nil
}

// ServeHTTP serves the endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// signal wakes the scheduler.
func (s *Server) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// submit queues a job, or refuses it when the queue is full or the server
// is draining.
func (s *Server) submit(j *job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return ErrDraining
	}
	if len(s.queue) >= s.cfg.MaxQueue {
		s.metrics.rejected.Add(1)
		return fmt.Errorf("%w: %d requests waiting", ErrQueueFull, len(s.queue))
	}
	j.queued = time.Now()
	j.events = make(chan event, j.maxTokens+2) // the scheduler never blocks on a client
	s.queue = append(s.queue, j)
	s.metrics.queued.Store(int64(len(s.queue)))
	s.signal()
	return nil
}

// Shutdown stops taking requests, lets the queued and running ones finish,
// and stops the scheduler. If ctx ends first, the remaining requests end
// with an error and Shutdown returns ctx's error. The model stays open.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	s.signal()
	var err error
	select {
	case <-s.stopped:
	case <-ctx.Done():
		err = ctx.Err()
		s.aborted.Store(true)
		s.signal()
		<-s.stopped
	}
	s.prefixes.closeAll()
	if s.store != nil {
		err = errors.Join(err, s.store.close())
	}
	return err
}

// Draining reports whether Shutdown has begun.
func (s *Server) Draining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// KVUsed is the bytes the pool holds now.
func (s *Server) KVUsed() int64 { return s.pool.Used() }

// plan is the bytes j is charged: its cache at its last fed token (the
// final sampled token is never fed).
func (s *Server) plan(tokens int) (int64, error) {
	kc := s.pool.Config()
	n, err := kc.PlanBytes(tokens)
	if err != nil {
		return 0, err
	}
	if kc.DeferPrefill { // the prompt waits in the fp16 window until the first decode step
		n += int64(tokens) * int64(kc.Layers*kc.KVHeads*2*kc.HeadDim*2)
	}
	return n, nil
}
