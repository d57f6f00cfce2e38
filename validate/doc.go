// Package validate measures how faithful TurboQuant codes are: Monte Carlo
// distortion of random unit vectors (D_mse, inner-product shrinkage, bias
// and variance) checked against the paper's bounds, and the real
// transformer K/V it is measured on (LoadRealKV: keys, values and queries
// captured from Universal Sentence Encoder lite over KJV text; the fixture
// lives in testdata and tools/capturekv regenerates it). It is the measuring
// side of the library — tests and the tqbench CLI use it — and never changes
// what it measures.
package validate
