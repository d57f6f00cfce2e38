package llm

import (
	"fmt"
	"math"
	"time"
)

// Score is one predicted token's statistics under one cache.
type Score struct {
	// NLL is −log p(the true next token), nats.
	NLL float64
	// KLD is KL(p_ref ‖ p) over the whole vocabulary, nats; 0 for the
	// reference itself.
	KLD float64
	// Top1 is the most likely token (lowest id on ties).
	Top1 int32
}

// ScoreWindow runs one window of tokens through several caches side by side
// and scores the prediction of every token at index ≥ from: caches[0] is the
// reference the others' KL divergence is measured against. Each cache must be
// empty. The first from tokens go in as one prefill (one Append per layer,
// as a prompt would); the rest follow in steps of chunk tokens (1 is
// token-by-token decoding). It returns scores[cache][i] for token from+i.
//
// Only chunk positions' logits are held at a time per cache, so the vocabulary
// may be large.
func (m *Model) ScoreWindow(caches []Cache, tokens []int32, from, chunk int) ([]WindowScores, error) {
	T, V := len(tokens), m.Config.Vocab
	if len(caches) == 0 || from < 1 || from >= T || chunk < 1 {
		return nil, fmt.Errorf("%w: %d caches, %d tokens scored from %d in chunks of %d", ErrArgument, len(caches), T, from, chunk)
	}
	for i, c := range caches {
		if c.Len() != 0 {
			return nil, fmt.Errorf("%w: cache %d is not empty (%d tokens)", ErrArgument, i, c.Len())
		}
	}
	res := make([]WindowScores, len(caches))
	logits := make([][]float32, len(caches))
	for i := range caches {
		res[i].Scores = make([]Score, 0, T-from)
		logits[i] = make([]float32, chunk*V)
	}
	ref := make([]float64, V)
	// step feeds tokens[lo:hi] and scores the predictions of its last n
	// positions (of tokens up to hi).
	step := func(lo, hi int) error {
		n := hi - lo // positions whose logits are scored
		if lo == 0 {
			n = 1
		}
		for i, c := range caches {
			start := time.Now()
			if err := m.Forward(c, tokens[lo:hi], logits[i][:n*V]); err != nil {
				return fmt.Errorf("cache %d: %w", i, err)
			}
			if lo == 0 {
				res[i].Prefill += time.Since(start)
			} else {
				res[i].Steps += time.Since(start)
			}
		}
		for p := range n {
			target := tokens[hi-n+p+1]
			logSoftmax(ref, logits[0][p*V:(p+1)*V])
			for i := range caches {
				l := logits[i][p*V : (p+1)*V]
				s := Score{Top1: Argmax(l)}
				if i == 0 {
					s.NLL = -ref[target]
				} else {
					s.NLL, s.KLD = klAgainst(ref, l, target)
				}
				res[i].Scores = append(res[i].Scores, s)
			}
		}
		return nil
	}
	if err := step(0, from); err != nil {
		return nil, err
	}
	for lo := from; lo < T-1; lo += chunk {
		if err := step(lo, min(lo+chunk, T-1)); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// WindowScores is one cache's result of ScoreWindow.
type WindowScores struct {
	Scores []Score
	// Prefill is the time of the first from tokens' forward pass; Steps of
	// the rest.
	Prefill, Steps time.Duration
}

// logSumExp is log Σ exp(l), in float64.
func logSumExp(l []float32) float64 {
	mx := math.Inf(-1)
	for _, v := range l {
		mx = max(mx, float64(v))
	}
	var sum float64
	for _, v := range l {
		sum += math.Exp(float64(v) - mx)
	}
	return mx + math.Log(sum)
}

// logSoftmax writes log p for logits l into dst, in float64.
func logSoftmax(dst []float64, l []float32) {
	lse := logSumExp(l)
	for i, v := range l {
		dst[i] = float64(v) - lse
	}
}

// klAgainst returns −log p(target) under l and KL(ref ‖ softmax(l)), given
// the reference's log-probabilities.
func klAgainst(refLog []float64, l []float32, target int32) (nll, kld float64) {
	lse := logSumExp(l)
	for i, lp := range refLog {
		if p := math.Exp(lp); p > 0 {
			kld += p * (lp - (float64(l[i]) - lse))
		}
	}
	return lse - float64(l[target]), max(kld, 0)
}
