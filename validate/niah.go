package validate

import (
	"fmt"
	"math"

	"github.com/turboquant-go/tq/internal/rng"
)

// NIAHConfig configures the attention-level needle-in-a-haystack test.
//
// Each cell (context length L, depth δ) is one attention head holding L
// keys and values drawn from a SynthKV (real structure: outlier channels,
// non-zero means, norm spread) and one query drawn from the same head's
// query model. The token at position round(δ·(L−1)) is replaced by the
// needle: its key is the haystack key there turned towards the query
// direction (same norm where possible), by just enough that under exact attention the needle's logit is at
// least TopMargin nats above the strongest distractor and the needle takes
// NeedleWeight of the attention; its value v is a fresh sample of the value
// model. A cache passes the cell when the needle is still its top-scoring
// key and its output o points at the needle's value: with b the exact output
// of the distractors alone and p = PassFraction, cos(o, v) ≥
// cos(p·v + (1−p)·b, v), the cosine of an output that gives the needle the
// share p of the attention. Exact attention gives it NeedleWeight > p and
// passes every cell by construction. The test is on the output's direction,
// not its projection on v, because a plain 1-bit rounding inflates logits
// and values (min/max levels), which sharpens attention onto the needle and
// would pass a projection test while the output it returns is far from v.
// Both sides count: a quantizer passes when its logit errors keep the needle
// on top and its value errors leave the output pointing at v (Retrieved
// reports the key side alone).
type NIAHConfig struct {
	Lengths []int
	// Depths are fractions of the context in [0, 1].
	Depths []float64
	// NeedleWeight is the needle's exact attention weight (default 0.8, a
	// logit ln 4 ≈ 1.39 nats above the log-sum-exp of the distractors).
	NeedleWeight float64
	// TopMargin is the least exact logit margin over the strongest
	// distractor in nats (default 1).
	TopMargin float64
	// PassFraction is the share of the needle's value the output must
	// recover (default 0.5: the needle dominates the output).
	PassFraction float64
	Seed         uint64
	// MaxValues bounds the floats of keys (and of values) held at once:
	// depths are split over several caches of at most this size (default
	// 2^24, 64 MiB per tensor).
	MaxValues int
}

func (c NIAHConfig) withDefaults() NIAHConfig {
	if c.NeedleWeight == 0 {
		c.NeedleWeight = 0.8
	}
	if c.TopMargin == 0 {
		c.TopMargin = 1
	}
	if c.PassFraction == 0 {
		c.PassFraction = 0.5
	}
	if c.MaxValues == 0 {
		c.MaxValues = 1 << 24
	}
	return c
}

// NIAHCell is the result of one (length, depth) cell.
type NIAHCell struct {
	Tokens   int     `json:"tokens"`
	Depth    float64 `json:"depth"`
	Position int     `json:"position"`
	Pass     bool    `json:"pass"`
	// Recovered is ⟨o − b, v − b⟩/‖v − b‖² for the cache's output o.
	Recovered float64 `json:"recovered"`
	// NeedleRank is the needle's rank among the cache's logits (0: top).
	NeedleRank int `json:"needle_rank"`
	// Margin is the needle's exact logit margin over the strongest
	// distractor, in nats.
	Margin float64 `json:"margin"`
	// Retrieved says the needle is the cache's top-scoring key (the key
	// side of Pass alone).
	Retrieved bool `json:"retrieved"`
	// OutCosine is cos(o, v) and Threshold the cosine the cell needs,
	// cos(p·v + (1−p)·b, v) with p = PassFraction.
	OutCosine float64 `json:"out_cosine"`
	Threshold float64 `json:"threshold"`
}

// NIAHResult is a grid of cells and its pass rate.
type NIAHResult struct {
	Cells    []NIAHCell `json:"cells"`
	PassRate float64    `json:"niah_pass_rate"`
	// RetrievalRate is the share of cells whose needle is the top key.
	RetrievalRate float64 `json:"retrieval_rate"`
}

// NIAHDepths returns n depths evenly spaced over [0, 1] (n ≥ 2).
func NIAHDepths(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(i) / float64(n-1)
	}
	return out
}

