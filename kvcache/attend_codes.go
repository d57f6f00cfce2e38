package kvcache

import "github.com/turboquant-go/tq/internal/vec"

// The per-code path of attention: every token's key is scored by a prepared
// query (turboquant.Query's lookup tables for codes, a dot product for fp16
// tokens), and every value is added into the accumulators code by code
// (turboquant.Quantizer.AccumulateRotatedGroup, in the rotated domain). It
// serves every storage, and is the only path without vector kernels.

// codeState is the working memory of the per-code path for one query group:
// the shared softmax state and the group's prepared queries.
type codeState struct {
	softmaxState
	kq, rawQ []vecQuery // against the key storage, and for fp16 tokens
	upQ      []vecQuery // against the guard's upgraded key storage
	ws       []float32  // one token's weights, per query head
	blockW   []float32  // the weights of the current block's tokens, summed (BlockCenter)
	qmu      []float32  // q·μ_k per query head (Center), unscaled
	// codeRows, upRows and rawRows are the accumulators' rows, [g][d].
	codeRows, upRows, rawRows [][]float32
	boundKeys, boundUp        store // the storages kq and upQ are prepared for
	fp16                      fp16Store
}

func newCodeState(g, d int) *codeState {
	cs := &codeState{softmaxState: newSoftmaxState(g, d), ws: make([]float32, g), blockW: make([]float32, g),
		qmu: make([]float32, g), fp16: fp16Store{d}}
	for gi := range g {
		cs.codeRows = append(cs.codeRows, cs.accCode[gi*d:(gi+1)*d])
		cs.upRows = append(cs.upRows, cs.accUp[gi*d:(gi+1)*d])
		cs.rawRows = append(cs.rawRows, cs.accRaw[gi*d:(gi+1)*d])
		cs.rawQ = append(cs.rawQ, cs.fp16.newQuery())
	}
	return cs
}

// bind prepares queries for head hs's key storages, unless they are the
// ones already bound (heads without outlier channels share quantizers).
func (cs *codeState) bind(hs *headStores) {
	if cs.boundKeys != hs.keys.store {
		cs.kq = cs.kq[:0]
		for range cs.g {
			cs.kq = append(cs.kq, hs.keys.store.newQuery())
		}
		cs.boundKeys = hs.keys.store
	}
	if hs.upKeys.store != nil && cs.boundUp != hs.upKeys.store {
		cs.upQ = cs.upQ[:0]
		for range cs.g {
			cs.upQ = append(cs.upQ, hs.upKeys.store.newQuery())
		}
		cs.boundUp = hs.upKeys.store
	}
}

// prepare loads the group's queries (len g·d).
func (cs *codeState) prepare(hs *headStores, q []float32) {
	d := cs.d
	for gi := range cs.g {
		y := q[gi*d : (gi+1)*d]
		cs.kq[gi].reset(y)
		cs.rawQ[gi].reset(y)
		if hs.upKeys.store != nil {
			cs.upQ[gi].reset(y)
		}
		cs.qmu[gi] = 0
		if hs.keys.mu != nil { // compressed keys are stored minus μ_k (Center)
			cs.qmu[gi] = float32(vec.Dot64(y, hs.keys.mu))
		}
	}
}

// scoreRange writes the scaled logits of head h's tokens [0, limit).
func (cs *codeState) scoreRange(s *Sequence, l *seqLayer, h, limit int, scale float32) {
	N := cs.stride
	var lastDrift *byte // the block whose drift scores cs.ws holds
	s.eachToken(l, h, limit, keysKV, func(pos int, k, _, kd, _ []byte, kind tokenKind) {
		if kd != nil && &kd[0] != lastDrift {
			lastDrift = &kd[0]
			for gi := range cs.g {
				cs.ws[gi] = cs.kq[gi].score(kd)
			}
		}
		for gi := range cs.g {
			var x float32
			switch kind {
			case rawToken:
				x = cs.rawQ[gi].score(k)
			case baseToken:
				x = cs.kq[gi].score(k) + cs.qmu[gi]
				if kd != nil {
					x += cs.ws[gi]
				}
			default:
				x = cs.upQ[gi].score(k) + cs.qmu[gi]
			}
			cs.logits[gi*N+pos] = x * scale
		}
	})
}

// attendGroup computes the outputs of the g query heads that share KV head
// h, for one query position that sees limit tokens. Each token's key and
// value bytes are read once for the whole group.
func (cs *codeState) attendGroup(s *Sequence, l *seqLayer, h int, hs *headStores, q, out []float32, limit int, scale float32) {
	N := cs.stride
	cs.prepare(hs, q)
	cs.scoreRange(s, l, h, limit, scale)
	cs.softmax(0, limit)
	// A block's value drift is added once, with the summed weights of the
	// block's tokens, when the walk leaves the block.
	var drift []byte
	flushDrift := func() {
		if drift != nil {
			hs.values.store.accumulate(cs.codeRows, cs.blockW, drift, cs.tmp)
			clear(cs.blockW)
			drift = nil
		}
	}
	s.eachToken(l, h, limit, valuesKV, func(pos int, _, v, _, vd []byte, kind tokenKind) {
		if vd == nil || drift == nil || &vd[0] != &drift[0] {
			flushDrift()
			drift = vd
		}
		for gi := range cs.g {
			cs.ws[gi] = cs.logits[gi*N+pos]
		}
		switch kind {
		case rawToken:
			cs.fp16.accumulate(cs.rawRows, cs.ws, v, cs.tmp)
			cs.addRawWeights(pos, 1)
		case baseToken:
			cs.codes = true
			hs.values.store.accumulate(cs.codeRows, cs.ws, v, cs.tmp)
			if vd != nil {
				for gi, w := range cs.ws {
					cs.blockW[gi] += w
				}
			}
		default:
			cs.upgradedAcc()
			cs.codes = true
			hs.upValues.store.accumulate(cs.upRows, cs.ws, v, cs.tmp)
		}
	})
	flushDrift()
	cs.finish(hs, out)
}
