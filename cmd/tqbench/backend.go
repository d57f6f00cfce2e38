package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/turboquant-go/tq/cuda"
	"github.com/turboquant-go/tq/internal/simd"
	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/metal"
)

// backendNames are the backends tqbench knows, in the order it lists them.
var backendNames = []string{"generic", "avx2", "neon", "cuda", "metal"}

// errBackendUnavailable reports a backend this build or machine cannot run.
var errBackendUnavailable = errors.New("backend unavailable")

// openedBackend is a backend ready to build caches.
type openedBackend struct {
	name   string
	detail string
	dev    *cuda.Device // cuda only
	// newCache returns an empty cache of the backend for cfg.
	newCache func(cfg kvcache.Config, budget int64) (kvcache.Cache, error)
	close    func()
}

// openBackend opens a backend by name. An unknown name or a backend that
// cannot run here gives an error wrapping errBackendUnavailable (and, for
// cuda, cuda.ErrNoCUDA; for metal, metal.ErrUnavailable), never a crash.
func openBackend(name string) (*openedBackend, error) {
	switch name {
	case "generic", "avx2", "neon":
		level := map[string]simd.Level{"generic": simd.Generic, "avx2": simd.AVX2, "neon": simd.NEON}[name]
		if !simd.Available(level) {
			return nil, fmt.Errorf("%w: no %s kernels on this CPU or build (%s; best level here: %v)",
				errBackendUnavailable, name, runtime.GOARCH, simd.Best())
		}
		restore, err := simd.Use(level)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errBackendUnavailable, err)
		}
		detail := map[string]string{"generic": "pure Go", "avx2": "AVX2/FMA/F16C kernels", "neon": "NEON kernels"}[name]
		return &openedBackend{name: name, detail: detail + " (" + runtime.GOARCH + ")", close: restore,
			newCache: func(cfg kvcache.Config, budget int64) (kvcache.Cache, error) {
				p, err := kvcache.NewPool(cfg, budget)
				if err != nil {
					return nil, err
				}
				return p.NewSequence(), nil
			}}, nil
	case "metal":
		dev, err := metal.Open()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errBackendUnavailable, err)
		}
		return &openedBackend{name: name, detail: dev.Name(), close: func() { _ = dev.Close() },
			newCache: func(cfg kvcache.Config, budget int64) (kvcache.Cache, error) {
				p, err := metal.NewPool(dev, cfg, budget)
				if err != nil {
					return nil, err
				}
				return p.NewSequence(), nil
			}}, nil
	case "cuda":
		dev, err := cuda.Open(cuda.Options{})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errBackendUnavailable, err)
		}
		major, minor := dev.ComputeCapability()
		return &openedBackend{name: name, dev: dev,
			detail: fmt.Sprintf("%s, compute capability %d.%d, %d SMs, %d MiB, driver %d, %s",
				dev.Name(), major, minor, dev.Multiprocessors(), dev.Memory()>>20, dev.DriverVersion(), dev.LibraryPath()),
			close: func() { _ = dev.Close() },
			newCache: func(cfg kvcache.Config, budget int64) (kvcache.Cache, error) {
				p, err := cuda.NewPool(dev, cfg, budget)
				if err != nil {
					return nil, err
				}
				return p.NewSequence(), nil
			}}, nil
	}
	return nil, fmt.Errorf("%w: unknown backend %q (have %s)", errBackendUnavailable, name, strings.Join(backendNames, ", "))
}

func runBackend(args []string, stdout io.Writer) error {
	fs := newFlags("backend")
	name := fs.String("backend", "", "run decode speed and fidelity on this backend (empty: list the backends)")
	presets := fs.String("presets", "fp16,k8v4,tq4,tq3", "comma-separated cache presets for the run")
	tokens := fs.String("tokens", "8192", "comma-separated context lengths for the run")
	heads := fs.Int("kvheads", 8, "KV heads")
	group := fs.Int("group", 4, "query heads per KV head")
	dim := fs.Int("dim", 128, "head dim")
	steps := fs.Int("steps", 20, "timed decode steps per row")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "backend\tavailable\tdetail")
		for _, n := range backendNames {
			b, err := openBackend(n)
			if err != nil {
				fmt.Fprintf(tw, "%s\tno\t%v\n", n, err)
				continue
			}
			fmt.Fprintf(tw, "%s\tyes\t%s\n", n, b.detail)
			b.close()
		}
		return tw.Flush()
	}
	ns, err := intList(*tokens)
	if err != nil {
		return err
	}
	b, err := openBackend(*name)
	if err != nil {
		return err
	}
	defer b.close()
	fmt.Fprintf(stdout, "backend %s: %s\n", b.name, b.detail)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "preset\ttokens\tµs/step (host wall)\tµs/step (kernels)\tvs generic: rel. error\t")
	for _, n := range ns {
		for _, p := range strings.Split(*presets, ",") {
			row, err := backendRun(b, strings.TrimSpace(p), n, *heads, *group, *dim, *steps)
			if err != nil {
				return err
			}
			fmt.Fprintln(tw, row)
		}
	}
	return tw.Flush()
}

