package metal

import (
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
)

// Pool is a KV cache pool whose sequences keep their tokens in
// shared-storage device buffers and run attention on the GPU, with the same
// configuration, presets, budget and snapshot format as kvcache.Pool (and
// cuda.Pool).
//
// Each Sequence is a kvcache.Sequence that does the bookkeeping (token
// placement, the fp16 window and sinks, encoding on the host, forks,
// truncation, snapshots) plus a device copy of every byte attention reads:
// the compressed blocks (in one arena buffer per layer), the sink and
// window tokens, the code layouts and codebooks. Appends copy what changed;
// Attend reads only device buffers. Snapshots are the host sequence's, so
// a snapshot taken here restores into a CPU or CUDA pool and back.
type Pool struct {
	dev  *Device
	host *kvcache.Pool
	cfg  kvcache.Config
	// Chunk fixes the tokens per split (0: chosen per call from the context
	// length).
	Chunk int
}

// Apple GPUs give a threadgroup 32 KiB of threadgroup memory.
const maxThreadgroupBytes = 32 << 10

// NewPool returns a device pool for cfg with a budget in bytes (≤ 0:
// unlimited), counted as kvcache.Pool counts it. Configurations the kernels
// do not handle (PolarQuant codes, Prod-quantized values, more than 16
// query heads per KV head, query working sets beyond threadgroup memory)
// give ErrUnsupported.
func NewPool(dev *Device, cfg kvcache.Config, budget int64) (*Pool, error) {
	host, err := kvcache.NewPool(cfg, budget)
	if err != nil {
		return nil, err
	}
	cfg = host.Config()
	if err := checkSupported(cfg); err != nil {
		return nil, err
	}
	return &Pool{dev: dev, host: host, cfg: cfg}, nil
}

