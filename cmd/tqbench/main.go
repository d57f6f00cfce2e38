package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
)

type command struct {
	name, summary string
	run           func(args []string, stdout io.Writer) error
}

// commands holds the subcommands; each file that implements one adds it in
// an init function with register, so subcommands live in files of their own.
var commands []command

func register(c command) {
	i := sort.Search(len(commands), func(i int) bool { return commands[i].name >= c.name })
	commands = slices.Insert(commands, i, c)
}

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
	if len(args) == 0 || strings.HasPrefix(args[0], "-") && args[0] != "-h" && args[0] != "--help" {
		return runReport(args, stdout, stderr)
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:], stdout)
		}
	}
	if args[0] != "help" && args[0] != "-h" && args[0] != "--help" {
		fmt.Fprintf(stderr, "unknown command %q\n\n", args[0])
	}
	fmt.Fprintln(stderr, "usage: tqbench [command] [flags]\n\nWith no command, prints the default report.\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(stderr, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(stderr, "\nRun 'tqbench <command> -h' for its flags.")
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
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
