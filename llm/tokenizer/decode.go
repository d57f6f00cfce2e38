package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// buildPiece is llama.cpp's token_to_piece(id, lstrip=0, special=true):
// the bytes a token stands for.
func (t *Tokenizer) buildPiece(id int32) string {
	text := t.tokens[id]
	switch t.attrs[id] {
	case attrControl, attrUnknown, attrUserDefined:
		return text
	case attrNormal:
		if t.kind == modelSPM {
			return strings.ReplaceAll(text, spaceMark, " ")
		}
		return decodeByteLevel(text)
	case attrByte:
		if t.kind == modelSPM {
			if b, ok := parseByteToken(text); ok {
				return string([]byte{b})
			}
		}
	}
	// unused, undefined, and byte-typed tokens in BPE render as nothing
	return ""
}

// parseByteToken reads the XX of "<0xXX>".
func parseByteToken(s string) (byte, bool) {
	if len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return 0, false
	}
	var v byte
	for _, c := range []byte(s[3:5]) {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | (c - '0')
		case c >= 'A' && c <= 'F':
			v = v<<4 | (c - 'A' + 10)
		case c >= 'a' && c <= 'f':
			v = v<<4 | (c - 'a' + 10)
		default:
			return 0, false
		}
	}
	return v, true
}

// decodeByteLevel maps each character of a byte-level token back to its
// byte. A character outside GPT-2's table (a vocabulary that is not really
// byte-level) is copied as its UTF-8; llama.cpp writes an "[UNK_BYTE_0x..]"
// marker instead.
func decodeByteLevel(text string) string {
	var b []byte
	for _, r := range text {
		if v, ok := runeByte[r]; ok {
			b = append(b, v)
		} else {
			b = utf8.AppendRune(b, r)
		}
	}
	return string(b)
}

// Piece returns the bytes id stands for, special tokens included as their
// text (llama.cpp's cached token_to_piece). It may be a partial UTF-8
// sequence (byte tokens, byte-level fragments): a streaming caller should
// buffer until the bytes form whole characters. Out of range ids give "".
func (t *Tokenizer) Piece(id int32) string {
	if id < 0 || int(id) >= len(t.pieces) {
		return ""
	}
	return t.pieces[id]
}

// piece is token_to_piece with the special flag: without it, control and
// unknown tokens render as nothing.
func (t *Tokenizer) piece(id int32, special bool) string {
	if id < 0 || int(id) >= len(t.pieces) {
		return ""
	}
	if !special {
		if a := t.attrs[id]; a == attrControl || a == attrUnknown {
			return ""
		}
	}
	return t.pieces[id]
}

// Decode converts ids to text as llama.cpp's llama_detokenize does with
// remove_special=false and unparse_special=false: control tokens (BOS, EOS,
// chat markers) render as nothing, user-defined tokens as their text.
func (t *Tokenizer) Decode(ids []int32) string {
	return t.DecodeSpecial(ids, false, false)
}

// DecodeSpecial is llama.cpp's llama_detokenize. removeSpecial drops a
// leading BOS and a trailing EOS when the vocabulary adds them;
// unparseSpecial renders control and unknown tokens as their text.
//
// With AddSpacePrefix one leading space is removed from the first token's
// piece, undoing the ▁ that Encode prefixed; but, exactly as llama.cpp,
// only when no BOS was dropped by removeSpecial, and a first token that
// renders as nothing (BOS with unparseSpecial false) uses the removal up.
// For byte-level BPE vocabularies (except those llama.cpp exempts, such as
// qwen2) Hugging Face's clean_up_tokenization_spaces is applied: " ." → ".",
// " 's" → "'s", and so on.
func (t *Tokenizer) DecodeSpecial(ids []int32, removeSpecial, unparseSpecial bool) string {
	removeSpace := t.addSpacePrefix
	if removeSpecial && t.addBOS && len(ids) > 0 && ids[0] == t.bos {
		removeSpace = false
		ids = ids[1:]
	}
	if removeSpecial && t.addEOS && len(ids) > 0 && ids[len(ids)-1] == t.eos {
		ids = ids[:len(ids)-1]
	}
	var b []byte
	for _, id := range ids {
		p := t.piece(id, unparseSpecial)
		if removeSpace && len(p) > 0 && p[0] == ' ' {
			p = p[1:]
		}
		removeSpace = false
		b = append(b, p...)
	}
	if t.cleanSpaces {
		b = cleanSpaces(b)
	}
	return string(b)
}

// cleanSpaces is llama.cpp's three in-place passes (clean_up_tokenization):
// drop the space before ? ! . , ; collapse " ' " to "'"; drop the space
// before 's 'm 're 've. The passes reuse the buffer in place, and the second
// one marks a swallowed space with NUL, which later comparisons see; that is
// kept so the result matches byte for byte.
func cleanSpaces(text []byte) []byte {
	n := len(text)
	if n == 0 {
		return text
	}
	// pass 1: " ?", " !", " .", " ,"
	total := 1
	for i := 1; i < n; i++ {
		x := text[i]
		if text[i-1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',') {
			total--
		}
		text[total] = x
		total++
	}
	n = total
	// pass 2: " ' " → "'"
	total = 1
	for i := 1; i < n; i++ {
		x := text[i]
		if x == '\'' && i+1 < n && text[i-1] == ' ' && text[i+1] == ' ' {
			total--
			i++
			text[i] = 0
		}
		text[total] = x
		total++
	}
	n = total
	// pass 3: " 's", " 'm", " 're", " 've"
	total = 1
	for i := 1; i < n; i++ {
		x := text[i]
		if text[i-1] == ' ' && x == '\'' && i+1 < n {
			x1 := text[i+1]
			if x1 == 's' || x1 == 'm' {
				total--
			} else if i+2 < n {
				x2 := text[i+2]
				if (x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e') {
					total--
				}
			}
		}
		text[total] = x
		total++
	}
	return text[:total]
}