func checkSupported(cfg kvcache.Config) error {
	g := cfg.QHeads / cfg.KVHeads
	if g > maxGroup {
		return fmt.Errorf("%w: %d query heads per KV head (at most %d)", ErrUnsupported, g, maxGroup)
	}
	codecs := []kvcache.LayerStorage{{Keys: cfg.Keys, Values: cfg.Values}}
	for _, o := range cfg.Overrides {
		codecs = append(codecs, o)
	}
	guard := cfg.Guard.Budget > 0
	if guard {
		if k := cfg.Guard.Keys; k.Kind == kvcache.Quantized && k.Method == turboquant.Prod {
			return fmt.Errorf("%w: the guard's keys with QJL sketches", ErrUnsupported)
		}
		codecs = append(codecs, kvcache.LayerStorage{Keys: cfg.Guard.Keys, Values: cfg.Guard.Values})
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
	logitFloats := 2*g*cfg.HeadDim + g*P + g*driftBlocks(cfg) // qs, qr, qp, ds
	if guard {
		logitFloats += g * cfg.HeadDim // qu
	}
	if 4*logitFloats > maxThreadgroupBytes || 4*g*32 > maxThreadgroupBytes-4*threadsPerGroup {
		return fmt.Errorf("%w: head dim %d with %d query heads per KV head needs more than %d KiB of threadgroup memory",
			ErrUnsupported, cfg.HeadDim, g, maxThreadgroupBytes>>10)
	}
	return nil
}

// driftBlocks is how many blocks' key drift scores tq_logits keeps in
// threadgroup memory per query head: as many as a threadgroup's tokens can
// touch (0 without BlockCenter).
func driftBlocks(cfg kvcache.Config) int {
	if !cfg.BlockCenter {
		return 0
	}
	return threadsPerGroup/cfg.BlockTokens + 2
}

// Config is the pool's configuration, defaults filled in.
func (p *Pool) Config() kvcache.Config { return p.cfg }

// Host is the CPU pool that does the sequences' bookkeeping.
func (p *Pool) Host() *kvcache.Pool { return p.host }

// NewSequence returns an empty sequence.
func (p *Pool) NewSequence() *Sequence { return p.wrap(p.host.NewSequence()) }

// ReadSequence restores a snapshot (from this pool, a kvcache.Pool or a
// CUDA pool of the same configuration) and copies it to the device.
func (p *Pool) ReadSequence(r io.Reader) (*Sequence, error) {
	hs, err := p.host.ReadSequence(r)
	if err != nil {
		return nil, err
	}
	s := p.wrap(hs)
	if err := s.syncAll(); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

func (p *Pool) wrap(hs *kvcache.Sequence) *Sequence {
	return &Sequence{pool: p, host: hs, layers: make([]devLayer, p.cfg.Layers)}
}

// Sequence is one sequence of a device pool; it implements kvcache.Cache.
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
	arena            *Buffer // the blocks back to back, in order
	btab             *Buffer // the block table: btInts int32s per (block, KV head)
	blocks           []devBlock
	sink             *Buffer
	sinkHost         *byte
	win              *Buffer
	winHost          *byte
	winCap           int
	view             counts
}

type devBlock struct {
	host   *byte // the host block it copies (kept, so its address is not reused)
	off    int   // where it sits in the arena
	synced int   // tokens copied
}

// Block table entries (BT_* in attend.metal).
const (
	btK, btV, btKD, btVD, btUp = 0, 1, 2, 3, 4
	btInts                     = 5
)

// counts are a layer's token counts as of the last sync.
type counts struct{ nsink, compressed, winStart, winLen int }

func (s *Sequence) freeLayer(l *devLayer) {
	for _, b := range []*Buffer{l.klay, l.vlay, l.cent, l.arena, l.btab, l.sink, l.win} {
		s.pool.dev.Free(b)
	}
	*l = devLayer{}
}

// ensure makes *b a buffer of at least n bytes (min 16); a new buffer
// starts with the old one's bytes when keep is set.
func (s *Sequence) ensure(b **Buffer, n int, keep bool) error {
	n = max(n, 16)
	if *b != nil && (*b).Size() >= n {
		return nil
	}
	nb, err := s.pool.dev.Alloc(n)
	if err != nil {
		return err
	}
	if *b != nil {
		if keep {
			copy(nb.Bytes(), (*b).Bytes())
		}
		s.pool.dev.Free(*b)
	}
	*b = nb
	return nil
}

// sync brings layer's device copy up to date with the host sequence after
// an operation that appended `appended` tokens (0 for truncation).
func (s *Sequence) sync(layer, appended int) error {
	l := &s.layers[layer]
	var err error
	verr := s.host.ViewLayerBlocks(layer, func(v kvcache.LayerView) { err = s.syncView(l, v, appended) })
	if verr != nil {
		return verr
	}
	return err
}

func (s *Sequence) syncView(l *devLayer, v kvcache.LayerView, appended int) error {
	cfg := s.pool.cfg
	if !v.Appended {
		s.freeLayer(l)
		return nil
	}
	if l.lc == nil {
		lc, err := buildLayerCodecs(v, cfg)
		if err != nil {
			return err
		}
		cent := append(lc.cent, 0)
		for _, t := range []struct {
			b   **Buffer
			src []byte
		}{{&l.klay, int32Bytes(lc.klay)}, {&l.vlay, int32Bytes(lc.vlay)}, {&l.cent, f32Bytes(cent)}} {
			if err := s.ensure(t.b, len(t.src), false); err != nil {
				return err
			}
			copy((*t.b).Bytes(), t.src)
		}
		l.lc = lc
	}
	if err := s.syncBlocks(l, v); err != nil {
		return err
	}

	// Sinks: small, copied whole when they change.
	if n := len(v.SinkTokens); n > 0 && (l.sinkHost != &v.SinkTokens[0] || v.Sinks != l.view.nsink) {
		if err := s.ensure(&l.sink, n, false); err != nil {
			return err
		}
		copy(l.sink.Bytes(), v.SinkTokens)
		l.sinkHost = &v.SinkTokens[0]
	} else if err := s.ensure(&l.sink, 16, false); err != nil {
		return err
	}

	// Window ring: whole when it was reallocated, else the newest slots.
	stride := 2 * cfg.KVHeads * cfg.HeadDim * 2
	if n := len(v.WindowRing); n > 0 {
		if l.winHost != &v.WindowRing[0] || l.winCap != v.WindowCap {
			if err := s.ensure(&l.win, n, false); err != nil {
				return err
			}
			copy(l.win.Bytes(), v.WindowRing)
			l.winHost, l.winCap = &v.WindowRing[0], v.WindowCap
		} else {
			for i := v.Window - min(appended, v.Window); i < v.Window; i++ {
				slot := (v.WindowStart + i) % v.WindowCap
				copy(l.win.Bytes()[slot*stride:(slot+1)*stride], v.WindowRing[slot*stride:])
			}
		}
	} else {
		if err := s.ensure(&l.win, 16, false); err != nil {
			return err
		}
		l.winHost, l.winCap = nil, 0
	}
	l.view = counts{nsink: v.Sinks, compressed: v.Compressed, winStart: v.WindowStart, winLen: v.Window}
	return nil
}

// syncBlocks copies the blocks into the arena, back to back (it grows by
// doubling): a block that is new, replaced (copy-on-write), moved (a block
// before it changed size) or gained tokens is copied whole, and its block
// table rows are written when it is placed.
func (s *Sequence) syncBlocks(l *devLayer, v kvcache.LayerView) error {
	cfg := s.pool.cfg
	B, H := cfg.BlockTokens, cfg.KVHeads
	end := 0
	for _, hb := range v.Blocks {
		end += len(hb)
	}
	if end > math.MaxInt32 {
		return fmt.Errorf("%w: a layer of %d block bytes (the block table holds 31-bit offsets)", ErrUnsupported, end)
	}
	if l.arena == nil || l.arena.Size() < end {
		if err := s.ensure(&l.arena, max(end, 2*l.arena.Size()), true); err != nil {
			return err
		}
	}
	if need := len(v.Blocks) * H * btInts * 4; l.btab == nil || l.btab.Size() < need {
		if err := s.ensure(&l.btab, max(need, 2*l.btab.Size()), true); err != nil {
			return err
		}
	}
	l.blocks = l.blocks[:min(len(l.blocks), len(v.Blocks))]
	off := 0
	for i, hb := range v.Blocks {
		tokens := min(B, v.Compressed-i*B)
		if i == len(l.blocks) {
			l.blocks = append(l.blocks, devBlock{})
		}
		db := &l.blocks[i]
		if db.host != &hb[0] || db.off != off {
			row, err := blockRows(v, i, off, B, H)
			if err != nil {
				return err
			}
			copy(l.btab.Bytes()[i*H*btInts*4:], int32Bytes(row))
			db.host, db.off, db.synced = &hb[0], off, -1
		}
		if tokens != db.synced {
			copy(l.arena.Bytes()[off:], hb)
			db.synced = tokens
		}
		off += len(hb)
	}
	return nil
}

// blockRows returns block i's block table rows, with the block at off in
// the arena, after checking that every code it points at lies inside the
// block (the kernels trust the table).
func blockRows(v kvcache.LayerView, i, off, B, H int) ([]int32, error) {
	lay, n := v.Layouts[i], len(v.Blocks[i])
	row := make([]int32, H*btInts)
	inside := func(at, size int) (int32, error) {
		if at < 0 || size < 0 || at+size > n {
			return 0, fmt.Errorf("%w: block %d puts %d code bytes at %d of %d", ErrUnsupported, i, size, at, n)
		}
		return int32(off + at), nil
	}
	for h := range H {
		e := row[h*btInts : (h+1)*btInts]
		ks, vs := v.KeyCodeSize, v.ValueCodeSize
		if lay.Upgraded != nil && lay.Upgraded[h] {
			ks, vs, e[btUp] = v.UpKeyCodeSize, v.UpValueCodeSize, 1
		}
		var err error
		if e[btK], err = inside(lay.KeyOffsets[h], B*ks); err != nil {
			return nil, err
		}
		if e[btV], err = inside(lay.ValueOffsets[h], B*vs); err != nil {
			return nil, err
		}
		e[btKD], e[btVD] = -1, -1
		if lay.KeyDrift != nil {
			if e[btKD], err = inside(lay.KeyDrift[h], v.KeyCodeSize); err != nil {
				return nil, err
			}
		}
		if lay.ValueDrift != nil {
			if e[btVD], err = inside(lay.ValueDrift[h], v.ValueCodeSize); err != nil {
				return nil, err
			}
		}
	}
	return row, nil
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

// Append adds T tokens to a layer (encoded on the host) and copies them to
// the device. On a host error the cache is unchanged; on a device error the
// layer's device copy is rebuilt by the next successful sync.
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
		s.freeLayer(&s.layers[layer])
		return fmt.Errorf("copying layer %d to the device: %w", layer, err)
	}
	return nil
}

