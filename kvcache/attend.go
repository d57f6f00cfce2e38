package kvcache

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// tokenSource walks one KV head's tokens of a layer in position order,
// handing out each token's key and value bytes and whether they are fp16
// (sinks, window) or codes of the head's codecs (the base ones, or the
// guard's upgraded ones where the token's block says so).
type tokenSource struct {
	s    *Sequence
	l    *seqLayer
	h    int
	fp16 fp16Store
}

// tokenKind says how a token's bytes are stored.
type tokenKind uint8

const (
	baseToken     tokenKind = iota // codes of the head's codecs
	rawToken                       // fp16 (sinks, window)
	upgradedToken                  // codes of the guard's upgraded codecs
)

// each calls f for every token position in [0, limit) with its key and value
// bytes, in position order.
func (ts tokenSource) each(limit int, f func(pos int, k, v []byte, kind tokenKind)) {
	cfg := ts.s.pool.cfg
	l, h, d, H, B := ts.l, ts.h, cfg.HeadDim, cfg.KVHeads, cfg.BlockTokens
	pos := 0
	for ; pos < l.nSink && pos < limit; pos++ {
		k, v := fp16Vec(l.sink, pos, h, d, H)
		f(pos, k, v, rawToken)
	}
	end := min(limit, l.nSink+l.compressed)
	for ; pos < end; pos++ {
		c := pos - l.nSink
		b := l.blocks[c/B]
		lay, j, kind := b.lay, c%B, baseToken
		if lay.upgraded(h) {
			kind = upgradedToken
		}
		ko, vo := lay.kOff[h]+j*lay.kSize[h], lay.vOff[h]+j*lay.vSize[h]
		f(pos, b.data[ko:ko+lay.kSize[h]], b.data[vo:vo+lay.vSize[h]], kind)
	}
	for ; pos < limit; pos++ {
		k, v := fp16Vec(l.win, ts.s.winSlot(l, pos-l.nSink-l.compressed), h, d, H)
		f(pos, k, v, rawToken)
	}
}

func (s *Sequence) source(layer, h int) tokenSource {
	return tokenSource{s: s, l: &s.layers[layer], h: h, fp16: fp16Store{s.pool.cfg.HeadDim}}
}

// Attend computes exact attention for the queries of the layer's last T
// tokens.
func (s *Sequence) Attend(layer int, queries, out []float32) error {
	cfg := s.pool.cfg
	row := cfg.QHeads * cfg.HeadDim
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkLayer(layer); err != nil {
		return err
	}
	l := &s.layers[layer]
	n := l.len()
	if len(queries) == 0 || len(queries)%row != 0 || len(out) != len(queries) {
		return fmt.Errorf("%w: %d queries and %d outputs are not the same whole number of [%d][%d] rows",
			ErrLength, len(queries), len(out), cfg.QHeads, cfg.HeadDim)
	}
	T := len(queries) / row
	if T > n {
		return fmt.Errorf("%w: %d queries but layer %d holds %d tokens (append before attending)", ErrLength, T, layer, n)
	}
	if i := checkFinite(queries); i >= 0 {
		return fmt.Errorf("%w: query component %d is %v", ErrNonFinite, i, queries[i])
	}
	s.recordQueries(layer, queries)
	g := cfg.QHeads / cfg.KVHeads
	d := cfg.HeadDim
	H := cfg.KVHeads
	workers := runtime.GOMAXPROCS(0)
	if n*T*H*d < parallelAttendMin {
		workers = 1
	}
	// The row path takes the heads of a worker together (one sequential
	// walk over the blocks); the per-code path goes head by head. Every
	// head of a layer has codecs of the same kinds, so head 0 decides.
	rows := usesRows(l.heads[0])
	if rows && workers > H {
		// Fewer KV heads than cores: split the context instead.
		heads := make([]int, H)
		rss := make([]*rowState, workers*H)
		for i := range heads {
			heads[i] = i
		}
		for i := range rss {
			rss[i] = s.pool.rowState(n)
			defer s.pool.rowStates.Put(rss[i])
		}
		s.attendSplit(l, heads, rss, workers, queries, out, T, n)
		return nil
	}
	workers = min(workers, H)
	var wg sync.WaitGroup
	for w := range workers {
		heads := make([]int, 0, H/workers+1)
		for h := w * H / workers; h < (w+1)*H/workers; h++ {
			heads = append(heads, h)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if rows {
				rss := make([]*rowState, len(heads))
				for k := range rss {
					rss[k] = s.pool.rowState(n)
					defer s.pool.rowStates.Put(rss[k])
				}
				s.attendRows(l, heads, rss, queries, out, T, n)
				return
			}
			st := s.pool.attendState(n)
			defer s.pool.states.Put(st)
			for _, h := range heads {
				hc := l.heads[h]
				ts := s.source(layer, h)
				st.bind(hc, ts.fp16)
				for i := range T {
					q0 := (i*cfg.QHeads + h*g) * d
					st.attendGroup(ts, hc, queries[q0:q0+g*d], out[q0:q0+g*d], n-T+i+1, cfg.Scale)
				}
			}
		}()
	}
	wg.Wait()
	return nil
}

