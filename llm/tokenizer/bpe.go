package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// GPT-2's bytes_to_unicode: byte-level BPE vocabularies store every byte as
// a printable character so that tokens are valid text. The printable bytes
// '!'..'~', '¡'..'¬' and '®'..'ÿ' stand for themselves; the other 68 bytes
// (controls, space, DEL, 0x80..0xA0, soft hyphen 0xAD) take U+0100, U+0101,
// ... in increasing byte order, so space is 'Ġ' (U+0120) and '\n' is 'Ċ'.
var (
	byteRune [256]rune
	runeByte = map[rune]byte{}
)

func init() {
	n := rune(0)
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			byteRune[b] = rune(b)
		} else {
			byteRune[b] = 256 + n
			n++
		}
		runeByte[byteRune[b]] = byte(b)
	}
}

// decodeRunes converts text to code points the way llama.cpp's
// unicode_cpts_from_utf8 does, so that BPE sees the same code points:
// a lead byte followed by enough continuation bytes decodes even when the
// result is overlong or a surrogate (C0 80 is U+0000, ED A0 80 is U+D800);
// anything else, and values past U+10FFFF (where llama.cpp would throw),
// become U+FFFD for one byte.
func decodeRunes(text string, dst []rune) []rune {
	dst = dst[:0]
	for i := 0; i < len(text); {
		r, n := decodeRune(text, i)
		dst = append(dst, r)
		i += n
	}
	return dst
}

func decodeRune(s string, i int) (rune, int) {
	cont := func(k int) bool {
		if i+k >= len(s) {
			return false
		}
		for j := 1; j <= k; j++ {
			if s[i+j]&0xC0 != 0x80 {
				return false
			}
		}
		return true
	}
	b := s[i]
	switch {
	case b < 0x80:
		return rune(b), 1
	case b&0x40 == 0: // stray continuation byte
	case b&0x20 == 0:
		if cont(1) {
			return rune(b&0x1F)<<6 | rune(s[i+1]&0x3F), 2
		}
	case b&0x10 == 0:
		if cont(2) {
			return rune(b&0x0F)<<12 | rune(s[i+1]&0x3F)<<6 | rune(s[i+2]&0x3F), 3
		}
	case b&0x08 == 0:
		if cont(3) {
			r := rune(b&0x07)<<18 | rune(s[i+1]&0x3F)<<12 | rune(s[i+2]&0x3F)<<6 | rune(s[i+3]&0x3F)
			if r <= unicode.MaxRune {
				return r, 4
			}
		}
	}
	return utf8.RuneError, 1
}

