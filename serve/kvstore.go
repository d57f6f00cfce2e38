package serve

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/kvstore"
)

// sharedStore connects the scheduler to a kvstore: it restores prompt
// prefixes other replicas published and publishes this one's at the
// store's publish points, off the scheduler goroutine.
type sharedStore struct {
	st      *kvstore.Store
	queue   chan publication
	done    sync.WaitGroup
	dropped atomic.Int64 // publications skipped because the queue was full
}

type publication struct {
	key   kvstore.Key
	value []byte
}

// publishQueue bounds the encoded prefixes waiting for the backend; past
// it a publication is dropped (counted), never waited for.
const publishQueue = 16

func newSharedStore(b kvstore.Backend, pool *kvcache.Pool, modelID string, chunk int) (*sharedStore, error) {
	st, err := kvstore.New(b, pool, modelID, chunk)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	ss := &sharedStore{st: st, queue: make(chan publication, publishQueue)}
	ss.done.Go(func() {
		for p := range ss.queue {
			_ = st.Publish(context.Background(), p.key, p.value) // failures are counted in Stats
		}
	})
	return ss, nil
}

// restore returns the longest stored prefix of prompt longer than have
// tokens that leaves one token to prefill, or nil, 0.
func (ss *sharedStore) restore(ctx context.Context, prompt []int32, have int) (*kvcache.Sequence, int) {
	seq, n, _ := ss.st.Lookup(ctx, prompt, have, len(prompt)-1)
	return seq, n
}

// publish encodes seq, which holds prompt[:pos], if pos is a publish point
// of the prompt, and queues it.
func (ss *sharedStore) publish(prompt []int32, pos int, seq *kvcache.Sequence) {
	C := ss.st.BlockTokens()
	if pos%C != 0 || !kvstore.PublishPoint(pos/C, (len(prompt)-1)/C) {
		return
	}
	key, v, err := ss.st.Encode(prompt[:pos], seq)
	if err != nil {
		return
	}
	select {
	case ss.queue <- publication{key, v}:
	default:
		ss.dropped.Add(1)
	}
}

// close waits for the queued publications and closes the backend.
func (ss *sharedStore) close() error {
	close(ss.queue)
	ss.done.Wait()
	return ss.st.Close()
}