// attendArgs is AttendArgs in attend.metal.
type attendArgs struct {
	B, H, NSink, WinStart, WinCap, WinLen, Compressed int32
	T, G, D, P, Chunk, NSplit, N, NAcc, Drift         int32
	Scale                                             float32
}

// Attend computes exact causal attention for the queries of the layer's
// last T tokens on the device.
func (s *Sequence) Attend(layer int, queries, out []float32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.pool.cfg
	row := cfg.QHeads * cfg.HeadDim
	if len(queries) == 0 || len(queries)%row != 0 || len(out) != len(queries) {
		return fmt.Errorf("%w: %d queries and %d outputs are not the same whole number of [%d][%d] rows",
			turboquant.ErrLength, len(queries), len(out), cfg.QHeads, cfg.HeadDim)
	}
	T := len(queries) / row
	return s.onDevice(layer, queries, T, func(v kvcache.LayerView, l *devLayer, qb *queryBatch, args *attendArgs) error {
		// As the CPU's Attend: the guard measures later blocks against
		// the queries attended with (a no-op without a guard).
		if err := s.host.RecordQueries(layer, queries); err != nil {
			return err
		}
		red, err := s.attendDispatches(l, qb, args, 1)
		if err != nil {
			return err
		}
		rows := T * cfg.QHeads
		reduced := make([]float32, rows*(4+l.lc.nacc*cfg.HeadDim))
		getFloat32s(reduced, red.Bytes())
		return finishOutputs(v, reduced, out, T, cfg.QHeads, cfg.HeadDim, l.lc.nacc)
	})
}

