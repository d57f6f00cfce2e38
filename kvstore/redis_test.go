package kvstore

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/turboquant-go/tq/kvstore/redistest"
)

func TestRedisRoundTripAndKill(t *testing.T) {
	srv := redistest.Start(t)
	m := model(t)
	ctx := context.Background()
	b, err := Open("redis://" + srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Get(ctx, "absent"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("absent key: %v", err)
	}
	prompt := promptTokens(t, m, 3*testBlock+5)
	shared := prompt[:2*testBlock]
	pool := newPool(t, m, "tq3")
	s := newStore(t, b, pool)
	seq := pool.NewSequence()
	prefill(t, m, seq, shared, 0)
	if err := s.Put(ctx, shared, seq); err != nil {
		t.Fatal(err)
	}
	_ = seq.Close()
	local := pool.NewSequence()
	want := prefill(t, m, local, prompt, 0)

	got, n, err := s.Lookup(ctx, prompt, 0, len(prompt)-1)
	if err != nil || got == nil || n != len(shared) {
		t.Fatalf("lookup: %v, %d, %v", got, n, err)
	}
	if !equalBits(prefill(t, m, got, prompt, n), want) {
		t.Fatal("logits after a Redis-restored prefix differ from a local prefill's")
	}
	_ = got.Close()

	srv.Kill()
	start := time.Now()
	got, n, err = s.Lookup(ctx, prompt, 0, len(prompt)-1)
	if got != nil || n != 0 {
		t.Fatal("a lookup with Redis down restored something")
	}
	if !errors.Is(err, ErrBackend) {
		t.Fatalf("lookup with Redis down: %v, want an ErrBackend", err)
	}
	if d := time.Since(start); d > 5*time.Second { // a gross bound, not a timing assertion
		t.Fatalf("lookup with Redis down took %v", d)
	}
	head, err := local.ForkPrefix(len(shared))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, shared, head); !errors.Is(err, ErrBackend) {
		t.Fatalf("put with Redis down: %v", err)
	}
	if st := s.Stats(); st.Errors != 2 || st.Hits != 1 || st.Misses != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRedisSlowIsMiss: a server that accepts but never answers costs one
// timeout, then a miss.
func TestRedisSlowIsMiss(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	b, err := NewRedis(RedisOptions{URL: "redis://" + l.Addr().String(), Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m := model(t)
	s := newStore(t, b, newPool(t, m, "tq3"))
	prompt := promptTokens(t, m, 2*testBlock)
	got, _, err := s.Lookup(context.Background(), prompt, 0, len(prompt))
	if got != nil || !errors.Is(err, ErrBackend) {
		t.Fatalf("%v, %v", got, err)
	}
}
