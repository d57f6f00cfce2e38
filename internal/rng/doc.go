// Package rng is the project's deterministic random source: a SplitMix64
// generator whose output depends only on the seed, so that a rotation, a sketch
// or a test dataset built from a seed is the same on every platform and every
// Go release (math/rand makes no such promise for its derived distributions).
package rng