// niahHaystack is one context length's needles for a group of depths, the
// same for every cache under test.
type niahHaystack struct {
	tokens, heads, d int
	first            int // index of the group's first depth
	keys, values     []float32
	queries          []float32 // [1][heads][d]
	pos              []int
	needleV          [][]float32
	background       [][]float64 // exact output of the distractors alone
	margin           []float64
}

// RunNIAH builds every cell's haystack once and runs each Builder on it,
// returning one result per builder (in order). progress, when not nil, is
// called after each cell group and builder.
func RunNIAH(s *SynthKV, cfg NIAHConfig, builders []Builder, progress func()) ([]NIAHResult, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Lengths) == 0 || len(cfg.Depths) == 0 {
		return nil, fmt.Errorf("%w: NIAH needs lengths and depths", ErrShape)
	}
	if cfg.NeedleWeight <= 0 || cfg.NeedleWeight >= 1 || cfg.PassFraction <= 0 || cfg.PassFraction > 1 || cfg.TopMargin < 0 {
		return nil, fmt.Errorf("%w: needle weight %v, pass fraction %v and top margin %v out of range",
			ErrShape, cfg.NeedleWeight, cfg.PassFraction, cfg.TopMargin)
	}
	results := make([]NIAHResult, len(builders))
	for _, L := range cfg.Lengths {
		if L < 2 {
			return nil, fmt.Errorf("%w: NIAH context of %d tokens", ErrShape, L)
		}
		group := max(1, min(len(cfg.Depths), cfg.MaxValues/(L*s.Dim)))
		for first := 0; first < len(cfg.Depths); first += group {
			depths := cfg.Depths[first:min(first+group, len(cfg.Depths))]
			hs, err := newNIAHHaystack(s, cfg, L, first, depths)
			if err != nil {
				return nil, err
			}
			for bi, b := range builders {
				cells, err := hs.run(b, cfg)
				if err != nil {
					return nil, err
				}
				results[bi].Cells = append(results[bi].Cells, cells...)
				if progress != nil {
					progress()
				}
			}
		}
	}
	for i := range results {
		pass, top := 0, 0
		for _, c := range results[i].Cells {
			if c.Pass {
				pass++
			}
			if c.Retrieved {
				top++
			}
		}
		n := float64(len(results[i].Cells))
		results[i].PassRate, results[i].RetrievalRate = float64(pass)/n, float64(top)/n
	}
	return results, nil
}

// NIAHGroups is the number of progress calls RunNIAH makes per builder.
func NIAHGroups(s *SynthKV, cfg NIAHConfig) int {
	cfg = cfg.withDefaults()
	n := 0
	for _, L := range cfg.Lengths {
		group := max(1, min(len(cfg.Depths), cfg.MaxValues/(max(L, 1)*s.Dim)))
		n += (len(cfg.Depths) + group - 1) / group
	}
	return n
}

