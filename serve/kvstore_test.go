package serve

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/turboquant-go/tq/kvstore"
	"github.com/turboquant-go/tq/kvstore/redistest"
	"github.com/turboquant-go/tq/models/kjv"
)

// TestReplicasShareKVStore runs two servers over one store (an in-memory
// one, and a real redis-server): the second serves prompts sharing a
// prefix with the first's from the store, and every answer equals a cold
// server's. With Redis killed mid-run requests still get the cold answer.
func TestReplicasShareKVStore(t *testing.T) {
	shared := kjv.Heldout[:1400] // several chunks, past the fp16 window
	prompts := []string{shared + " And the", shared + " Hear, O"}
	_, cold := newTestServer(t, Config{PrefixEntries: -1})
	refs := make([]string, len(prompts))
	body := func(p string) string {
		return fmt.Sprintf(`{"prompt":%q,"max_tokens":24,"temperature":0.8,"seed":7}`, p)
	}
	for i, p := range prompts {
		ref, code := complete(t, cold.URL, body(p))
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		refs[i] = ref.Choices[0].Text
	}
	for _, backend := range []string{"mem", "redis"} {
		t.Run(backend, func(t *testing.T) {
			var redis *redistest.Server
			open := func() kvstore.Backend {
				addr := "mem"
				if redis != nil {
					addr = redis.URL()
				}
				b, err := kvstore.Open(addr)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			var mem kvstore.Backend
			if backend == "redis" {
				redis = redistest.Start(t)
			} else {
				mem = open()
				open = func() kvstore.Backend { return mem }
			}
			a, ha := newTestServer(t, Config{KVStore: open(), PrefixEntries: -1})
			b, hb := newTestServer(t, Config{KVStore: open(), PrefixEntries: -1})
			got, code := complete(t, ha.URL, body(prompts[0]))
			if code != http.StatusOK || got.Choices[0].Text != refs[0] {
				t.Fatalf("replica A: %d %q, cold %q", code, got.Choices[0].Text, refs[0])
			}
			waitFor(t, "A's publications", func() bool {
				st := a.store.st.Stats()
				return st.Puts+st.Errors+a.store.dropped.Load() >= 3 && len(a.store.queue) == 0
			})
			for i, p := range prompts {
				got, code := complete(t, hb.URL, body(p))
				if code != http.StatusOK || got.Choices[0].Text != refs[i] {
					t.Fatalf("replica B, prompt %d: %d %q, cold %q", i, code, got.Choices[0].Text, refs[i])
				}
				if i == 0 && got.Usage.CachedTokens < 256 {
					t.Fatalf("replica B restored %d tokens of a prompt A served", got.Usage.CachedTokens)
				}
			}
			if st := b.store.st.Stats(); st.Hits < 1 || st.BytesFetched == 0 || st.Corrupt != 0 {
				t.Fatalf("replica B store stats %+v", st)
			}
			if redis == nil {
				return
			}
			redis.Kill()
			c, hc := newTestServer(t, Config{KVStore: open(), PrefixEntries: -1})
			for i, p := range prompts {
				got, code := complete(t, hc.URL, body(p))
				if code != http.StatusOK || got.Choices[0].Text != refs[i] {
					t.Fatalf("Redis down, prompt %d: %d %q, cold %q", i, code, got.Choices[0].Text, refs[i])
				}
				if got.Usage.CachedTokens != 0 {
					t.Fatalf("Redis down, yet %d tokens restored", got.Usage.CachedTokens)
				}
			}
			if st := c.store.st.Stats(); st.Errors == 0 || st.Hits != 0 {
				t.Fatalf("Redis down: stats %+v", st)
			}
		})
	}
}
