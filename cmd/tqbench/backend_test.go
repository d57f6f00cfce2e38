package main

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turboquant-go/tq/cuda"
)

func TestBackendList(t *testing.T) {
	t.Setenv(cuda.LibraryEnv, filepath.Join(t.TempDir(), "absent.so"))
	var out bytes.Buffer
	if err := runBackend(nil, &out); err != nil {
		t.Fatal(err)
	}
	for _, n := range backendNames {
		if !strings.Contains(out.String(), "\n"+n+" ") {
			t.Errorf("backend %s not listed:\n%s", n, out.String())
		}
	}
	if !strings.Contains(out.String(), "cuda     no") {
		t.Errorf("cuda should be listed as unavailable without a driver:\n%s", out.String())
	}
	if _, err := openBackend("cuda"); !errors.Is(err, cuda.ErrNoCUDA) || !errors.Is(err, errBackendUnavailable) {
		t.Errorf("openBackend(cuda) without a driver: %v", err)
	}
	if _, err := openBackend("tpu"); !errors.Is(err, errBackendUnavailable) {
		t.Errorf("openBackend(tpu): %v", err)
	}
}

func TestBackendRunGeneric(t *testing.T) {
	var out bytes.Buffer
	if err := runBackend([]string{"--backend", "generic", "--presets", "tq3", "--tokens", "300", "--steps", "1", "--kvheads", "2", "--group", "2", "--dim", "64"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "tq3") {
		t.Errorf("run output:\n%s", out.String())
	}
}
