package kvstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configures the Redis backend.
type RedisOptions struct {
	// URL is redis://[user:password@]host:port[/db].
	URL string
	// Timeout bounds each Get and Put, dial included (default 100 ms): a
	// slow or absent server is a miss, not a stalled request.
	Timeout time.Duration
	// TTL, when positive, expires values; otherwise eviction is the
	// server's maxmemory policy (allkeys-lru is the one to configure).
	TTL time.Duration
}

// Redis is a backend on a Redis server (go-redis). Values are plain string
// keys under the prefix "tqkv:".
type Redis struct {
	c    *redis.Client
	opts RedisOptions
}

// NewRedis connects lazily: a server down now is an error on first use.
func NewRedis(o RedisOptions) (*Redis, error) {
	if o.Timeout <= 0 {
		o.Timeout = 100 * time.Millisecond
	}
	ro, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = o.Timeout, o.Timeout, o.Timeout
	ro.MaxRetries = -1 // no retries: a miss is cheaper than waiting
	ro.PoolTimeout = o.Timeout
	ro.DialerRetries = 1 // go-redis would otherwise dial 5 times, 100 ms apart
	ro.ContextTimeoutEnabled = true
	ro.DisableIdentity = true // no CLIENT SETINFO round trip
	return &Redis{c: redis.NewClient(ro), opts: o}, nil
}

const redisPrefix = "tqkv:"

// Get fetches the value.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := timeoutCtx(ctx, r.opts.Timeout)
	defer cancel()
	b, err := r.c.Get(ctx, redisPrefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("%w: redis get: %w", ErrBackend, err)
	}
	return b, nil
}

// Put stores the value (SET, with the TTL if any).
func (r *Redis) Put(ctx context.Context, key string, value []byte) error {
	ctx, cancel := timeoutCtx(ctx, r.opts.Timeout)
	defer cancel()
	if err := r.c.Set(ctx, redisPrefix+key, value, max(0, r.opts.TTL)).Err(); err != nil {
		return fmt.Errorf("%w: redis set: %w", ErrBackend, err)
	}
	return nil
}

// Close closes the connections.
func (r *Redis) Close() error { return r.c.Close() }
