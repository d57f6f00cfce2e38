// Package llm is a pure-Go engine for Llama-family decoder-only language
// models read from GGUF files, whose KV cache is the library's
// kvcache.Cache: the engine appends each layer's rotated keys and values to
// the cache and asks it for attention, and keeps no private copy of either.
// Every cache preset and configuration plugs in unchanged, which is what
// makes the model-level fidelity measurements (perplexity, KL divergence of
// the next-token distribution, passkey retrieval) measurements of the cache.
//
// Supported architectures are `llama` (Llama 2/3.x with llama3 RoPE scaling,
// Mistral, SmolLM; adjacent-pair RoPE as GGUF stores llama weights) and
// `qwen2` (Q/K/V biases, NeoX-pair RoPE). Weights may be F32, F16, BF16,
// Q8_0, Q4_0, Q4_K or Q6_K. Matrix products use the project's SIMD kernels
// on all cores; fp16 weights are converted as they are loaded, other types are
// expanded a block of rows at a time into per-worker scratch.
package llm