// appendRune is llama.cpp's unicode_cpt_to_utf8. Unlike utf8.AppendRune it
// encodes surrogates as they are, so they round-trip like in llama.cpp.
func appendRune(dst []byte, r rune) []byte {
	switch {
	case r < 0x80:
		return append(dst, byte(r))
	case r < 0x800:
		return append(dst, 0xC0|byte(r>>6), 0x80|byte(r)&0x3F)
	case r < 0x10000:
		return append(dst, 0xE0|byte(r>>12), 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
	}
	return append(dst, 0xF0|byte(r>>18), 0x80|byte(r>>12)&0x3F, 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
}

// bpeState holds per-call scratch space.
type bpeState struct {
	runes []rune
	spans [2][]span
	word  []byte
	syms  []symbol
	heap  mergeHeap
}

// symbol is a byte range of the current word, linked to its live neighbours.
type symbol struct {
	start, end int // int, not int32: no input length can overflow an index
	prev, next int // -1 at the ends
}

// encodeBPE appends the ids of one raw-text fragment.
func (t *Tokenizer) encodeBPE(text string, st *bpeState, out []int32) []int32 {
	st.runes = decodeRunes(text, st.runes)
	pieces := t.pre.split(st.runes, &st.spans)
	var u []byte
	for _, p := range pieces {
		w := st.word[:0]
		for _, r := range st.runes[p.lo:p.hi] {
			u = appendRune(u[:0], r)
			for _, b := range u {
				w = utf8.AppendRune(w, byteRune[b])
			}
		}
		st.word = w
		out = t.bpeWord(w, st, out)
	}
	return out
}

// bpeWord merges one byte-encoded word and appends its ids.
func (t *Tokenizer) bpeWord(w []byte, st *bpeState, out []int32) []int32 {
	if len(w) == 0 {
		return out
	}
	if t.ignoreMerges {
		// llama3 (HF ignore_merges): a word that is already a token is not
		// re-derived through merges, which could give a different split.
		if id, ok := t.ids[string(w)]; ok {
			return append(out, id)
		}
	}
	syms := st.syms[:0]
	for i := 0; i < len(w); {
		n := utf8lenLead(w[i])
		if i+n > len(w) {
			n = len(w) - i
		}
		k := len(syms)
		syms = append(syms, symbol{start: i, end: i + n, prev: k - 1, next: k + 1})
		i += n
	}
	syms[len(syms)-1].next = -1
	st.syms = syms

	h := &st.heap
	h.items = h.items[:0]
	h.lowerFirst = true
	for i := 1; i < len(syms); i++ {
		t.pushRank(h, w, syms, i-1, i)
	}
	for h.len() > 0 {
		m := h.pop()
		l, r := &syms[m.left], &syms[m.right]
		if l.start == l.end || r.start == r.end || l.next != m.right || r.end != m.end {
			continue // stale: one side already merged into something else
		}
		l.end = r.end
		r.start = r.end // dead
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = m.left
		}
		if l.prev >= 0 {
			t.pushRank(h, w, syms, l.prev, m.left)
		}
		if l.next >= 0 {
			t.pushRank(h, w, syms, m.left, l.next)
		}
	}

	for i := 0; i >= 0; i = syms[i].next {
		s := w[syms[i].start:syms[i].end]
		if id, ok := t.ids[string(s)]; ok {
			out = append(out, id)
			continue
		}
		// Not a token (e.g. no merges at all, or a vocabulary missing a
		// merge result): fall back to one token per encoded byte character.
		// llama.cpp looks up the raw UTF-8 bytes of the symbol instead,
		// which only finds tokens for ASCII-mapped bytes and silently drops
		// the rest; the per-character lookup agrees with it wherever it
		// finds anything and recovers the other bytes.
		for j := 0; j < len(s); {
			n := utf8lenLead(s[j])
			if j+n > len(s) {
				n = len(s) - j
			}
			if id, ok := t.ids[string(s[j:j+n])]; ok {
				out = append(out, id)
			} else if t.unk >= 0 {
				out = append(out, t.unk)
			}
			j += n
		}
	}
	return out
}

func (t *Tokenizer) pushRank(h *mergeHeap, w []byte, syms []symbol, l, r int) {
	a, b := syms[l], syms[r]
	rank, ok := t.ranks[[2]string{string(w[a.start:a.end]), string(w[b.start:b.end])}]
	if !ok {
		return
	}
	h.push(mergeItem{left: l, right: r, end: b.end, rank: rank})
}

// utf8lenLead is llama.cpp's unicode_len_utf8: the sequence length implied
// by a lead byte alone. Stray continuation bytes count as 1.
func utf8lenLead(b byte) int {
	switch b >> 4 {
	case 0xC, 0xD:
		return 2
	case 0xE:
		return 3
	case 0xF:
		return 4
	}
	return 1
}

// mergeItem is a candidate merge of two adjacent symbols. end is the right
// symbol's end when queued, used to detect that it has grown since.
type mergeItem struct {
	left, right int
	end         int
	rank        int32   // BPE: lower first
	score       float32 // SPM: higher first
}

// mergeHeap is a binary heap of merge candidates. Ties go to the leftmost
// pair, as in llama.cpp's comparators.
type mergeHeap struct {
	items      []mergeItem
	lowerFirst bool // true: by rank ascending (BPE); false: by score descending (SPM)
}

func (h *mergeHeap) less(a, b mergeItem) bool {
	if h.lowerFirst {
		if a.rank != b.rank {
			return a.rank < b.rank
		}
	} else if a.score != b.score {
		return a.score > b.score
	}
	return a.left < b.left
}

func (h *mergeHeap) len() int { return len(h.items) }

func (h *mergeHeap) push(x mergeItem) {
	h.items = append(h.items, x)
	i := len(h.items) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(h.items[i], h.items[p]) {
			break
		}
		h.items[i], h.items[p] = h.items[p], h.items[i]
		i = p
	}
}

func (h *mergeHeap) pop() mergeItem {
	top := h.items[0]
	last := len(h.items) - 1
	h.items[0] = h.items[last]
	h.items = h.items[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= last {
			break
		}
		m := l
		if r := l + 1; r < last && h.less(h.items[r], h.items[l]) {
			m = r
		}
		if !h.less(h.items[m], h.items[i]) {
			break
		}
		h.items[i], h.items[m] = h.items[m], h.items[i]
		i = m
	}
	return top
}
