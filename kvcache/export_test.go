package kvcache

// SetRowKernels forces the row path of attention on or off (attend_rows.go)
// and returns a function that restores the previous choice.
func SetRowKernels(on bool) (restore func()) {
	prev := rowOverride
	rowOverride = -1
	if on {
		rowOverride = 1
	}
	return func() { rowOverride = prev }
}

// SetParallelAttendMin sets the work above which Attend uses several
// goroutines and returns a function that restores it.
func SetParallelAttendMin(n int) (restore func()) {
	prev := parallelAttendMin
	parallelAttendMin = n
	return func() { parallelAttendMin = prev }
}

// SetAttendChunk sets the tokens the row path walks at a time (rounded
// down to whole blocks) and returns a function that restores it.
func SetAttendChunk(n int) (restore func()) {
	prev := attendChunk
	attendChunk = n
	return func() { attendChunk = prev }
}
