package cuda

import (
	"fmt"
	"io"
	"math"
	"sync"
	"unsafe"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
)

// Pool is a KV cache pool whose sequences keep their tokens in device
// memory and run attention on the GPU, with the same configuration,
// presets, budget and snapshot format as kvcache.Pool.
//
// Each Sequence is a kvcache.Sequence that does the bookkeeping (token
// placement, the fp16 window and sinks, encoding on the host, forks,
// truncation, snapshots) plus a device copy of every byte that attention
// reads: the compressed blocks, the sink and window tokens, the code
// layouts and codebooks. Appends upload what changed; Attend reads only
// device memory. Snapshots are the host sequence's, so a snapshot taken
// here restores into a CPU pool and back.
type Pool struct {
	dev  *Device
	host *kvcache.Pool
	cfg  kvcache.Config
	exec executor
	// Chunk fixes the tokens per split (0: chosen per call from the
	// context length and the device's multiprocessors).
	Chunk int
}

// executor runs the attention kernels for one layer and returns the
// reduced rows; the device runs them, the tests substitute the Go models
// over the device's memory.
type executor interface {
	attend(s *Sequence, l *devLayer, qb *queryBatch) ([]float32, error)
}

// NewPool returns a device pool for cfg with a budget in bytes (≤ 0:
// unlimited), counted as kvcache.Pool counts it; the device holds the
// same bytes again. Configurations the kernels do not handle (PolarQuant
// codes, Prod-quantized values, more than 16 query heads per KV head,
// head dims whose working set does not fit in shared memory) give
// ErrUnsupported.
func NewPool(dev *Device, cfg kvcache.Config, budget int64) (*Pool, error) {
	host, err := kvcache.NewPool(cfg, budget)
	if err != nil {
		return nil, err
	}
	cfg = host.Config()
	if err := checkSupported(cfg); err != nil {
		return nil, err
	}
	return &Pool{dev: dev, host: host, cfg: cfg, exec: deviceExecutor{}}, nil
}

func checkSupported(cfg kvcache.Config) error {
	g := cfg.QHeads / cfg.KVHeads
	if g > maxGroup {
		return fmt.Errorf("%w: %d query heads per KV head (at most %d)", ErrUnsupported, g, maxGroup)
	}
	if cfg.Guard.Budget > 0 {
		// Refused rather than run as its base preset: the kernels read one
		// code layout per layer (the metal backend runs the guard).
		return fmt.Errorf("%w: the guard's upgraded heads (mixed code layouts)", ErrUnsupported)
	}
	codecs := []kvcache.LayerStorage{{Keys: cfg.Keys, Values: cfg.Values}}
	for _, o := range cfg.Overrides {
		codecs = append(codecs, o)
	}
	P := 0
	for _, lc := range codecs {
		for i, cd := range []kvcache.Storage{lc.Keys, lc.Values} {
			if cd.Kind != kvcache.Quantized {
				continue
			}
			switch {
			case cd.Method == turboquant.Polar:
				return fmt.Errorf("%w: PolarQuant codes", ErrUnsupported)
			case cd.Method == turboquant.Prod && i == 1:
				return fmt.Errorf("%w: prod-quantized values", ErrUnsupported)
			case cd.Method == turboquant.Prod:
				P = cfg.HeadDim
			}
		}
	}
	if sharedFloats(g, cfg.HeadDim, P, 2*256)+32*g+driftFloats(cfg.BlockCenter, g, 32, cfg.BlockTokens) > maxSharedBytes/4 {
		return fmt.Errorf("%w: head dim %d with %d query heads per KV head needs more than %d KiB of shared memory",
			ErrUnsupported, cfg.HeadDim, g, maxSharedBytes>>10)
	}
	return nil
}

// Config is the pool's configuration, defaults filled in.
func (p *Pool) Config() kvcache.Config { return p.cfg }

// Host is the CPU pool that does the sequences' bookkeeping.
func (p *Pool) Host() *kvcache.Pool { return p.host }

// NewSequence returns an empty sequence.
func (p *Pool) NewSequence() *Sequence { return p.wrap(p.host.NewSequence()) }

