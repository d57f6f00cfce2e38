package tokenizer

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
)

// Sentinel errors. New wraps them with details; test with errors.Is.
var (
	// ErrVocab reports a Vocab that is inconsistent or malformed.
	ErrVocab = errors.New("tokenizer: invalid vocabulary")
	// ErrUnsupported reports a tokenizer model or pre-tokenizer this package
	// does not implement.
	ErrUnsupported = errors.New("tokenizer: unsupported")
)

// Token types as stored in tokenizer.ggml.token_type.
const (
	TypeUndefined   int32 = 0
	TypeNormal      int32 = 1
	TypeUnknown     int32 = 2
	TypeControl     int32 = 3
	TypeUserDefined int32 = 4
	TypeUnused      int32 = 5
	TypeByte        int32 = 6
)

// Vocab is the tokenizer part of a GGUF file's metadata, one field per key.
// Ids that are absent are -1.
//
// Booleans cannot say "absent", so the engine glue should start from
// Defaults(model, pre) and overwrite the fields whose keys the file has, as
// llama.cpp does.
type Vocab struct {
	Model  string    // tokenizer.ggml.model: "llama" (SentencePiece) or "gpt2" (byte-level BPE)
	Pre    string    // tokenizer.ggml.pre (gpt2 only); "" means llama.cpp's "default"
	Tokens []string  // tokenizer.ggml.tokens
	Scores []float32 // tokenizer.ggml.scores; nil means all 0
	Types  []int32   // tokenizer.ggml.token_type; nil means all normal
	Merges []string  // tokenizer.ggml.merges, "left right", rank = index

	BOS, EOS, UNK, PAD int32

	AddBOS, AddEOS bool
	AddSpacePrefix bool // tokenizer.ggml.add_space_prefix
}

// Defaults returns a Vocab holding llama.cpp's defaults for the flags and
// special ids of a tokenizer model and pre-tokenizer, to be overwritten by
// the keys the GGUF file actually has (tokenizer.ggml.bos_token_id,
// add_bos_token, add_eos_token, add_space_prefix, ...).
func Defaults(model, pre string) Vocab {
	v := Vocab{Model: model, Pre: pre, BOS: -1, EOS: -1, UNK: -1, PAD: -1}
	switch model {
	case "llama":
		// llama.cpp: SPM defaults to <unk>=0, <s>=1, </s>=2, BOS on, prefix on.
		v.BOS, v.EOS, v.UNK = 1, 2, 0
		v.AddBOS = true
		v.AddSpacePrefix = true
	case "gpt2":
		// llama.cpp defaults BPE to bos=eos=11, which is only right for
		// GPT-2 itself; every converted model sets the ids explicitly.
		v.BOS, v.EOS = 11, 11
		switch pre {
		case "llama3", "llama-v3", "llama-bpe", "falcon3",
			"falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano":
			v.AddBOS = true
		}
	}
	return v
}

// token attributes, llama.cpp's llama_token_attr reduced to what decides
// behaviour here. Types other than 1..6 become attrUndefined, as in llama.cpp.
type attr uint8

const (
	attrUndefined attr = iota
	attrNormal
	attrUnknown
	attrControl
	attrUserDefined
	attrUnused
	attrByte
)

type modelKind uint8

const (
	modelSPM modelKind = iota
	modelBPE
)

// Tokenizer encodes and decodes text for one vocabulary. It is immutable
// after New and safe for concurrent use.
type Tokenizer struct {
	kind   modelKind
	pre    preTokenizer
	tokens []string // as given; empty tokens renamed like llama.cpp
	scores []float32
	attrs  []attr
	ids    map[string]int32 // token text -> id, first id wins on duplicates

	ranks map[[2]string]int32 // BPE merge ranks, first rank wins on duplicates

	// special holds control, user-defined and unknown tokens, longest text
	// first, the order llama.cpp's partition tries them in.
	special []int32

	byteTok [256]int32 // SPM byte fallback: <0xXX> (or the bare byte) token, -1 if none

	pieces []string // token_to_piece(id, special=true) for every id

	eog map[int32]bool

	bos, eos, unk, pad int32
	addBOS, addEOS     bool
	addSpacePrefix     bool
	ignoreMerges       bool // llama3: a word that is a token is emitted whole
	cleanSpaces        bool // BPE clean_up_tokenization_spaces on decode
}

