package cuda

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPTXEntryPoints checks that every kernel Open looks up is an entry of
// its embedded module.
func TestPTXEntryPoints(t *testing.T) {
	for _, m := range kernelModules {
		if !strings.Contains(m.ptx, ".target sm_70") {
			t.Errorf("%s.ptx does not target sm_70", m.name)
		}
		for _, k := range m.kernels {
			if !strings.Contains(m.ptx, ".visible .entry "+k+"(") {
				t.Errorf("%s.ptx has no entry %s", m.name, k)
			}
		}
	}
}

// TestPTXUpToDate regenerates the PTX with clang-16 into a temporary
// directory and compares it with the committed files.
func TestPTXUpToDate(t *testing.T) {
	if _, err := exec.LookPath("clang++-16"); err != nil {
		t.Skip("clang++-16 not found (apt-get install clang-16): cannot check the committed PTX")
	}
	out := t.TempDir()
	cmd := exec.Command("sh", "kernels/gen.sh")
	cmd.Env = append(os.Environ(), "OUT="+out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen.sh: %v\n%s", err, msg)
	}
	for _, m := range kernelModules {
		got, err := os.ReadFile(filepath.Join(out, m.name+".ptx"))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != m.ptx {
			t.Errorf("kernels/%s.ptx is stale: run go generate ./cuda", m.name)
		}
	}
}
