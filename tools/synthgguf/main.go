// Command synthgguf writes the synthetic GGUF models the engine's
// llama.cpp cross-check runs on (tools/llamacpp-ref): one small model per
// weight type and architecture, the same files llm's tests build in memory
// (synth.CrossCheckSet), so llama.cpp's answers on them can be committed and
// compared with the engine's in `go test`.
//
//	go run ./tools/synthgguf -out /tmp/synth
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/turboquant-go/tq/llm/synth"
)

func main() {
	out := flag.String("out", "synth-models", "directory to write the models into")
	flag.Parse()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "synthgguf:", err)
		os.Exit(1)
	}
	for _, c := range synth.CrossCheckSet() {
		data, err := synth.Build(c.Options)
		if err == nil {
			err = os.WriteFile(filepath.Join(*out, c.Name+".gguf"), data, 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "synthgguf:", c.Name+":", err)
			os.Exit(1)
		}
		fmt.Println(filepath.Join(*out, c.Name+".gguf"))
	}
}
