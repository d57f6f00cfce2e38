// Package kvcache is the KV cache built on the turboquant codec: a Pool
// with a memory budget hands out Sequences that implement Cache.
//
// A sequence stores each layer's keys and values as packed codes in
// fixed-size blocks (with an fp16 window of recent tokens and fp16
// attention sinks), and computes exact causal grouped-query attention
// directly on the codes: logits from the prepared queries, softmax over all
// tokens, and the weighted sum of values accumulated in the rotated domain
// and rotated back once per head. Nothing is dequantized in bulk and no
// fp16 copy of compressed tokens is kept.
//
// Preset names the configurations the library is tuned for (PresetNames,
// GuardPresetNames); Config.PlanBytes says how many bytes N tokens take
// before anything is allocated. Center subtracts per-head means, the guard
// (GuardConfig) upgrades heads whose logit error exceeds a budget, Fork and
// ForkPrefix share blocks copy-on-write, and WriteTo / Pool.ReadSequence
// snapshot and restore a sequence bit for bit (snapshot_format.go documents
// the wire format), and Reserve sets aside a step's bytes in every layer so
// an engine that appends layer by layer is refused before the first.
// ViewLayer is the hook for compute backends (the cuda package);
// ViewLayerBlocks also describes per-block layouts (the guard's upgraded
// heads, BlockCenter's drift codes) and RecordQueries feeds the guard the
// queries a backend attended with (the metal package). docs/ARCHITECTURE.md walks the data path.
//
// Every error wraps an exported sentinel (ErrConfig, ErrLength, ErrNonFinite,
// ErrOverflow — the turboquant values themselves — and ErrCacheFull,
// ErrClosed, ErrSnapshot) for errors.Is; nothing panics on caller data, and a
// failed operation leaves its target unchanged.
package kvcache
