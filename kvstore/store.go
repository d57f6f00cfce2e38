package kvstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/turboquant-go/tq/kvcache"
)

// KeySize is the bytes of a Key.
const KeySize = sha256.Size

// Key addresses the entry of one prefix: the hash chain through its last
// block.
type Key [KeySize]byte

// String is the key in hex, the backends' name for it.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// Store restores and publishes prefixes of one model and pool
// configuration through a Backend. It is safe for concurrent use.
type Store struct {
	backend Backend
	pool    *kvcache.Pool
	block   int
	root    Key

	hits, misses, corrupt, errs  atomic.Int64
	bytesFetched, puts, bytesPut atomic.Int64
	tokensRestored               atomic.Int64
}

// Stats are a store's counters since New.
type Stats struct {
	Hits, Misses   int64 // Lookups that restored a prefix, and those that did not
	TokensRestored int64 // tokens the hits restored
	BytesFetched   int64 // value bytes read from the backend (hits and bad values)
	Corrupt        int64 // values that failed their checks and were ignored
	Errors         int64 // backend failures (each also a miss or a failed Put)
	Puts, BytesPut int64 // values stored
}

// New returns a store of pool's prefixes under modelID (which must name the
// weights: two models under one id would share entries) in blocks of
// blockTokens tokens.
func New(b Backend, pool *kvcache.Pool, modelID string, blockTokens int) (*Store, error) {
	if b == nil || pool == nil {
		return nil, fmt.Errorf("%w: a backend and a pool are required", ErrConfig)
	}
	if blockTokens <= 0 {
		return nil, fmt.Errorf("%w: block tokens %d must be positive", ErrConfig, blockTokens)
	}
	// An empty sequence's snapshot is the preamble and the config section:
	// the configuration's exact bytes, the same ones a restore checks.
	empty := pool.NewSequence()
	var spec bytes.Buffer
	_, err := empty.WriteTo(&spec)
	_ = empty.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: config snapshot: %w", ErrConfig, err)
	}
	h := sha256.New()
	h.Write([]byte("tqkvstore/1\x00"))
	h.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(modelID))))
	h.Write([]byte(modelID))
	h.Write(binary.LittleEndian.AppendUint64(nil, uint64(blockTokens)))
	h.Write(spec.Bytes())
	s := &Store{backend: b, pool: pool, block: blockTokens}
	h.Sum(s.root[:0])
	return s, nil
}

// BlockTokens is the granule of the keys.
func (s *Store) BlockTokens() int { return s.block }

// Keys returns the chain keys of tokens' full blocks: Keys[i] addresses
// the prefix of (i+1)·BlockTokens tokens.
func (s *Store) Keys(tokens []int32) []Key {
	keys := make([]Key, len(tokens)/s.block)
	prev := s.root
	buf := make([]byte, 0, KeySize+4*s.block)
	for i := range keys {
		buf = append(buf[:0], prev[:]...)
		for _, t := range tokens[i*s.block : (i+1)*s.block] {
			buf = binary.LittleEndian.AppendUint32(buf, uint32(t))
		}
		keys[i] = sha256.Sum256(buf)
		prev = keys[i]
	}
	return keys
}

// Lookup restores the longest stored prefix of tokens longer than
// longerThan and at most maxTokens tokens into a new sequence of the pool
// and returns it with its length; on a miss it returns nil, 0. Backend
// failures and bad values are misses (counted in Stats) and stop nothing:
// err reports a backend failure for logging only.
func (s *Store) Lookup(ctx context.Context, tokens []int32, longerThan, maxTokens int) (*kvcache.Sequence, int, error) {
	keys := s.Keys(tokens[:min(len(tokens), max(0, maxTokens))])
	var firstErr error
	for i := len(keys) - 1; i >= 0 && (i+1)*s.block > longerThan; i-- {
		n := (i + 1) * s.block
		v, err := s.backend.Get(ctx, keys[i].String())
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			s.errs.Add(1)
			firstErr = err
			break // a down or slow backend: stop asking
		}
		s.bytesFetched.Add(int64(len(v)))
		seq, err := s.restore(v, keys[i], n)
		if errors.Is(err, kvcache.ErrCacheFull) {
			break // the pool has no room: a miss, not a bad value
		}
		if err != nil {
			s.corrupt.Add(1)
			continue
		}
		s.hits.Add(1)
		s.tokensRestored.Add(int64(n))
		return seq, n, nil
	}
	s.misses.Add(1)
	return nil, 0, firstErr
}

// restore checks v and reads its snapshot into a new sequence.
func (s *Store) restore(v []byte, key Key, n int) (*kvcache.Sequence, error) {
	snap, err := decodeValue(v, key, n)
	if err != nil {
		return nil, err
	}
	seq, err := s.pool.ReadSequence(bytes.NewReader(snap))
	if errors.Is(err, kvcache.ErrCacheFull) {
		return nil, err // no room in this pool: says nothing about the value
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrValue, err)
	}
	if seq.Len() != n {
		_ = seq.Close()
		return nil, fmt.Errorf("%w: snapshot of %d tokens, want %d", ErrValue, seq.Len(), n)
	}
	return seq, nil
}

// Encode returns the value that stores seq, which must hold exactly tokens
// (a whole number of blocks), and its key. The scheduler that owns seq
// calls it; Publish may then run on another goroutine.
func (s *Store) Encode(tokens []int32, seq *kvcache.Sequence) (Key, []byte, error) {
	n := len(tokens)
	if n == 0 || n%s.block != 0 || seq.Len() != n {
		return Key{}, nil, fmt.Errorf("%w: %d tokens in a sequence of %d, blocks of %d", ErrConfig, n, seq.Len(), s.block)
	}
	var snap bytes.Buffer
	if _, err := seq.WriteTo(&snap); err != nil {
		return Key{}, nil, err
	}
	keys := s.Keys(tokens)
	key := keys[len(keys)-1]
	return key, encodeValue(key, n, snap.Bytes()), nil
}

// Publish stores an encoded value under key.
func (s *Store) Publish(ctx context.Context, key Key, value []byte) error {
	if err := s.backend.Put(ctx, key.String(), value); err != nil {
		s.errs.Add(1)
		return err
	}
	s.puts.Add(1)
	s.bytesPut.Add(int64(len(value)))
	return nil
}

// Put encodes and publishes seq, which holds exactly tokens.
func (s *Store) Put(ctx context.Context, tokens []int32, seq *kvcache.Sequence) error {
	key, v, err := s.Encode(tokens, seq)
	if err != nil {
		return err
	}
	return s.Publish(ctx, key, v)
}

// PublishPoint reports whether a replica should publish the prefix of
// blocks blocks of a prompt of promptBlocks full blocks: the last full
// block and the powers of two below it, so a prompt's entries together
// hold at most about three times its own prefix, and a prompt sharing k
// blocks with a published one restores at least k/2 of them.
func PublishPoint(blocks, promptBlocks int) bool {
	return blocks > 0 && (blocks == promptBlocks || blocks&(blocks-1) == 0)
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	return Stats{Hits: s.hits.Load(), Misses: s.misses.Load(), TokensRestored: s.tokensRestored.Load(),
		BytesFetched: s.bytesFetched.Load(), Corrupt: s.corrupt.Load(), Errors: s.errs.Load(),
		Puts: s.puts.Load(), BytesPut: s.bytesPut.Load()}
}

// Close closes the backend.
func (s *Store) Close() error { return s.backend.Close() }
