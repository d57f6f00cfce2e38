// Package serve is an HTTP inference server over the llm engine whose
// sequences share one kvcache.Pool and one KV memory budget.
//
// One scheduler goroutine owns every sequence. Requests wait in a bounded
// FIFO queue and are admitted while the bytes the planner says they need
// at their last token (prompt + max_tokens) fit the budget next to what the
// admitted sequences and the cached prefixes were charged; a full queue
// answers 429 with Retry-After. Admitted sequences decode together, one
// llm.DecodeBatch per step (continuous batching: a sequence joins the batch
// the step after its prefill and leaves it the step it finishes). A client
// that goes away has its sequence closed at the next step. A sequence the
// cache refuses mid-generation (possible only for a request planned past
// the whole budget, which is admitted alone) ends with finish_reason
// "length".
//
// Prompts are prefilled in chunks aligned to multiples of PrefixChunk
// tokens, and the sequence is forked at every chunk boundary into a prefix
// cache (copy-on-write blocks: a fork costs its fp16 window). A later
// prompt that starts with a cached prefix forks it and prefills only the
// rest. Because the Center means of a compressed cache come from the first
// append, and every sequence's first append is its first chunk, a prefix
// hit leaves exactly the cache a cold prefill would: the output is the
// same.
//
// Endpoints: OpenAI-style POST /v1/completions (server-sent events with
// stream), ollama-style POST /api/generate (NDJSON), GET /v1/models,
// GET /metrics (Prometheus text), GET /healthz.
package serve
