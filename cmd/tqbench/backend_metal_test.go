package main

import (
	"errors"
	"runtime"
	"testing"

	"github.com/turboquant-go/tq/metal"
)

// TestBackendMetalUnavailable: off macOS, the metal backend is listed and
// reports metal.ErrUnavailable through errBackendUnavailable.
func TestBackendMetalUnavailable(t *testing.T) {
	if runtime.GOOS == "darwin" {
		t.Skip("on macOS metal may be available; metal/check.sh runs it")
	}
	if _, err := openBackend("metal"); !errors.Is(err, metal.ErrUnavailable) || !errors.Is(err, errBackendUnavailable) {
		t.Errorf("openBackend(metal) off macOS: %v", err)
	}
}
