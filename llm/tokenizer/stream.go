package tokenizer

import "unicode/utf8"

// Stream turns generated ids into printable text one token at a time.
// Byte tokens and byte-level BPE pieces can end in the middle of a UTF-8
// character; Stream holds such a tail back until the character is complete,
// so every string it returns is whole characters (bytes that can never
// become valid UTF-8 are passed through rather than held forever).
//
// Pieces are rendered as Decode renders them (control tokens as nothing),
// without Decode's leading-space removal and space clean-up, which only make
// sense for a whole text.
type Stream struct {
	t       *Tokenizer
	special bool
	pending []byte
}

// NewStream starts a stream. With special, control tokens are rendered as
// their text.
func (t *Tokenizer) NewStream(special bool) *Stream {
	return &Stream{t: t, special: special}
}

// Add appends id and returns the text that is now complete.
func (s *Stream) Add(id int32) string {
	s.pending = append(s.pending, s.t.piece(id, s.special)...)
	n := completeLen(s.pending)
	out := string(s.pending[:n])
	s.pending = append(s.pending[:0], s.pending[n:]...)
	return out
}

// Flush returns whatever is held back, complete or not.
func (s *Stream) Flush() string {
	out := string(s.pending)
	s.pending = s.pending[:0]
	return out
}

// completeLen is the length of b without a trailing partial UTF-8 sequence:
// a lead byte followed by fewer continuation bytes than it announces.
func completeLen(b []byte) int {
	// A partial sequence is at most 3 bytes: look back that far for a lead.
	for k := 1; k <= 3 && k <= len(b); k++ {
		c := b[len(b)-k]
		if c < 0x80 {
			return len(b) // ASCII: nothing partial after it
		}
		if c >= 0xC0 { // a lead byte
			need := utf8lenLead(c)
			if k < need && validPrefix(b[len(b)-k:]) {
				return len(b) - k
			}
			return len(b)
		}
	}
	return len(b)
}

// validPrefix reports whether p could still grow into a valid encoding.
func validPrefix(p []byte) bool {
	var buf [utf8.UTFMax]byte
	n := copy(buf[:], p)
	// complete with the smallest continuation bytes and see if it decodes;
	// then with the largest, to cover ranges like E0 A0.. and F4 80..8F.
	need := utf8lenLead(p[0])
	for _, fill := range []byte{0x80, 0xBF} {
		for i := n; i < need; i++ {
			buf[i] = fill
		}
		if r, size := utf8.DecodeRune(buf[:need]); r != utf8.RuneError && size == need {
			return true
		}
	}
	return false
}
