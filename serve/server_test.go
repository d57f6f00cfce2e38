package serve

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/llm"
	"github.com/turboquant-go/tq/models/kjv"
)

var (
	modelOnce sync.Once
	testModel *llm.Model
	modelErr  error
)

func model(t testing.TB) *llm.Model {
	t.Helper()
	modelOnce.Do(func() { testModel, modelErr = kjv.Model() })
	if modelErr != nil {
		t.Fatal(modelErr)
	}
	return testModel
}

// newTestServer starts a server and an httptest server over it; both are
// shut down when the test ends.
func newTestServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	cfg.Model = model(t)
	if cfg.KVBudget == 0 {
		cfg.KVBudget = 256 << 20
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
	})
	return s, hs
}

func post(t *testing.T, ctx context.Context, url, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func complete(t *testing.T, url, body string) (completionResponse, int) {
	t.Helper()
	resp := post(t, context.Background(), url+"/v1/completions", body)
	defer resp.Body.Close()
	var out completionResponse
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	}
	return out, resp.StatusCode
}

// referenceText is what `tqbench lm gen` prints for the prompt: the engine's
// Generate on a fresh sequence of the preset, decoded.
func referenceText(t *testing.T, preset, prompt string, maxTokens int, opt llm.SampleOptions) string {
	t.Helper()
	m := model(t)
	c := m.Config
	kc, err := kvcache.Preset(preset, c.Layers, c.KVHeads, c.Heads, c.HeadDim)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := kvcache.NewPool(kc, 0)
	if err != nil {
		t.Fatal(err)
	}
	seq := pool.NewSequence()
	defer seq.Close()
	sampler, err := llm.NewSampler(opt)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Generate(seq, m.Tokenizer.Encode(prompt, true, false), maxTokens, sampler, m.Tokenizer.IsEOG)
	if err != nil {
		t.Fatal(err)
	}
	return m.Tokenizer.Decode(out)
}

// readSSE returns the data payloads of an event stream.
func readSSE(t *testing.T, r io.Reader) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

func TestCompletionsEqualGenerate(t *testing.T) {
	_, hs := newTestServer(t, Config{})
	for _, c := range []struct {
		temp float64
		seed uint64
	}{{0, 1}, {0.9, 7}} {
		prompt := "And God said"
		want := referenceText(t, "tq3", prompt, 40, llm.SampleOptions{Temperature: float32(c.temp), TopP: 0.95, Seed: c.seed})
		body := fmt.Sprintf(`{"prompt":%q,"max_tokens":40,"temperature":%g,"top_p":0.95,"seed":%d`, prompt, c.temp, c.seed)
		got, code := complete(t, hs.URL, body+"}")
		if code != http.StatusOK || len(got.Choices) != 1 {
			t.Fatalf("status %d, %+v", code, got)
		}
		if got.Choices[0].Text != want {
			t.Fatalf("temperature %g: server %q, Generate %q", c.temp, got.Choices[0].Text, want)
		}
		if got.Usage.CompletionTokens == 0 || got.Usage.PromptTokens == 0 {
			t.Fatalf("usage %+v", got.Usage)
		}
		resp := post(t, context.Background(), hs.URL+"/v1/completions", body+`,"stream":true}`)
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("stream content type %q", ct)
		}
		data := readSSE(t, resp.Body)
		resp.Body.Close()
		if len(data) < 3 || data[len(data)-1] != "[DONE]" {
			t.Fatalf("stream %q does not end in [DONE]", data)
		}
		var text strings.Builder
		var finish string
		for _, d := range data[:len(data)-1] {
			var ch completionResponse
			if err := json.Unmarshal([]byte(d), &ch); err != nil {
				t.Fatalf("%s: %v", d, err)
			}
			text.WriteString(ch.Choices[0].Text)
			if f := ch.Choices[0].FinishReason; f != nil {
				finish = *f
			}
		}
		if text.String() != want || finish != *got.Choices[0].FinishReason {
			t.Fatalf("stream %q (%s), want %q (%s)", text.String(), finish, want, *got.Choices[0].FinishReason)
		}
	}
}

