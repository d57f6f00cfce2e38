package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/serve"
)

// loadOptions are `tqbench load`'s settings.
type loadOptions struct {
	presets      []string
	budget       int64
	window       int
	maxTokens    int
	concurrency  []int
	requests     int
	phaseTimeout time.Duration
	target       string
	model        string
}

// loadPoint is one closed-loop run at a fixed number of clients.
type loadPoint struct {
	Concurrency  int     `json:"concurrency"`
	Requests     int     `json:"requests"`
	Tokens       int     `json:"tokens"`
	Seconds      float64 `json:"seconds"`
	TokensPerSec float64 `json:"tokens_per_second"`
	TTFTP50      float64 `json:"ttft_p50_ms"`
	TTFTP99      float64 `json:"ttft_p99_ms"`
	ITLP50       float64 `json:"itl_p50_ms"` // per request: (last chunk − first chunk) / (tokens − 1)
	ITLP99       float64 `json:"itl_p99_ms"`
	Rejected     int     `json:"rejected_429"`
	Errors       int     `json:"errors"` // 5xx, other statuses, transport errors, cut streams
}

// overloadResult is the run at twice the admitted concurrency.
type overloadResult struct {
	Clients          int   `json:"clients"`
	Requests         int   `json:"requests"`
	Completed        int   `json:"completed"`
	Rejected         int   `json:"rejected_429"`
	ServerErrors     int   `json:"errors_5xx"`
	Lost             int   `json:"lost"` // no response, another status, or a stream without [DONE]
	GoroutinesBefore int   `json:"goroutines_before"`
	GoroutinesAfter  int   `json:"goroutines_after"`
	KVBytesAfter     int64 `json:"kv_bytes_after"`
	HeapBefore       int64 `json:"heap_bytes_before"`
	HeapAfter        int64 `json:"heap_bytes_after"`
}

// loadRow is one preset's results.
type loadRow struct {
	Preset        string         `json:"preset"`
	Window        int            `json:"window"`
	BitsPerValue  float64        `json:"bits_per_value"`
	Budget        int64          `json:"kv_budget_bytes"`
	SeqPlanBytes  int64          `json:"sequence_plan_bytes"`
	PlannedSeqs   int            `json:"planned_sequences"` // budget / plan
	Admitted      int            `json:"admitted_sequences"`
	CapacityPoint loadPoint      `json:"capacity_run"`
	Points        []loadPoint    `json:"points"`
	Overload      overloadResult `json:"overload"`
}

// loadPrompts are short prompts (< one prefill chunk, so no prefix caching
// changes the budget) the clients cycle through.
var loadPrompts = []string{"In the beginning", "And God said", "Blessed is the man", "The LORD is my shepherd",
	"And it came to pass", "Hear, O Israel", "My son, forget not my law", "Now the serpent was more subtil"}

func runLoad(args []string, stdout io.Writer) error {
	fs := newFlags("load")
	presets := fs.String("presets", "fp16,tq3", "cache presets to compare, each on its own in-process server")
	budget := fs.String("kv-budget", "16MiB", "the one KV budget every preset gets")
	window := fs.Int("window", 0, "fp16 window (and no sinks) for compressed presets; -1: the preset's (128 + 4 sinks)")
	maxTokens := fs.Int("max-tokens", 256, "tokens per request (ignore_eos: every request runs to it)")
	conc := fs.String("concurrency", "1,16", "closed-loop client counts for the throughput points")
	requests := fs.Int("requests", 32, "requests per throughput point (at least the concurrency)")
	timeout := fs.Duration("phase-timeout", 3*time.Minute, "bound on each phase's wall time")
	target := fs.String("url", "", "a running tqserve on 127.0.0.1 to load instead (presets and budget then come from it)")
	model := fs.String("model", "", "GGUF model file the in-process servers run (default: the committed KJV model)")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (server and clients) to this file")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	o := loadOptions{window: *window, maxTokens: *maxTokens, requests: *requests, phaseTimeout: *timeout, target: *target, model: *model}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var err error
	if o.budget, err = serve.ParseBytes(*budget); err != nil {
		return err
	}
	for _, c := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 || n > 4096 {
			return fmt.Errorf("%w: concurrency %q", errUsage, c)
		}
		o.concurrency = append(o.concurrency, n)
	}
	if o.maxTokens < 1 || o.requests < 1 {
		return fmt.Errorf("%w: max tokens %d, requests %d", errUsage, o.maxTokens, o.requests)
	}
	var rows []loadRow
	if o.target != "" {
		if err := loopbackOnly(o.target); err != nil {
			return err
		}
		row, err := loadTarget(o, strings.TrimRight(o.target, "/"), 0, nil)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	} else {
		for _, p := range strings.Split(*presets, ",") {
			row, err := loadPreset(o, strings.TrimSpace(p))
			if err != nil {
				return err
			}
			rows = append(rows, row)
		}
	}
	if *asJSON {
		return writeJSON(stdout, rows)
	}
	return printLoad(stdout, o, rows)
}

