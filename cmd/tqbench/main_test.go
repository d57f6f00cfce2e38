package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/turboquant-go/tq/turboquant"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(args, &out, io.Discard)
	return out.String(), err
}

// jsonKeys decodes an array of objects and returns each object's sorted keys.
func jsonKeys(t *testing.T, s string) ([]map[string]any, [][]string) {
	var rows []map[string]any
	require.NoError(t, json.Unmarshal([]byte(s), &rows), s)
	var keys [][]string
	for _, r := range rows {
		var k []string
		for key := range r {
			k = append(k, key)
		}
		slices.Sort(k)
		keys = append(keys, k)
	}
	return rows, keys
}

func TestCodebookJSON(t *testing.T) {
	out, err := runCLI(t, "codebook", "--dim", "128", "--bits", "1,3", "--density", "gaussian", "--json")
	require.NoError(t, err)
	rows, keys := jsonKeys(t, out)
	require.Len(t, rows, 2)
	assert.Equal(t, []string{"bits", "boundaries", "centroids", "density", "dim", "mse_unit"}, keys[0])
	assert.InDelta(t, 0.363380, rows[0]["mse_unit"], 1e-6)
	assert.InDelta(t, 0.034548, rows[1]["mse_unit"], 1e-6)
	assert.Len(t, rows[1]["centroids"], 8)
	assert.Len(t, rows[1]["boundaries"], 7)
}

func TestDistortionJSON(t *testing.T) {
	out, err := runCLI(t, "distortion", "--dim", "64", "--bits", "2,4", "--method", "prod", "--n", "500", "--seed", "3", "--json")
	require.NoError(t, err)
	rows, keys := jsonKeys(t, out)
	require.Len(t, rows, 2)
	assert.Equal(t, []string{"bits", "bytes_per_vector", "dim", "ip_bias", "ip_shrink", "ip_var_d", "method", "mse", "n"}, keys[0])
	assert.Equal(t, "prod", rows[0]["method"])
	assert.EqualValues(t, 2, rows[0]["bits"])
	assert.EqualValues(t, 500, rows[0]["n"])
	// 4-bit prod at d=64: fp16 norm + 3-bit indices (24 B) + 64 signs (8 B) + fp16 residual norm.
	assert.EqualValues(t, 2+24+8+2, rows[1]["bytes_per_vector"])
	assert.Less(t, rows[1]["ip_var_d"], rows[0]["ip_var_d"])
}

func TestTablesAndErrors(t *testing.T) {
	out, err := runCLI(t, "codebook", "--bits", "2")
	require.NoError(t, err)
	assert.Contains(t, out, "0.116000")
	out, err = runCLI(t, "distortion", "--method", "polar", "--n", "200")
	require.NoError(t, err)
	assert.Contains(t, out, "3.875")

	_, err = runCLI(t, "distortion", "--method", "nope")
	assert.ErrorContains(t, err, "unknown method")
	_, err = runCLI(t, "codebook", "--density", "cauchy")
	assert.ErrorContains(t, err, "unknown density")
	_, err = runCLI(t, "codebook", "--bits", "1,x")
	assert.ErrorContains(t, err, "bad integer list")
	_, err = runCLI(t, "codebook", "--bits", "9")
	assert.Error(t, err)
	_, err = runCLI(t, "frobnicate")
	assert.True(t, errors.Is(err, flag.ErrHelp))
	_, err = runCLI(t, "help")
	assert.NoError(t, err)
}

func TestRealKVJSON(t *testing.T) {
	out, err := runCLI(t, "realkv", "--presets", "fp16,tq3", "--center", "--json")
	require.NoError(t, err)
	rows, keys := jsonKeys(t, out)
	require.Len(t, rows, 4) // 2 layers × 2 presets
	assert.Equal(t, fidelityKeys, keys[0])
	assert.Equal(t, true, rows[0]["center"])
	assert.Equal(t, "real", rows[0]["workload"])
	assert.InDelta(t, 1, rows[0]["attn_cosine"], 1e-9, "fp16 is exact here")
	assert.Less(t, rows[1]["attn_cosine"], 0.999)
	_, err = runCLI(t, "realkv", "--presets", "tq9")
	assert.ErrorIs(t, err, turboquant.ErrConfig)
	_, err = runCLI(t, "realkv", "--data", "/nonexistent/file")
	assert.Error(t, err)
}

func TestCompareJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every preset and baseline on the real fixture (seconds)")
	}
	out, err := runCLI(t, "compare", "--json")
	require.NoError(t, err)
	var rep struct {
		Rows    []map[string]any `json:"rows"`
		Targets []map[string]any `json:"targets"`
		KIVI5   []map[string]any `json:"tq4_vs_kivi4"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	// 7 compressed presets, 11 ladder presets and 5 with unbiased keys × 2
	// (plain, centred) + 12 baselines, per layer.
	assert.Len(t, rep.Rows, 2*(23*2+12))
	assert.Contains(t, rep.Rows[0], "logit_cos_mean")
	assert.Contains(t, rep.Rows[0], "bits_per_element")
	assert.Len(t, rep.KIVI5, 2)
	assert.NotEmpty(t, rep.Targets)
}