func TestGenerateNDJSON(t *testing.T) {
	_, hs := newTestServer(t, Config{})
	prompt := "In the beginning"
	want := referenceText(t, "tq3", prompt, 25, llm.SampleOptions{})
	resp := post(t, context.Background(), hs.URL+"/api/generate",
		fmt.Sprintf(`{"model":"kjv-test-ignored","prompt":%q,"options":{"num_predict":25,"temperature":0}}`, prompt))
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a request for another model: status %d, want 404", resp.StatusCode)
	}
	resp = post(t, context.Background(), hs.URL+"/api/generate",
		fmt.Sprintf(`{"prompt":%q,"options":{"num_predict":25,"temperature":0}}`, prompt))
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	var text strings.Builder
	var last generateResponse
	lines := 0
	for sc.Scan() {
		if last.Done {
			t.Fatalf("a line after done: %s", sc.Text())
		}
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatalf("%s: %v", sc.Text(), err)
		}
		text.WriteString(last.Response)
		lines++
	}
	if !last.Done || last.DoneReason == "" || last.EvalCount == 0 || lines < 3 {
		t.Fatalf("%d lines, last %+v", lines, last)
	}
	if text.String() != want {
		t.Fatalf("streamed %q, want %q", text.String(), want)
	}
}

func TestModelsHealthMetrics(t *testing.T) {
	_, hs := newTestServer(t, Config{ModelName: "kjv"})
	for _, c := range []struct{ path, want string }{
		{"/v1/models", `"id":"kjv"`},
		{"/healthz", "ok"},
		{"/metrics", "tqserve_kv_bytes_budget 268435456"},
		{"/metrics", `tqserve_info{model="kjv",preset="tq3",window="128"} 1`},
	} {
		path, want := c.path, c.want
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Errorf("%s: status %d, body %q lacks %q", path, resp.StatusCode, b, want)
		}
	}
}

