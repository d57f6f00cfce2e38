package kvcache

import (
	"fmt"
	"github.com/turboquant-go/tq/internal/vec"
	"math"
	"runtime"
	"sync"

	"github.com/turboquant-go/tq/internal/simd"
)

// Attention over the packed codes. Two strategies score and accumulate:
// the row path (attend_rows.go: runs of codes through the internal/simd
// kernels, for MSE storages with fp16 norms when vector kernels are
// active) and the per-code path (attend_codes.go: prepared queries and
// AccumulateRotatedGroup, for everything else and under -tags purego).
// Both fill the one softmaxState below, take the same softmax and end in the
// same finish step, so the Center correction, the guard's second
// accumulator and the output arithmetic are written once.

// Attend computes exact attention for the queries of the layer's last T
// tokens.
func (s *Sequence) Attend(layer int, queries, out []float32) error {
	cfg := s.pool.cfg
	row := cfg.QHeads * cfg.HeadDim
	s.mu.RLock()
	defer s.mu.RUnlock()
	l, err := s.layer(layer)
	if err != nil {
		return err
	}
	n := l.len()
	if len(queries) == 0 || len(queries)%row != 0 || len(out) != len(queries) {
		return fmt.Errorf("%w: %d queries and %d outputs are not the same whole number of [%d][%d] rows",
			ErrLength, len(queries), len(out), cfg.QHeads, cfg.HeadDim)
	}
	T := len(queries) / row
	if T > n {
		return fmt.Errorf("%w: %d queries but layer %d holds %d tokens (append before attending)", ErrLength, T, layer, n)
	}
	if err := checkQueries(queries); err != nil {
		return err
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
	// head of a layer has storages of the same kinds, so head 0 decides.
	rows := usesRows(&l.heads[0])
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
			cs := s.pool.codeState(n)
			defer s.pool.codeStates.Put(cs)
			for _, h := range heads {
				hs := &l.heads[h]
				cs.bind(hs)
				for i := range T {
					q0 := (i*cfg.QHeads + h*g) * d
					cs.attendGroup(s, l, h, hs, queries[q0:q0+g*d], out[q0:q0+g*d], n-T+i+1, cfg.Scale)
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

// softmaxState is the exact softmax of one query group (the g query heads
// that share a KV head) over a range of positions, and the weighted sums of
// values it produces. A strategy writes scaled logits into logits, calls
// softmax, adds weighted values into the accumulators (noting compressed
// and upgraded tokens), and calls finish.
type softmaxState struct {
	g, d   int
	logits []float32 // [g][stride]: scaled logits, then weights e^(x − max)
	stride int
	max    []float32 // the softmax maximum per query head
	sum    []float32 // Σ weights per query head
	rawW   []float64 // Σ weights of the fp16 (sink and window) tokens
	// accCode, accUp and accRaw are [g][d] weighted sums of the compressed
	// values in the value storage's domain (rotated for quantizers), of
	// the guard's upgraded values in theirs, and of the fp16 values.
	accCode, accUp, accRaw []float32
	// codes and upgraded record whether the value pass met compressed
	// tokens (only they carry μ_v) and the guard's upgraded codes (accUp is
	// cleared on first use).
	codes, upgraded bool
	tmp             []float32 // [d]
}

func newSoftmaxState(g, d int) softmaxState {
	return softmaxState{g: g, d: d, max: make([]float32, g), sum: make([]float32, g), rawW: make([]float64, g),
		accCode: make([]float32, g*d), accUp: make([]float32, g*d), accRaw: make([]float32, g*d), tmp: make([]float32, d)}
}

// fit sizes the logit matrix for n tokens.
func (st *softmaxState) fit(n int) {
	if st.stride < n {
		st.stride = n + n/4
		st.logits = make([]float32, st.g*st.stride)
	}
}

// softmax turns the logits of positions [from, limit) into unnormalised
// weights e^(x − max), keeps their maximum and sum, and clears the
// accumulators.
func (st *softmaxState) softmax(from, limit int) {
	N := st.stride
	for gi := range st.g {
		row := st.logits[gi*N+from : gi*N+limit]
		st.max[gi] = simd.Max(row)
		st.sum[gi] = simd.ExpSum(row, st.max[gi])
		st.rawW[gi] = 0
	}
	clear(st.accCode)
	clear(st.accRaw)
	st.codes, st.upgraded = false, false
}

// start readies the state for fold: no tokens yet.
func (st *softmaxState) start() {
	for gi := range st.g {
		st.max[gi], st.sum[gi], st.rawW[gi] = float32(math.Inf(-1)), 0, 0
	}
	clear(st.accCode)
	clear(st.accRaw)
	st.codes, st.upgraded = false, false
}

// fold turns the scaled logits at [off, off+n) of each row into weights
// e^(x − max) against the running maximum and adds them to the sums,
// first rescaling what the state holds when the maximum grows: the
// streaming softmax, a chunk of the context at a time.
func (st *softmaxState) fold(off, n int) {
	N, d := st.stride, st.d
	for gi := range st.g {
		row := st.logits[gi*N+off : gi*N+off+n]
		if m := simd.Max(row); m > st.max[gi] {
			if st.sum[gi] != 0 {
				a := float32(math.Exp(float64(st.max[gi] - m)))
				st.sum[gi] *= a
				st.rawW[gi] *= float64(a)
				simd.Scale(st.accCode[gi*d:(gi+1)*d], a)
				simd.Scale(st.accRaw[gi*d:(gi+1)*d], a)
				if st.upgraded {
					simd.Scale(st.accUp[gi*d:(gi+1)*d], a)
				}
			}
			st.max[gi] = m
		}
		st.sum[gi] += simd.ExpSum(row, st.max[gi])
	}
}

// addRawWeights counts the weights of the fp16 tokens at [pos, pos+n).
func (st *softmaxState) addRawWeights(pos, n int) {
	N := st.stride
	for gi := range st.g {
		for _, w := range st.logits[gi*N+pos : gi*N+pos+n] {
			st.rawW[gi] += float64(w)
		}
	}
}

// upgradedAcc returns accUp for the value pass to add upgraded codes to,
// cleared the first time.
func (st *softmaxState) upgradedAcc() []float32 {
	if !st.upgraded {
		clear(st.accUp)
		st.upgraded = true
	}
	return st.accUp
}

// merge folds o, the softmax state of another range of the same queries,
// into st: both are rescaled to the larger maximum (exactly the streaming
// softmax's merge), so st then holds the state of the union.
func (st *softmaxState) merge(o *softmaxState) {
	d := st.d
	if o.upgraded && !st.upgraded {
		clear(st.accUp)
	}
	st.codes = st.codes || o.codes
	for gi := range st.g {
		m := max(st.max[gi], o.max[gi])
		a := float32(math.Exp(float64(st.max[gi] - m)))
		b := float32(math.Exp(float64(o.max[gi] - m)))
		st.max[gi] = m
		st.sum[gi] = a*st.sum[gi] + b*o.sum[gi]
		st.rawW[gi] = float64(a)*st.rawW[gi] + float64(b)*o.rawW[gi]
		blend := func(x, y []float32) {
			x, y = x[gi*d:(gi+1)*d], y[gi*d:(gi+1)*d]
			for j := range x {
				x[j] = a*x[j] + b*y[j]
			}
		}
		blend(st.accCode, o.accCode)
		blend(st.accRaw, o.accRaw)
		switch {
		case o.upgraded:
			blend(st.accUp, o.accUp)
		case st.upgraded:
			simd.Scale(st.accUp[gi*d:(gi+1)*d], a)
		}
	}
	st.upgraded = st.upgraded || o.upgraded
}

// finish writes the group's outputs (len g·d): each accumulator mapped back
// to the original domain by its storage (one inverse rotation per head),
// the compressed tokens' share of μ_v added back (they are stored minus
// μ_v), and everything divided by the sum of the weights.
func (st *softmaxState) finish(hs *headStores, out []float32) {
	d := st.d
	for gi := range st.g {
		o := out[gi*d : (gi+1)*d]
		hs.values.store.finish(st.tmp, st.accCode[gi*d:(gi+1)*d])
		if st.upgraded { // the upgraded codes' sum, mapped back on its own
			u := st.accUp[gi*d : (gi+1)*d]
			hs.upValues.store.finish(u, u)
			for j, x := range u {
				st.tmp[j] += x
			}
		}
		if hs.values.mu != nil && st.codes {
			wc := float32(float64(st.sum[gi]) - st.rawW[gi])
			for j, m := range hs.values.mu {
				st.tmp[j] += wc * m
			}
		}
		inv := 1 / st.sum[gi]
		accRaw := st.accRaw[gi*d : (gi+1)*d]
		for j := range o {
			o[j] = (st.tmp[j] + accRaw[j]) * inv
		}
	}
}

// rowState returns pooled row-path working memory for n tokens.
func (p *Pool) rowState(n int) *rowState {
	rs, ok := p.rowStates.Get().(*rowState)
	if !ok {
		rs = newRowState(p.cfg.QHeads/p.cfg.KVHeads, p.cfg.HeadDim, p.cfg.IntScores, p.cfg.IntValues)
	}
	rs.fit(n)
	return rs
}

// codeState returns pooled per-code working memory for n tokens, so a
// decode step does not allocate.
func (p *Pool) codeState(n int) *codeState {
	cs, ok := p.codeStates.Get().(*codeState)
	if !ok {
		cs = newCodeState(p.cfg.QHeads/p.cfg.KVHeads, p.cfg.HeadDim)
	}
	cs.fit(n)
	return cs
}

// Logits writes the scaled logits of query (len HeadDim) for query head
// qHead against every token of the layer into dst (len ≥ the layer's length).
func (s *Sequence) Logits(layer, qHead int, query, dst []float32) error {
	cfg := s.pool.cfg
	s.mu.RLock()
	defer s.mu.RUnlock()
	l, err := s.layer(layer)
	if err != nil {
		return err
	}
	n := l.len()
	switch {
	case qHead < 0 || qHead >= cfg.QHeads:
		return fmt.Errorf("%w: query head %d of %d", ErrLength, qHead, cfg.QHeads)
	case len(query) != cfg.HeadDim:
		return fmt.Errorf("%w: query of %d, head dim %d", ErrLength, len(query), cfg.HeadDim)
	case len(dst) < n:
		return fmt.Errorf("%w: %d logits for %d tokens", ErrLength, len(dst), n)
	}
	if err := checkQueries(query); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	h := qHead / (cfg.QHeads / cfg.KVHeads)
	hs := &l.heads[h]
	if usesRows(hs) {
		rs := newRowState(1, cfg.HeadDim, cfg.IntScores, false)
		rs.logits, rs.stride = dst, len(dst) // one query row: score straight into dst
		rs.prepare(hs, query, cfg.Scale)
		fp16 := fp16Store{cfg.HeadDim}
		s.layerRuns(l, []int{h}, 0, n, func(_ int, r run) { rs.scoreRun(hs, fp16, r) })
		return nil
	}
	cs := newCodeState(1, cfg.HeadDim)
	cs.logits, cs.stride = dst, len(dst)
	cs.bind(hs)
	cs.prepare(hs, query)
	cs.scoreRange(s, l, h, n, cfg.Scale)
	return nil
}

// checkQueries reports a non-finite query component.
func checkQueries(q []float32) error {
	if i := vec.NonFinite(q); i >= 0 {
		return fmt.Errorf("%w: query component %d is %v", ErrNonFinite, i, q[i])
	}
	return nil
}