// ReadSequence restores a snapshot (from this pool, a kvcache.Pool or
// another device pool of the same configuration) and uploads it.
func (p *Pool) ReadSequence(r io.Reader) (*Sequence, error) {
	hs, err := p.host.ReadSequence(r)
	if err != nil {
		return nil, err
	}
	s := p.wrap(hs)
	if err := s.syncAll(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (p *Pool) wrap(hs *kvcache.Sequence) *Sequence {
	return &Sequence{pool: p, host: hs, layers: make([]devLayer, p.cfg.Layers)}
}

// Sequence is one sequence of a device pool; it implements
// kvcache.Cache.
type Sequence struct {
	pool    *Pool
	mu      sync.Mutex
	host    *kvcache.Sequence
	layers  []devLayer
	scratch map[string]*Buffer
	closed  bool
}

var _ kvcache.Cache = (*Sequence)(nil)

// devLayer is the device copy of one layer.
type devLayer struct {
	lc               *layerCodecs
	klay, vlay, cent *Buffer
	blocks           []devBlock
	table            *Buffer // device pointers of the blocks
	sink             *Buffer
	sinkHost         *byte
	win              *Buffer
	winHost          *byte
	winCap           int
	view             counts
}

type devBlock struct {
	buf    *Buffer
	host   *byte // the host block it copies (kept, so its address is not reused)
	synced int   // tokens uploaded
}

// counts are a layer's token counts as of the last sync.
type counts struct{ nsink, compressed, winStart, winLen int }

func (s *Sequence) free(b **Buffer) {
	if *b != nil {
		_ = s.pool.dev.Free(*b)
		*b = nil
	}
}

func (s *Sequence) freeLayer(l *devLayer) {
	for i := range l.blocks {
		s.free(&l.blocks[i].buf)
	}
	for _, b := range []**Buffer{&l.klay, &l.vlay, &l.cent, &l.table, &l.sink, &l.win} {
		s.free(b)
	}
	*l = devLayer{}
}

// upload allocates *b with n bytes if it is missing or of another size and
// writes data at off.
func (s *Sequence) upload(b **Buffer, n, off int, data []byte) error {
	if *b == nil || (*b).Size() != n {
		s.free(b)
		nb, err := s.pool.dev.Alloc(max(n, 16))
		if err != nil {
			return err
		}
		*b = nb
	}
	return s.pool.dev.Write(*b, off, data)
}

func int32Bytes(x []int32) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*len(x)) }

// sync brings layer's device copy up to date with the host sequence after
// an operation that appended `appended` tokens (0 for truncation).
func (s *Sequence) sync(layer, appended int) error {
	cfg := s.pool.cfg
	l := &s.layers[layer]
	var err error
	verr := s.host.ViewLayerBlocks(layer, func(v kvcache.LayerView) { err = s.syncView(l, v, appended, cfg) })
	if verr != nil {
		return verr
	}
	return err
}

func (s *Sequence) syncView(l *devLayer, v kvcache.LayerView, appended int, cfg kvcache.Config) error {
	if !v.Appended {
		s.freeLayer(l)
		return nil
	}
	B := cfg.BlockTokens
	if l.lc == nil {
		lc, err := buildLayerCodecs(v, cfg)
		if err != nil {
			return err
		}
		cent := append(lc.cent, 0)
		if err := s.upload(&l.klay, 4*len(lc.klay), 0, int32Bytes(lc.klay)); err != nil {
			return err
		}
		if err := s.upload(&l.vlay, 4*len(lc.vlay), 0, int32Bytes(lc.vlay)); err != nil {
			return err
		}
		if err := s.upload(&l.cent, 4*len(cent), 0, f32Bytes(cent)); err != nil {
			return err
		}
		l.lc = lc
	}

	// Blocks: new ones, ones replaced (copy-on-write), ones that gained
	// tokens are uploaded whole; truncated ones just forget tokens.
	tableDirty := len(l.blocks) != len(v.Blocks)
	for i := len(v.Blocks); i < len(l.blocks); i++ {
		s.free(&l.blocks[i].buf)
	}
	l.blocks = l.blocks[:min(len(l.blocks), len(v.Blocks))]
	for i, hb := range v.Blocks {
		tokens := min(B, v.Compressed-i*B)
		if i == len(l.blocks) {
			l.blocks = append(l.blocks, devBlock{})
		}
		db := &l.blocks[i]
		if db.host != &hb[0] {
			// A block's layout is fixed when it is made: check new ones
			// only, not every block at every append.
			if err := l.lc.checkLayout(v, i, B); err != nil {
				return err
			}
			db.host, db.synced = &hb[0], 0
			tableDirty = true
		}
		db.synced = min(db.synced, tokens)
		if tokens > db.synced || db.buf == nil {
			old := db.buf
			if err := s.upload(&db.buf, len(hb), 0, hb); err != nil {
				return err
			}
			tableDirty = tableDirty || db.buf != old
			db.synced = tokens
		}
	}
	if tableDirty || l.table == nil {
		ptrs := make([]uint64, max(1, len(l.blocks)))
		for i, db := range l.blocks {
			ptrs[i] = db.buf.ptr
		}
		if err := s.upload(&l.table, 8*len(ptrs), 0, unsafe.Slice((*byte)(unsafe.Pointer(&ptrs[0])), 8*len(ptrs))); err != nil {
			return err
		}
	}

	// Sinks: small, uploaded whole when they change.
	if n := len(v.SinkTokens); n > 0 && (l.sinkHost != &v.SinkTokens[0] || v.Sinks != l.view.nsink) {
		if err := s.upload(&l.sink, n, 0, v.SinkTokens); err != nil {
			return err
		}
		l.sinkHost = &v.SinkTokens[0]
	} else if l.sink == nil {
		if err := s.upload(&l.sink, 16, 0, nil); err != nil {
			return err
		}
	}

	// Window ring: whole when it was reallocated, else the slots of the
	// newest tokens.
	stride := 2 * cfg.KVHeads * cfg.HeadDim * 2
	if n := len(v.WindowRing); n > 0 {
		if l.winHost != &v.WindowRing[0] || l.winCap != v.WindowCap {
			if err := s.upload(&l.win, n, 0, v.WindowRing); err != nil {
				return err
			}
			l.winHost, l.winCap = &v.WindowRing[0], v.WindowCap
		} else {
			for i := v.Window - min(appended, v.Window); i < v.Window; i++ {
				slot := (v.WindowStart + i) % v.WindowCap
				if err := s.pool.dev.Write(l.win, slot*stride, v.WindowRing[slot*stride:(slot+1)*stride]); err != nil {
					return err
				}
			}
		}
	} else if l.win == nil {
		if err := s.upload(&l.win, 16, 0, nil); err != nil {
			return err
		}
		l.winHost, l.winCap = nil, 0
	}
	l.view = counts{nsink: v.Sinks, compressed: v.Compressed, winStart: v.WindowStart, winLen: v.Window}
	return nil
}

