package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/turboquant-go/tq/models/kjv"
	"github.com/turboquant-go/tq/validate"
)

// TestLMGenRetrievesPasskey runs `tqbench lm gen` end to end on the committed
// model with a compressed cache: greedy decoding of a passkey prompt answers
// with the key, and --json reports the generated tokens with their text.
func TestLMGenRetrievesPasskey(t *testing.T) {
	lines := strings.SplitAfter(kjv.Heldout, "\n")
	const key = "48213"
	prompt := strings.Join(lines[:6], "") + fmt.Sprintf(validate.DefaultNeedle, key) +
		strings.Join(lines[6:20], "") + validate.DefaultQuestion
	for _, preset := range []string{"fp32", "tq3"} {
		out, err := runCLI(t, "lm", "gen", "--json", "--preset", preset, "--max-tokens", "6", "--prompt", prompt)
		require.NoError(t, err)
		var res lmGenOutput
		require.NoError(t, json.Unmarshal([]byte(out), &res), out)
		require.Len(t, res.Tokens, 6, out)
		require.True(t, strings.HasPrefix(strings.TrimSpace(res.Text), key), "%s answered %q, want the key %s", preset, res.Text, key)
	}
	_, err := runCLI(t, "lm", "gen", "--preset", "tq9", "--max-tokens", "1")
	require.Error(t, err)
}
