//go:build !unix

package kvcache_test

// processCPU is not measured here; benchmarks then report no CPU time.
func processCPU() int64 { return 0 }