func (s *Sequence) syncAll() error {
	for layer := range s.layers {
		if err := s.sync(layer, math.MaxInt32); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sequence) check() error {
	if s.closed {
		return kvcache.ErrClosed
	}
	return nil
}

// Append adds T tokens to a layer (encoded on the host) and uploads them.
// On a host error the cache is unchanged; on a device error the device copy
// is rebuilt on the next call that succeeds in syncing.
func (s *Sequence) Append(layer int, keys, values []float32) error {
	return s.appendWith(layer, len(keys), func() error { return s.host.Append(layer, keys, values) })
}

// AppendFP16 is Append for IEEE half inputs.
func (s *Sequence) AppendFP16(layer int, keys, values []uint16) error {
	return s.appendWith(layer, len(keys), func() error { return s.host.AppendFP16(layer, keys, values) })
}

// AppendBF16 is Append for bfloat16 inputs.
func (s *Sequence) AppendBF16(layer int, keys, values []uint16) error {
	return s.appendWith(layer, len(keys), func() error { return s.host.AppendBF16(layer, keys, values) })
}

func (s *Sequence) appendWith(layer, n int, f func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	if err := f(); err != nil {
		return err
	}
	T := n / (s.pool.cfg.KVHeads * s.pool.cfg.HeadDim)
	if err := s.sync(layer, T); err != nil {
		// Start the layer over on the device next time.
		s.freeLayer(&s.layers[layer])
		return fmt.Errorf("uploading layer %d: %w", layer, err)
	}
	return nil
}

// Attend computes exact causal attention for the queries of the layer's
// last T tokens on the device.
func (s *Sequence) Attend(layer int, queries, out []float32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	cfg := s.pool.cfg
	d, QH := cfg.HeadDim, cfg.QHeads
	row := QH * d
	if layer < 0 || layer >= len(s.layers) {
		return fmt.Errorf("%w: layer %d of %d", turboquant.ErrLength, layer, len(s.layers))
	}
	if len(queries) == 0 || len(queries)%row != 0 || len(out) != len(queries) {
		return fmt.Errorf("%w: %d queries and %d outputs are not the same whole number of [%d][%d] rows",
			turboquant.ErrLength, len(queries), len(out), QH, d)
	}
	for i, x := range queries {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("%w: query component %d is %v", turboquant.ErrNonFinite, i, x)
		}
	}
	T := len(queries) / row
	l := &s.layers[layer]
	var err error
	verr := s.host.ViewLayerBlocks(layer, func(v kvcache.LayerView) {
		n := v.Sinks + v.Compressed + v.Window
		if T > n {
			err = fmt.Errorf("%w: %d queries but layer %d holds %d tokens (append before attending)", turboquant.ErrLength, T, layer, n)
			return
		}
		if l.lc == nil || l.view != (counts{v.Sinks, v.Compressed, v.WindowStart, v.Window}) {
			err = fmt.Errorf("%w: layer %d's device copy is out of date (a failed upload)", ErrCUDA, layer)
			return
		}
		var qb *queryBatch
		if qb, err = s.batch(v, l, queries, T, n); err != nil {
			return
		}
		var red []float32
		if red, err = s.pool.exec.attend(s, l, qb); err != nil {
			return
		}
		err = finishOutputs(v, red, out, T, QH, d)
	})
	if verr != nil {
		return verr
	}
	return err
}

