package validate

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/turboquant-go/tq/llm"
)

// byteCodec is a one-token-per-byte TextCodec, so prompts can be checked
// against their text exactly.
type byteCodec struct{}

func (byteCodec) Encode(s string) []int32 {
	ids := make([]int32, len(s))
	for i := range len(s) {
		ids[i] = int32(s[i])
	}
	return ids
}

func (byteCodec) Decode(ids []int32) string {
	b := make([]byte, len(ids))
	for i, id := range ids {
		b[i] = byte(id)
	}
	return string(b)
}

func TestPasskeyTrialsLayout(t *testing.T) {
	const bos = 1000
	filler := make([]int32, 5000)
	for i := range filler {
		filler[i] = int32(500 + i%400) // outside the byte range: the needle cannot be mistaken for filler
	}
	opt := PasskeyOptions{Lengths: []int{128, 512}, Depths: 3, Trials: 4, Digits: 5, Seed: 7, BOS: bos,
		Needle: DefaultNeedle, Question: DefaultQuestion}
	cells, trials, err := passkeyTrials(1024, byteCodec{}, filler, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(cells) != 6 || len(trials) != 24 {
		t.Fatalf("%d cells, %d trials; want 6 and 24", len(cells), len(trials))
	}
	q := byteCodec{}.Encode(DefaultQuestion)
	for _, tr := range trials {
		c := cells[tr.cell]
		p := tr.prompt
		if len(p) != c.Tokens || p[0] != bos || !slices.Equal(p[len(p)-len(q):], q) {
			t.Fatalf("cell %+v: prompt of %d tokens, BOS %d, question at end %v", c, len(p), p[0], slices.Equal(p[len(p)-len(q):], q))
		}
		if len(tr.key) != 5 || tr.key[0] < '1' || tr.key[0] > '9' {
			t.Fatalf("key %q: want 5 digits without a leading zero", tr.key)
		}
		needle := byteCodec{}.Encode(fmt.Sprintf(DefaultNeedle, tr.key))
		n := len(p) - 1 - len(needle) - len(q) // filler tokens around the needle
		at := int(c.Depth*float64(n) + 0.5)
		if !slices.Equal(p[1+at:1+at+len(needle)], needle) {
			t.Fatalf("depth %.2f: needle not at filler offset %d of %d", c.Depth, at, n)
		}
		for i, id := range p[1:] {
			inNeedle := i >= at && i < at+len(needle)
			inQuestion := i >= len(p)-1-len(q)
			if !inNeedle && !inQuestion && id < 500 {
				t.Fatalf("token %d of the filler is %d: the prompt mixes needle and filler", i, id)
			}
		}
	}
	again, trials2, _ := passkeyTrials(1024, byteCodec{}, filler, opt)
	if !slices.Equal(again, cells) || trials2[5].key != trials[5].key || !slices.Equal(trials2[5].prompt, trials[5].prompt) {
		t.Fatal("the same seed gave different prompts")
	}
}

func TestPasskeyTrialsRefuse(t *testing.T) {
	base := PasskeyOptions{Depths: 2, Trials: 1, Digits: 5, BOS: 0, Needle: DefaultNeedle, Question: DefaultQuestion}
	for _, tc := range []struct {
		name    string
		lengths []int
		filler  int
	}{
		{"longer than the context", []int{2048}, 3000},
		{"no room for the answer", []int{1020}, 3000},
		{"too short", []int{8}, 3000},
		{"more filler than present", []int{1000}, 300},
	} {
		opt := base
		opt.Lengths = tc.lengths
		if _, _, err := passkeyTrials(1024, byteCodec{}, make([]int32, tc.filler), opt); !errors.Is(err, llm.ErrArgument) {
			t.Errorf("%s: err %v, want llm.ErrArgument", tc.name, err)
		}
	}
}
