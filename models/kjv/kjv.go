package kjv

import (
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"

	"github.com/turboquant-go/tq/llm"
	"github.com/turboquant-go/tq/llm/gguf"
)

// FileName and HeldoutName name the embedded files (models/kjv/).
const (
	FileName    = "kjv-llama.gguf"
	HeldoutName = "heldout.txt"
)

// GGUF is the model file.
//
//go:embed kjv-llama.gguf
var GGUF []byte

// Heldout is text the model never saw in training.
//
//go:embed heldout.txt
var Heldout string

//go:embed reference.json
var referenceJSON []byte

//go:embed reference_logits.bin
var referenceLogits []byte

// Model parses the embedded file; the model aliases the embedded bytes.
func Model() (*llm.Model, error) {
	f, err := gguf.Parse(GGUF)
	if err != nil {
		return nil, err
	}
	return llm.Load(f)
}

// Probe is one reference prompt: its text, the token ids the training
// tokenizer gave it (BOS first), and PyTorch's logits at every position.
type Probe struct {
	Text   string    `json:"text"`
	IDs    []int32   `json:"ids"`
	Logits []float32 `json:"-"` // [len(IDs)][Vocab]
}

// Reference is reference.json with the probes' logits attached.
type Reference struct {
	Vocab  int     `json:"vocab_size"`
	Probes []Probe `json:"probes"`
	// HeldoutPPL is PyTorch's perplexity of Heldout by the protocol in
	// HeldoutMethod.
	Heldout struct {
		Tokens  int     `json:"tokens"`
		Windows int     `json:"windows"`
		Ctx     int     `json:"ctx"`
		Method  string  `json:"method"`
		PPL     float64 `json:"ppl"`
		// WindowMeanNLL is each window's mean NLL, nats.
		WindowMeanNLL []float64 `json:"window_mean_nll"`
	} `json:"heldout"`
}

// LoadReference decodes the reference logits committed with the model.
func LoadReference() (*Reference, error) {
	var raw struct {
		Reference
		Probes []struct {
			Probe
			Positions int `json:"positions"`
			Offset    int `json:"logits_offset"`
		} `json:"probes"`
	}
	if err := json.Unmarshal(referenceJSON, &raw); err != nil {
		return nil, fmt.Errorf("kjv: reference.json: %w", err)
	}
	ref := raw.Reference
	ref.Probes = nil
	for i, p := range raw.Probes {
		n := p.Positions * ref.Vocab
		lo := p.Offset
		if p.Positions <= 0 || lo < 0 || lo+n > len(referenceLogits)/4 {
			return nil, fmt.Errorf("kjv: probe %d: %d positions at float %d of %d", i, p.Positions, lo, len(referenceLogits)/4)
		}
		p.Probe.Logits = make([]float32, n)
		for j := range n {
			p.Probe.Logits[j] = math.Float32frombits(binary.LittleEndian.Uint32(referenceLogits[4*(lo+j):]))
		}
		ref.Probes = append(ref.Probes, p.Probe)
	}
	return &ref, nil
}
