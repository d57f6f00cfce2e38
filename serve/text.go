package serve

import (
	"strings"
	"unicode/utf8"

	"github.com/turboquant-go/tq/llm/tokenizer"
)

// textStream turns a growing detokenization into the increments a client
// receives. The text is always the tokenizer's Decode of every token so far
// (so the concatenated stream equals a one-shot decode, space clean-up
// included); an increment holds back what may still change or be cut: an
// incomplete UTF-8 character, a short tail from the last space when the
// tokenizer cleans up spaces (Decode then rewrites " ." and " 's"), and a
// tail that could begin a stop string.
type textStream struct {
	sent string // text already sent
}

// update takes the full decoded text and returns the new increment, and
// whether a stop string ended the text (the increment then runs up to it).
// cleanSpaces says whether Decode rewrites spaces; with final set nothing is
// held back.
func (t *textStream) update(full string, stops []string, cleanSpaces, final bool) (string, bool) {
	if !strings.HasPrefix(full, t.sent) {
		// Decode rewrote text already sent (a clean-up past the held tail);
		// continue from the common prefix rather than resend.
		n := 0
		for n < len(full) && n < len(t.sent) && full[n] == t.sent[n] {
			n++
		}
		full = t.sent + full[n:]
	}
	for _, s := range stops {
		if s == "" {
			continue
		}
		from := max(0, len(t.sent)-len(s)+1)
		if i := strings.Index(full[from:], s); i >= 0 {
			end := max(from+i, len(t.sent))
			out := full[len(t.sent):end]
			t.sent = full[:end]
			return out, true
		}
	}
	end := len(full)
	if !final {
		end = heldBack(full, stops, cleanSpaces)
	}
	end = max(end, len(t.sent))
	out := full[len(t.sent):end]
	t.sent = full[:end]
	return out, false
}

// heldBack is where the safe part of full ends.
func heldBack(full string, stops []string, cleanSpaces bool) int {
	end := len(full)
	// A trailing incomplete UTF-8 sequence.
	for i := 1; i <= utf8.UTFMax && i <= end; i++ {
		if utf8.RuneStart(full[end-i]) {
			if !utf8.FullRuneInString(full[end-i:]) {
				end -= i
			}
			break
		}
	}
	if sp := strings.LastIndexByte(full[:end], ' '); cleanSpaces && sp >= 0 && end-sp <= 4 {
		end = sp
	}
	for _, s := range stops {
		for k := min(len(s)-1, end); k > 0; k-- {
			if strings.HasSuffix(full[:end], s[:k]) {
				end -= k
				break
			}
		}
	}
	return end
}

// decodeCleansSpaces reports whether the tokenizer's Decode rewrites the
// spaces of text it encoded (llama.cpp's clean-up of " ." and " 's"), which
// a stream must allow for.
func decodeCleansSpaces(tk *tokenizer.Tokenizer) bool {
	for _, probe := range []string{"a .", "a ,", "a 's", "a ' b", "a ?", "a !"} {
		if tk.Decode(tk.Encode(probe, false, false)) != probe {
			return true
		}
	}
	return false
}
