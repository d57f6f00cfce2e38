package tokenizer

import (
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// vb builds a vocabulary token by token.
type vb struct {
	toks   []string
	scores []float32
	types  []int32
}

func (v *vb) add(s string, score float32, typ int32) int32 {
	v.toks = append(v.toks, s)
	v.scores = append(v.scores, score)
	v.types = append(v.types, typ)
	return int32(len(v.toks) - 1)
}

// ---------------------------------------------------------------- SPM

// spmVocab is a small Llama-style vocabulary: <unk>, <s>, </s>, 256 byte
// tokens, then pieces with log-probability-like scores.
func spmVocab() (Vocab, map[string]int32) {
	var v vb
	v.add("<unk>", 0, TypeUnknown)
	v.add("<s>", 0, TypeControl)
	v.add("</s>", 0, TypeControl)
	for b := 0; b < 256; b++ {
		v.add(fmt.Sprintf("<0x%02X>", b), 0, TypeByte)
	}
	for _, p := range []struct {
		s     string
		score float32
	}{
		{"▁", -5}, {"h", -10}, {"e", -10}, {"l", -10}, {"o", -10}, {"w", -10}, {"r", -10}, {"d", -10},
		{"▁h", -4}, {"he", -6}, {"ll", -3}, {"llo", -2}, {"▁he", -3}, {"▁hello", -1},
		{"▁w", -4}, {"or", -3}, {"▁wor", -2}, {"ld", -3}, {"▁world", -1}, {"▁▁", -4},
		{"ab", -1}, {"bc", -1}, {"a", -10}, {"b", -10}, {"c", -10},
	} {
		v.add(p.s, p.score, TypeNormal)
	}
	v.add("<|im_start|>", 0, TypeControl)
	v.add("<|im_end|>", 0, TypeControl)
	v.add("<tool>", 0, TypeUserDefined)
	ids := map[string]int32{}
	for i, s := range v.toks {
		ids[s] = int32(i)
	}
	return Vocab{
		Model: "llama", Tokens: v.toks, Scores: v.scores, Types: v.types,
		BOS: 1, EOS: 2, UNK: 0, PAD: -1,
		AddBOS: true, AddSpacePrefix: true,
	}, ids
}

func mustNew(t testing.TB, v Vocab) *Tokenizer {
	t.Helper()
	tk, err := New(v)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func ids(m map[string]int32, toks ...string) []int32 {
	out := []int32{}
	for _, s := range toks {
		id, ok := m[s]
		if !ok {
			panic("no token " + s)
		}
		out = append(out, id)
	}
	return out
}

func byteIDs(bs ...byte) []int32 {
	out := []int32{}
	for _, b := range bs {
		out = append(out, 3+int32(b))
	}
	return out
}

func cat(parts ...[]int32) []int32 {
	out := []int32{}
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func eq(t *testing.T, what string, got, want []int32) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func TestSPMEncode(t *testing.T) {
	v, m := spmVocab()
	tk := mustNew(t, v)
	eq(t, "hello world", tk.Encode("hello world", false, false), ids(m, "▁hello", "▁world"))
	eq(t, "with BOS", tk.Encode("hello world", true, false), ids(m, "<s>", "▁hello", "▁world"))
	// i and é are not pieces: byte fallback, one <0xXX> per UTF-8 byte.
	eq(t, "byte fallback", tk.Encode("hi é", false, false),
		cat(ids(m, "▁h"), byteIDs('i'), ids(m, "▁"), byteIDs(0xC3, 0xA9)))
	eq(t, "empty", tk.Encode("", false, false), []int32{})
	eq(t, "empty with BOS", tk.Encode("", true, false), ids(m, "<s>"))

	v.AddSpacePrefix = false
	tk = mustNew(t, v)
	// Without the prefix "hello" has no ▁: ll, then llo, then he.
	eq(t, "no prefix", tk.Encode("hello", false, false), ids(m, "he", "llo"))

	v.AddEOS = true
	tk = mustNew(t, v)
	eq(t, "with EOS", tk.Encode("he", true, false), ids(m, "<s>", "he", "</s>"))
}

func TestSPMLeadingSpaces(t *testing.T) {
	v, m := spmVocab()
	tk := mustNew(t, v)
	// "▁▁hello": ▁▁ (-4) and ▁h (-4) tie; the leftmost wins, so the second
	// ▁ is taken before it can start ▁hello.
	eq(t, "leading space", tk.Encode(" hello", false, false), ids(m, "▁▁", "he", "llo"))
}

func TestSPMMergeOrder(t *testing.T) {
	v, m := spmVocab()
	v.AddSpacePrefix = false
	tk := mustNew(t, v)
	// ab and bc both score -1: leftmost first, so "abc" → ab, c.
	eq(t, "tie leftmost", tk.Encode("abc", false, false), ids(m, "ab", "c"))
	eq(t, "tie leftmost 2", tk.Encode("abcbc", false, false), ids(m, "ab", "c", "bc"))
}

func TestSPMSpecial(t *testing.T) {
	v, m := spmVocab()
	tk := mustNew(t, v)
	got := tk.Encode("<|im_start|>hello<|im_end|>", false, true)
	eq(t, "parse special", got, ids(m, "<|im_start|>", "▁hello", "<|im_end|>"))
	// The prefix goes on every fragment that follows a special token.
	got = tk.Encode("he<|im_start|>he he", false, true)
	eq(t, "prefix after special", got, ids(m, "▁he", "<|im_start|>", "▁he", "▁he"))
	// Without parseSpecial the control text is plain text.
	got = tk.Encode("<|im_start|>", false, false)
	for _, id := range got {
		if id == m["<|im_start|>"] {
			t.Fatalf("control token matched without parseSpecial: %v", got)
		}
	}
	if s := tk.Decode(got); s != "<|im_start|>" {
		t.Errorf("plain-text control round trip: %q", s)
	}
	// User-defined tokens are matched either way, as in llama.cpp.
	eq(t, "user-defined", tk.Encode("<tool>he", false, false), ids(m, "<tool>", "▁he"))
}

func TestPartitionLongestFirst(t *testing.T) {
	var v vb
	for b := 0; b < 256; b++ {
		v.add(fmt.Sprintf("<0x%02X>", b), 0, TypeByte)
	}
	ab := v.add("ab", 0, TypeUserDefined)
	bcd := v.add("bcd", 0, TypeUserDefined)
	xy := v.add("xy", 0, TypeControl)
	xyz := v.add("xyz", 0, TypeControl)
	tk := mustNew(t, Vocab{Model: "llama", Tokens: v.toks, Types: v.types, BOS: -1, EOS: -1, UNK: -1, PAD: -1})
	// llama.cpp tries the longer special first everywhere: bcd wins although
	// ab starts earlier.
	eq(t, "longest first", tk.Encode("abcd", false, false), []int32{'a', bcd})
	eq(t, "repeated", tk.Encode("abab", false, false), []int32{ab, ab})
	eq(t, "control", tk.Encode("xyxyz", false, true), []int32{xy, xyz})
	// Without parseSpecial the partition skips control tokens, but SPM
	// merging looks pieces up by text whatever their type (llama.cpp's
	// text_to_token), so "xy" still merges into the control token here.
	eq(t, "control off, reached by merging", tk.Encode("xy", false, false), []int32{xy})
	eq(t, "control off, not reachable", tk.Encode("yx", false, false), []int32{'y', 'x'})
}

func TestSPMDecode(t *testing.T) {
	v, m := spmVocab()
	tk := mustNew(t, v)
	cases := []struct {
		ids            []int32
		remove, unpars bool
		want           string
	}{
		{ids(m, "▁hello", "▁world"), false, false, "hello world"},
		// llama.cpp: a BOS that renders as nothing still uses up the
		// leading-space removal, and dropping BOS via remove_special turns
		// the removal off. Either way the space stays.
		{ids(m, "<s>", "▁hello"), false, false, " hello"},
		{ids(m, "<s>", "▁hello"), true, false, " hello"},
		{ids(m, "<s>", "▁hello"), false, true, "<s> hello"},
		{ids(m, "▁hello", "</s>"), false, true, "hello</s>"},
		{cat(byteIDs(0xC3, 0xA9), ids(m, "▁w")), false, false, "é w"},
		// the one stripped space can come from a byte token
		{byteIDs(' ', ' ', 'A'), false, false, " A"},
		{ids(m, "<tool>", "▁he"), false, false, "<tool> he"},
		// out-of-range ids render as nothing (llama.cpp would throw) and,
		// like any empty first piece, use up the space removal
		{[]int32{-1, 1 << 30, m["▁he"]}, false, false, " he"},
	}
	for _, c := range cases {
		if got := tk.DecodeSpecial(c.ids, c.remove, c.unpars); got != c.want {
			t.Errorf("DecodeSpecial(%v, %v, %v) = %q, want %q", c.ids, c.remove, c.unpars, got, c.want)
		}
	}
	v.AddSpacePrefix = false
	tk = mustNew(t, v)
	if got := tk.Decode(ids(m, "▁hello")); got != " hello" {
		t.Errorf("no prefix: %q", got)
	}
}

func TestSPMRoundTrip(t *testing.T) {
	v, _ := spmVocab()
	tk := mustNew(t, v)
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 2000; i++ {
		s := randText(rng, rng.Intn(20))
		if rng.Intn(4) == 0 {
			s += string([]byte{byte(rng.Intn(256))}) // invalid UTF-8 now and then
		}
		got := tk.Decode(tk.Encode(s, false, false))
		if got != s {
			t.Fatalf("round trip %q → %q", s, got)
		}
	}
}

// naiveSPM is the textbook quadratic algorithm: repeatedly merge the
// adjacent pair whose concatenation has the highest score, leftmost on ties.
func naiveSPM(tk *Tokenizer, text string, prefix bool) []int32 {
	esc := string(escapeSPM(nil, text, prefix))
	var syms []string
	for i := 0; i < len(esc); {
		n := utf8lenLead(esc[i])
		if i+n > len(esc) {
			n = len(esc) - i
		}
		syms = append(syms, esc[i:i+n])
		i += n
	}
	for {
		best := -1
		var bestScore float32
		for i := 0; i+1 < len(syms); i++ {
			if id, ok := tk.ids[syms[i]+syms[i+1]]; ok {
				if best < 0 || tk.scores[id] > bestScore {
					best, bestScore = i, tk.scores[id]
				}
			}
		}
		if best < 0 {
			break
		}
		syms[best] += syms[best+1]
		syms = append(syms[:best+1], syms[best+2:]...)
	}
	out := []int32{}
	for _, s := range syms {
		if id, ok := tk.ids[s]; ok {
			out = append(out, id)
			continue
		}
		for _, b := range []byte(s) {
			out = append(out, tk.byteTok[b])
		}
	}
	return out
}

func TestSPMAgainstNaive(t *testing.T) {
	v, _ := spmVocab()
	tk := mustNew(t, v)
	rng := rand.New(rand.NewSource(4))
	letters := []string{"h", "e", "l", "o", "w", "r", "d", "a", "b", "c", " ", "  ", "é"}
	for i := 0; i < 3000; i++ {
		s := ""
		for j := rng.Intn(30); j > 0; j-- {
			s += letters[rng.Intn(len(letters))]
		}
		got := tk.Encode(s, false, false)
		want := naiveSPM(tk, s, len(s) > 0)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Encode(%q) = %v, naive %v", s, got, want)
		}
	}
}

// ---------------------------------------------------------------- BPE

func TestByteTable(t *testing.T) {
	if byteRune['!'] != '!' || byteRune['~'] != '~' || byteRune[0xA1] != '¡' || byteRune[0xAC] != '¬' ||
		byteRune[0xAE] != '®' || byteRune[0xFF] != 'ÿ' {
		t.Fatal("printable bytes must map to themselves")
	}
	// The 68 others take U+0100.. in byte order.
	want := map[byte]rune{0x00: 0x100, 0x20: 0x120, '\n': 0x10A, 0x7F: 0x121, 0x80: 0x122, 0xA0: 0x142, 0xAD: 0x143}
	for b, r := range want {
		if byteRune[b] != r {
			t.Errorf("byte %#x → U+%04X, want U+%04X", b, byteRune[b], r)
		}
	}
	moved := 0
	for b := 0; b < 256; b++ {
		if byteRune[b] != rune(b) {
			moved++
		}
		if runeByte[byteRune[b]] != byte(b) {
			t.Fatalf("byte %#x does not round trip", b)
		}
	}
	if moved != 68 || len(runeByte) != 256 {
		t.Fatalf("moved %d bytes, table has %d entries", moved, len(runeByte))
	}
}

func byteLevel(s string) string {
	var b []byte
	for _, c := range []byte(s) {
		b = utf8.AppendRune(b, byteRune[c])
	}
	return string(b)
}

// bpeVocab makes a byte-level vocabulary: the 256 byte characters, then one
// token per merge result, then extra tokens.
func bpeVocab(pre string, merges []string, extra ...string) (Vocab, map[string]int32) {
	var v vb
	for b := 0; b < 256; b++ {
		v.add(string(byteRune[b]), 0, TypeNormal)
	}
	seen := map[string]bool{}
	for _, s := range v.toks {
		seen[s] = true
	}
	for _, mg := range merges {
		s := strings.Replace(mg, " ", "", 1)
		if !seen[s] {
			seen[s] = true
			v.add(s, 0, TypeNormal)
		}
	}
	for _, s := range extra {
		typ := TypeNormal
		if strings.HasPrefix(s, "<|") {
			typ = TypeControl
		}
		v.add(s, 0, typ)
	}
	m := map[string]int32{}
	for i, s := range v.toks {
		if _, ok := m[s]; !ok {
			m[s] = int32(i)
		}
	}
	return Vocab{Model: "gpt2", Pre: pre, Tokens: v.toks, Types: v.types, Merges: merges,
		BOS: -1, EOS: -1, UNK: -1, PAD: -1}, m
}

func TestBPEHandMerges(t *testing.T) {
	merges := []string{"h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld"}
	v, m := bpeVocab("gpt-2", merges)
	tk := mustNew(t, v)
	eq(t, "hello world", tk.Encode("hello world", false, false), ids(m, "hello", "Ġworld"))
	eq(t, "partial", tk.Encode("hell wor", false, false), ids(m, "hell", "Ġwor"))
	if got := tk.Decode(ids(m, "hello", "Ġworld")); got != "hello world" {
		t.Errorf("decode: %q", got)
	}
	if got := tk.Piece(m["Ġworld"]); got != " world" {
		t.Errorf("piece: %q", got)
	}
}

func TestBPENoMerges(t *testing.T) {
	v, m := bpeVocab("qwen2", nil)
	tk := mustNew(t, v)
	// One token per byte; é is two bytes, C3 A9, shown as Ã and ©.
	eq(t, "bytes", tk.Encode("hé\n", false, false), ids(m, "h", "Ã", "©", "Ċ"))
	if got := tk.Decode(tk.Encode("hé\n", false, false)); got != "hé\n" {
		t.Errorf("decode: %q", got)
	}
}

func TestBPEIgnoreMerges(t *testing.T) {
	// "abc" is a token no merge sequence reaches: a b then (ab c) is absent.
	merges := []string{"a b", "b c"}
	v, m := bpeVocab("gpt-2", merges, "abc")
	tk := mustNew(t, v)
	eq(t, "gpt-2 merges", tk.Encode("abc", false, false), ids(m, "ab", "c"))
	v.Pre = "llama3"
	tk = mustNew(t, v)
	eq(t, "llama3 ignore_merges", tk.Encode("abc", false, false), ids(m, "abc"))
}

func TestBPEFallbackWhenMergeResultMissing(t *testing.T) {
	// A merge whose result is not in the vocabulary falls back to the
	// per-byte tokens of the symbol.
	v, m := bpeVocab("gpt-2", nil)
	v.Merges = []string{"a b"}
	tk := mustNew(t, v)
	eq(t, "fallback", tk.Encode("ab", false, false), ids(m, "a", "b"))
}

func TestBPESpecial(t *testing.T) {
	v, m := bpeVocab("qwen2", []string{"h i"}, "<|im_start|>", "<|im_end|>")
	v.EOS = m["<|im_end|>"]
	tk := mustNew(t, v)
	got := tk.Encode("<|im_start|>hi<|im_end|>", false, true)
	eq(t, "special", got, ids(m, "<|im_start|>", "hi", "<|im_end|>"))
	if s := tk.Decode(got); s != "hi" {
		t.Errorf("Decode drops control tokens: %q", s)
	}
	if s := tk.DecodeSpecial(got, false, true); s != "<|im_start|>hi<|im_end|>" {
		t.Errorf("DecodeSpecial unparse: %q", s)
	}
	if !tk.IsEOG(m["<|im_end|>"]) || tk.IsEOG(m["<|im_start|>"]) {
		t.Error("IsEOG")
	}
}

func TestEOGTextForcedControl(t *testing.T) {
	v, m := bpeVocab("qwen2", nil, "<|eot_id|>")
	v.Types[m["<|eot_id|>"]] = TypeNormal
	tk := mustNew(t, v)
	id := m["<|eot_id|>"]
	if !tk.IsEOG(id) || tk.Type(id) != TypeControl {
		t.Fatalf("eot: eog=%v type=%d", tk.IsEOG(id), tk.Type(id))
	}
}

// trainBPE learns n merges from a corpus the usual way: count adjacent
// pairs over pre-tokenized, byte-encoded words; merge the most frequent
// (ties: smallest pair); repeat.
func trainBPE(corpus string, pre preTokenizer, n int) []string {
	counts := map[string]int{}
	for _, w := range pieces(pre, corpus) {
		counts[byteLevel(w)]++
	}
	type word struct {
		syms []string
		n    int
	}
	var words []word
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var syms []string
		for _, r := range k {
			syms = append(syms, string(r))
		}
		words = append(words, word{syms, counts[k]})
	}
	var merges []string
	for len(merges) < n {
		pairs := map[[2]string]int{}
		for _, w := range words {
			for i := 0; i+1 < len(w.syms); i++ {
				pairs[[2]string{w.syms[i], w.syms[i+1]}] += w.n
			}
		}
		var best [2]string
		bestN := 0
		for p, c := range pairs {
			if c > bestN || (c == bestN && (p[0] < best[0] || (p[0] == best[0] && p[1] < best[1]))) {
				best, bestN = p, c
			}
		}
		if bestN == 0 {
			break
		}
		merges = append(merges, best[0]+" "+best[1])
		for wi := range words {
			s := words[wi].syms
			for i := 0; i+1 < len(s); i++ {
				if s[i] == best[0] && s[i+1] == best[1] {
					s[i] += s[i+1]
					s = append(s[:i+1], s[i+2:]...)
				}
			}
			words[wi].syms = s
		}
	}
	return merges
}

// naiveBPE merges each word by scanning for the lowest-rank adjacent pair.
func naiveBPE(tk *Tokenizer, text string) []int32 {
	out := []int32{}
	for _, w := range pieces(tk.pre, encodeRunes(decodeRunes(text, nil))) {
		bw := byteLevel(w)
		if tk.ignoreMerges {
			if id, ok := tk.ids[bw]; ok {
				out = append(out, id)
				continue
			}
		}
		var syms []string
		for _, r := range bw {
			syms = append(syms, string(r))
		}
		for {
			best, bestRank := -1, int32(0)
			for i := 0; i+1 < len(syms); i++ {
				if r, ok := tk.ranks[[2]string{syms[i], syms[i+1]}]; ok && (best < 0 || r < bestRank) {
					best, bestRank = i, r
				}
			}
			if best < 0 {
				break
			}
			syms[best] += syms[best+1]
			syms = append(syms[:best+1], syms[best+2:]...)
		}
		for _, s := range syms {
			if id, ok := tk.ids[s]; ok {
				out = append(out, id)
				continue
			}
			for _, r := range s {
				out = append(out, tk.ids[string(r)])
			}
		}
	}
	return out
}

const trainCorpus = `It's the tokenizer's job to turn text into ids. They're all here: we've seen
the 1234 cats and 56789 dogs, I'll say it again -- don't panic!!  Café, naïve, 東京, ٣٣٣, Ⅷ.
    indented code() { return x + y; }
The end. THE END? the the the theory there their.` + "\n\n\tfin\r\n"

func trainedTokenizer(t testing.TB, pre string, nMerges int) (*Tokenizer, map[string]int32) {
	merges := trainBPE(trainCorpus+trainCorpus, preTokenizers[pre], nMerges)
	v, m := bpeVocab(pre, merges, "<|endoftext|>", "<|im_start|>")
	v.EOS = m["<|endoftext|>"]
	return mustNew(t, v), m
}

func TestBPEAgainstNaive(t *testing.T) {
	for _, pre := range []string{"gpt-2", "llama3", "qwen2", "smollm", "default"} {
		tk, _ := trainedTokenizer(t, pre, 300)
		rng := rand.New(rand.NewSource(5))
		words := strings.Fields(trainCorpus)
		for i := 0; i < 500; i++ {
			var s string
			if i%2 == 0 {
				s = randText(rng, rng.Intn(20))
			} else {
				for j := rng.Intn(12); j > 0; j-- {
					s += words[rng.Intn(len(words))] + []string{" ", "  ", "\n", ""}[rng.Intn(4)]
				}
			}
			got := tk.Encode(s, false, false)
			want := naiveBPE(tk, s)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: Encode(%q) = %v, naive %v", pre, s, got, want)
			}
		}
	}
}

