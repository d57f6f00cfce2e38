// Command synthgguf writes synthetic GGUF models:
//
//   - by default, the models the engine's llama.cpp cross-check runs on
//     (tools/llamacpp-ref): one small model per weight type and
//     architecture, the same files llm's tests build in memory
//     (synth.CrossCheckSet), so llama.cpp's answers on them can be committed
//     and compared with the engine's in `go test`;
//
//   - with -bench TYPE, the 123M-parameter benchmark model (synth.Bench123M)
//     with weights of that ggml type, for serving a model whose weights
//     stream from memory (`tqserve --model`).
//
//     go run ./tools/synthgguf -out /tmp/synth
//     go run ./tools/synthgguf -out /tmp/synth -bench Q8_0
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/turboquant-go/tq/llm/gguf"
	"github.com/turboquant-go/tq/llm/synth"
)

func main() {
	out := flag.String("out", "synth-models", "directory to write the models into")
	bench := flag.String("bench", "", "write only the 123M benchmark model, with weights of this type (F16, Q8_0, Q4_0, …)")
	flag.Parse()
	if err := run(*out, *bench); err != nil {
		fmt.Fprintln(os.Stderr, "synthgguf:", err)
		os.Exit(1)
	}
}

func run(out, bench string) error {
	set := synth.CrossCheckSet()
	if bench != "" {
		t, ok := typeNamed(bench)
		if !ok || !t.Supported() {
			return fmt.Errorf("-bench %q: not a weight type this package writes", bench)
		}
		set = []synth.Named{{Name: "bench-123m-" + t.String(), Options: synth.Bench123M(t)}}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, c := range set {
		data, err := synth.Build(c.Options)
		if err == nil {
			err = os.WriteFile(filepath.Join(out, c.Name+".gguf"), data, 0o644)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
		fmt.Println(filepath.Join(out, c.Name+".gguf"))
	}
	return nil
}

// typeNamed finds the ggml type by its name, in any case.
func typeNamed(name string) (gguf.Type, bool) {
	for t := range gguf.Type(64) {
		if t.Known() && strings.EqualFold(t.String(), name) {
			return t, true
		}
	}
	return 0, false
}
