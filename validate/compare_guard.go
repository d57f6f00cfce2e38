package validate

import (
	"fmt"
	"math"

	"github.com/turboquant-go/tq/kvcache"
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

// GuardStats is what a guard simulation, or a cache contender of the guard
// study, stored and upgraded on one layer.
type GuardStats struct {
	Layer int    `json:"layer"`
	Name  string `json:"name,omitempty"`
	// CodeBits is the bits per element of the compressed tokens' codes
	// (cache contenders only: the fp16 window and the means excluded).
	CodeBits               float64 `json:"code_bits,omitempty"`
	codeBits, codeElements int64
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

// GuardStream is how the guard study runs a chunk through the real KV
// cache: as a decoder would, one token at a time — append its key and
// value, then attend with its query (which the guard records) — with no
// sinks, an fp16 window of Window tokens and blocks of Block tokens. The
// guard measures each block when its first token leaves the window, so
// with Window ≥ Block−1 it sees the whole block. The last Window tokens of
// a chunk stay in fp16 for every contender alike.
type GuardStream struct{ Block, Window int }

// DefaultGuardStream is the guard study's protocol: blocks of 16, a window
// of 16 (most of a ~116-token chunk is compressed).
var DefaultGuardStream = GuardStream{Block: 16, Window: 16}

// CacheStreamContender streams each chunk through a cache of the named
// preset (guard presets with their budget replaced by budget when it is
// not 0) under the GuardStream protocol; stats, if not nil, receives what
// the cache stored and upgraded. Compare's BitsFixture counts every stored
// byte (the fp16 window tokens and Center's means included);
// GuardStats.CodeBits is the rate of the compressed tokens alone.
//
// keysOnly makes the guard upgrade only the keys (values stay at the base
// codec): attention probabilities depend on the keys alone, and the
// upgrade costs half as much.
func CacheStreamContender(preset string, budget float64, keysOnly bool, stream GuardStream, stats *GuardStats) Contender {
	name := preset + " (stream)"
	if budget != 0 {
		name = fmt.Sprintf("%s @%.3g", preset, budget)
	}
	if keysOnly {
		name = fmt.Sprintf("%s keys @%.3g", preset, budget)
	}
	config := func(heads, dim int) (kvcache.Config, error) {
		cfg, err := kvcache.Preset(preset, 1, heads, heads, dim)
		if err != nil {
			return cfg, err
		}
		cfg.Window, cfg.Sinks, cfg.BlockTokens, cfg.DeferPrefill = stream.Window, 0, stream.Block, false
		if budget != 0 {
			cfg.Guard.Budget = budget
		}
		if keysOnly {
			cfg.Guard.Values = cfg.Values
		}
		return cfg, nil
	}
	return Contender{
		Name:   name,
		Family: "guard-cache",
		nominal: func(dim int) (float64, bool, bool, error) {
			cfg, err := config(1, dim)
			if err != nil {
				return 0, false, false, err
			}
			return (cfg.Keys.BitsPerValue(dim) + cfg.Values.BitsPerValue(dim)) / 2, cfg.Center, true, nil
		},
		build: func(l *RealKVLayer) (*chunkModel, error) {
			H, T, d := l.Heads, l.Tokens, l.HeadDim
			cfg, err := config(H, d)
			if err != nil {
				return nil, err
			}
			pool, err := kvcache.NewPool(cfg, 0)
			if err != nil {
				return nil, err
			}
			seq := pool.NewSequence()
			k, v, q := make([]float32, H*d), make([]float32, H*d), make([]float32, H*d)
			out := make([]float32, H*d)
			for t := range T {
				for h := range H {
					copy(k[h*d:], l.K[h][t])
					copy(v[h*d:], l.V[h][t])
					copy(q[h*d:], l.Q[h][t])
				}
				if err := seq.Append(0, k, v); err != nil {
					return nil, err
				}
				if err := seq.Attend(0, q, out); err != nil {
					return nil, err
				}
			}
			st := seq.Stats()
			bits := 8 * st.LiveBytes
			if cfg.Center { // one fp32 mean per quantized codec and head
				bits += int64(2 * 32 * H * d)
			}
			if stats != nil {
				if stats.HeadUpgrades == nil {
					stats.HeadUpgrades = make([]int, H)
				}
				stats.Name = name
				compressed := max(0, T-cfg.Window)
				stats.Blocks += H * ((compressed + cfg.BlockTokens - 1) / cfg.BlockTokens)
				for _, u := range st.Upgrades {
					stats.Upgraded += u.Blocks
					stats.HeadUpgrades[u.Head] += u.Blocks
					stats.ExtraBytes += u.ExtraBytes
				}
				fp16 := int64(T-compressed) * int64(H*d*2*2)
				stats.codeBits += 8 * (st.LiveBytes - fp16)
				stats.codeElements += int64(compressed) * int64(2*H*d)
				stats.CodeBits = float64(stats.codeBits) / float64(max(1, stats.codeElements))
			}
			buf := make([]float32, T)
			return &chunkModel{
				logits: func(h int, q []float32, dst []float64) error {
					if err := seq.Logits(0, h, q, buf); err != nil {
						return err
					}
					for i, x := range buf {
						dst[i] = float64(x)
					}
					return nil
				},
				// One query position at a time: it sees every token.
				output: func(qs, out []float32) error { return seq.Attend(0, qs, out) },
				bits:   bits,
				close:  func() { _ = seq.Close() },
			}, nil
		},
	}
}

// GuardStudyContenders are the guard study: tq3 and tq4 and tq3-guard at
// each budget (RMS logit error, nats), upgrading keys and values (the
// preset) and keys only, all through the real cache under the same
// GuardStream protocol; stats gets one GuardStats per contender, in order.
func GuardStudyContenders(budgets []float64, stream GuardStream) (cs []Contender, stats []*GuardStats) {
	add := func(preset string, budget float64, keysOnly bool) {
		st := &GuardStats{}
		stats = append(stats, st)
		cs = append(cs, CacheStreamContender(preset, budget, keysOnly, stream, st))
	}
	add("tq3", 0, false)
	add("tq4", 0, false)
	for _, keysOnly := range []bool{false, true} {
		for _, b := range budgets {
			add("tq3-guard", b, keysOnly)
		}
	}
	return cs, stats
}