func TestBPERoundTrip(t *testing.T) {
	tk, _ := trainedTokenizer(t, "qwen2", 200) // qwen2: no space clean-up
	rng := rand.New(rand.NewSource(6))
	for i := 0; i < 2000; i++ {
		s := randText(rng, rng.Intn(20))
		if rng.Intn(4) == 0 {
			s += string([]byte{0xC3}) + s // invalid UTF-8
		}
		got := tk.Decode(tk.Encode(s, false, false))
		// Invalid bytes become U+FFFD, one per byte, as in llama.cpp.
		want := encodeRunes(decodeRunes(s, nil))
		if got != want {
			t.Fatalf("round trip %q → %q, want %q", s, got, want)
		}
	}
}

func TestBPEMultiMergeExact(t *testing.T) {
	tk, m := trainedTokenizer(t, "llama3", 300)
	// The corpus repeats "the" often enough for whole-word tokens.
	got := tk.Encode("the end", false, false)
	want := ids(m, "the", "Ġend")
	eq(t, "trained", got, want)
	if s := tk.Decode(got); s != "the end" {
		t.Errorf("decode %q", s)
	}
}

func TestCleanSpaces(t *testing.T) {
	cases := map[string]string{
		"a .":         "a.",
		"a , b ! c ?": "a, b! c?",
		"it 's":       "it's",
		"we 're":      "we're",
		"I 'm":        "I'm",
		"you 've":     "you've",
		"don 't":      "don 't", // llama.cpp leaves " 't", " 'd", " 'll"
		"we 'll":      "we 'll",
		"a ' b":       "a'b",
		"a ' ' b":     "a'' b", // the swallowed space is NUL-marked in place
		" .":          ".",     // even the first byte can go
		"":            "",
	}
	for in, want := range cases {
		if got := string(cleanSpaces([]byte(in))); got != want {
			t.Errorf("cleanSpaces(%q) = %q, want %q", in, got, want)
		}
	}
	tk, m := trainedTokenizer(t, "gpt-2", 50)
	if got := tk.Decode(ids(m, "a", "Ġ", ".")); got != "a." {
		t.Errorf("gpt-2 decode cleans spaces: %q", got)
	}
	tk, m = trainedTokenizer(t, "qwen2", 50)
	if got := tk.Decode(ids(m, "a", "Ġ", ".")); got != "a ." {
		t.Errorf("qwen2 decode keeps spaces: %q", got)
	}
}