// eogTexts are the token texts llama.cpp treats as end of generation (and
// forces to control type) regardless of what the file says.
var eogTexts = map[string]bool{
	"<|eot_id|>":    true,
	"<|im_end|>":    true,
	"<|end|>":       true,
	"<end_of_turn>": true,
	"<|endoftext|>": true,
	"<|eom_id|>":    true,
	"<EOT>":         true,
}

// New validates v and builds a Tokenizer. Errors wrap ErrVocab or
// ErrUnsupported.
func New(v Vocab) (*Tokenizer, error) {
	t := &Tokenizer{
		bos: v.BOS, eos: v.EOS, unk: v.UNK, pad: v.PAD,
		addBOS: v.AddBOS, addEOS: v.AddEOS,
		addSpacePrefix: v.AddSpacePrefix,
	}
	switch v.Model {
	case "llama":
		t.kind = modelSPM
	case "gpt2":
		t.kind = modelBPE
		p, ok := preTokenizers[v.Pre]
		if !ok {
			return nil, fmt.Errorf("%w: pre-tokenizer %q (known: %s)", ErrUnsupported, v.Pre, knownPre())
		}
		t.pre = p
		t.ignoreMerges = p.ignoreMerges
		t.cleanSpaces = p.cleanSpaces
	default:
		return nil, fmt.Errorf("%w: tokenizer model %q (want \"llama\" or \"gpt2\")", ErrUnsupported, v.Model)
	}

	n := len(v.Tokens)
	if n == 0 {
		return nil, fmt.Errorf("%w: no tokens", ErrVocab)
	}
	if n > math.MaxInt32 {
		return nil, fmt.Errorf("%w: %d tokens do not fit int32 ids", ErrVocab, n)
	}
	if v.Scores != nil && len(v.Scores) != n {
		return nil, fmt.Errorf("%w: %d scores for %d tokens", ErrVocab, len(v.Scores), n)
	}
	if v.Types != nil && len(v.Types) != n {
		return nil, fmt.Errorf("%w: %d token types for %d tokens", ErrVocab, len(v.Types), n)
	}
	for _, s := range []struct {
		name string
		id   int32
	}{{"BOS", v.BOS}, {"EOS", v.EOS}, {"UNK", v.UNK}, {"PAD", v.PAD}} {
		if s.id < -1 || s.id >= int32(n) {
			return nil, fmt.Errorf("%w: %s id %d outside [0,%d) and not -1", ErrVocab, s.name, s.id, n)
		}
	}
	if v.AddBOS && v.BOS < 0 {
		return nil, fmt.Errorf("%w: AddBOS without a BOS token", ErrVocab)
	}
	if v.AddEOS && v.EOS < 0 {
		return nil, fmt.Errorf("%w: AddEOS without an EOS token", ErrVocab)
	}

	t.tokens = make([]string, n)
	t.scores = make([]float32, n)
	t.attrs = make([]attr, n)
	t.ids = make(map[string]int32, n)
	for i, s := range v.Tokens {
		if s == "" {
			// llama.cpp renames empty tokens so that the empty string never
			// maps to an id (an empty special token would match everywhere).
			s = "[EMPTY_" + strconv.Itoa(i) + "]"
		}
		t.tokens[i] = s
		if v.Scores != nil {
			t.scores[i] = v.Scores[i]
		}
		t.attrs[i] = attrNormal
		if v.Types != nil {
			switch v.Types[i] {
			case TypeNormal:
				t.attrs[i] = attrNormal
			case TypeUnknown:
				t.attrs[i] = attrUnknown
			case TypeControl:
				t.attrs[i] = attrControl
			case TypeUserDefined:
				t.attrs[i] = attrUserDefined
			case TypeUnused:
				t.attrs[i] = attrUnused
			case TypeByte:
				t.attrs[i] = attrByte
			default:
				t.attrs[i] = attrUndefined
			}
		}
		// llama.cpp keeps the last id for a duplicated text (and then
		// asserts); we keep the first so the result does not depend on a
		// crash, and duplicates stay decodable by id.
		if _, dup := t.ids[s]; !dup {
			t.ids[s] = int32(i)
		}
	}

	if t.kind == modelBPE {
		t.ranks = make(map[[2]string]int32, len(v.Merges))
		for i, m := range v.Merges {
			// llama.cpp splits at the first space after the first byte, so a
			// left part may itself start with a space.
			sp := -1
			for j := 1; j < len(m); j++ {
				if m[j] == ' ' {
					sp = j
					break
				}
			}
			if sp < 0 || sp == len(m)-1 {
				return nil, fmt.Errorf("%w: merge %d %q is not \"left right\"", ErrVocab, i, m)
			}
			if i > math.MaxInt32 {
				return nil, fmt.Errorf("%w: too many merges", ErrVocab)
			}
			k := [2]string{m[:sp], m[sp+1:]}
			if _, dup := t.ranks[k]; !dup {
				t.ranks[k] = int32(i)
			}
		}
	}

	// End-of-generation tokens, found by text as llama.cpp does; they are
	// forced to control type so they are never rendered by accident.
	t.eog = make(map[int32]bool)
	for i, s := range t.tokens {
		if eogTexts[s] && t.ids[s] == int32(i) {
			t.eog[int32(i)] = true
			t.attrs[i] = attrControl
		}
	}
	if t.eos >= 0 {
		t.eog[t.eos] = true
	}

	for i, a := range t.attrs {
		if a == attrControl || a == attrUserDefined || a == attrUnknown {
			t.special = append(t.special, int32(i))
		}
	}
	// llama.cpp sorts by length only with an unstable sort; equal lengths
	// are ordered by id here so the result is deterministic.
	sort.SliceStable(t.special, func(a, b int) bool {
		return len(t.tokens[t.special[a]]) > len(t.tokens[t.special[b]])
	})

	for b := 0; b < 256; b++ {
		t.byteTok[b] = -1
		if id, ok := t.ids[fmt.Sprintf("<0x%02X>", b)]; ok {
			t.byteTok[b] = id
		} else if id, ok := t.ids[string([]byte{byte(b)})]; ok {
			t.byteTok[b] = id
		}
	}

	t.pieces = make([]string, n)
	for i := range t.pieces {
		t.pieces[i] = t.buildPiece(int32(i))
	}
	return t, nil
}