func TestBadRequests(t *testing.T) {
	_, hs := newTestServer(t, Config{})
	long := strings.Repeat("And it came to pass, ", 400)
	for _, c := range []struct {
		name, path, body, want string
		code                   int
	}{
		{"malformed JSON", "/v1/completions", `{"prompt":`, "malformed JSON", 400},
		{"negative max_tokens", "/v1/completions", `{"prompt":"a","max_tokens":-3}`, "max_tokens", 400},
		{"prompt over the context", "/v1/completions", fmt.Sprintf(`{"prompt":%q}`, long), "context", 400},
		{"no prompt", "/v1/completions", `{"max_tokens":3}`, "prompt", 400},
		{"bad temperature", "/v1/completions", `{"prompt":"a","temperature":-1}`, "temperature", 400},
		{"unknown model", "/v1/completions", `{"model":"gpt-9","prompt":"a"}`, "gpt-9", 404},
		{"unknown preset", "/v1/completions", `{"prompt":"a","kv_preset":"tq1"}`, "unknown kv_preset", 400},
		{"another preset", "/api/generate", `{"prompt":"a","kv_preset":"fp16"}`, "this server's cache is", 400},
		{"ollama malformed", "/api/generate", `[1,2]`, "malformed JSON", 400},
		{"ollama num_predict 0", "/api/generate", `{"prompt":"a","options":{"num_predict":0}}`, "num_predict", 400},
	} {
		resp := post(t, context.Background(), hs.URL+c.path, c.body)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code || !strings.Contains(string(b), c.want) || !json.Valid(b) {
			t.Errorf("%s: status %d body %s; want %d mentioning %q", c.name, resp.StatusCode, b, c.code, c.want)
		}
	}
	if _, err := New(Config{Model: model(t), Preset: "tq1", KVBudget: 1 << 20}); !errors.Is(err, ErrConfig) {
		t.Errorf("unknown preset: %v, want ErrConfig", err)
	}
	if _, err := New(Config{Model: model(t)}); !errors.Is(err, ErrConfig) {
		t.Errorf("no budget: %v, want ErrConfig", err)
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startStream opens a streaming completion and waits for its first token;
// cancel ends it from the client side.
func startStream(t *testing.T, url, prompt string, maxTokens int) (stop func(), rest func() []string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	resp := post(t, ctx, url+"/v1/completions", fmt.Sprintf(`{"prompt":%q,"max_tokens":%d,"temperature":0,"stream":true}`, prompt, maxTokens))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	return func() { cancel(); resp.Body.Close() }, func() []string { defer resp.Body.Close(); return readSSE(t, br) }
}

// oneSequenceBudget is a budget that admits one request of n tokens and not two.
func oneSequenceBudget(t *testing.T, preset string, n int) int64 {
	c := model(t).Config
	kc, _ := kvcache.Preset(preset, c.Layers, c.KVHeads, c.Heads, c.HeadDim)
	b, err := kc.PlanBytes(n)
	if err != nil {
		t.Fatal(err)
	}
	return b + b/2
}

func TestQueueFullGets429(t *testing.T) {
	s, hs := newTestServer(t, Config{MaxQueue: 1, PrefixEntries: -1, KVBudget: oneSequenceBudget(t, "tq3", 1000)})
	cancelA, _ := startStream(t, hs.URL, "In the beginning", 990)
	started := make(chan func(), 1)
	go func() { // B waits in the queue until A is gone; its first token proves it was admitted
		stopB, _ := startStream(t, hs.URL, "And God said", 900)
		started <- stopB
	}()
	waitFor(t, "B to queue", func() bool { return s.metrics.queued.Load() == 1 })
	resp := post(t, context.Background(), hs.URL+"/v1/completions", `{"prompt":"C","max_tokens":5}`)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !json.Valid(b) {
		t.Fatalf("C: status %d, Retry-After %q, body %s; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	cancelA()
	select {
	case stopB := <-started:
		stopB()
	case <-time.After(60 * time.Second):
		t.Fatal("B never ran after A was cancelled")
	}
}

func TestDisconnectFreesSequence(t *testing.T) {
	before := runtime.NumGoroutine()
	s, hs := newTestServer(t, Config{PrefixEntries: -1})
	cancel, _ := startStream(t, hs.URL, "And the LORD spake unto Moses", 1000)
	if s.KVUsed() == 0 {
		t.Fatal("a running sequence holds no cache")
	}
	cancel()
	waitFor(t, "the sequence to be freed", func() bool { return s.KVUsed() == 0 && s.metrics.active.Load() == 0 })
	if n := s.metrics.cancelled.Load(); n != 1 {
		t.Fatalf("%d cancelled, want 1", n)
	}
	hs.CloseClientConnections()
	http.DefaultClient.CloseIdleConnections()
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before+4 }) // the scheduler and httptest's
}

func TestBudgetExhaustionEndsWithLength(t *testing.T) {
	c := model(t).Config
	kc, _ := kvcache.Preset("fp16", c.Layers, c.KVHeads, c.Heads, c.HeadDim)
	budget, _ := kc.PlanBytes(64) // one 64-token block per layer
	s, hs := newTestServer(t, Config{Preset: "fp16", KVBudget: budget, PrefixEntries: -1})
	got, code := complete(t, hs.URL, `{"prompt":"In the beginning","max_tokens":200,"temperature":0}`)
	if code != http.StatusOK || *got.Choices[0].FinishReason != "length" {
		t.Fatalf("status %d, %+v", code, got)
	}
	if n := got.Usage.PromptTokens + got.Usage.CompletionTokens; n > 65 || n < 60 {
		t.Fatalf("%d tokens in a cache of 64", n)
	}
	if s.metrics.cacheFull.Load() != 1 || s.KVUsed() != 0 {
		t.Fatalf("cache-full count %d, %d bytes still held", s.metrics.cacheFull.Load(), s.KVUsed())
	}
	// The server still serves.
	if _, code := complete(t, hs.URL, `{"prompt":"And","max_tokens":3}`); code != http.StatusOK {
		t.Fatalf("after exhaustion: status %d", code)
	}
}

func TestPrefixHitEqualsCold(t *testing.T) {
	shared := kjv.Heldout[:900] // > 2 chunks and past the fp16 window
	prompts := []string{shared + " And the", shared + " Hear, O"}
	warm, hs := newTestServer(t, Config{})
	_, cold := newTestServer(t, Config{PrefixEntries: -1})
	for i, p := range prompts {
		body := fmt.Sprintf(`{"prompt":%q,"max_tokens":30,"temperature":0.8,"seed":5}`, p)
		hit, code := complete(t, hs.URL, body)
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		ref, code := complete(t, cold.URL, body)
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		if i == 1 && hit.Usage.CachedTokens < 128 {
			t.Fatalf("second prompt took %d tokens from the prefix cache", hit.Usage.CachedTokens)
		}
		if hit.Choices[0].Text != ref.Choices[0].Text {
			t.Fatalf("prompt %d: with prefix reuse %q, cold %q", i, hit.Choices[0].Text, ref.Choices[0].Text)
		}
	}
	if warm.metrics.prefixHits.Load() != 1 {
		t.Fatalf("%d prefix hits, want 1", warm.metrics.prefixHits.Load())
	}
}

// TestConcurrentRequests runs mixed requests at once (run with -race) and
// checks every one finishes and the cache is empty after shutdown.
func TestConcurrentRequests(t *testing.T) {
	s, hs := newTestServer(t, Config{MaxQueue: 64})
	var wg sync.WaitGroup
	errs := make(chan error, 24)
	for i := range 24 {
		wg.Go(func() {
			prompt := []string{"In the beginning", "And God said", "Blessed is the man"}[i%3]
			path, body := "/v1/completions", fmt.Sprintf(`{"prompt":%q,"max_tokens":%d,"stream":%v,"seed":%d}`, prompt, 10+i, i%2 == 0, i)
			if i%4 == 3 {
				path, body = "/api/generate", fmt.Sprintf(`{"prompt":%q,"options":{"num_predict":%d}}`, prompt, 10+i)
			}
			resp, err := http.Post(hs.URL+path, "application/json", strings.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !(strings.Contains(string(b), "finish_reason\":\"") || strings.Contains(string(b), "done_reason")) {
				errs <- fmt.Errorf("request %d: status %d, %s", i, resp.StatusCode, b)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s.metrics.activePeak.Load() < 2 {
		t.Errorf("peak batch %d: requests did not decode together", s.metrics.activePeak.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if s.KVUsed() != 0 {
		t.Fatalf("%d bytes held after shutdown", s.KVUsed())
	}
}

func TestShutdownDrains(t *testing.T) {
	s, hs := newTestServer(t, Config{})
	_, rest := startStream(t, hs.URL, "In the beginning", 60)
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	waitFor(t, "draining", s.Draining)
	resp := post(t, context.Background(), hs.URL+"/v1/completions", `{"prompt":"a","max_tokens":2}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a request while draining: status %d, want 503", resp.StatusCode)
	}
	if data := rest(); len(data) == 0 || data[len(data)-1] != "[DONE]" {
		t.Fatalf("the running request was cut: %q", data)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"2GiB": 2 << 30, "512MB": 512e6, "1.5 KiB": 1536, "100": 100, "3g": 3 << 30} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "-1GiB", "2 parsecs", "1e30TB"} {
		if _, err := ParseBytes(in); !errors.Is(err, ErrConfig) {
			t.Errorf("%q: %v, want ErrConfig", in, err)
		}
	}
}
