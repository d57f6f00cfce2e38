package kvstore

import (
	"bytes"
	"testing"

	"github.com/turboquant-go/tq/kvcache"
)

// FuzzDecodeValue feeds arbitrary values to the restore path (frame check,
// then the snapshot reader) of a small tq3 pool: it must return a sequence
// of exactly the key's tokens or an ErrValue, never panic, and leave the
// pool as it was on failure.
func FuzzDecodeValue(f *testing.F) {
	kc, err := kvcache.Preset("tq3", 2, 1, 2, 16)
	if err != nil {
		f.Fatal(err)
	}
	kc.Window, kc.Sinks, kc.BlockTokens = 3, 1, 4
	pool, err := kvcache.NewPool(kc, 1<<20)
	if err != nil {
		f.Fatal(err)
	}
	const block = 4
	s, err := New(NewMemory(1<<20), pool, "fuzz", block)
	if err != nil {
		f.Fatal(err)
	}
	tokens := []int32{1, 2, 3, 4, 5, 6, 7, 8}
	keys := s.Keys(tokens)
	for _, n := range []int{4, 8} {
		seq := pool.NewSequence()
		for layer := range kc.Layers {
			kv := make([]float32, n*kc.HeadDim)
			for i := range kv {
				kv[i] = float32((i*7+layer*3)%11) - 5
			}
			if err := seq.Append(layer, kv, kv); err != nil {
				f.Fatal(err)
			}
		}
		_, v, err := s.Encode(tokens[:n], seq)
		if err != nil {
			f.Fatal(err)
		}
		_ = seq.Close()
		f.Add(uint8(n/block-1), v)
	}
	f.Add(uint8(0), []byte("TQKS"))
	f.Fuzz(func(t *testing.T, which uint8, v []byte) {
		i := int(which) % len(keys)
		n := (i + 1) * block
		used := pool.Used()
		seq, err := s.restore(bytes.Clone(v), keys[i], n)
		if err != nil {
			if seq != nil || pool.Used() != used {
				t.Fatalf("failed restore left a sequence or %d bytes", pool.Used()-used)
			}
			return
		}
		if seq.Len() != n {
			t.Fatalf("restored %d tokens, key says %d", seq.Len(), n)
		}
		_ = seq.Close()
	})
}
