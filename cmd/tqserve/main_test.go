package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
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
	for _, args := range [][]string{{"--preset", "tq1"}, {"--kv-budget", "lots"}} {
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
