// Package tokenizer turns text into the token ids a GGUF Llama-family model
// was trained on, and back, reproducing llama.cpp's tokenizers byte for byte.
//
// The one idea: a model only understands the exact ids its own tokenizer
// produced during training, so every rule here (where a leading space goes,
// which pair merges first, how text is cut before merging, which bytes map to
// which characters) follows llama.cpp's llama-vocab.cpp and unicode.cpp
// rather than what seems tidier. Where this package departs from llama.cpp,
// the departure is named in a comment at the spot.
//
// Two models are supported, chosen by tokenizer.ggml.model:
//
//   - "llama": SentencePiece BPE. Spaces become U+2581 (▁), a ▁ is prefixed to
//     raw-text fragments that start the text or follow a special token (when
//     AddSpacePrefix), adjacent symbols merge highest score first (leftmost on
//     ties), and symbols that are not tokens fall back to <0xXX> byte tokens.
//   - "gpt2": byte-level BPE. Text is cut into words by the pre-tokenizer that
//     tokenizer.ggml.pre names, each byte is mapped through GPT-2's
//     bytes_to_unicode table, and words merge by lowest merge rank.
//
// Special tokens (control, user-defined, unknown) are split out of the text
// before either model runs, the same way llama.cpp's tokenizer_st_partition
// does it.
//
// The package does not read GGUF files: the engine converts GGUF metadata
// into a Vocab and calls New.
package tokenizer