// batch prepares the kernels' query input for T queries over n tokens.
func (s *Sequence) batch(v kvcache.LayerView, l *devLayer, queries []float32, T, n int) (*queryBatch, error) {
	cfg := s.pool.cfg
	qb, err := prepareQueries(v, l.lc, queries, T, cfg.QHeads, cfg.HeadDim)
	if err != nil {
		return nil, err
	}
	qb.scale = cfg.Scale
	qb.chunk = s.pool.Chunk
	fixed := sharedFloats(qb.g, cfg.HeadDim, qb.P, len(l.lc.cent))
	if qb.chunk <= 0 {
		qb.chunk = chunkFor(n, cfg.KVHeads, T, qb.g, s.pool.dev.Multiprocessors(), fixed)
	}
	drift := l.lc.ksd > 0
	for qb.chunk > 32 && fixed+qb.g*qb.chunk+driftFloats(drift, qb.g, qb.chunk, cfg.BlockTokens) > maxSharedBytes/4 {
		qb.chunk -= 32 // the drift scores' share of shared memory
	}
	qb.nsplit = (n + qb.chunk - 1) / qb.chunk
	return qb, nil
}

// KernelTime runs the attention kernels of one decode step (one query per
// query head, queries [QHeads][HeadDim]) reps times on the device and
// returns the device milliseconds per step: the kernels alone, without
// query preparation or transfers. For benchmarks.
func (s *Sequence) KernelTime(layer int, queries []float32, reps int) (float32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return 0, err
	}
	cfg := s.pool.cfg
	if layer < 0 || layer >= len(s.layers) || len(queries) != cfg.QHeads*cfg.HeadDim || reps < 1 {
		return 0, fmt.Errorf("%w: kernel timing of layer %d with %d query floats", turboquant.ErrLength, layer, len(queries))
	}
	l := &s.layers[layer]
	var ms float32
	var err error
	verr := s.host.ViewLayerBlocks(layer, func(v kvcache.LayerView) {
		n := v.Sinks + v.Compressed + v.Window
		if l.lc == nil || n == 0 {
			err = fmt.Errorf("%w: layer %d is empty", turboquant.ErrLength, layer)
			return
		}
		var qb *queryBatch
		if qb, err = s.batch(v, l, queries, 1, n); err != nil {
			return
		}
		var e deviceExecutor
		if _, _, err = e.launch(s, l, qb, 1); err != nil { // warm up, upload the queries
			return
		}
		ms, err = s.pool.dev.Time(func() error { _, _, err := e.launch(s, l, qb, reps); return err })
	})
	if verr != nil {
		return 0, verr
	}
	return ms / float32(reps), err
}

// deviceExecutor launches the kernels.
type deviceExecutor struct{}

func (e deviceExecutor) attend(s *Sequence, l *devLayer, qb *queryBatch) ([]float32, error) {
	red, rows, err := e.launch(s, l, qb, 1)
	if err != nil {
		return nil, err
	}
	out := make([]float32, rows*(4+2*qb.d))
	return out, s.pool.dev.ReadFloat32s(out, red, 0)
}