// loopbackOnly refuses a target that is not this machine.
func loopbackOnly(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: --url %q: %v", errUsage, raw, err)
	}
	h := u.Hostname()
	if ip := net.ParseIP(h); (ip == nil || !ip.IsLoopback()) && h != "localhost" {
		return fmt.Errorf("%w: --url %q: the load generator only targets 127.0.0.1", errUsage, raw)
	}
	return nil
}

// inProcess is a tqserve on 127.0.0.1 inside this process.
type inProcess struct {
	srv  *serve.Server
	hs   *http.Server
	base string
}

func startInProcess(cfg serve.Config) (*inProcess, error) {
	srv, err := serve.New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return nil, err
	}
	p := &inProcess{srv: srv, hs: &http.Server{Handler: srv}, base: "http://" + ln.Addr().String()}
	go func() { _ = p.hs.Serve(ln) }()
	return p, nil
}

func (p *inProcess) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return errors.Join(p.srv.Shutdown(ctx), p.hs.Shutdown(ctx))
}

// loadPreset runs every phase against in-process servers of one preset.
func loadPreset(o loadOptions, preset string) (loadRow, error) {
	m, _, err := openLM(o.model)
	if err != nil {
		return loadRow{}, err
	}
	defer m.Close()
	c := m.Config
	kc, err := kvcache.Preset(preset, c.Layers, c.KVHeads, c.Heads, c.HeadDim)
	if err != nil {
		return loadRow{}, err
	}
	cfg := serve.Config{Model: m, Preset: preset, KVBudget: o.budget, MaxQueue: 4096, MaxBatch: 4096, PrefixEntries: -1}
	if o.window >= 0 && kc.Window > 0 {
		zero := 0
		cfg.Window, cfg.Sinks = &o.window, &zero
		kc.Window, kc.Sinks = o.window, 0
	}
	plan, err := kc.PlanBytes(16 + o.maxTokens) // prompts are under 16 tokens
	if err != nil {
		return loadRow{}, err
	}
	p, err := startInProcess(cfg)
	if err != nil {
		return loadRow{}, err
	}
	row, err := loadTarget(o, p.base, int(o.budget/plan), func(queue int) (*inProcess, error) {
		oc := cfg
		oc.MaxQueue = queue
		return startInProcess(oc)
	})
	if err := errors.Join(err, p.stop()); err != nil {
		return row, err
	}
	row.BitsPerValue = (kc.Keys.BitsPerValue(c.HeadDim) + kc.Values.BitsPerValue(c.HeadDim)) / 2
	row.Budget, row.SeqPlanBytes, row.PlannedSeqs = o.budget, plan, int(o.budget/plan)
	return row, nil
}

