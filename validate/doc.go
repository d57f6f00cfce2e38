// Package validate measures how faithful TurboQuant codes are: attention
// fidelity of a KV cache against exact float64 attention (Fidelity:
// probability cosine, KL divergence, top-1/top-5 agreement, output and logit
// error), synthetic keys, values and queries fitted to real K/V (SynthKV),
// an attention-level needle-in-a-haystack harness (RunNIAH), Monte Carlo
// distortion of random unit vectors checked against the paper's bounds, and
// the real transformer K/V it is all calibrated on (LoadRealKV: captured
// from Universal Sentence Encoder lite over KJV text; the fixture lives in
// testdata and tools/capturekv regenerates it). It is the measuring side of
// the library — tests and the tqbench CLI use it — and never changes what
// it measures.
package validate
