package llm

import (
	"fmt"
	"math"

	"github.com/turboquant-go/tq/internal/rng"
)

// SampleOptions chooses how the next token is drawn from the logits.
// Temperature 0 is greedy (argmax, lowest id on ties); otherwise the logits
// are divided by Temperature, cut to the TopK most likely tokens (0: all),
// then to the smallest set whose probability reaches TopP (0 or 1: all), and
// a token is drawn with the seeded generator, so a seed replays a run.
type SampleOptions struct {
	Temperature float32
	TopK        int
	TopP        float32
	Seed        uint64
}

// Sampler draws tokens; it is not safe for concurrent use.
type Sampler struct {
	opt   SampleOptions
	rng   *rng.Source
	order []int32
	probs []float64
	// radix-sort scratch
	keys, keyTmp []uint32
	orderTmp     []int32
}

// NewSampler validates opt.
func NewSampler(opt SampleOptions) (*Sampler, error) {
	if !(opt.Temperature >= 0) || math.IsInf(float64(opt.Temperature), 0) || opt.TopK < 0 || !(opt.TopP >= 0 && opt.TopP <= 1) {
		return nil, fmt.Errorf("%w: temperature %g, top-k %d, top-p %g", ErrArgument, opt.Temperature, opt.TopK, opt.TopP)
	}
	return &Sampler{opt: opt, rng: rng.New(opt.Seed)}, nil
}

// Argmax is the index of the largest logit, the lowest on ties.
func Argmax(logits []float32) int32 {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	return int32(best)
}

// Sample draws the next token from one position's logits.
func (s *Sampler) Sample(logits []float32) int32 {
	if s.opt.Temperature == 0 || len(logits) < 2 {
		return Argmax(logits)
	}
	s.sortByLogit(logits)
	if s.opt.TopK > 0 && s.opt.TopK < len(s.order) {
		s.order = s.order[:s.opt.TopK]
	}
	top := float64(logits[s.order[0]])
	s.probs = s.probs[:0]
	var sum float64
	for _, id := range s.order {
		p := math.Exp((float64(logits[id]) - top) / float64(s.opt.Temperature))
		s.probs = append(s.probs, p)
		sum += p
	}
	if p := float64(s.opt.TopP); p > 0 && p < 1 {
		var acc float64
		for i, q := range s.probs {
			acc += q / sum
			if acc >= p {
				s.order, s.probs = s.order[:i+1], s.probs[:i+1]
				break
			}
		}
		sum = 0
		for _, q := range s.probs {
			sum += q
		}
	}
	u := s.rng.Float64() * sum
	for i, q := range s.probs {
		if u < q {
			return s.order[i]
		}
		u -= q
	}
	return s.order[len(s.order)-1]
}

// Generate feeds prompt (appended to whatever c holds) and then samples up to
// maxTokens tokens, one decode step each, stopping after a token for which
// stop returns true (nil: never). It returns the generated tokens, the stop
// token included.
func (m *Model) Generate(c Cache, prompt []int32, maxTokens int, s *Sampler, stop func(int32) bool) ([]int32, error) {
	if maxTokens < 0 || s == nil {
		return nil, fmt.Errorf("%w: max tokens %d, sampler %v", ErrArgument, maxTokens, s)
	}
	if c.Len()+len(prompt)+max(maxTokens-1, 0) > m.Config.Context {
		return nil, fmt.Errorf("%w: %d cached + %d prompt + %d new tokens > context %d",
			ErrContext, c.Len(), len(prompt), maxTokens, m.Config.Context)
	}
	logits := make([]float32, m.Config.Vocab)
	var out []int32
	next := prompt
	for len(out) < maxTokens {
		if err := m.Forward(c, next, logits); err != nil {
			return out, err
		}
		tok := s.Sample(logits)
		out = append(out, tok)
		if stop != nil && stop(tok) {
			break
		}
		next = []int32{tok}
	}
	return out, nil
}

// sortByLogit sets s.order to every token id, largest logit first and ids
// ascending among equal logits: the order of a stable sort by descending
// logit (−0 equals +0; NaN logits go last), computed by a four-pass LSD
// radix sort on the logits' bits, which unlike a comparison sort costs a
// few microseconds for a vocabulary of thousands.
func (s *Sampler) sortByLogit(logits []float32) {
	n := len(logits)
	grow := func(b []uint32) []uint32 {
		if cap(b) < n {
			return make([]uint32, n)
		}
		return b[:n]
	}
	s.keys, s.keyTmp = grow(s.keys), grow(s.keyTmp)
	if cap(s.order) < n {
		s.order, s.orderTmp = make([]int32, n), make([]int32, n)
	}
	s.order, s.orderTmp = s.order[:n], s.orderTmp[:n]
	for i, v := range logits {
		if v == 0 {
			v = 0 // −0 sorts with +0
		}
		u := math.Float32bits(v)
		if u&(1<<31) != 0 { // ascending float order as unsigned keys
			u = ^u
		} else {
			u |= 1 << 31
		}
		if v != v {
			u = 0 // NaN: ^key below puts it after every number
		}
		s.keys[i], s.order[i] = ^u, int32(i) // descending
	}
	keys, order, keyTmp, orderTmp := s.keys, s.order, s.keyTmp, s.orderTmp
	for shift := 0; shift < 32; shift += 8 {
		var count [257]int
		for _, k := range keys {
			count[(k>>shift)&0xff+1]++
		}
		for i := 1; i < len(count); i++ {
			count[i] += count[i-1]
		}
		for i, k := range keys {
			b := (k >> shift) & 0xff
			keyTmp[count[b]], orderTmp[count[b]] = k, order[i]
			count[b]++
		}
		keys, keyTmp, order, orderTmp = keyTmp, keys, orderTmp, order
	}
	// Four passes: the sorted data is back in the slices it started in.
	s.order = order
}
