// Package kvstore shares compressed KV-cache prefixes between inference
// replicas: content-addressed, immutable entries in a backend (an in-memory
// LRU, a local directory, or Redis) that any replica serving the same model
// with the same cache configuration can restore instead of prefilling.
//
// A key is a SHA-256 chain over the model id, the pool configuration's
// snapshot bytes (kvcache's encoding of the config, so another preset,
// window, seed or model shape never matches) and the prompt's token ids in
// blocks of BlockTokens: key(i) = H(key(i−1) ‖ tokens of block i). An entry
// under key(i) holds the kvcache snapshot of the sequence after exactly
// i·BlockTokens tokens — the whole prefix, not block i alone: the snapshot
// format has no per-block slicing, and a restore must reproduce the fp16
// sink and window buffers, which only the prefix state holds. So an entry
// costs the prefix's compressed bytes plus its sinks and window in fp16,
// and a publisher stores few boundaries (PublishPoint: powers of two and
// the prompt's last full block), not every block.
//
// An entry is framed (value.go): magic, version, the key it was written
// under, the token count, the snapshot, and a CRC-32C over all of it. A
// value that fails any check — truncated, corrupted, written for another
// key or config — is counted and treated as a miss, never restored; the
// snapshot reader then checks every section again against the pool.
//
// Backend errors (Redis down or slow past its short timeouts) are misses
// to the caller too: Lookup reports them in Stats and returns no sequence,
// so a request falls back to a local prefill.
package kvstore
