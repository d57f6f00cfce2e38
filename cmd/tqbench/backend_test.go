package main

import (
	"bytes"
	"errors"
	"path/filepath"
	"runtime"
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

// TestBackendFlagReportsUnavailable: --backend naming kernels this machine
// lacks is an error that says so (never a crash), and generic runs.
func TestBackendFlagReportsUnavailable(t *testing.T) {
	var out, errOut bytes.Buffer
	missing := "neon"
	if runtime.GOARCH == "arm64" {
		missing = "avx2"
	}
	err := run([]string{"speed", "--backend", missing, "--lengths", "256", "--presets", "fp16", "--quiet"}, &out, &errOut)
	if !errors.Is(err, errBackendUnavailable) {
		t.Fatalf("--backend %s on %s: %v, want errBackendUnavailable", missing, runtime.GOARCH, err)
	}
	err = run([]string{"speed", "--backend", "nonsense", "--lengths", "256", "--presets", "fp16", "--quiet"}, &out, &errOut)
	if !errors.Is(err, errBackendUnavailable) {
		t.Fatalf("--backend nonsense: %v, want errBackendUnavailable", err)
	}
	out.Reset()
	err = run([]string{"speed", "--backend", "generic", "--lengths", "256", "--presets", "fp16,tq3", "--reps", "1",
		"--bandwidth-mib", "8", "--quiet", "--json"}, &out, &errOut)
	if err != nil {
		t.Fatalf("--backend generic: %v", err)
	}
	if !strings.Contains(out.String(), `"preset": "tq3"`) {
		t.Fatalf("--backend generic printed no tq3 row:\n%s", out.String())
	}
}
