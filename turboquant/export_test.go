package turboquant

// SetRowKernels forces the row path of attention on or off (cache_rows.go)
// and returns a function that restores the previous choice.
func SetRowKernels(on bool) (restore func()) {
	prev := rowOverride
	rowOverride = -1
	if on {
		rowOverride = 1
	}
	return func() { rowOverride = prev }
}
