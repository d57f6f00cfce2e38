// Package synth writes synthetic GGUF models: a Llama-family shape with
// seeded random weights in any tensor type the engine reads, a real
// tokenizer vocabulary (byte-level BPE with merges, or SentencePiece with
// byte fallback) and every metadata key llama.cpp needs to load the file.
// The engine's tests load them to cover each tensor type, architecture and
// tokenizer; tools/llamacpp-ref runs llama.cpp on the same files; the decode
// benchmark builds models larger than the CPU caches.
package synth
