package kvstore

import (
	"container/list"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Backend holds immutable values by key (a hex Key). Get returns
// ErrNotFound on a miss and an ErrBackend-wrapped error on a failure.
// Values are immutable: a Put of an existing key may keep either value.
type Backend interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, value []byte) error
	Close() error
}

// DefaultMemBytes bounds the in-memory backend when its address names no
// size.
const DefaultMemBytes = 1 << 30

// Open opens a backend by address:
//
//	mem                 in-memory LRU of DefaultMemBytes
//	mem://?bytes=N      in-memory LRU of N bytes
//	dir:///path         one file per key under path (created if absent)
//	redis://host:port   Redis (db, password and timeouts as in RedisOptions)
func Open(addr string) (Backend, error) {
	if addr == "mem" {
		return NewMemory(DefaultMemBytes), nil
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: store address %q: %w", ErrConfig, addr, err)
	}
	switch u.Scheme {
	case "mem":
		n := int64(DefaultMemBytes)
		if q := u.Query().Get("bytes"); q != "" {
			if n, err = strconv.ParseInt(q, 10, 64); err != nil || n <= 0 {
				return nil, fmt.Errorf("%w: store address %q: bytes must be a positive integer", ErrConfig, addr)
			}
		}
		return NewMemory(n), nil
	case "dir":
		if u.Path == "" {
			return nil, fmt.Errorf("%w: store address %q names no directory (dir:///path)", ErrConfig, addr)
		}
		return NewDir(filepath.FromSlash(u.Path))
	case "redis":
		return NewRedis(RedisOptions{URL: addr})
	}
	return nil, fmt.Errorf("%w: store address %q: want mem, dir:///path or redis://host:port", ErrConfig, addr)
}

// Memory is a byte-bounded LRU backend in this process.
type Memory struct {
	mu    sync.Mutex
	max   int64
	used  int64
	order *list.List // of *memEntry, most recent at the front
	byKey map[string]*list.Element
}

type memEntry struct {
	key   string
	value []byte
}

// NewMemory returns an LRU that holds at most maxBytes of values.
func NewMemory(maxBytes int64) *Memory {
	return &Memory{max: maxBytes, order: list.New(), byKey: map[string]*list.Element{}}
}

// Get returns a copy of the value, so a caller cannot alter the stored one.
func (m *Memory) Get(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byKey[key]
	if !ok {
		return nil, ErrNotFound
	}
	m.order.MoveToFront(e)
	return append([]byte(nil), e.Value.(*memEntry).value...), nil
}

// Put stores a copy of value, evicting the least recently used values to
// fit; a value larger than the bound is not stored.
func (m *Memory) Put(_ context.Context, key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.byKey[key]; ok {
		m.order.MoveToFront(e)
		return nil
	}
	n := int64(len(value))
	if n > m.max {
		return nil
	}
	for m.used+n > m.max {
		last := m.order.Back()
		old := last.Value.(*memEntry)
		m.order.Remove(last)
		delete(m.byKey, old.key)
		m.used -= int64(len(old.value))
	}
	m.byKey[key] = m.order.PushFront(&memEntry{key: key, value: append([]byte(nil), value...)})
	m.used += n
	return nil
}

// Used is the bytes held.
func (m *Memory) Used() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.used
}

// Close drops everything.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.order.Init()
	clear(m.byKey)
	m.used = 0
	return nil
}

// Dir is a backend of one file per key in a directory, written atomically
// (a temporary file renamed into place), so a reader sees a whole value or
// none. It does not evict.
type Dir struct{ root string }

// NewDir opens (creating) the directory.
func NewDir(root string) (*Dir, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBackend, err)
	}
	return &Dir{root: root}, nil
}

func (d *Dir) path(key string) (string, error) {
	if key == "" || strings.ContainsAny(key, `/\.:`) {
		return "", fmt.Errorf("%w: key %q is not a file name", ErrConfig, key)
	}
	return filepath.Join(d.root, key+".tqks"), nil
}

// Get reads the key's file.
func (d *Dir) Get(_ context.Context, key string) ([]byte, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBackend, err)
	}
	return b, nil
}

// Put writes a temporary file and renames it over the key's.
func (d *Dir) Put(_ context.Context, key string, value []byte) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(d.root, ".put-*")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBackend, err)
	}
	_, werr := f.Write(value)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), p)
	}
	if werr != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("%w: %w", ErrBackend, werr)
	}
	return nil
}

// Close does nothing.
func (d *Dir) Close() error { return nil }

// timeoutCtx bounds ctx by d when d > 0.
func timeoutCtx(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}
