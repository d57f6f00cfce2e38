package validate

import (
	"fmt"
	"strings"

	"github.com/turboquant-go/tq/internal/rng"
	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/llm"
)

// TextCodec turns text into token ids and back (llm's tokenizer).
type TextCodec interface {
	Encode(text string) []int32
	Decode(ids []int32) string
}

// PasskeyOptions configures MeasurePasskey.
type PasskeyOptions struct {
	// Lengths are the prompt lengths in tokens (BOS included); the answer
	// must fit after the prompt, so each is at most MaxLength.
	Lengths []int
	// Depths is the number of needle depths, spread evenly from 0 (the
	// start of the filler) to 1 (just before the question).
	Depths int
	// Trials is the number of keys per (length, depth) cell.
	Trials int
	// Digits is the key length (default 5).
	Digits int
	Seed   uint64
	BOS    int32
	// Needle and Question are the sentences of the task, Needle with %[1]s
	// where the key goes (defaults: the committed model's training format).
	Needle, Question string
	Adjust           func(*kvcache.Config)
	Progress         func(done, total int)
}

// digits is the key length, Digits or its default.
func (o PasskeyOptions) digits() int {
	if o.Digits <= 0 {
		return 5
	}
	return o.Digits
}

// MaxLength is the longest prompt a model with this context can answer:
// the key's digits are decoded after it.
func (o PasskeyOptions) MaxLength(context int) int { return context - o.digits() }

// DefaultNeedle and DefaultQuestion are the passkey sentences the committed
// model was trained with (tools/trainlm).
const (
	DefaultNeedle   = "The pass key is %[1]s. Remember it. %[1]s is the pass key.\n"
	DefaultQuestion = "What is the pass key? The pass key is "
)

// PasskeyCell is one (length, depth) cell of one preset.
type PasskeyCell struct {
	Tokens int     `json:"tokens"`
	Depth  float64 `json:"depth"`
	Trials int     `json:"trials"`
	Passed int     `json:"passed"`
}

// PasskeyRow is one preset's passkey retrieval through the model.
type PasskeyRow struct {
	Preset   string        `json:"preset"`
	Accuracy float64       `json:"accuracy"`
	Cells    []PasskeyCell `json:"cells"`
}

// MeasurePasskey hides a random key at each depth of filler text, asks for it
// at the end of a prompt of each length, and decodes greedily with each
// preset's cache: a trial passes when the answer starts with the key. Every
// preset sees the same prompts.
func MeasurePasskey(m *llm.Model, tc TextCodec, filler []int32, presets []string, opt PasskeyOptions) ([]PasskeyRow, error) {
	cfg := m.Config
	opt.Digits = opt.digits()
	if opt.Needle == "" {
		opt.Needle = DefaultNeedle
	}
	if opt.Question == "" {
		opt.Question = DefaultQuestion
	}
	if opt.Depths < 1 || opt.Trials < 1 || len(opt.Lengths) == 0 {
		return nil, fmt.Errorf("%w: %d depths, %d trials, %d lengths", llm.ErrArgument, opt.Depths, opt.Trials, len(opt.Lengths))
	}
	cells, trials, err := passkeyTrials(cfg.Context, tc, filler, opt)
	if err != nil {
		return nil, err
	}
	greedy, _ := llm.NewSampler(llm.SampleOptions{})
	var rows []PasskeyRow
	done, total := 0, len(presets)*len(trials)
	for _, name := range presets {
		name = strings.TrimSpace(name)
		newCache, err := passkeyCache(m, name, opt.Adjust)
		if err != nil {
			return nil, err
		}
		row := PasskeyRow{Preset: name, Cells: append([]PasskeyCell(nil), cells...)}
		passed := 0
		for _, t := range trials {
			c, release := newCache()
			maxNew := min(opt.Digits+2, cfg.Context-len(t.prompt)+1)
			out, err := m.Generate(c, t.prompt, maxNew, greedy, nil)
			release()
			if err != nil {
				return nil, err
			}
			if strings.HasPrefix(strings.TrimSpace(tc.Decode(out)), t.key) {
				row.Cells[t.cell].Passed++
				passed++
			}
			done++
			if opt.Progress != nil {
				opt.Progress(done, total)
			}
		}
		row.Accuracy = float64(passed) / float64(len(trials))
		rows = append(rows, row)
	}
	return rows, nil
}

// passkeyCache returns a maker of empty caches for a preset, or for a
// baseline codec (BaselineByName) on a BaselineCache.
func passkeyCache(m *llm.Model, name string, adjust func(*kvcache.Config)) (func() (llm.Cache, func()), error) {
	ctx := m.Config.Context
	if b, ok := BaselineByName(name); ok {
		c, err := baselineShape(m, ctx)
		if err != nil {
			return nil, err
		}
		if _, err := NewBaselineCache(b, c); err != nil {
			return nil, err
		}
		return func() (llm.Cache, func()) {
			bc, _ := NewBaselineCache(b, c) // checked above
			return bc, func() {}
		}, nil
	}
	c, plan, err := modelPreset(m, name, ctx, adjust)
	if err != nil {
		return nil, err
	}
	pool, err := kvcache.NewPool(c, 2*plan+1<<20)
	if err != nil {
		return nil, err
	}
	return func() (llm.Cache, func()) {
		seq := pool.NewSequence()
		return seq, func() { seq.Close() }
	}, nil
}

// passkeyTrial is one prompt of a passkey cell: the key hidden in the filler,
// the question at the end.
type passkeyTrial struct {
	cell   int
	prompt []int32
	key    string
}

// passkeyTrials builds every cell's prompts, each exactly its cell's length.
func passkeyTrials(context int, tc TextCodec, filler []int32, opt PasskeyOptions) ([]PasskeyCell, []passkeyTrial, error) {
	question := tc.Encode(opt.Question)
	r := rng.New(opt.Seed)
	var trials []passkeyTrial
	var cells []PasskeyCell
	for _, L := range opt.Lengths {
		if L > opt.MaxLength(context) || L < 16 {
			return nil, nil, fmt.Errorf("%w: passkey prompt of %d tokens: want 16 to %d (context %d less the %d-digit answer)",
				llm.ErrArgument, L, opt.MaxLength(context), context, opt.digits())
		}
		for d := range opt.Depths {
			depth := 0.0
			if opt.Depths > 1 {
				depth = float64(d) / float64(opt.Depths-1)
			}
			cells = append(cells, PasskeyCell{Tokens: L, Depth: depth, Trials: opt.Trials})
			for range opt.Trials {
				key := make([]byte, opt.Digits)
				for i := range key {
					key[i] = byte('0' + r.Intn(10))
				}
				if key[0] == '0' {
					key[0] = '1' + byte(r.Intn(9))
				}
				needle := tc.Encode(fmt.Sprintf(opt.Needle, string(key)))
				n := L - len(needle) - len(question)
				if opt.BOS >= 0 {
					n--
				}
				if n < 0 || n > len(filler) {
					return nil, nil, fmt.Errorf("%w: %d filler tokens needed, %d available", llm.ErrArgument, n, len(filler))
				}
				off := r.Intn(len(filler) - n + 1)
				at := int(depth*float64(n) + 0.5)
				p := make([]int32, 0, L)
				if opt.BOS >= 0 {
					p = append(p, opt.BOS)
				}
				p = append(p, filler[off:off+at]...)
				p = append(p, needle...)
				p = append(p, filler[off+at:off+n]...)
				p = append(p, question...)
				trials = append(trials, passkeyTrial{len(cells) - 1, p, string(key)})
			}
		}
	}
	return cells, trials, nil
}
