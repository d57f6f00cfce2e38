package validate

import (
	"fmt"
	"math"

	"github.com/turboquant-go/tq/turboquant"
)

// GuardSpec is a simulation of a fidelity guardrail for a KV cache: tokens
// are compressed a block at a time; before a block is compressed (while its
// exact keys are still in the fp16 window) each head's logit error on it is
// measured against the newest queries, and a head whose error exceeds
// Budget has this block and every later one stored at UpgradeBits instead of
// BaseBits (MSE codes with fp16 norms, sharing one rotation). The decision is
// a pure function of the data, so it is deterministic.
type GuardSpec struct {
	BaseBits, UpgradeBits int
	// Block is the tokens per block, Queries the recent queries each block
	// is measured against (the queries of the block's last Queries tokens,
	// which an encoder or a prefill has just attended with).
	Block, Queries int
	// Budget bounds the mean squared error of the scaled logits
	// (q·k/√d, in nats²) over the block's keys and the recent queries.
	Budget float64
	Center bool
}

// GuardStats is what a guard simulation upgraded on one layer.
type GuardStats struct {
	Layer int `json:"layer"`
	// Blocks is the (chunk, head, block) triples compressed, Upgraded those
	// stored at the upgraded width.
	Blocks, Upgraded int
	// HeadUpgrades counts, per head, the blocks stored upgraded.
	HeadUpgrades []int `json:"head_upgrades"`
	// ExtraBytes is what the upgrades cost over the base codes.
	ExtraBytes int64 `json:"extra_bytes"`
}

// GuardContender measures a guard simulation; stats, if not nil, receives
// what it upgraded (accumulated over the chunks of each Compare call).
func GuardContender(spec GuardSpec, stats *GuardStats) Contender {
	name := fmt.Sprintf("guard %d→%d @%.3g", spec.BaseBits, spec.UpgradeBits, spec.Budget)
	return Contender{
		Name:   name,
		Family: "guard-study",
		nominal: func(dim int) (float64, bool, bool, error) {
			// The rate depends on the data: Compare reports it in
			// BitsFixture; here the base rate.
			return float64(spec.BaseBits*dim+16) / float64(dim), spec.Center, true, nil
		},
		build: func(l *RealKVLayer) (*chunkModel, error) {
			d := l.HeadDim
			mk := func(bits int) (*turboquant.Quantizer, error) {
				return turboquant.New(turboquant.Config{Dim: d, Bits: bits, Method: turboquant.MSE})
			}
			base, err := mk(spec.BaseBits)
			if err != nil {
				return nil, err
			}
			up, err := mk(spec.UpgradeBits)
			if err != nil {
				return nil, err
			}
			if stats != nil && stats.HeadUpgrades == nil {
				stats.HeadUpgrades = make([]int, l.Heads)
			}
			scale := 1 / math.Sqrt(float64(d))
			ks, vs := make([][][]float32, l.Heads), make([][][]float32, l.Heads)
			var bits int64
			baseCode, upCode := make([]byte, base.CodeSize()), make([]byte, up.CodeSize())
			dec := make([]float32, d)
			for h := range l.Heads {
				k, v := cloneRows(l.K[h]), cloneRows(l.V[h])
				var muK, muV []float32
				if spec.Center {
					muK, muV = rowMean(k), rowMean(v)
					subtractRows(k, muK)
					subtractRows(v, muV)
					bits += int64(2 * 32 * d)
				}
				upgraded := false
				for s := 0; s < l.Tokens; s += spec.Block {
					e := min(s+spec.Block, l.Tokens)
					if !upgraded {
						// The logit error of the base code on this block.
						var se float64
						var n int
						for t := s; t < e; t++ {
							if err := base.Encode(baseCode, k[t]); err != nil {
								return nil, err
							}
							if err := base.Decode(dec, baseCode); err != nil {
								return nil, err
							}
							for qi := max(0, e-spec.Queries); qi < e; qi++ {
								q := l.Q[h][qi]
								diff := (Dot(q, k[t]) - Dot(q, dec)) * scale
								se += diff * diff
								n++
							}
						}
						upgraded = se/float64(n) > spec.Budget
					}
					q, code := base, baseCode
					if upgraded {
						q, code = up, upCode
						if stats != nil {
							stats.Upgraded++
							stats.HeadUpgrades[h]++
							stats.ExtraBytes += int64(2 * (e - s) * (up.CodeSize() - base.CodeSize()))
						}
					}
					if stats != nil {
						stats.Blocks++
					}
					for t := s; t < e; t++ {
						for _, x := range [][]float32{k[t], v[t]} {
							if err := q.Encode(code, x); err != nil {
								return nil, err
							}
							if err := q.Decode(x, code); err != nil {
								return nil, err
							}
						}
						bits += int64(2 * 8 * len(code))
					}
				}
				if muK != nil {
					subtractRows(k, negate(muK))
					subtractRows(v, negate(muV))
				}
				ks[h], vs[h] = k, v
			}
			return dequantizedModel(ks, vs, bits), nil
		},
	}
}
