package kvstore

import (
	"bytes"
	"context"
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/llm"
	"github.com/turboquant-go/tq/models/kjv"
)

var (
	modelOnce sync.Once
	testModel *llm.Model
	modelErr  error
)

func model(t testing.TB) *llm.Model {
	t.Helper()
	modelOnce.Do(func() { testModel, modelErr = kjv.Model() })
	if modelErr != nil {
		t.Fatal(modelErr)
	}
	return testModel
}

const testBlock = 64

func newPool(t testing.TB, m *llm.Model, preset string) *kvcache.Pool {
	t.Helper()
	c := m.Config
	kc, err := kvcache.Preset(preset, c.Layers, c.KVHeads, c.Heads, c.HeadDim)
	if err != nil {
		t.Fatal(err)
	}
	p, err := kvcache.NewPool(kc, 0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newStore(t testing.TB, b Backend, pool *kvcache.Pool) *Store {
	t.Helper()
	s, err := New(b, pool, "kjv", testBlock)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// prefill feeds tokens[from:] into seq in chunks aligned to testBlock (as
// serve does) and returns the last logits.
func prefill(t testing.TB, m *llm.Model, seq *kvcache.Sequence, tokens []int32, from int) []float32 {
	t.Helper()
	logits := make([]float32, m.Config.Vocab)
	for pos := from; pos < len(tokens); {
		end := min(len(tokens), (pos/testBlock+1)*testBlock)
		if err := m.Forward(seq, tokens[pos:end], logits); err != nil {
			t.Fatal(err)
		}
		pos = end
	}
	return logits
}

func snapshot(t testing.TB, seq *kvcache.Sequence) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := seq.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func promptTokens(t testing.TB, m *llm.Model, n int) []int32 {
	t.Helper()
	toks := m.Tokenizer.Encode(kjv.Heldout, true, false)
	if len(toks) < n {
		t.Fatalf("held-out text has %d tokens, want %d", len(toks), n)
	}
	return toks[:n]
}

func equalBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestRestoreThenPrefillBitIdentical publishes a prefix from one replica's
// pool and restores it into another's (a fresh pool, a fresh store over
// the same backend), prefills the rest and checks the logits and the whole
// final cache state equal a local prefill's bit for bit.
func TestRestoreThenPrefillBitIdentical(t *testing.T) {
	m := model(t)
	for _, preset := range []string{"tq3", "fp16", "tq3-guard"} {
		for _, backend := range []string{"mem", "dir"} {
			t.Run(preset+"/"+backend, func(t *testing.T) {
				var b Backend = NewMemory(1 << 30)
				if backend == "dir" {
					d, err := NewDir(t.TempDir())
					if err != nil {
						t.Fatal(err)
					}
					b = d
				}
				prompt := promptTokens(t, m, 5*testBlock+37) // past the fp16 window, a ragged tail
				shared := prompt[:4*testBlock]

				a := newPool(t, m, preset)
				seqA := a.NewSequence()
				prefill(t, m, seqA, shared, 0)
				if err := newStore(t, b, a).Put(context.Background(), shared, seqA); err != nil {
					t.Fatal(err)
				}
				_ = seqA.Close()

				local := newPool(t, m, preset).NewSequence()
				want := prefill(t, m, local, prompt, 0)

				poolB := newPool(t, m, preset)
				sb := newStore(t, b, poolB)
				seq, n, err := sb.Lookup(context.Background(), prompt, 0, len(prompt)-1)
				if err != nil || seq == nil {
					t.Fatalf("lookup: %v, %v", seq, err)
				}
				if n != len(shared) {
					t.Fatalf("restored %d tokens, want %d", n, len(shared))
				}
				got := prefill(t, m, seq, prompt, n)
				if !equalBits(got, want) {
					t.Fatal("logits after a restored prefix differ from a local prefill's")
				}
				if !bytes.Equal(snapshot(t, seq), snapshot(t, local)) {
					t.Fatal("cache state after a restored prefix differs from a local prefill's")
				}
				st := sb.Stats()
				if st.Hits != 1 || st.TokensRestored != int64(n) || st.BytesFetched == 0 {
					t.Fatalf("stats %+v", st)
				}
			})
		}
	}
}

// TestForeignAndCorruptIgnored: values of another config never match (the
// keys differ), and a value that is corrupted, truncated or stored under
// another key is ignored (a miss, counted), never restored.
func TestForeignAndCorruptIgnored(t *testing.T) {
	m := model(t)
	ctx := context.Background()
	prompt := promptTokens(t, m, 3*testBlock)
	mem := NewMemory(1 << 30)
	tq3 := newPool(t, m, "tq3")
	s3 := newStore(t, mem, tq3)
	seq := tq3.NewSequence()
	prefill(t, m, seq, prompt, 0)
	key, good, err := s3.Encode(prompt, seq)
	if err != nil {
		t.Fatal(err)
	}

	// Another preset's store computes other keys: a miss.
	s4 := newStore(t, mem, newPool(t, m, "tq4"))
	if err := s3.Publish(ctx, key, good); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s4.Lookup(ctx, prompt, 0, len(prompt)); got != nil {
		t.Fatal("a tq4 store restored a tq3 entry")
	}
	if s4.Keys(prompt)[2] == key {
		t.Fatal("tq3 and tq4 keys equal")
	}
	// Another model id, same config: other keys.
	other, err := New(mem, tq3, "not-kjv", testBlock)
	if err != nil {
		t.Fatal(err)
	}
	if other.Keys(prompt)[2] == key {
		t.Fatal("model id is not in the key")
	}

	bad := map[string][]byte{
		"truncated":   good[:len(good)/2],
		"empty":       {},
		"flipped bit": func() []byte { b := bytes.Clone(good); b[len(b)/2] ^= 4; return b }(),
		"bad crc":     func() []byte { b := bytes.Clone(good); b[len(b)-1] ^= 1; return b }(),
	}
	// A valid value of the two-block prefix stored under the three-block key.
	k2, v2, err := s3.Encode(prompt[:2*testBlock], func() *kvcache.Sequence {
		f, err := seq.ForkPrefix(2 * testBlock)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}())
	if err != nil {
		t.Fatal(err)
	}
	bad["another key's value"] = v2
	// A tq4 value (valid framing and CRC) under the tq3 key.
	s4seq := newPool(t, m, "tq4").NewSequence()
	prefill(t, m, s4seq, prompt, 0)
	var snap4 bytes.Buffer
	if _, err := s4seq.WriteTo(&snap4); err != nil {
		t.Fatal(err)
	}
	bad["another config's snapshot"] = encodeValue(key, len(prompt), snap4.Bytes())

	for name, v := range bad {
		t.Run(name, func(t *testing.T) {
			mem := NewMemory(1 << 30)
			s := newStore(t, mem, tq3)
			if err := mem.Put(ctx, key.String(), v); err != nil {
				t.Fatal(err)
			}
			used := tq3.Used()
			got, n, err := s.Lookup(ctx, prompt, 0, len(prompt))
			if got != nil || n != 0 || err != nil {
				t.Fatalf("bad value served: %v, %d, %v", got, n, err)
			}
			if st := s.Stats(); st.Corrupt != 1 || st.Misses != 1 {
				t.Fatalf("stats %+v", st)
			}
			if tq3.Used() != used {
				t.Fatalf("a failed restore left %d bytes in the pool", tq3.Used()-used)
			}
			// The shorter, good entry is still found below the bad one.
			if err := mem.Put(ctx, k2.String(), v2); err != nil {
				t.Fatal(err)
			}
			got, n, _ = s.Lookup(ctx, prompt, 0, len(prompt))
			if got == nil || n != 2*testBlock {
				t.Fatalf("fell back to %d tokens", n)
			}
			_ = got.Close()
		})
	}
	if _, err := decodeValue(good, key, len(prompt)); err != nil {
		t.Fatal(err)
	}
	if _, err := decodeValue(good[:10], key, len(prompt)); !errors.Is(err, ErrValue) {
		t.Fatalf("truncated: %v", err)
	}
}

func TestMemoryLRUBound(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(100)
	for i, k := range []string{"a", "b", "c"} {
		if err := m.Put(ctx, k, make([]byte, 40+i)); err != nil {
			t.Fatal(err)
		}
	}
	if m.Used() > 100 {
		t.Fatalf("%d bytes held, bound 100", m.Used())
	}
	if _, err := m.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("oldest entry kept: %v", err)
	}
	if _, err := m.Get(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if err := m.Put(ctx, "huge", make([]byte, 101)); err != nil || m.Used() > 100 {
		t.Fatalf("%v, %d", err, m.Used())
	}
}

func TestOpen(t *testing.T) {
	for _, ok := range []string{"mem", "mem://?bytes=1000", "dir://" + t.TempDir(), "redis://127.0.0.1:1"} {
		b, err := Open(ok)
		if err != nil {
			t.Fatalf("%s: %v", ok, err)
		}
		_ = b.Close()
	}
	for _, bad := range []string{"", "ftp://x", "mem://?bytes=-1", "dir://", "redis://127.0.0.1:6379/notadb"} {
		if _, err := Open(bad); !errors.Is(err, ErrConfig) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	d, _ := NewDir(t.TempDir())
	if _, err := d.Get(context.Background(), "../x"); !errors.Is(err, ErrConfig) {
		t.Fatalf("path key: %v", err)
	}
}

func TestPublishPoint(t *testing.T) {
	var got []int
	for b := 0; b <= 12; b++ {
		if PublishPoint(b, 12) {
			got = append(got, b)
		}
	}
	if want := []int{1, 2, 4, 8, 12}; !equalInts(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestFullPoolIsMissNotCorrupt: a pool without room for the prefix misses
// without calling the value bad, and keeps nothing.
func TestFullPoolIsMissNotCorrupt(t *testing.T) {
	m := model(t)
	ctx := context.Background()
	prompt := promptTokens(t, m, 4*testBlock)
	mem := NewMemory(1 << 30)
	big := newPool(t, m, "tq3")
	seq := big.NewSequence()
	prefill(t, m, seq, prompt, 0)
	if err := newStore(t, mem, big).Put(ctx, prompt, seq); err != nil {
		t.Fatal(err)
	}
	one, err := big.Config().PlanBytes(1)
	if err != nil {
		t.Fatal(err)
	}
	small, err := kvcache.NewPool(big.Config(), one)
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, mem, small)
	got, _, _ := s.Lookup(ctx, prompt, 0, len(prompt))
	if got != nil {
		t.Fatal("restored into a full pool")
	}
	if st := s.Stats(); st.Corrupt != 0 || st.Misses != 1 || small.Used() != 0 {
		t.Fatalf("stats %+v, %d bytes held", st, small.Used())
	}
}