// GroupLogits writes, for one query per query head (queries [QHeads]
// [HeadDim]), the scaled logits against every token of a layer computed by
// tq_logits on the device: dst [QHeads][Len]. It is what Logits computes on
// the host, for every head at once.
func (s *Sequence) GroupLogits(layer int, queries, dst []float32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.pool.cfg
	if len(queries) != cfg.QHeads*cfg.HeadDim {
		return fmt.Errorf("%w: %d query floats, want [%d][%d]", turboquant.ErrLength, len(queries), cfg.QHeads, cfg.HeadDim)
	}
	return s.onDevice(layer, queries, 1, func(v kvcache.LayerView, l *devLayer, qb *queryBatch, args *attendArgs) error {
		n := int(args.N)
		if len(dst) != cfg.QHeads*n {
			return fmt.Errorf("%w: %d logits for [%d][%d]", turboquant.ErrLength, len(dst), cfg.QHeads, n)
		}
		ds, err := s.attendPlan(l, qb, args)
		if err != nil {
			return err
		}
		if err := s.pool.dev.run(ds[:1]); err != nil {
			return err
		}
		getFloat32s(dst, s.scratch["logits"].Bytes())
		return nil
	})
}

// onDevice checks a call's layer and queries, prepares the query batch and
// the kernels' arguments and calls f under the host sequence's view.
func (s *Sequence) onDevice(layer int, queries []float32, T int, f func(kvcache.LayerView, *devLayer, *queryBatch, *attendArgs) error) error {
	if err := s.check(); err != nil {
		return err
	}
	cfg := s.pool.cfg
	if layer < 0 || layer >= len(s.layers) {
		return fmt.Errorf("%w: layer %d of %d", turboquant.ErrLength, layer, len(s.layers))
	}
	for i, x := range queries {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("%w: query component %d is %v", turboquant.ErrNonFinite, i, x)
		}
	}
	l := &s.layers[layer]
	var err error
	verr := s.host.ViewLayerBlocks(layer, func(v kvcache.LayerView) {
		n := v.Sinks + v.Compressed + v.Window
		if T > n {
			err = fmt.Errorf("%w: %d queries but layer %d holds %d tokens (append before attending)", turboquant.ErrLength, T, layer, n)
			return
		}
		if l.lc == nil || l.view != (counts{v.Sinks, v.Compressed, v.WindowStart, v.Window}) {
			err = fmt.Errorf("%w: layer %d's device copy is out of date (a failed copy)", ErrMetal, layer)
			return
		}
		var qb *queryBatch
		if qb, err = prepareQueries(v, l.lc, queries, T, cfg.QHeads, cfg.HeadDim); err != nil {
			return
		}
		qb.scale = cfg.Scale
		qb.chunk = s.pool.Chunk
		if qb.chunk <= 0 {
			qb.chunk = chunkFor(n, cfg.KVHeads, T, qb.g)
		}
		qb.chunk = min(qb.chunk, maxChunk(qb.g))
		qb.nsplit = (n + qb.chunk - 1) / qb.chunk
		args := &attendArgs{B: int32(cfg.BlockTokens), H: int32(cfg.KVHeads), NSink: int32(l.view.nsink),
			WinStart: int32(l.view.winStart), WinCap: int32(max(l.winCap, 1)), WinLen: int32(l.view.winLen),
			Compressed: int32(l.view.compressed), T: int32(T), G: int32(qb.g), D: int32(cfg.HeadDim), P: int32(qb.P),
			Chunk: int32(qb.chunk), NSplit: int32(qb.nsplit), N: int32(n), NAcc: int32(l.lc.nacc), Scale: cfg.Scale}
		if l.lc.drift {
			args.Drift = 1
		}
		err = f(v, l, qb, args)
	})
	if verr != nil {
		return verr
	}
	return err
}

