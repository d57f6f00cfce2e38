// Command tqbench measures the TurboQuant library: codebooks, Monte Carlo
// distortion against the paper's numbers, and (as the library grows) KV-cache
// fidelity and speed.
//
// Usage:
//
//	tqbench                      the default report (d=128, every method, 1–4 bits; real K/V fidelity)
//	tqbench codebook   --dim 128 --bits 1,2,3,4 --density beta|gaussian [--json]
//	tqbench distortion --dim 128 --bits 1,2,3,4 --method mse|prod|polar --n 10000 --seed 1 [--json]
//	tqbench realkv     --presets tq4,tq3 [--center] [--window 0] [--data FILE] [--json]
package main
