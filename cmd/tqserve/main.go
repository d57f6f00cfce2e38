// Command tqserve is an HTTP inference server over the pure-Go engine with
// one compressed KV cache pool and one memory budget; see package serve.
//
// Flags (each also read from the environment variable named, a flag on the
// command line winning):
//
//	--model       TQSERVE_MODEL       GGUF file (default: the committed KJV model)
//	--preset      TQSERVE_PRESET      KV cache preset (default tq3)
//	--kv-budget   TQSERVE_KV_BUDGET   KV memory budget, e.g. 2GiB, 512MB (default 2GiB)
//	--window      TQSERVE_WINDOW      override the preset's fp16 window tokens (-1: preset's)
//	--sinks       TQSERVE_SINKS       override the preset's fp16 sink tokens (-1: preset's)
//	--addr        TQSERVE_ADDR        listen address (default 127.0.0.1:8080)
//	--max-queue   TQSERVE_MAX_QUEUE   requests waiting for admission before 429 (default 64)
//	--max-batch   TQSERVE_MAX_BATCH   sequences decoding at once (default 256)
//	--prefix-entries TQSERVE_PREFIX_ENTRIES  cached prompt prefixes (default 32; -1: off)
//	--drain-timeout  TQSERVE_DRAIN_TIMEOUT   how long SIGINT/SIGTERM waits for requests (default 60s)
//	--kv-store    TQSERVE_KV_STORE    shared prefix store for replicas: mem, dir:///path,
//	                                  redis://host:port (default none; see package kvstore)
//
// On SIGINT or SIGTERM it stops accepting requests, lets the running and
// queued ones finish (up to the drain timeout), then exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/turboquant-go/tq/kvstore"
	"github.com/turboquant-go/tq/llm"
	"github.com/turboquant-go/tq/models/kjv"
	"github.com/turboquant-go/tq/serve"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "tqserve:", err)
		os.Exit(1)
	}
}

// options are the command line's settings.
type options struct {
	model, preset, budget, addr string
	kvStore                     string
	window, sinks               int
	maxQueue, maxBatch          int
	prefixEntries               int
	drain                       time.Duration
}

// parse reads flags over environment defaults.
func parse(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("tqserve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&o.model, "model", env("TQSERVE_MODEL", ""), "GGUF model file (default: the committed KJV model) [TQSERVE_MODEL]")
	fs.StringVar(&o.preset, "preset", env("TQSERVE_PRESET", "tq3"), "KV cache preset [TQSERVE_PRESET]")
	fs.StringVar(&o.budget, "kv-budget", env("TQSERVE_KV_BUDGET", "2GiB"), "KV cache memory budget, e.g. 2GiB, 512MB [TQSERVE_KV_BUDGET]")
	fs.StringVar(&o.addr, "addr", env("TQSERVE_ADDR", "127.0.0.1:8080"), "listen address [TQSERVE_ADDR]")
	fs.StringVar(&o.kvStore, "kv-store", env("TQSERVE_KV_STORE", ""),
		"shared KV prefix store for replicas: mem, mem://?bytes=N, dir:///path or redis://host:port (empty: none) [TQSERVE_KV_STORE]")
	ints := []struct {
		p        *int
		name, ev string
		def      int
		help     string
	}{
		{&o.window, "window", "TQSERVE_WINDOW", -1, "fp16 window tokens, overriding the preset's (-1: preset's)"},
		{&o.sinks, "sinks", "TQSERVE_SINKS", -1, "fp16 sink tokens, overriding the preset's (-1: preset's)"},
		{&o.maxQueue, "max-queue", "TQSERVE_MAX_QUEUE", 64, "requests waiting for admission before 429"},
		{&o.maxBatch, "max-batch", "TQSERVE_MAX_BATCH", 256, "sequences decoding at once"},
		{&o.prefixEntries, "prefix-entries", "TQSERVE_PREFIX_ENTRIES", 32, "cached prompt prefixes (-1: off)"},
	}
	var envErr error
	for _, f := range ints {
		def := f.def
		if v := getenv(f.ev); v != "" {
			if _, err := fmt.Sscan(v, &def); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", f.ev, v, err)
			}
		}
		fs.IntVar(f.p, f.name, def, f.help+" ["+f.ev+"]")
	}
	drain, err := time.ParseDuration(env("TQSERVE_DRAIN_TIMEOUT", "60s"))
	if err != nil {
		envErr = fmt.Errorf("TQSERVE_DRAIN_TIMEOUT: %v", err)
	}
	fs.DurationVar(&o.drain, "drain-timeout", drain, "how long SIGINT/SIGTERM waits for requests to finish [TQSERVE_DRAIN_TIMEOUT]")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return o, envErr
}

// run serves until ctx ends, then drains. ready, when set, receives the
// listening address.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready chan<- string) error {
	o, err := parse(args, getenv, stderr)
	if err != nil {
		return err
	}
	budget, err := serve.ParseBytes(o.budget)
	if err != nil {
		return err
	}
	var m *llm.Model
	name := "kjv"
	if o.model == "" {
		m, err = kjv.Model()
	} else {
		m, err = llm.Open(o.model)
		name = strings.TrimSuffix(o.model[strings.LastIndexAny(o.model, `/\`)+1:], ".gguf")
	}
	if err != nil {
		return err
	}
	defer m.Close()
	cfg := serve.Config{Model: m, ModelName: name, Preset: o.preset, KVBudget: budget,
		MaxQueue: o.maxQueue, MaxBatch: o.maxBatch, PrefixEntries: o.prefixEntries}
	if o.window >= 0 {
		cfg.Window = &o.window
	}
	if o.sinks >= 0 {
		cfg.Sinks = &o.sinks
	}
	if o.kvStore != "" {
		if cfg.KVStore, err = kvstore.Open(o.kvStore); err != nil {
			return err
		}
	}
	srv, err := serve.New(cfg)
	if err != nil {
		if cfg.KVStore != nil {
			_ = cfg.KVStore.Close()
		}
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return err
	}
	logger := log.New(stderr, "tqserve: ", log.LstdFlags)
	logger.Printf("serving %s (preset %s, KV budget %d bytes, KV store %q) on http://%s", name, o.preset, budget, o.kvStore, ln.Addr())
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-served:
		_ = srv.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	logger.Printf("draining (up to %v)", o.drain)
	dctx, cancel := context.WithTimeout(context.Background(), o.drain)
	defer cancel()
	errSrv := srv.Shutdown(dctx) // new requests get 503 while running ones finish
	errHTTP := hs.Shutdown(dctx)
	logger.Printf("stopped")
	return errors.Join(errSrv, errHTTP)
}