// VocabSize is the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// BOS returns the beginning-of-sequence id, -1 if none.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS returns the end-of-sequence id, -1 if none.
func (t *Tokenizer) EOS() int32 { return t.eos }

// UNK returns the unknown-token id, -1 if none.
func (t *Tokenizer) UNK() int32 { return t.unk }

// PAD returns the padding id, -1 if none.
func (t *Tokenizer) PAD() int32 { return t.pad }

// AddBOS reports whether Encode with addSpecial prepends BOS.
func (t *Tokenizer) AddBOS() bool { return t.addBOS }

// AddEOS reports whether Encode with addSpecial appends EOS.
func (t *Tokenizer) AddEOS() bool { return t.addEOS }

// IsEOG reports whether id ends generation: EOS, or a token whose text
// llama.cpp recognises as an end-of-turn marker (<|eot_id|>, <|im_end|>, ...).
func (t *Tokenizer) IsEOG(id int32) bool { return t.eog[id] }

// Token returns the vocabulary text of id ("" when out of range).
func (t *Tokenizer) Token(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// Type returns the token type of id (TypeNormal, TypeControl, ...), after
// llama.cpp's adjustments (end-of-turn tokens become control). Out of range
// ids are TypeUndefined.
func (t *Tokenizer) Type(id int32) int32 {
	if id < 0 || int(id) >= len(t.tokens) {
		return TypeUndefined
	}
	return int32(t.attrs[id])
}

// ID returns the id of a token text, first id on duplicates.
func (t *Tokenizer) ID(text string) (int32, bool) {
	id, ok := t.ids[text]
	return id, ok
}

func knownPre() string {
	names := make([]string, 0, len(preTokenizers))
	for k := range preTokenizers {
		names = append(names, strconv.Quote(k))
	}
	sort.Strings(names)
	s := ""
	for i, k := range names {
		if i > 0 {
			s += ", "
		}
		s += k
	}
	return s
}
