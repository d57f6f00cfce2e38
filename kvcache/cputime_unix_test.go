//go:build unix

package kvcache_test

import "syscall"

// processCPU returns the CPU time this process has used (user + system), in
// nanoseconds: on a machine shared with other jobs, per-operation CPU time
// is steadier than wall time, which counts the waits for a core.
func processCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
