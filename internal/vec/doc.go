// Package vec holds the scalar float32 vector helpers the codec and the
// cache share: locating a non-finite component and an inner product
// accumulated in float64 in a fixed order (so results are the same on every
// platform and kernel level). Vector kernels live in internal/simd.
package vec