// parallelAttendMin is the work (tokens × queries × KV heads × head dim)
// above which Attend spreads KV heads (or, with fewer heads than cores,
// stretches of the context) over goroutines: about 1 ms of single-core
// decode, well above the cost of starting them.
var parallelAttendMin = 1 << 22

// rowState returns pooled row-path working memory for n tokens.
func (p *Pool) rowState(n int) *rowState {
	rs, ok := p.rowStates.Get().(*rowState)
	if !ok {
		rs = newRowState(p.cfg.QHeads/p.cfg.KVHeads, p.cfg.HeadDim)
	}
	rs.fit(n)
	return rs
}

// attendState is the working memory of one Attend call: prepared queries
// and one logit row per query head of a group, and the value accumulators.
type attendState struct {
	g, d       int
	kq, rawQ   []vecQuery
	ukq        []vecQuery // against the guard's upgraded key codec
	logits     [][]float32
	accCode    [][]float32 // in the value codec's domain
	accUp      [][]float32 // in the upgraded value codec's domain
	accRaw     [][]float32 // fp16 tokens, original domain
	tmp        []float32
	ws         []float32 // one token's softmax weights, per query head
	sum        []float64
	wCode      []float64 // softmax weight on compressed tokens, per query head
	qmu        []float32 // q·μ_k per query head (Center)
	boundCodec store
	boundUp    store
}

// attendState returns pooled working memory with logit rows for n tokens,
// so a decode step does not allocate.
func (p *Pool) attendState(n int) *attendState {
	if st, ok := p.states.Get().(*attendState); ok {
		for i, row := range st.logits {
			if cap(row) < n {
				st.logits[i] = make([]float32, n+n/4)
			}
			st.logits[i] = st.logits[i][:cap(st.logits[i])]
		}
		return st
	}
	return newAttendState(p.cfg.QHeads/p.cfg.KVHeads, p.cfg.HeadDim, n)
}

func newAttendState(g, d, n int) *attendState {
	st := &attendState{g: g, d: d, tmp: make([]float32, d), ws: make([]float32, g), sum: make([]float64, g),
		wCode: make([]float64, g), qmu: make([]float32, g)}
	for range g {
		st.logits = append(st.logits, make([]float32, n))
		st.accCode = append(st.accCode, make([]float32, d))
		st.accUp = append(st.accUp, make([]float32, d))
		st.accRaw = append(st.accRaw, make([]float32, d))
	}
	return st
}

func (st *attendState) bind(hc headStores, fp16 fp16Store) {
	if st.boundCodec != hc.keys.store {
		st.kq = st.kq[:0]
		st.rawQ = st.rawQ[:0]
		for range st.g {
			st.kq = append(st.kq, hc.keys.store.newQuery())
			st.rawQ = append(st.rawQ, fp16.newQuery())
		}
		st.boundCodec = hc.keys.store
	}
	if hc.upKeys.store != nil && st.boundUp != hc.upKeys.store {
		st.ukq = st.ukq[:0]
		for range st.g {
			st.ukq = append(st.ukq, hc.upKeys.store.newQuery())
		}
		st.boundUp = hc.upKeys.store
	}
}

