package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

type command struct {
	name, summary string
	run           func(args []string, stdout io.Writer) error
}

// commands lists the subcommands, alphabetically, each with the file that
// implements it; doc.go lists their flags.
var commands = []command{
	{"ann", "nearest-neighbour recall, encode time and scan rate on GloVe / Fashion-MNIST", runANN},
	{"backend", "list compute backends and their availability; run decode speed and fidelity on one", runBackend},
	{"codebook", "Lloyd–Max codebooks: centroids, boundaries, d × distortion", runCodebook},
	{"compare", "TurboQuant presets against int-N and KIVI-like baselines at equal bits (real K/V)", runCompare},
	{"data", "fetch benchmark datasets (glove, fmnist) into the cache folder; info", runData},
	{"distortion", "Monte Carlo distortion of random unit vectors", runDistortion},
	{"kv", "KV-cache fidelity on a synthetic decode workload fitted to real K/V", runKV},
	{"load", "load-test tqserve on 127.0.0.1: sequences admitted, tokens/s, TTFT and inter-token latency per preset at one KV budget; overload", runLoad},
	{"lm", "a language model on the cache: perplexity, KLD, agreement, passkey per preset; lm gen generates", runLM},
	{"niah", "attention-level needle in a haystack: depth × context length per preset", runNIAH},
	{"plan", "exact cache bytes for a model shape and context (the memory planner)", runPlan},
	{"realkv", "KV-cache attention fidelity on real transformer K/V", runRealKV},
	{"speed", "decode-step time per preset against fp16 and fp32 over the same tokens", runSpeed}, // in kv.go
}

// isHelp reports whether arg asks for the command list.
func isHelp(arg string) bool { return arg == "help" || arg == "-h" || arg == "--help" }

func main() {
	os.Exit(exitCode(run(os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

// exitCode maps run's error to the process exit status: 0 on success, 2
// for usage errors (unknown command, bad flag: the flag package has
// already said why), 1 for anything else (printed to stderr).
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp), errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintln(stderr, "tqbench:", err)
	return 1
}

// flagOutput receives flag errors and -h help (tests silence it).
var flagOutput io.Writer = os.Stderr

// errUsage marks a command line the flag package rejected.
var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") && !isHelp(args[0]) {
		return runReport(args, stdout, stderr)
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:], stdout)
		}
	}
	if !isHelp(args[0]) {
		fmt.Fprintf(stderr, "unknown command %q\n\n", args[0])
	}
	fmt.Fprintln(stderr, "usage: tqbench [command] [flags]\n\nWith no command, prints the default report.\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(stderr, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(stderr, "\nRun 'tqbench <command> -h' for its flags.")
	if isHelp(args[0]) {
		return nil
	}
	return flag.ErrHelp
}

// intList parses a comma-separated list of integers such as "1,2,3,4".
func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("bad integer list %q: %w", s, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("tqbench "+name, flag.ContinueOnError)
	fs.SetOutput(flagOutput)
	return fs
}

// parseFlags parses args, marking a rejected command line with errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if err == nil && fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	return err
}
