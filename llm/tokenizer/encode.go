package tokenizer

import "strings"

// fragment is either a special token (tok >= 0) or raw text text[lo:hi].
type fragment struct {
	tok    int32
	lo, hi int
}

// partition splits text into raw-text fragments and special tokens the way
// llama.cpp's tokenizer_st_partition does: special tokens are tried one at
// a time, longest text first (equal lengths by id), and every occurrence of
// the current one is cut out of every raw fragment left so far, leftmost
// first. So a longer special token wins over a shorter one wherever both
// could match, even when the shorter one starts earlier.
//
// User-defined tokens are always split out; control and unknown tokens only
// when parseSpecial, as in llama.cpp (and Hugging Face tokenizers, where
// added non-special tokens are matched before the model runs).
func (t *Tokenizer) partition(text string, parseSpecial bool) []fragment {
	frags := []fragment{{tok: -1, lo: 0, hi: len(text)}}
	if len(text) == 0 {
		return nil
	}
	var next []fragment
	for _, id := range t.special {
		a := t.attrs[id]
		if !parseSpecial && (a == attrControl || a == attrUnknown) {
			continue
		}
		s := t.tokens[id]
		if !strings.Contains(text, s) {
			continue // cheap global reject; no fragment can contain it
		}
		next = next[:0]
		for _, f := range frags {
			if f.tok >= 0 {
				next = append(next, f)
				continue
			}
			lo := f.lo
			for lo < f.hi {
				k := strings.Index(text[lo:f.hi], s)
				if k < 0 {
					break
				}
				if k > 0 {
					next = append(next, fragment{tok: -1, lo: lo, hi: lo + k})
				}
				next = append(next, fragment{tok: id})
				lo += k + len(s)
			}
			if lo < f.hi {
				next = append(next, fragment{tok: -1, lo: lo, hi: f.hi})
			}
		}
		frags, next = next, frags
	}
	return frags
}

// Encode converts text to token ids.
//
// addSpecial prepends BOS when the vocabulary asks for it (AddBOS) and
// appends EOS when it asks for that (AddEOS). parseSpecial lets the text of
// control tokens (such as "<|im_start|>") in the input become those tokens;
// without it they are tokenized as ordinary text. User-defined tokens are
// matched either way, as llama.cpp does.
//
// Any input is accepted, including invalid UTF-8.
func (t *Tokenizer) Encode(text string, addSpecial, parseSpecial bool) []int32 {
	out := make([]int32, 0, len(text)/3+2)
	if addSpecial && t.addBOS {
		out = append(out, t.bos)
	}
	var st bpeState
	var esc []byte
	// SentencePiece: the space prefix goes on a raw fragment at the start
	// of the text or right after a special token, never elsewhere.
	prevSpecial := true
	for _, f := range t.partition(text, parseSpecial) {
		if f.tok >= 0 {
			out = append(out, f.tok)
			prevSpecial = true
			continue
		}
		raw := text[f.lo:f.hi]
		switch t.kind {
		case modelSPM:
			esc = escapeSPM(esc[:0], raw, t.addSpacePrefix && prevSpecial)
			out = t.encodeSPM(esc, &st, out)
		case modelBPE:
			out = t.encodeBPE(raw, &st, out)
		}
		prevSpecial = false
	}
	if addSpecial && t.addEOS {
		out = append(out, t.eos)
	}
	return out
}