// chunkFor picks the tokens per split: enough splits to keep the GPU's
// cores busy (about 64 threadgroups in flight), at least 32 tokens each.
func chunkFor(n, H, T, g int) int {
	want := max(1, 64/max(1, H*T))
	c := (n + want - 1) / want
	return max(32, (c+31)&^31)
}

// maxChunk is the most tokens a split's weights [g][chunk] may take of
// threadgroup memory.
func maxChunk(g int) int { return (maxThreadgroupBytes/4 - threadsPerGroup) / g &^ 31 }

// attendPlan writes the queries into the sequence's scratch buffers and
// returns the three dispatches of one attention call.
func (s *Sequence) attendPlan(l *devLayer, qb *queryBatch, a *attendArgs) ([]dispatch, error) {
	d, g, T, n := qb.d, qb.g, qb.T, int(a.N)
	rows := T * int(a.H) * g
	stride := 4 + int(a.NAcc)*d
	quFloats := 0 // the guard's prepared queries
	if a.NAcc == 3 {
		quFloats = g * d
	}
	buf := map[string]*Buffer{}
	for _, x := range []struct {
		name string
		data []float32
	}{{"qrot", qb.qrot}, {"qproj", qb.qproj}, {"qraw", qb.qraw}, {"qup", qb.qup}, {"qmu", qb.qmu}} {
		b, err := s.scratchBuffer(x.name, 4*len(x.data))
		if err != nil {
			return nil, err
		}
		putFloat32s(b.Bytes(), x.data)
		buf[x.name] = b
	}
	for _, x := range []struct {
		name string
		size int
	}{{"logits", 4 * rows * n}, {"part", 4 * rows * qb.nsplit * stride}, {"reduced", 4 * rows * stride}} {
		b, err := s.scratchBuffer(x.name, x.size)
		if err != nil {
			return nil, err
		}
		buf[x.name] = b
	}
	return []dispatch{
		{kernel: "tq_logits", groups: [3]int{(n + threadsPerGroup - 1) / threadsPerGroup, int(a.H), T}, threads: threadsPerGroup,
			binds: []binding{bytesArg(a), bufArg(l.klay), bufArg(l.cent), bufArg(l.arena), bufArg(l.btab), bufArg(l.sink),
				bufArg(l.win), bufArg(buf["qrot"]), bufArg(buf["qproj"]), bufArg(buf["qraw"]), bufArg(buf["qup"]),
				bufArg(buf["qmu"]), bufArg(buf["logits"])},
			tgmem: []int{4 * g * d, 4 * g * d, 4 * g * qb.P, 4 * quFloats, 4 * g * driftBlocks(s.pool.cfg)}},
		{kernel: "tq_attend_partial", groups: [3]int{qb.nsplit, int(a.H), T}, threads: threadsPerGroup,
			binds: []binding{bytesArg(a), bufArg(l.vlay), bufArg(l.cent), bufArg(l.arena), bufArg(l.btab), bufArg(l.sink),
				bufArg(l.win), bufArg(buf["logits"]), bufArg(buf["part"])},
			tgmem: []int{4 * g * qb.chunk, 4 * threadsPerGroup}},
		{kernel: "tq_attend_reduce", groups: [3]int{rows, 1, 1}, threads: threadsPerGroup,
			binds: []binding{bytesArg(a), bufArg(buf["part"]), bufArg(buf["reduced"])}},
	}, nil
}