// attendGroup computes the outputs of the g query heads that share one KV
// head, for one query position that sees limit tokens. Each token's key and
// value bytes are read once for the whole group.
func (st *attendState) attendGroup(ts tokenSource, hc headStores, q, out []float32, limit int, scale float32) {
	g, d := st.g, st.d
	for gi := range g {
		st.kq[gi].reset(q[gi*d : (gi+1)*d])
		st.rawQ[gi].reset(q[gi*d : (gi+1)*d])
		if hc.upKeys.store != nil {
			st.ukq[gi].reset(q[gi*d : (gi+1)*d])
		}
	}
	for gi := range g { // compressed keys are stored minus μ_k (Center)
		st.qmu[gi] = 0
		if hc.keys.mu != nil {
			st.qmu[gi] = float32(dot32(q[gi*d:(gi+1)*d], hc.keys.mu))
		}
	}
	ts.each(limit, func(pos int, k, _ []byte, kind tokenKind) {
		for gi := range g {
			var x float32
			switch kind {
			case rawToken:
				x = st.rawQ[gi].score(k)
			case baseToken:
				x = st.kq[gi].score(k) + st.qmu[gi]
			default:
				x = st.ukq[gi].score(k) + st.qmu[gi]
			}
			st.logits[gi][pos] = x * scale
		}
	})
	for gi := range g {
		row := st.logits[gi][:limit]
		m := float32(math.Inf(-1))
		for _, x := range row {
			m = max(m, x)
		}
		var sum float64
		for i, x := range row {
			e := float32(math.Exp(float64(x - m)))
			row[i] = e
			sum += float64(e)
		}
		st.sum[gi] = sum
		st.wCode[gi] = 0
		clear(st.accCode[gi])
		clear(st.accUp[gi])
		clear(st.accRaw[gi])
	}
	upgraded := false
	ts.each(limit, func(pos int, _, v []byte, kind tokenKind) {
		for gi := range g {
			st.ws[gi] = st.logits[gi][pos]
		}
		switch kind {
		case rawToken:
			ts.fp16.accumulate(st.accRaw, st.ws, v, st.tmp)
			return
		case baseToken:
			hc.values.store.accumulate(st.accCode, st.ws, v, st.tmp)
		default:
			hc.upValues.store.accumulate(st.accUp, st.ws, v, st.tmp)
			upgraded = true
		}
		for gi, w := range st.ws {
			st.wCode[gi] += float64(w)
		}
	})
	for gi := range g {
		o := out[gi*d : (gi+1)*d]
		hc.values.store.finish(st.tmp, st.accCode[gi])
		if upgraded {
			hc.upValues.store.finish(st.accUp[gi], st.accUp[gi])
			for j, x := range st.accUp[gi] {
				st.tmp[j] += x
			}
		}
		if hc.values.mu != nil { // compressed values are stored minus μ_v
			wc := float32(st.wCode[gi])
			for j, m := range hc.values.mu {
				st.tmp[j] += wc * m
			}
		}
		inv := float32(1 / st.sum[gi])
		for j := range o {
			o[j] = (st.tmp[j] + st.accRaw[gi][j]) * inv
		}
	}
}

// Logits writes the scaled logits of query (len HeadDim) for query head
// qHead against every token of the layer into dst (len ≥ the layer's length).
func (s *Sequence) Logits(layer, qHead int, query, dst []float32) error {
	cfg := s.pool.cfg
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkLayer(layer); err != nil {
		return err
	}
	l := &s.layers[layer]
	n := l.len()
	switch {
	case qHead < 0 || qHead >= cfg.QHeads:
		return fmt.Errorf("%w: query head %d of %d", ErrLength, qHead, cfg.QHeads)
	case len(query) != cfg.HeadDim:
		return fmt.Errorf("%w: query of %d, head dim %d", ErrLength, len(query), cfg.HeadDim)
	case len(dst) < n:
		return fmt.Errorf("%w: %d logits for %d tokens", ErrLength, len(dst), n)
	}
	if i := checkFinite(query); i >= 0 {
		return fmt.Errorf("%w: query component %d is %v", ErrNonFinite, i, query[i])
	}
	if n == 0 {
		return nil
	}
	h := qHead / (cfg.QHeads / cfg.KVHeads)
	ts := s.source(layer, h)
	if hc := l.heads[h]; usesRows(hc) {
		rs := newRowState(1, cfg.HeadDim)
		rs.logits, rs.stride = dst, len(dst) // one query row: score straight into dst
		rs.prepare(hc, query, cfg.Scale)
		fp16 := fp16Store{cfg.HeadDim}
		s.layerRuns(l, []int{h}, 0, n, false, func(_ int, r run) { rs.scoreRun(hc, fp16, r) })
		return nil
	}
	hc := l.heads[h]
	kq, rq := hc.keys.store.newQuery(), ts.fp16.newQuery()
	kq.reset(query)
	rq.reset(query)
	var uq vecQuery
	if hc.upKeys.store != nil {
		uq = hc.upKeys.store.newQuery()
		uq.reset(query)
	}
	var qmu float32
	if mu := hc.keys.mu; mu != nil {
		qmu = float32(dot32(query, mu))
	}
	ts.each(n, func(pos int, k, _ []byte, kind tokenKind) {
		switch kind {
		case rawToken:
			dst[pos] = rq.score(k) * cfg.Scale
		case baseToken:
			dst[pos] = (kq.score(k) + qmu) * cfg.Scale
		default:
			dst[pos] = (uq.score(k) + qmu) * cfg.Scale
		}
	})
	return nil
}
