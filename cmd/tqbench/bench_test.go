package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
)

// fidelityKeys are the JSON keys of validate.Fidelity, present in every
// kv, realkv and default-report row.
var fidelityKeys = []string{"attn_cosine", "attn_cosine_min", "bits_per_value", "bytes_per_token_head", "center", "kld",
	"layer", "logit_bias", "logit_cosine", "logit_std", "out_rel_err", "preset", "ratio_vs_fp16", "rows", "tokens",
	"top1", "top5", "top5_set", "workload"}

func hasKeys(t *testing.T, keys []string, want ...[]string) {
	t.Helper()
	for _, w := range want {
		for _, k := range w {
			assert.Contains(t, keys, k)
		}
	}
}

func TestKVJSON(t *testing.T) {
	out, err := runCLI(t, "kv", "--presets", "fp32,tq3,naive2", "--lengths", "256,512", "--kv-heads", "2", "--q-heads", "4",
		"--queries", "1", "--layers", "10", "--json", "--quiet")
	require.NoError(t, err)
	rows, keys := jsonKeys(t, out)
	require.Len(t, rows, 6)
	hasKeys(t, keys[0], fidelityKeys, []string{"bytes_per_token", "model_layers", "model_kv_heads"})
	assert.NotContains(t, keys[0], "ns_per_step", "kv does not time")
	assert.EqualValues(t, 512, rows[0]["tokens"], "longest first")
	assert.EqualValues(t, 256, rows[3]["tokens"])
	assert.Equal(t, "synthetic", rows[0]["workload"])
	assert.InDelta(t, 1, rows[0]["attn_cosine"], 1e-9)
	assert.Less(t, rows[1]["attn_cosine"], 0.999)
	// tq3 at d=128: 100 bytes per token per KV head → ×2 heads ×10 layers.
	assert.InDelta(t, 2000, rows[1]["bytes_per_token"], 1e-9)
	assert.EqualValues(t, 4, rows[1]["rows"], "1 query token × 4 query heads")
	assert.Less(t, rows[2]["attn_cosine"], rows[1]["attn_cosine"], "naive 2-bit is worse than tq3")
}

func TestSpeedJSON(t *testing.T) {
	out, err := runCLI(t, "speed", "--presets", "fp32,fp16,tq3", "--lengths", "128,256", "--kv-heads", "2", "--q-heads", "2",
		"--reps", "1", "--bandwidth-mib", "4", "--json", "--quiet")
	require.NoError(t, err)
	rows, keys := jsonKeys(t, out)
	require.Len(t, rows, 6)
	hasKeys(t, keys[2], []string{"ns_per_step", "model_ms_per_step", "speedup_vs_fp16", "speedup_vs_fp32",
		"floor_fraction", "step_bytes", "bandwidth_gb_s", "preset", "tokens"})
	assert.InDelta(t, 1, rows[0]["speedup_vs_fp32"], 1e-12, "fp32 against itself")
	assert.InDelta(t, 1, rows[1]["speedup_vs_fp16"], 1e-12, "fp16 against itself")
	// Bytes read: 256 tokens × 2 heads × (50+50) bytes for tq3.
	assert.EqualValues(t, 256*2*100, rows[2]["step_bytes"])
	assert.Greater(t, rows[2]["floor_fraction"], 0.0)
	_, err = runCLI(t, "speed", "--presets", "naive3")
	assert.ErrorIs(t, err, turboquant.ErrConfig)
}

func TestNIAHJSON(t *testing.T) {
	out, err := runCLI(t, "niah", "--presets", "fp32,naive1", "--lengths", "128,256", "--depths", "3", "--json", "--quiet")
	require.NoError(t, err)
	rows, keys := jsonKeys(t, out)
	require.Len(t, rows, 2)
	assert.Equal(t, []string{"cells", "niah_pass_rate", "preset", "retrieval_rate"}, keys[0])
	assert.Equal(t, 1.0, rows[0]["niah_pass_rate"])
	assert.Less(t, rows[1]["niah_pass_rate"], 0.5)
	cells := rows[0]["cells"].([]any)
	require.Len(t, cells, 6)
	var ck []string
	for k := range cells[0].(map[string]any) {
		ck = append(ck, k)
	}
	assert.ElementsMatch(t, []string{"tokens", "depth", "position", "pass", "retrieved", "recovered", "needle_rank",
		"margin", "out_cosine", "threshold"}, ck)
	_, err = runCLI(t, "niah", "--depths", "1")
	assert.ErrorIs(t, err, turboquant.ErrConfig)
}

