package tokenizer

import (
	"encoding/json"
	"math/rand"
	"os"
	"reflect"
	"regexp"
	"testing"
	"unicode/utf8"
)

func pieces(p preTokenizer, s string) []string {
	rs := decodeRunes(s, nil)
	var bufs [2][]span
	var out []string
	for _, sp := range p.split(rs, &bufs) {
		out = append(out, encodeRunes(rs[sp.lo:sp.hi]))
	}
	return out
}

func encodeRunes(rs []rune) string {
	var b []byte
	for _, r := range rs {
		b = appendRune(b, r)
	}
	return string(b)
}

func TestDecodeRunesLikeLlamaCpp(t *testing.T) {
	cases := []struct {
		in   string
		want []rune
	}{
		{"aé€😀", []rune{'a', 'é', '€', '😀'}},
		{"\xc0\x80", []rune{0}},              // overlong, decoded anyway
		{"\xed\xa0\x80", []rune{0xD800}},     // surrogate, decoded anyway
		{"\xe2\x82", []rune{0xFFFD, 0xFFFD}}, // truncated
		{"\xe2\x41", []rune{0xFFFD, 'A'}},    // bad continuation
		{"\x80", []rune{0xFFFD}},             // stray continuation
		{"\xf8\x80\x80\x80", []rune{0xFFFD, 0xFFFD, 0xFFFD, 0xFFFD}},
		{"\xf4\x90\x80\x80", []rune{0xFFFD, 0xFFFD, 0xFFFD, 0xFFFD}}, // past U+10FFFF
	}
	for _, c := range cases {
		got := decodeRunes(c.in, nil)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("decodeRunes(%q) = %U, want %U", c.in, got, c.want)
		}
	}
	if got := encodeRunes([]rune{0xD800}); got != "\xed\xa0\x80" {
		t.Errorf("surrogate re-encodes as %q", got)
	}
}

func TestPreTokenizerCases(t *testing.T) {
	gpt2 := preTokenizers["gpt-2"]
	llama3 := preTokenizers["llama3"]
	qwen2 := preTokenizers["qwen2"]
	smollm := preTokenizers["smollm"]
	def := preTokenizers["default"]
	cases := []struct {
		name string
		p    preTokenizer
		in   string
		want []string
	}{
		// \s+(?!\S) leaves one space to prefix the next word.
		{"gpt2 two spaces", gpt2, "a  b", []string{"a", " ", " b"}},
		{"llama3 two spaces", llama3, "a  b", []string{"a", " ", " b"}},
		{"gpt2 trailing", gpt2, "a  ", []string{"a", "  "}},
		{"llama3 trailing", llama3, "a  ", []string{"a", "  "}},
		{"gpt2 lone trailing", gpt2, "a ", []string{"a", " "}},
		{"gpt2 newlines", gpt2, "x\n\n  y", []string{"x", "\n\n ", " y"}},
		{"llama3 newlines", llama3, "x\n\n  y", []string{"x", "\n\n", " ", " y"}},
		{"llama3 space then newline", llama3, "x \n y", []string{"x", " \n", " y"}},
		{"llama3 punct eats newlines", llama3, "a.\n\nb", []string{"a", ".\n\n", "b"}},
		{"gpt2 tab before word", gpt2, "a\tb", []string{"a", "\t", "b"}},
		{"llama3 tab before word", llama3, "a\tb", []string{"a", "\tb"}},
		{"gpt2 digits", gpt2, "12345", []string{"12345"}},
		{"llama3 digits", llama3, "12345", []string{"123", "45"}},
		{"llama3 spaced digits", llama3, "x 1234567", []string{"x", " ", "123", "456", "7"}},
		{"qwen2 digits", qwen2, "12345", []string{"1", "2", "3", "4", "5"}},
		{"gpt2 spaced digits", gpt2, "x 12", []string{"x", " 12"}},
		{"smollm", smollm, "Hello world! 123", []string{"Hello", " world", "!", " ", "1", "2", "3"}},
		{"smollm spaces before digit", smollm, "a  1", []string{"a", "  ", "1"}},
		{"gpt2 contractions", gpt2, "I'm they're", []string{"I", "'m", " they", "'re"}},
		{"gpt2 upper contraction", gpt2, "I'M", []string{"I", "'", "M"}},
		{"llama3 upper contraction", llama3, "I'M WE'LL", []string{"I", "'M", " WE", "'LL"}},
		{"llama3 long s is not s", llama3, "a'ſ", []string{"a", "'ſ"}},
		{"llama3 apostrophe word", llama3, "'hello", []string{"'hello"}},
		{"gpt2 apostrophe word", gpt2, "'hello", []string{"'", "hello"}},
		{"unicode letters", gpt2, "café é", []string{"café", " é"}},
		{"arabic digit", llama3, "x٣٣٣٣", []string{"x", "٣٣٣", "٣"}},
		{"roman numeral is a number", qwen2, "Ⅷ1", []string{"Ⅷ", "1"}},
		{"emoji is punctuation class", gpt2, "hi 😀😀!", []string{"hi", " 😀😀!"}},
		{"llama3 emoji", llama3, "hi 😀x", []string{"hi", " 😀", "x"}},
		{"nbsp is space, not a word prefix", gpt2, "a\u00a0\u00a0b", []string{"a", "\u00a0", "\u00a0", "b"}},
		{"combining mark splits", llama3, "e\u0301a", []string{"e", "\u0301a"}},
		{"default chain", def, "a+b=12345, ok", []string{"a", "+", "b", "=", "123", "45", ",", " ok"}},
		{"empty", gpt2, "", nil},
	}
	for _, c := range cases {
		got := pieces(c.p, c.in)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: split(%q) = %q, want %q", c.name, c.in, got, c.want)
		}
	}
}

