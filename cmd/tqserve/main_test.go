package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/turboquant-go/tq/kvstore/redistest"
	"github.com/turboquant-go/tq/models/kjv"
)

func TestParseFlagsOverEnvironment(t *testing.T) {
	env := map[string]string{"TQSERVE_PRESET": "tq4", "TQSERVE_KV_BUDGET": "1GiB", "TQSERVE_MAX_QUEUE": "7", "TQSERVE_WINDOW": "0"}
	o, err := parse([]string{"--kv-budget", "64MiB"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.preset != "tq4" || o.budget != "64MiB" || o.maxQueue != 7 || o.window != 0 || o.sinks != -1 || o.addr != "127.0.0.1:8080" {
		t.Fatalf("%+v", o)
	}
	if _, err := parse(nil, func(k string) string { return map[string]string{"TQSERVE_MAX_QUEUE": "many"}[k] }, io.Discard); err == nil {
		t.Fatal("a malformed environment variable was accepted")
	}
	for _, args := range [][]string{{"--preset", "tq1"}, {"--kv-budget", "lots"}, {"--kv-store", "ftp://x"}} {
		if err := run(context.Background(), append(args, "--addr", "127.0.0.1:0"), func(string) string { return "" }, io.Discard, nil); err == nil {
			t.Errorf("%q was accepted", args)
		}
	}
}

// TestServeAndDrain starts the command on a free port, serves a request,
// then cancels (as SIGINT does) and expects a clean exit.
func TestServeAndDrain(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--kv-budget", "32MiB"}, func(string) string { return "" }, io.Discard, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+addr+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"In the beginning","max_tokens":4}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"finish_reason"`) {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not exit after the signal")
	}
}

// startServer runs the command with args on a free port until the test
// ends and returns its address.
func startServer(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), func(string) string { return "" }, io.Discard, ready)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case addr := <-ready:
		return addr
	case err := <-done:
		t.Fatal(err)
	}
	return ""
}

// completion posts a prompt and returns the text and the prompt tokens the
// server did not prefill.
func completion(t *testing.T, addr, prompt string) (string, int) {
	t.Helper()
	body := fmt.Sprintf(`{"prompt":%q,"max_tokens":20,"temperature":0.7,"seed":3}`, prompt)
	resp, err := http.Post("http://"+addr+"/v1/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Choices []struct{ Text string }
		Usage   struct {
			CachedTokens int `json:"cached_tokens"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || len(out.Choices) != 1 {
		t.Fatalf("status %d: %v", resp.StatusCode, err)
	}
	return out.Choices[0].Text, out.Usage.CachedTokens
}

// TestReplicasShareRedis runs two servers with --kv-store on one
// redis-server: the second serves the first's prompt from the store with
// the text a cold server gives.
func TestReplicasShareRedis(t *testing.T) {
	redis := redistest.Start(t)
	prompt := kjv.Heldout[:1200]
	cold := startServer(t, "--kv-budget", "64MiB", "--prefix-entries", "-1")
	a := startServer(t, "--kv-budget", "64MiB", "--prefix-entries", "-1", "--kv-store", redis.URL())
	b := startServer(t, "--kv-budget", "64MiB", "--prefix-entries", "-1", "--kv-store", redis.URL())
	want, _ := completion(t, cold, prompt)
	if got, cached := completion(t, a, prompt); got != want || cached != 0 {
		t.Fatalf("replica A: %q (%d cached), cold %q", got, cached, want)
	}
	for deadline := time.Now().Add(10 * time.Second); strings.Contains(metrics(t, a), "tqserve_kvstore_puts_total 0\n"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("replica A published nothing")
		}
	}
	got, cached := completion(t, b, prompt)
	if got != want || cached == 0 {
		t.Fatalf("replica B: %q (%d tokens restored), cold %q", got, cached, want)
	}
	if m := metrics(t, b); !strings.Contains(m, "tqserve_kvstore_hits_total 1\n") {
		t.Fatalf("replica B metrics:\n%s", m)
	}
}

func metrics(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