func TestPlanExactBytes(t *testing.T) {
	out, err := runCLI(t, "plan", "--model-layers", "32", "--kv-heads", "8", "--head-dim", "128", "--tokens", "131072",
		"--preset", "tq3,fp16", "--budget-gib", "80", "--json")
	require.NoError(t, err)
	rows, keys := jsonKeys(t, out)
	require.Len(t, rows, 2)
	assert.Equal(t, []string{"budget_bytes", "bytes", "bytes_per_token", "fp16_bytes", "head_dim", "kv_heads", "model_layers",
		"preset", "ratio_vs_fp16", "sequences_in_budget", "sinks", "tokens", "window"}, keys[0])
	cfg, err := kvcache.Preset("tq3", 32, 8, 8, 128)
	require.NoError(t, err)
	want, err := cfg.PlanBytes(131072)
	require.NoError(t, err)
	assert.EqualValues(t, want, rows[0]["bytes"])
	assert.EqualValues(t, int64(32*8*128*4)*131072, rows[1]["bytes"])
	assert.EqualValues(t, 5, rows[1]["sequences_in_budget"], "16 GiB each in 80 GiB")
	text, err := runCLI(t, "plan", "--preset", "tq3")
	require.NoError(t, err)
	assert.Contains(t, text, "3369467904 bytes")
	_, err = runCLI(t, "plan", "--preset", "tq9")
	assert.ErrorIs(t, err, turboquant.ErrConfig)
}

func TestExitCodes(t *testing.T) {
	var buf bytes.Buffer
	assert.Equal(t, 0, exitCode(nil, &buf))
	assert.Equal(t, 2, exitCode(run([]string{"frobnicate"}, io.Discard, io.Discard), &buf))
	assert.Equal(t, 2, exitCode(run([]string{"plan", "--no-such-flag"}, io.Discard, io.Discard), &buf))
	assert.Equal(t, 2, exitCode(run([]string{"plan", "stray"}, io.Discard, io.Discard), &buf))
	assert.Equal(t, 2, exitCode(run([]string{"--no-such-flag"}, io.Discard, io.Discard), &buf))
	assert.Empty(t, buf.String(), "usage errors are reported by the flag package")
	assert.Equal(t, 1, exitCode(run([]string{"plan", "--preset", "tq9"}, io.Discard, io.Discard), &buf))
	assert.Contains(t, buf.String(), "tqbench:")
	assert.Equal(t, 1, exitCode(run([]string{"kv", "--lengths", "0"}, io.Discard, io.Discard), &buf))
	assert.True(t, errors.Is(run([]string{"plan", "-h"}, io.Discard, io.Discard), flag.ErrHelp))
}

func TestPlotsWritePNGs(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"kv", "--presets", "fp16,tq3,tq2", "--lengths", "128", "--kv-heads", "1", "--q-heads", "1", "--queries", "1", "--quiet", "--plot", filepath.Join(dir, "kv.png")},
		{"speed", "--presets", "fp32,tq3", "--lengths", "64,128", "--kv-heads", "1", "--q-heads", "1", "--reps", "1", "--bandwidth-mib", "1", "--quiet", "--plot", filepath.Join(dir, "speed.png")},
		{"niah", "--presets", "fp32,tq2", "--lengths", "64,128", "--depths", "2", "--quiet", "--plot", filepath.Join(dir, "niah.png")},
		{"realkv", "--presets", "tq4,tq3", "--plot", filepath.Join(dir, "realkv.png")},
	} {
		_, err := runCLI(t, args...)
		require.NoError(t, err, "%v", args)
		b, err := os.ReadFile(args[len(args)-1])
		require.NoError(t, err)
		assert.Equal(t, "\x89PNG", string(b[:4]), "%v", args)
	}
	_, err := runCLI(t, "niah", "--lengths", "64", "--depths", "2", "--presets", "fp32", "--quiet", "--plot", filepath.Join(dir, "no", "such", "dir.png"))
	assert.Error(t, err)
}

func TestDefaultReportQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("the quick default report builds 11 presets at 4K tokens (~10 s)")
	}
	out, err := runCLI(t, "--quick", "--json")
	require.NoError(t, err)
	rows, keys := jsonKeys(t, out)
	require.Len(t, rows, 2*len(reportPresets)+len(reportPresets), "2 lengths + real, per preset")
	hasKeys(t, keys[0], fidelityKeys, []string{"ns_per_step", "speedup_vs_fp16", "speedup_vs_fp32", "floor_fraction",
		"niah_pass_rate", "bytes_per_token"})
	assert.Equal(t, "real", rows[len(rows)-1]["workload"])
	assert.Equal(t, 1.0, rows[0]["niah_pass_rate"], "fp32 passes every NIAH cell")
	text, err := runCLI(t, "--quick", "--quiet")
	require.NoError(t, err)
	for _, want := range []string{"attn cos", "NIAH", "×fp16", "tq2.5", "tq3+i8", "extrapolated"} {
		assert.Contains(t, text, want)
	}
}

func TestMain(m *testing.M) {
	flagOutput = io.Discard
	os.Exit(m.Run())
}
