//go:build race

package turboquant_test

const raceEnabled = true
