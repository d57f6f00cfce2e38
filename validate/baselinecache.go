package validate

import (
	"fmt"
	"math"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/llm"
)

// BaselineCache is an llm.Cache that stores keys and values through a
// Baseline codec, so that a model runs on KIVI-like or int-N caches exactly
// as it runs on a kvcache preset. Like the compressed presets it keeps the
// first Sinks tokens and the last Window tokens in fp16; a token is
// quantized when it leaves the window (KIVI keys: in whole groups of Group
// tokens, once the group's last token has left, which is KIVI's recent-token
// residual). It holds the reconstructions as float32 rows and attends on
// them exactly; it is a measurement tool, not a memory saving.
type BaselineCache struct {
	codec                  Baseline
	kvHeads, qHeads, dim   int
	sinks, window          int
	scale                  float32
	keys, values           [][]float32 // [layer][token·kvHeads·dim]
	keysDone, valuesDone   []int       // [layer]: tokens already past the codec (sinks included)
	weights, scoresScratch []float32
}

// NewBaselineCache makes an empty cache of the shape of cfg (its Layers,
// KVHeads, QHeads, HeadDim, Window, Sinks and Scale) storing through codec.
func NewBaselineCache(codec Baseline, cfg kvcache.Config) (*BaselineCache, error) {
	if err := codec.validate(); err != nil {
		return nil, err
	}
	if cfg.Layers < 1 || cfg.KVHeads < 1 || cfg.HeadDim < 1 || cfg.QHeads%cfg.KVHeads != 0 || cfg.Window < 0 || cfg.Sinks < 0 {
		return nil, fmt.Errorf("%w: cache shape %d layers, %d/%d heads × %d, window %d, sinks %d",
			ErrBaseline, cfg.Layers, cfg.QHeads, cfg.KVHeads, cfg.HeadDim, cfg.Window, cfg.Sinks)
	}
	scale := cfg.Scale
	if scale == 0 {
		scale = float32(1 / math.Sqrt(float64(cfg.HeadDim)))
	}
	return &BaselineCache{
		codec: codec, kvHeads: cfg.KVHeads, qHeads: cfg.QHeads, dim: cfg.HeadDim,
		sinks: cfg.Sinks, window: cfg.Window, scale: scale,
		keys: make([][]float32, cfg.Layers), values: make([][]float32, cfg.Layers),
		keysDone: make([]int, cfg.Layers), valuesDone: make([]int, cfg.Layers),
	}, nil
}

func (c *BaselineCache) row() int { return c.kvHeads * c.dim }

// Len is the number of tokens appended to every layer.
func (c *BaselineCache) Len() int {
	n := len(c.keys[0]) / c.row()
	for _, k := range c.keys[1:] {
		n = min(n, len(k)/c.row())
	}
	return n
}

// Append adds keys and values [T][KVHeads][HeadDim] to a layer, rounded to
// fp16, and quantizes what left the window.
func (c *BaselineCache) Append(layer int, keys, values []float32) error {
	if layer < 0 || layer >= len(c.keys) {
		return fmt.Errorf("%w: layer %d of %d", llm.ErrArgument, layer, len(c.keys))
	}
	if len(keys) == 0 || len(keys)%c.row() != 0 || len(values) != len(keys) {
		return fmt.Errorf("%w: %d keys and %d values are not whole [%d][%d] rows", llm.ErrArgument, len(keys), len(values), c.kvHeads, c.dim)
	}
	for _, x := range keys {
		c.keys[layer] = append(c.keys[layer], fp16Round(x))
	}
	for _, x := range values {
		c.values[layer] = append(c.values[layer], fp16Round(x))
	}
	c.settle(layer)
	return nil
}

// settle quantizes the tokens of a layer that left the fp16 window.
func (c *BaselineCache) settle(layer int) {
	n := len(c.keys[layer]) / c.row()
	old := n - c.window // tokens before this index are out of the window
	b := c.codec
	if c.keysDone[layer] < c.sinks {
		c.keysDone[layer] = min(c.sinks, n)
	}
	if c.valuesDone[layer] < c.sinks {
		c.valuesDone[layer] = min(c.sinks, n)
	}
	for ; c.valuesDone[layer] < old; c.valuesDone[layer]++ {
		quantizeTokenGroups(c.headRows(c.values[layer], c.valuesDone[layer], 1), b.Bits, b.group(), b.Kind == TokenSymmetric)
	}
	if b.Kind != KIVI {
		for ; c.keysDone[layer] < old; c.keysDone[layer]++ {
			quantizeTokenGroups(c.headRows(c.keys[layer], c.keysDone[layer], 1), b.Bits, b.group(), b.Kind == TokenSymmetric)
		}
		return
	}
	for g := b.group(); c.keysDone[layer]+g <= old; c.keysDone[layer] += g {
		for h := range c.kvHeads {
			quantizeChannelGroups(c.headTokens(c.keys[layer], c.keysDone[layer], g, h), b.Bits, g)
		}
	}
}

// headRows returns the rows of every head of tokens t0…t0+n−1 (views into
// x), for codecs that quantize each row on its own.
func (c *BaselineCache) headRows(x []float32, t0, n int) [][]float32 {
	rows := make([][]float32, 0, n*c.kvHeads)
	for i := t0 * c.row(); i < (t0+n)*c.row(); i += c.dim {
		rows = append(rows, x[i:i+c.dim])
	}
	return rows
}