func newNIAHHaystack(s *SynthKV, cfg NIAHConfig, L, first int, depths []float64) (*niahHaystack, error) {
	H, d := len(depths), s.Dim
	hs := &niahHaystack{tokens: L, heads: H, d: d, first: first,
		keys: make([]float32, L*H*d), values: make([]float32, L*H*d), queries: make([]float32, H*d)}
	seed := rng.Derive(cfg.Seed, uint64(L))
	scale := 1 / math.Sqrt(float64(d))
	logW := math.Log(cfg.NeedleWeight / (1 - cfg.NeedleWeight))
	for i, depth := range depths {
		if depth < 0 || depth > 1 || math.IsNaN(depth) {
			return nil, fmt.Errorf("%w: NIAH depth %v outside [0, 1]", ErrShape, depth)
		}
		h := first + i // stream per depth index: grouping does not change the data
		ks, vs := s.Sample(Keys, h, L, seed), s.Sample(Values, h, L+1, seed)
		q := s.Sample(Queries, h, 1, seed)
		pos := int(math.Round(depth * float64(L-1)))
		lg := make([]float64, L)
		for t := range L {
			lg[t] = Dot(q, ks[t*d:(t+1)*d]) * scale
		}
		distractors := append(append([]float64(nil), lg[:pos]...), lg[pos+1:]...)
		top := math.Inf(-1)
		for _, v := range distractors {
			top = max(top, v)
		}
		target := max(LogSumExp(distractors)+logW, top+cfg.TopMargin)
		// Needle key: the haystack key turned towards the query, keeping
		// its norm (a needle is a typical key pointing the right way, not
		// an outlier), k = ‖k₀‖·(cos θ·q̂ + sin θ·ê) with ê the unit part of
		// k₀ orthogonal to q; only if even θ = 0 falls short is it
		// lengthened along q̂.
		k := ks[pos*d : (pos+1)*d]
		qn := math.Sqrt(Dot(q, q))
		kn := math.Sqrt(Dot(k, k))
		along := Dot(q, k) / qn
		e := make([]float64, d)
		var en float64
		for j := range e {
			e[j] = float64(k[j]) - along*float64(q[j])/qn
			en += e[j] * e[j]
		}
		en = math.Sqrt(en)
		cosT := target / (scale * qn * kn)
		if cosT > 1 {
			kn *= cosT
			cosT = 1
		}
		sinT := math.Sqrt(max(0, 1-cosT*cosT))
		for j := range k {
			v := cosT * float64(q[j]) / qn
			if en > 0 {
				v += sinT * e[j] / en
			}
			k[j] = float32(kn * v)
		}
		needleV := vs[L*d:]
		copy(vs[pos*d:(pos+1)*d], needleV)
		// Background: exact output of the distractors alone.
		p := Softmax(distractors)
		bg := make([]float64, d)
		for t, w := range p {
			src := t
			if t >= pos {
				src++
			}
			for j := range bg {
				bg[j] += w * float64(vs[src*d+j])
			}
		}
		hs.margin = append(hs.margin, Dot(q, k)*scale-top)
		for t := range L {
			copy(hs.keys[(t*H+i)*d:(t*H+i+1)*d], ks[t*d:(t+1)*d])
			copy(hs.values[(t*H+i)*d:(t*H+i+1)*d], vs[t*d:(t+1)*d])
		}
		copy(hs.queries[i*d:], q)
		hs.pos = append(hs.pos, pos)
		hs.needleV = append(hs.needleV, needleV)
		hs.background = append(hs.background, bg)
	}
	return hs, nil
}

func (hs *niahHaystack) run(b Builder, cfg NIAHConfig) ([]NIAHCell, error) {
	a, err := b(hs.heads, hs.heads, hs.d)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	if err := a.Append(0, hs.keys, hs.values); err != nil {
		return nil, err
	}
	out := make([]float32, hs.heads*hs.d)
	if err := a.Attend(0, hs.queries, out); err != nil {
		return nil, err
	}
	logits := make([]float32, hs.tokens)
	cells := make([]NIAHCell, hs.heads)
	for i := range cells {
		d := hs.d
		if err := a.Logits(0, i, hs.queries[i*d:(i+1)*d], logits); err != nil {
			return nil, err
		}
		pos := hs.pos[i]
		rank := 0
		for t, v := range logits {
			if t != pos && v >= logits[pos] {
				rank++
			}
		}
		var num, den float64
		for j := range d {
			bg := hs.background[i][j]
			diff := float64(hs.needleV[i][j]) - bg
			num += (float64(out[i*d+j]) - bg) * diff
			den += diff * diff
		}
		rec := num / den
		o := make([]float64, d)
		nv := make([]float64, d)
		for j := range d {
			o[j] = float64(out[i*d+j])
			nv[j] = float64(hs.needleV[i][j])
		}
		mix := make([]float64, d)
		for j := range d {
			mix[j] = cfg.PassFraction*nv[j] + (1-cfg.PassFraction)*hs.background[i][j]
		}
		cos, threshold := Cosine(o, nv), Cosine(mix, nv)
		cells[i] = NIAHCell{
			Tokens: hs.tokens, Depth: cfg.Depths[hs.first+i], Position: pos,
			Pass: rank == 0 && cos >= threshold, Retrieved: rank == 0,
			Recovered: rec, NeedleRank: rank, Margin: hs.margin[i], OutCosine: cos, Threshold: threshold,
		}
	}
	return cells, nil
}