// ---------------------------------------------------------------- validation

func TestNewErrors(t *testing.T) {
	good, _ := spmVocab()
	bpe, _ := bpeVocab("llama3", []string{"a b"})
	cases := []struct {
		name string
		mod  func(v *Vocab)
		base Vocab
		want error
	}{
		{"unknown model", func(v *Vocab) { v.Model = "bert" }, good, ErrUnsupported},
		{"unknown pre", func(v *Vocab) { v.Pre = "deepseek-v3" }, bpe, ErrUnsupported},
		{"no tokens", func(v *Vocab) { v.Tokens, v.Scores, v.Types = nil, nil, nil }, good, ErrVocab},
		{"scores length", func(v *Vocab) { v.Scores = v.Scores[1:] }, good, ErrVocab},
		{"types length", func(v *Vocab) { v.Types = v.Types[1:] }, good, ErrVocab},
		{"bos range", func(v *Vocab) { v.BOS = int32(len(v.Tokens)) }, good, ErrVocab},
		{"eos negative", func(v *Vocab) { v.EOS = -2 }, good, ErrVocab},
		{"add bos without bos", func(v *Vocab) { v.BOS = -1 }, good, ErrVocab},
		{"add eos without eos", func(v *Vocab) { v.AddEOS = true }, bpe, ErrVocab},
		{"merge without space", func(v *Vocab) { v.Merges = []string{"ab"} }, bpe, ErrVocab},
		{"merge leading space only", func(v *Vocab) { v.Merges = []string{" ab"} }, bpe, ErrVocab},
		{"merge empty right", func(v *Vocab) { v.Merges = []string{"a "} }, bpe, ErrVocab},
	}
	for _, c := range cases {
		v := c.base
		v.Tokens = append([]string(nil), v.Tokens...)
		v.Scores = append([]float32(nil), v.Scores...)
		if c.base.Scores == nil {
			v.Scores = nil
		}
		v.Types = append([]int32(nil), v.Types...)
		c.mod(&v)
		_, err := New(v)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestDuplicatesAndEmptyTokens(t *testing.T) {
	v, m := bpeVocab("gpt-2", nil, "dup", "dup", "")
	tk := mustNew(t, v)
	first := m["dup"]
	if id, _ := tk.ID("dup"); id != first {
		t.Errorf("duplicate text maps to %d, want first id %d", id, first)
	}
	if tk.Piece(first+1) != "dup" {
		t.Errorf("second duplicate still decodes")
	}
	empty := int32(len(v.Tokens) - 1)
	if got := tk.Token(empty); got != fmt.Sprintf("[EMPTY_%d]", empty) {
		t.Errorf("empty token renamed to %q", got)
	}
	if _, ok := tk.ID(""); ok {
		t.Error("empty string must not be a token")
	}
	// Merges: "a b" listed twice keeps the first rank; "a b c" splits at the first space.
	v.Merges = []string{"a b", "x y", "a b", "a b c"}
	tk = mustNew(t, v)
	if r := tk.ranks[[2]string{"a", "b"}]; r != 0 {
		t.Errorf("duplicate merge rank %d", r)
	}
	if _, ok := tk.ranks[[2]string{"a", "b c"}]; !ok {
		t.Error("merge split at first space")
	}
}

func TestDefaults(t *testing.T) {
	d := Defaults("llama", "")
	if !d.AddBOS || !d.AddSpacePrefix || d.BOS != 1 || d.EOS != 2 || d.UNK != 0 || d.PAD != -1 {
		t.Errorf("llama defaults %+v", d)
	}
	if d := Defaults("gpt2", "llama-bpe"); !d.AddBOS || d.AddSpacePrefix {
		t.Errorf("llama-bpe defaults %+v", d)
	}
	if d := Defaults("gpt2", "qwen2"); d.AddBOS {
		t.Errorf("qwen2 defaults %+v", d)
	}
}

// ---------------------------------------------------------------- speed

func bigText(n int) string {
	rng := rand.New(rand.NewSource(7))
	words := strings.Fields(trainCorpus)
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(words[rng.Intn(len(words))])
		b.WriteString([]string{" ", " ", " ", "\n", ", "}[rng.Intn(5)])
	}
	return b.String()[:n]
}

// TestEncodeLinear guards against quadratic merging: 100 KB with no space
// at all is one word for BPE and one fragment for SPM.
func TestEncodeLinear(t *testing.T) {
	tk, _ := trainedTokenizer(t, "gpt-2", 300)
	spmV, _ := spmVocab()
	spm := mustNew(t, spmV)
	word := strings.Repeat("thetheory", 100<<10/9)
	for name, f := range map[string]func(){
		"bpe one word": func() { tk.Encode(word, false, false) },
		"bpe text":     func() { tk.Encode(bigText(100<<10), false, false) },
		"spm one word": func() { spm.Encode(strings.Repeat("hello", 100<<10/5), false, false) },
	} {
		start := time.Now()
		f()
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: 100 KB took %v", name, d)
		}
	}
}

func BenchmarkEncodeBPE100KB(b *testing.B) {
	tk, _ := trainedTokenizer(b, "llama3", 300)
	text := bigText(100 << 10)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tk.Encode(text, true, true)
	}
}

func BenchmarkEncodeSPM100KB(b *testing.B) {
	v, _ := spmVocab()
	tk := mustNew(b, v)
	text := bigText(100 << 10)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tk.Encode(text, true, true)
	}
}

func BenchmarkDecodeBPE(b *testing.B) {
	tk, _ := trainedTokenizer(b, "llama3", 300)
	ids := tk.Encode(bigText(100<<10), false, false)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tk.Decode(ids)
	}
}