// launch uploads the queries and queues the partial and reduce kernels reps
// times; it returns the buffer the reduced rows land in.
func (deviceExecutor) launch(s *Sequence, l *devLayer, qb *queryBatch, reps int) (*Buffer, int, error) {
	dev, cfg := s.pool.dev, s.pool.cfg
	H, d := cfg.KVHeads, qb.d
	rows := qb.T * H * qb.g
	stride := 4 + 2*d
	bufs := []struct {
		name string
		data []float32
	}{{"qrot", qb.qrot}, {"qproj", qb.qproj}, {"qraw", qb.qraw}, {"qmu", qb.qmu}}
	dbuf := make([]*Buffer, len(bufs))
	for i, b := range bufs {
		var err error
		if dbuf[i], err = s.scratchBuffer(b.name, 4*len(b.data)); err != nil {
			return nil, 0, err
		}
		if err := dev.WriteFloat32s(dbuf[i], 0, b.data); err != nil {
			return nil, 0, err
		}
	}
	part, err := s.scratchBuffer("part", 4*rows*qb.nsplit*stride)
	if err != nil {
		return nil, 0, err
	}
	red, err := s.scratchBuffer("reduced", 4*rows*stride)
	if err != nil {
		return nil, 0, err
	}
	shared := 4 * (sharedFloats(qb.g, d, qb.P, len(l.lc.cent)) + qb.g*qb.chunk + driftFloats(l.lc.ksd > 0, qb.g, qb.chunk, cfg.BlockTokens))
	v := l.view
	for range reps {
		err = dev.launch("tq_attend_partial", dim3{uint32(qb.nsplit), uint32(H), uint32(qb.T)}, dim3{threadsPerBlock, 1, 1}, uint32(shared),
			l.klay, l.vlay, l.cent, int32(len(l.lc.cent)), l.table, int32(cfg.BlockTokens), int32(H),
			int32(l.lc.klay[1]), int32(l.lc.vlay[1]), int32(l.lc.ksd), int32(l.lc.vsd), l.sink, int32(v.nsink), l.win,
			int32(v.winStart), int32(max(l.winCap, 1)),
			int32(v.winLen), int32(v.compressed), dbuf[0], dbuf[1], dbuf[2], dbuf[3],
			int32(qb.T), int32(qb.g), int32(d), int32(qb.P), qb.scale, int32(qb.chunk), int32(qb.nsplit), part)
		if err != nil {
			return nil, 0, err
		}
		if err := dev.launch("tq_attend_reduce", dim3{uint32(rows), 1, 1}, dim3{threadsPerBlock, 1, 1}, 0,
			part, int32(qb.nsplit), int32(d), red); err != nil {
			return nil, 0, err
		}
	}
	return red, rows, nil
}

// scratchBuffer returns a per-sequence device buffer of at least n bytes.
func (s *Sequence) scratchBuffer(name string, n int) (*Buffer, error) {
	if s.scratch == nil {
		s.scratch = map[string]*Buffer{}
	}
	b := s.scratch[name]
	if b != nil && b.Size() >= n {
		return b, nil
	}
	s.free(&b)
	b, err := s.pool.dev.Alloc(max(n, 16) + n/4)
	if err != nil {
		delete(s.scratch, name)
		return nil, err
	}
	s.scratch[name] = b
	return b, nil
}

// Logits writes one query's scaled logits against every token of a layer.
// It is the validation path and runs on the host over the same codes.
func (s *Sequence) Logits(layer, qHead int, query, dst []float32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	return s.host.Logits(layer, qHead, query, dst)
}

// Len is the number of tokens appended to every layer.
func (s *Sequence) Len() int { return s.host.Len() }

// Truncate drops every token at position ≥ n.
func (s *Sequence) Truncate(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	if err := s.host.Truncate(n); err != nil {
		return err
	}
	for layer := range s.layers {
		if err := s.sync(layer, 0); err != nil {
			s.freeLayer(&s.layers[layer])
			return err
		}
	}
	return nil
}

// Reset drops every token and releases the device memory.
func (s *Sequence) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.host.Reset()
	s.releaseDevice()
}

func (s *Sequence) releaseDevice() {
	for i := range s.layers {
		s.freeLayer(&s.layers[i])
	}
	for name, b := range s.scratch {
		s.free(&b)
		delete(s.scratch, name)
	}
}

// Close releases the sequence's host and device memory.
func (s *Sequence) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	s.closed = true
	s.releaseDevice()
	return s.host.Close()
}

// WriteTo writes the turboquant snapshot of the sequence.
func (s *Sequence) WriteTo(w io.Writer) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return 0, err
	}
	return s.host.WriteTo(w)
}

// Fork returns a new sequence with the same tokens; the host shares blocks
// copy-on-write, the device copy is uploaded afresh.
func (s *Sequence) Fork() (*Sequence, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	hf, err := s.host.Fork()
	if err != nil {
		return nil, err
	}
	f := s.pool.wrap(hf)
	if err := f.syncAll(); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// Stats reports the host sequence's memory (the device holds the same
// bytes plus small per-layer tables).
func (s *Sequence) Stats() kvcache.Stats { return s.host.Stats() }
