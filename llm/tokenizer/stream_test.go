package tokenizer

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestStream(t *testing.T) {
	v, m := spmVocab()
	tk := mustNew(t, v)
	s := tk.NewStream(false)
	steps := []struct {
		id   int32
		want string
	}{
		{m["<s>"], ""},
		{m["▁hello"], " hello"},
		{3 + 0xE2, ""}, // € is E2 82 AC
		{3 + 0x82, ""},
		{3 + 0xAC, "€"},
		{3 + 0xFF, "\xff"}, // can never be valid: not held
		{3 + 0xE0, ""},
		{3 + 0x80, "\xe0\x80"}, // E0 80 can never be valid either
		{3 + 0xF0, ""},
	}
	for i, st := range steps {
		if got := s.Add(st.id); got != st.want {
			t.Fatalf("step %d: Add(%d) = %q, want %q", i, st.id, got, st.want)
		}
	}
	if got := s.Flush(); got != "\xf0" {
		t.Fatalf("Flush = %q", got)
	}
	if got := tk.NewStream(true).Add(m["<s>"]); got != "<s>" {
		t.Fatalf("special stream: %q", got)
	}
}

func TestStreamMatchesPieces(t *testing.T) {
	tk, _ := trainedTokenizer(t, "qwen2", 100)
	text := "naïve 東京 ٣٣٣ 😀👍🏽 done"
	ids := tk.Encode(text, false, false)
	s := tk.NewStream(false)
	var b strings.Builder
	for _, id := range ids {
		out := s.Add(id)
		if !utf8.ValidString(out) {
			t.Fatalf("partial UTF-8 emitted: %q", out)
		}
		b.WriteString(out)
	}
	b.WriteString(s.Flush())
	if b.String() != text {
		t.Fatalf("stream %q, want %q", b.String(), text)
	}
}

func TestConcurrentEncode(t *testing.T) {
	tk, _ := trainedTokenizer(t, "llama3", 200)
	text := bigText(4 << 10)
	want := tk.Encode(text, true, true)
	done := make(chan []int32)
	for g := 0; g < 4; g++ {
		go func() { done <- tk.Encode(text, true, true) }()
	}
	for g := 0; g < 4; g++ {
		if got := <-done; len(got) != len(want) || tk.Decode(got) != tk.Decode(want) {
			t.Fatal("concurrent Encode differs")
		}
	}
}