// Go's \s is ASCII only; the Unicode White_Space set is these plus \p{Z}.
const ws = `\t\n\v\f\r\x{85}\p{Z}`

// refSplit emulates a pattern whose last two alternatives are
// \s+(?!\S)|\s+ : the lookahead-free head is matched with Go's regexp
// (leftmost-first, as a backtracking engine), the whitespace tail by rule.
func refSplit(head *regexp.Regexp, s string) []string {
	var out []string
	for len(s) > 0 {
		if m := head.FindStringIndex(s); m != nil && m[1] > 0 {
			out = append(out, s[:m[1]])
			s = s[m[1]:]
			continue
		}
		n := 0 // whitespace run, in bytes and runes
		runes := 0
		for n < len(s) {
			r, w := utf8.DecodeRuneInString(s[n:])
			if !isSpace(r) {
				break
			}
			n += w
			runes++
		}
		if n == 0 {
			// nothing matches: the character is its own piece
			_, w := utf8.DecodeRuneInString(s)
			out = append(out, s[:w])
			s = s[w:]
			continue
		}
		if runes > 1 && n < len(s) {
			_, w := utf8.DecodeLastRuneInString(s[:n])
			n -= w
		}
		out = append(out, s[:n])
		s = s[n:]
	}
	return out
}

var alphabet = []string{
	"a", "b", "Z", "s", "t", "m", "d", "l", "r", "v", "e", "S", "T", "L", "E", "ſ",
	"é", "中", "٣", "Ⅷ", "½", "0", "1", "9", "'", ".", "!", ",", "-", "$", "😀", "\u0301",
	" ", " ", " ", "  ", "\t", "\n", "\r", "\r\n", "\v", "\f", "\u00a0", "\u3000", "\u0085", "\u2028", "\x1c",
}

func randText(rng *rand.Rand, n int) string {
	s := ""
	for i := 0; i < n; i++ {
		s += alphabet[rng.Intn(len(alphabet))]
	}
	return s
}

func TestPreTokenizerAgainstRegexp(t *testing.T) {
	gpt2Head := regexp.MustCompile(`^(?:'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^` + ws + `\p{L}\p{N}]+)`)
	llama3Head := func(digits string) *regexp.Regexp {
		return regexp.MustCompile(`^(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|^[^\r\n\p{L}\p{N}]?\p{L}+|^\p{N}` +
			digits + `|^ ?[^` + ws + `\p{L}\p{N}]+[\r\n]*|^[` + ws + `]*[\r\n]+`)
	}
	checks := []struct {
		name string
		p    preTokenizer
		head *regexp.Regexp
	}{
		{"gpt-2", preTokenizers["gpt-2"], gpt2Head},
		{"llama3", preTokenizers["llama3"], llama3Head("{1,3}")},
		{"qwen2", preTokenizers["qwen2"], llama3Head("")},
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 3000; i++ {
		s := randText(rng, 1+rng.Intn(24))
		for _, c := range checks {
			got := pieces(c.p, s)
			want := refSplit(c.head, s)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: split(%q) = %q, regexp reference %q", c.name, s, got, want)
			}
		}
	}
}

func TestPreTokenizerCoversInput(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for name, p := range preTokenizers {
		for i := 0; i < 300; i++ {
			s := randText(rng, rng.Intn(30))
			joined := ""
			for _, w := range pieces(p, s) {
				if w == "" {
					t.Fatalf("%s: empty piece for %q", name, s)
				}
				joined += w
			}
			if joined != s {
				t.Fatalf("%s: pieces of %q join to %q", name, s, joined)
			}
		}
	}
}

// TestPreTokenizerGolden compares the splitters with Python's regex module
// running the real patterns, lookahead included (testdata/gen_pretok_regex.py).
func TestPreTokenizerGolden(t *testing.T) {
	data, err := os.ReadFile("testdata/pretok_regex.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []map[string]json.RawMessage
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 100 {
		t.Fatalf("only %d golden cases", len(cases))
	}
	for _, c := range cases {
		var in string
		if err := json.Unmarshal(c["in"], &in); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"gpt-2", "llama3", "qwen2", "smollm", "default", "falcon", "bloom", "viking"} {
			var want []string
			if err := json.Unmarshal(c[name], &want); err != nil {
				t.Fatal(err)
			}
			if got := pieces(preTokenizers[name], in); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: split(%q) = %q, regex module %q", name, in, got, want)
			}
		}
	}
}