// attendDispatches runs the attention dispatches reps times in one command
// buffer and returns the buffer the reduced rows land in.
func (s *Sequence) attendDispatches(l *devLayer, qb *queryBatch, a *attendArgs, reps int) (*Buffer, error) {
	ds, err := s.attendPlan(l, qb, a)
	if err != nil {
		return nil, err
	}
	all := make([]dispatch, 0, 3*reps)
	for range reps {
		all = append(all, ds...)
	}
	if err := s.pool.dev.run(all); err != nil {
		return nil, err
	}
	return s.scratch["reduced"], nil
}

// KernelTime runs the attention dispatches of one decode step (queries
// [QHeads][HeadDim]) reps times in one command buffer and returns the
// milliseconds per step, host wall clock from commit to completion
// included: the kernels without query preparation. For benchmarks.
func (s *Sequence) KernelTime(layer int, queries []float32, reps int) (float32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.pool.cfg
	if len(queries) != cfg.QHeads*cfg.HeadDim || reps < 1 {
		return 0, fmt.Errorf("%w: kernel timing with %d query floats and %d reps", turboquant.ErrLength, len(queries), reps)
	}
	var ms float32
	err := s.onDevice(layer, queries, 1, func(_ kvcache.LayerView, l *devLayer, qb *queryBatch, a *attendArgs) error {
		if _, err := s.attendDispatches(l, qb, a, 1); err != nil { // warm up
			return err
		}
		start := time.Now()
		if _, err := s.attendDispatches(l, qb, a, reps); err != nil {
			return err
		}
		ms = float32(time.Since(start).Seconds() * 1e3 / float64(reps))
		return nil
	})
	return ms, err
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
	s.pool.dev.Free(b)
	delete(s.scratch, name)
	b, err := s.pool.dev.Alloc(max(n, 16) + n/4)
	if err != nil {
		return nil, err
	}
	s.scratch[name] = b
	return b, nil
}

// Logits writes one query's scaled logits against every token of a layer.
// It is the validation path and runs on the host over the same codes
// (GroupLogits is the device's).
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
		s.pool.dev.Free(b)
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
// copy-on-write, the device copy is made afresh.
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
