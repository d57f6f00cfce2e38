package kvcache_test

import (
	"go/build"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportLayering checks the import rules docs/ARCHITECTURE.md states:
// the codec does not know the cache, the cache uses only the codec (and
// internal packages), and the lower layers import nothing above them.
func TestImportLayering(t *testing.T) {
	const module = "github.com/turboquant-go/tq/"
	allowed := map[string][]string{ // within the module; internal/… is always allowed
		"kvcache":    {"turboquant"},
		"turboquant": {"hadamard", "lloydmax", "qjl", "polarquant"},
		"hadamard":   {},
		"lloydmax":   {},
		"qjl":        {"hadamard"},
		"polarquant": {"lloydmax"},
	}
	for pkg, ok := range allowed {
		p, err := build.ImportDir(filepath.Join("..", pkg), 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range p.Imports {
			rel, inModule := strings.CutPrefix(imp, module)
			if !inModule || strings.HasPrefix(rel, "internal/") {
				continue
			}
			found := false
			for _, a := range ok {
				found = found || rel == a
			}
			if !found {
				t.Errorf("%s imports %s; it may import only %v and internal packages", pkg, rel, ok)
			}
		}
	}
}