// backendRun fills a one-layer cache of the backend and one of the generic
// backend with the same n random tokens, times decode steps on the backend
// and compares its attention output with the generic one.
func backendRun(b *openedBackend, preset string, n, H, g, d, steps int) (string, error) {
	cfg, err := kvcache.Preset(preset, 1, H, H*g, d)
	if err != nil {
		return "", err
	}
	c, err := b.newCache(cfg, 0)
	if err != nil {
		return "", err
	}
	defer c.Close()
	gp, err := kvcache.NewPool(cfg, 0)
	if err != nil {
		return "", err
	}
	ref := gp.NewSequence()
	defer ref.Close()
	r := rand.New(rand.NewPCG(uint64(n), 1))
	vec := func(m int) []float32 {
		x := make([]float32, m)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		return x
	}
	appendBoth := func(m int) error {
		k, v := vec(m*H*d), vec(m*H*d)
		if err := c.Append(0, k, v); err != nil {
			return err
		}
		return ref.Append(0, k, v)
	}
	// A prefill of n−1 tokens, one attention, then the last token as a
	// decode step: a deferred prefill (the guard presets) is compressed
	// then, against the query attended, as in an engine.
	for done := 0; done < n-1; {
		m := min(4096, n-1-done)
		if err := appendBoth(m); err != nil {
			return "", err
		}
		done += m
	}
	q := vec(H * g * d)
	out, want := make([]float32, len(q)), make([]float32, len(q))
	if n > 1 {
		if err := c.Attend(0, q, out); err != nil {
			return "", err
		}
		if err := ref.Attend(0, q, want); err != nil {
			return "", err
		}
	}
	if err := appendBoth(1); err != nil {
		return "", err
	}
	if err := ref.Attend(0, q, want); err != nil {
		return "", err
	}
	start := time.Now()
	for range steps {
		if err := c.Attend(0, q, out); err != nil {
			return "", err
		}
	}
	wall := time.Since(start).Seconds() / float64(steps) * 1e6
	kernels := "—"
	if s, ok := c.(interface { // cuda.Sequence, metal.Sequence
		KernelTime(layer int, queries []float32, reps int) (float32, error)
	}); ok {
		ms, err := s.KernelTime(0, q, steps)
		if err != nil {
			return "", err
		}
		kernels = fmt.Sprintf("%.1f", ms*1e3)
	}
	var num, den float64
	for i := range out {
		e := float64(out[i] - want[i])
		num += e * e
		den += float64(want[i]) * float64(want[i])
	}
	return fmt.Sprintf("%s\t%d\t%.1f\t%s\t%.2g\t", preset, n, wall, kernels, math.Sqrt(num/den)), nil
}

// backendFlag registers --backend on a command that runs the CPU cache.
// The returned function selects the kernels it names for the rest of the
// command and returns the restore to defer: auto keeps the best this CPU
// has, generic/avx2/neon force a level, and a backend this machine lacks
// (or the device backends, which `tqbench backend` runs) is an error that
// says so.
func backendFlag(fs *flag.FlagSet) func() (restore func(), err error) {
	name := fs.String("backend", "auto", "kernels: auto|generic|avx2|neon (cuda and metal run through `tqbench backend`; avx2 keeps the AVX-512 forms of its kernels where the CPU has them: TQ_CPU_DISABLE=AVX512 in the environment runs what an AVX2-only CPU runs)")
	return func() (func(), error) {
		switch *name {
		case "auto":
			return func() {}, nil
		case "cuda", "metal":
			b, err := openBackend(*name)
			if err != nil {
				return nil, err
			}
			b.close()
			return nil, fmt.Errorf("%w: %s is available here; run it with `tqbench backend --backend %s`", errBackendUnavailable, *name, *name)
		}
		b, err := openBackend(*name)
		if err != nil {
			return nil, err
		}
		return b.close, nil
	}
}
