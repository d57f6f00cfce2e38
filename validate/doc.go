// Package validate measures how faithful TurboQuant codes are: Monte Carlo
// distortion of random unit vectors (D_mse, inner-product shrinkage, bias
// and variance) checked against the paper's bounds. It is the measuring side
// of the library — tests and the tqbench CLI use it — and never changes what
// it measures.
package validate
