package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"testing"

	"github.com/turboquant-go/tq/serve"
)

func TestLoadSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: CI runs the same smoke as a command (tqbench load --kv-budget 2MiB)")
	}
	var out bytes.Buffer
	if err := runLoad([]string{"--kv-budget", "2MiB", "--max-tokens", "12", "--requests", "6", "--concurrency", "1,3", "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	var rows []loadRow
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Preset != "fp16" || rows[1].Preset != "tq3" {
		t.Fatalf("%+v", rows)
	}
	for _, r := range rows {
		for _, p := range append(r.Points, r.CapacityPoint) {
			if p.Errors != 0 || p.Rejected != 0 || p.Tokens != 12*p.Requests {
				t.Errorf("%s at %d clients: %+v", r.Preset, p.Concurrency, p)
			}
		}
		v := r.Overload
		if v.ServerErrors != 0 || v.Lost != 0 || v.Completed+v.Rejected != v.Requests || v.KVBytesAfter != 0 {
			t.Errorf("%s overload: %+v", r.Preset, v)
		}
		if v.GoroutinesAfter > v.GoroutinesBefore+2 {
			t.Errorf("%s overload: goroutines %d → %d", r.Preset, v.GoroutinesBefore, v.GoroutinesAfter)
		}
		if r.Admitted < 1 || r.Admitted > r.PlannedSeqs {
			t.Errorf("%s admitted %d of %d planned", r.Preset, r.Admitted, r.PlannedSeqs)
		}
	}
	if rows[1].Admitted <= rows[0].Admitted {
		t.Errorf("tq3 admitted %d, fp16 %d", rows[1].Admitted, rows[0].Admitted)
	}
}

func TestLoadTargetsLoopbackOnly(t *testing.T) {
	for _, u := range []string{"http://10.0.0.1:8080", "http://example.com", "::bad"} {
		if err := loopbackOnly(u); !errors.Is(err, errUsage) {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:80"} {
		if err := loopbackOnly(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

// TestLoadURL loads a server by its address: the preset and window come
// from its /metrics, and the in-process-only checks print as "-".
func TestLoadURL(t *testing.T) {
	m, _, err := openLM("")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p, err := startInProcess(serve.Config{Model: m, Preset: "tq3", KVBudget: 2 << 20, PrefixEntries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.stop(); err != nil {
			t.Error(err)
		}
	}()
	var out bytes.Buffer
	if err := runLoad([]string{"--url", p.base, "--max-tokens", "4", "--requests", "2", "--concurrency", "1"}, &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{`the server's model, KV budget 2097152 bytes`, `\n\s+tq3\s+128\s+3.25\s`, `the server's own queue`, `\n\s+tq3(\s+\d+){6}\s+-\s+0\s+-\s*\n`} {
		if !regexp.MustCompile(want).MatchString(text) {
			t.Errorf("output does not match %q:\n%s", want, text)
		}
	}
}
