// Package kjv embeds the project's own test language model: a small
// Llama-architecture decoder trained by tools/trainlm on the King James Bible
// (public domain) with passkey-retrieval sequences mixed in, exported to GGUF
// by the project's writer, with its held-out text and the PyTorch reference
// logits the engine is tested against. The model, not the engine, is what
// lets the KV cache be measured where users live: perplexity, KL divergence
// and passkey retrieval through a real causal LM.
package kjv
