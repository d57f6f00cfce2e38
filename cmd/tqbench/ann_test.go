package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/turboquant-go/tq/dataset"
	"github.com/turboquant-go/tq/internal/rng"
)

func TestANNOnARawFile(t *testing.T) {
	dir := t.TempDir()
	r := rng.New(1)
	v := &dataset.Vectors{Dim: 24}
	for range 600 * 24 {
		v.Data = append(v.Data, float32(r.Norm()))
	}
	path := filepath.Join(dir, "v.f32")
	require.NoError(t, dataset.WriteRawFile(path, v))
	out, err := runCLI(t, "ann", "--data", path, "--bits", "2,4", "--k", "1,10", "--methods", "mse,polar",
		"--metrics", "ip,l2", "--json", "--export", filepath.Join(dir, "x"), "--plot", filepath.Join(dir, "r.png"))
	require.NoError(t, err)
	rows, _ := jsonKeys(t, out)
	require.Len(t, rows, 6) // (mse 2, mse 4, polar) × 2 metrics
	for _, row := range rows {
		rec := row["recall_at_1_at_k"].(map[string]any)
		require.GreaterOrEqual(t, rec["10"].(float64), rec["1"].(float64))
		require.Greater(t, rec["10"].(float64), 0.5, "%v", row)
	}
	for _, f := range []string{"r.png", "x/base.f32", "x/queries.f32", "x/truth-ip.i32", "x/truth-l2.i32"} {
		st, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
		require.Positive(t, st.Size())
	}
	text, err := runCLI(t, "ann", "--data", path, "--bits", "1", "--k", "1", "--methods", "mse", "--metrics", "cosine")
	require.NoError(t, err)
	require.Contains(t, text, "R1@1")
}

func TestANNMissingDatasetNamesFetch(t *testing.T) {
	t.Setenv("TQ_DATA_DIR", t.TempDir())
	_, err := runCLI(t, "ann", "--data", "glove100")
	require.ErrorIs(t, err, dataset.ErrNotFetched)
	require.Contains(t, err.Error(), "tqbench data fetch glove100")
	out, err := runCLI(t, "data", "info")
	require.NoError(t, err)
	require.True(t, strings.Contains(out, "glove100") && strings.Contains(out, "false"), out)
	_, err = runCLI(t, "data", "fetch", "nope")
	require.ErrorIs(t, err, dataset.ErrArgument)
}