// headTokens returns head h's rows of tokens t0…t0+n−1 (views into x).
func (c *BaselineCache) headTokens(x []float32, t0, n, h int) [][]float32 {
	rows := make([][]float32, n)
	for t := range n {
		i := (t0+t)*c.row() + h*c.dim
		rows[t] = x[i : i+c.dim]
	}
	return rows
}

// Attend computes causal attention for the queries [T][QHeads][HeadDim] of
// the layer's last T tokens over the stored reconstructions.
func (c *BaselineCache) Attend(layer int, queries, out []float32) error {
	if layer < 0 || layer >= len(c.keys) {
		return fmt.Errorf("%w: layer %d of %d", llm.ErrArgument, layer, len(c.keys))
	}
	qrow := c.qHeads * c.dim
	n := len(c.keys[layer]) / c.row()
	if len(queries) == 0 || len(queries)%qrow != 0 || len(out) != len(queries) || len(queries)/qrow > n {
		return fmt.Errorf("%w: %d queries and %d outputs for %d stored tokens", llm.ErrArgument, len(queries), len(out), n)
	}
	T := len(queries) / qrow
	if cap(c.weights) < n {
		c.weights = make([]float32, n)
	}
	values, d := c.values[layer], c.dim
	for i := range T {
		visible := n - T + i + 1
		w := c.weights[:visible]
		for qh := range c.qHeads {
			h := qh / (c.qHeads / c.kvHeads)
			c.scores(layer, h, queries[(i*c.qHeads+qh)*d:][:d], w)
			best := float32(math.Inf(-1))
			for _, x := range w {
				best = max(best, x)
			}
			var sum float64
			for t := range w {
				w[t] = float32(math.Exp(float64(w[t] - best)))
				sum += float64(w[t])
			}
			o := out[(i*c.qHeads+qh)*d:][:d]
			clear(o)
			for t := range w {
				p := w[t] / float32(sum)
				v := values[t*c.row()+h*d:][:d]
				for j := range o {
					o[j] += p * v[j]
				}
			}
		}
	}
	return nil
}

// scores writes the scaled logits of query q against KV head h's first
// len(dst) stored keys of a layer.
func (c *BaselineCache) scores(layer, h int, q, dst []float32) {
	keys, d := c.keys[layer], c.dim
	for t := range dst {
		k := keys[t*c.row()+h*d:][:d]
		var s float32
		for j, x := range q {
			s += x * k[j]
		}
		dst[t] = s * c.scale
	}
}

// Logits writes the scaled logits of one query of query head qHead against
// every stored key of a layer (len(dst) = Len()), as Attend scores them.
func (c *BaselineCache) Logits(layer, qHead int, query, dst []float32) error {
	if layer < 0 || layer >= len(c.keys) || qHead < 0 || qHead >= c.qHeads {
		return fmt.Errorf("%w: layer %d of %d, query head %d of %d", llm.ErrArgument, layer, len(c.keys), qHead, c.qHeads)
	}
	if n := len(c.keys[layer]) / c.row(); len(query) != c.dim || len(dst) != n {
		return fmt.Errorf("%w: a query of %d and %d logits for %d stored tokens of dim %d", llm.ErrArgument, len(query), len(dst), n, c.dim)
	}
	c.scores(layer, qHead/(c.qHeads/c.kvHeads), query, dst)
	return nil
}

// Close drops the stored tokens.
func (c *BaselineCache) Close() error {
	for l := range c.keys {
		c.keys[l], c.values[l] = nil, nil
		c.keysDone[l], c.valuesDone[l] = 0, 0
	}
	return nil
}

// BaselineBuilder builds one-layer BaselineCaches of a codec, with window
// and sinks fp16 tokens, for the attention measurements (RunNIAH).
func BaselineBuilder(codec Baseline, window, sinks int) Builder {
	return func(kvHeads, qHeads, headDim int) (Attention, error) {
		return NewBaselineCache(codec, kvcache.Config{Layers: 1, KVHeads: kvHeads, QHeads: qHeads, HeadDim: headDim,
			Window: window, Sinks: sinks})
	}
}

// Truncate drops every token at position ≥ n; tokens already quantized
// stay as they are (a KIVI key group cut in two keeps its codes).
func (c *BaselineCache) Truncate(n int) error {
	if n < 0 || n > c.Len() {
		return fmt.Errorf("%w: truncate to %d of %d tokens", llm.ErrArgument, n, c.Len())
	}
	for l := range c.keys {
		c.keys[l], c.values[l] = c.keys[l][:n*c.row()], c.values[l][:n*c.row()]
		c.keysDone[l], c.valuesDone[l] = min(c.keysDone[l], n), min(c.valuesDone[l], n)
	}
	return nil
}

// BytesPerToken is what a real cache of this codec would store per token
// over all layers for a sequence of n tokens: fp16 sinks and window, the
// rest at the codec's exact StoredBits.
func (c *BaselineCache) BytesPerToken(n int) float64 {
	fp := min(n, c.sinks+c.window)
	bits := int64(fp)*int64(2*c.dim*16) + c.codec.StoredBits(n-fp, c.dim)
	return float64(bits) / 8 * float64(c.kvHeads*len(c.keys)) / float64(n)
}

// BaselineByName finds the codec of Baselines() with this Name ("kivi4-g32",
// "int4-asym-g32", …).
func BaselineByName(name string) (Baseline, bool) {
	for _, b := range Baselines() {
		if b.Name() == name {
			return b, true
		}
	}
	return Baseline{}, false
}
