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
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "tqbench:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return runReport(stdout, stderr)
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
	return flag.NewFlagSet("tqbench "+name, flag.ContinueOnError)
}
