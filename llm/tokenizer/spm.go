package tokenizer

// spaceMark is U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's visible space.
const spaceMark = "\u2581"

// encodeSPM appends the ids of one raw-text fragment, already escaped
// (spaces replaced by ▁, prefix added).
func (t *Tokenizer) encodeSPM(text []byte, st *bpeState, out []int32) []int32 {
	if len(text) == 0 {
		return out
	}
	// Symbols are UTF-8 characters, sized by their lead byte alone as in
	// llama.cpp, so invalid UTF-8 is cut the same way it cuts it.
	syms := st.syms[:0]
	for i := 0; i < len(text); {
		n := utf8lenLead(text[i])
		if i+n > len(text) {
			n = len(text) - i
		}
		k := len(syms)
		syms = append(syms, symbol{start: i, end: i + n, prev: k - 1, next: k + 1})
		i += n
	}
	syms[len(syms)-1].next = -1
	st.syms = syms

	h := &st.heap
	h.items = h.items[:0]
	h.lowerFirst = false
	for i := 1; i < len(syms); i++ {
		t.pushScore(h, text, syms, i-1, i)
	}
	for h.len() > 0 {
		m := h.pop()
		l, r := &syms[m.left], &syms[m.right]
		if l.start == l.end || r.start == r.end || l.next != m.right || r.end != m.end {
			continue
		}
		l.end = r.end
		r.start = r.end
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = m.left
		}
		if l.prev >= 0 {
			t.pushScore(h, text, syms, l.prev, m.left)
		}
		if l.next >= 0 {
			t.pushScore(h, text, syms, m.left, l.next)
		}
	}

	for i := 0; i >= 0; i = syms[i].next {
		s := text[syms[i].start:syms[i].end]
		if id, ok := t.ids[string(s)]; ok {
			out = append(out, id)
			continue
		}
		// A symbol that is not a token is always a single character (every
		// merge makes a token), so llama.cpp's resegment reduces to byte
		// fallback. llama.cpp throws when a byte has no token; we use UNK,
		// or drop the byte when there is no UNK either.
		for _, b := range s {
			if id := t.byteTok[b]; id >= 0 {
				out = append(out, id)
			} else if t.unk >= 0 {
				out = append(out, t.unk)
			}
		}
	}
	return out
}

func (t *Tokenizer) pushScore(h *mergeHeap, text []byte, syms []symbol, l, r int) {
	a, b := syms[l], syms[r]
	id, ok := t.ids[string(text[a.start:b.end])]
	if !ok {
		return
	}
	h.push(mergeItem{left: l, right: r, end: b.end, score: t.scores[id]})
}

// escapeSPM appends text with every ASCII space replaced by ▁, optionally
// prefixed by one ▁.
func escapeSPM(dst []byte, text string, prefix bool) []byte {
	if prefix {
		dst = append(dst, spaceMark...)
	}
	for i := 0; i < len(text); i++ {
		if text[i] == ' ' {
			dst = append(dst, spaceMark...)
		} else {
			dst = append(dst, text[i])
		}
	}
	return dst
}