// loadTarget runs the capacity, throughput and overload phases against
// base; the capacity phase sends twice the planned sequences (the budget
// over one request's planned bytes) at once. overloadServer, when set, starts a fresh server with the given
// queue bound for the overload phase (whose leaks are then checked in
// process); otherwise the overload runs against base.
func loadTarget(o loadOptions, base string, planned int, overloadServer func(queue int) (*inProcess, error)) (loadRow, error) {
	var row loadRow
	before, info, err := scrape(base)
	if err != nil {
		return row, err
	}
	row.Preset = info["preset"]
	if w, err := strconv.Atoi(info["window"]); err == nil {
		row.Window = w
	}
	row.Budget = int64(before["tqserve_kv_bytes_budget"])
	row.BitsPerValue = before["tqserve_kv_bits_per_value"]
	// Capacity: far more requests at once than can fit; the peak of
	// sequences decoding together is what the budget admits.
	n := min(4096, max(64, o.requests, 2*planned+8))
	row.CapacityPoint = closedLoop(base, n, n, o.maxTokens, o.phaseTimeout).loadPoint
	after, _, err := scrape(base)
	if err != nil {
		return row, err
	}
	row.Admitted = int(after["tqserve_sequences_active_peak"])
	for _, c := range o.concurrency {
		row.Points = append(row.Points, closedLoop(base, c, max(c, o.requests), o.maxTokens, o.phaseTimeout).loadPoint)
	}
	// Overload: twice the admitted concurrency, with a queue of half of it.
	clients := 2 * max(1, row.Admitted)
	queue := max(1, row.Admitted/2)
	ov := overloadResult{Clients: clients}
	target := base
	var srv *inProcess
	if overloadServer != nil {
		http.DefaultClient.CloseIdleConnections()
		ov.GoroutinesBefore, ov.HeapBefore = settledRuntime()
		if srv, err = overloadServer(queue); err != nil {
			return row, err
		}
		target = srv.base
	}
	pt := closedLoop(target, clients, 3*clients, o.maxTokens/4+1, o.phaseTimeout)
	ov.Requests, ov.Completed, ov.Rejected = pt.Requests, pt.Requests-pt.Rejected-pt.Errors, pt.Rejected
	ov.ServerErrors, ov.Lost = pt.serverErrors, pt.Errors-pt.serverErrors
	if srv != nil {
		if err := srv.stop(); err != nil {
			return row, err
		}
		ov.KVBytesAfter = srv.srv.KVUsed()
		http.DefaultClient.CloseIdleConnections()
		srv = nil
		ov.GoroutinesAfter, ov.HeapAfter = settledRuntime()
	} else if m, _, err := scrape(target); err == nil {
		ov.KVBytesAfter = int64(m["tqserve_kv_bytes_used"])
	}
	row.Overload = ov
	return row, nil
}

// settledRuntime is the goroutine count and live heap after the runtime has
// had a moment to end finished goroutines and collect.
func settledRuntime() (int, int64) {
	var ms runtime.MemStats
	for range 20 {
		runtime.GC()
		time.Sleep(25 * time.Millisecond)
	}
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), int64(ms.HeapAlloc)
}

// scrape reads a server's /metrics into name → value, and the labels of
// its tqserve_info metric (model, preset, window) into info.
func scrape(base string) (vals map[string]float64, info map[string]string, err error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	vals, info = map[string]float64{}, map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		if labels, ok := strings.CutPrefix(name, "tqserve_info{"); ok {
			for _, kv := range strings.Split(strings.TrimSuffix(labels, "}"), ",") {
				if k, v, ok := strings.Cut(kv, "="); ok {
					if u, err := strconv.Unquote(v); err == nil {
						info[k] = u
					}
				}
			}
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			vals[name] = v
		}
	}
	return vals, info, sc.Err()
}

// pointWithErrors is a loadPoint plus the 5xx count the overload needs.
type pointWithErrors struct {
	loadPoint
	serverErrors int
}

// closedLoop runs total streaming requests from clients goroutines, each
// sending its next request when the last ends, within timeout.
func closedLoop(base string, clients, total, maxTokens int, timeout time.Duration) pointWithErrors {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var next atomic.Int64
	var mu sync.Mutex
	var ttft, itl []float64
	var pt pointWithErrors
	pt.Concurrency = clients
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= total || ctx.Err() != nil {
					return
				}
				r := streamOne(ctx, base, loadPrompts[i%len(loadPrompts)], maxTokens, uint64(i))
				mu.Lock()
				pt.Requests++
				switch {
				case r.status == http.StatusTooManyRequests:
					pt.Rejected++
				case r.status >= 500:
					pt.Errors++
					pt.serverErrors++
				case r.status != http.StatusOK || !r.done:
					pt.Errors++
				default:
					pt.Tokens += r.tokens
					ttft = append(ttft, r.ttft.Seconds()*1e3)
					if r.tokens > 1 {
						itl = append(itl, r.span.Seconds()*1e3/float64(r.tokens-1))
					}
				}
				mu.Unlock()
				if r.status == http.StatusTooManyRequests {
					time.Sleep(20 * time.Millisecond) // a client backing off, shorter than Retry-After to keep the pressure
				}
			}
		})
	}
	wg.Wait()
	pt.Seconds = time.Since(start).Seconds()
	pt.TokensPerSec = float64(pt.Tokens) / pt.Seconds
	pt.TTFTP50, pt.TTFTP99 = percentile(ttft, 0.5), percentile(ttft, 0.99)
	pt.ITLP50, pt.ITLP99 = percentile(itl, 0.5), percentile(itl, 0.99)
	return pt
}

func percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// streamResult is one streamed request as the client saw it.
type streamResult struct {
	status     int
	done       bool // the stream ended with [DONE] and a finish reason
	tokens     int
	ttft, span time.Duration // first chunk; first to last chunk
}

func streamOne(ctx context.Context, base, prompt string, maxTokens int, seed uint64) streamResult {
	body := fmt.Sprintf(`{"prompt":%q,"max_tokens":%d,"temperature":0.8,"seed":%d,"stream":true,"ignore_eos":true}`, prompt, maxTokens, seed)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/completions", strings.NewReader(body))
	if err != nil {
		return streamResult{}
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return streamResult{}
	}
	defer resp.Body.Close()
	r := streamResult{status: resp.StatusCode}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return r
	}
	var first, last time.Time
	finished := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			r.done = finished
			break
		}
		var ch struct {
			Choices []struct {
				Text         string  `json:"text"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage *struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if json.Unmarshal([]byte(data), &ch) != nil || len(ch.Choices) != 1 {
			return r
		}
		now := time.Now()
		if ch.Choices[0].Text != "" {
			if first.IsZero() {
				first = now
			}
			last = now
		}
		if ch.Choices[0].FinishReason != nil && ch.Usage != nil {
			finished, r.tokens = true, ch.Usage.CompletionTokens
		}
	}
	if !first.IsZero() {
		r.ttft, r.span = first.Sub(start), last.Sub(first)
	}
	return r
}

func printLoad(w io.Writer, o loadOptions, rows []loadRow) error {
	budget := o.budget
	if len(rows) > 0 { // a --url server reports its own
		budget = rows[0].Budget
	}
	model := o.model
	if model == "" {
		model = "the committed KJV model"
	}
	if o.target != "" {
		model = "the server's model"
	}
	fmt.Fprintf(w, "%s, KV budget %d bytes, %d tokens per request (ignore_eos), prompts < 16 tokens, GOMAXPROCS %d\n\n",
		model, budget, o.maxTokens, runtime.GOMAXPROCS(0))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "preset\twindow\tbits/value\tadmitted\tclients\trequests\ttokens/s\tTTFT p50 ms\tTTFT p99 ms\tITL p50 ms\tITL p99 ms\t429\terrors\t")
	line := func(r loadRow, name string, p loadPoint) {
		fmt.Fprintf(tw, "%s\t%d\t%.3g\t%d\t%s\t%d\t%.0f\t%.1f\t%.1f\t%.2f\t%.2f\t%d\t%d\t\n", r.Preset, r.Window, r.BitsPerValue,
			r.Admitted, name, p.Requests, p.TokensPerSec, p.TTFTP50, p.TTFTP99, p.ITLP50, p.ITLP99, p.Rejected, p.Errors)
	}
	for _, r := range rows {
		line(r, fmt.Sprintf("%d (capacity)", r.CapacityPoint.Concurrency), r.CapacityPoint)
		for _, p := range r.Points {
			line(r, strconv.Itoa(p.Concurrency), p)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if o.target == "" {
		fmt.Fprintln(w, "\noverload at 2× admitted (queue = admitted/2):")
	} else {
		fmt.Fprintln(w, "\noverload at 2× admitted (the server's own queue; goroutines and heap are checked in process only):")
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "preset\tclients\trequests\tcompleted\t429\t5xx\tlost\tgoroutines before→after\tKV bytes after\theap before→after\t")
	for _, r := range rows {
		v := r.Overload
		goroutines, heap := fmt.Sprintf("%d→%d", v.GoroutinesBefore, v.GoroutinesAfter), fmt.Sprintf("%d→%d", v.HeapBefore, v.HeapAfter)
		if o.target != "" {
			goroutines, heap = "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%s\t\n", r.Preset, v.Clients, v.Requests, v.Completed, v.Rejected,
			v.ServerErrors, v.Lost, goroutines, v.KVBytesAfter, heap)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rows) == 2 && rows[0].Admitted > 0 {
		fmt.Fprintf(w, "\n%s admits %.2f× the sequences of %s\n", rows[1].Preset, float64(rows[1].Admitted)/float64(rows[0].Admitted), rows[0].Preset)
	}
	return nil
}
