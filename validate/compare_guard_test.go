package validate

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGuardUpgradesTheNoisyHead builds data where head 1's queries are 30×
// head 0's, so its logit error on the same kind of keys is 900× larger: with
// a budget between the two, exactly head 1's blocks are upgraded, every time.
func TestGuardUpgradesTheNoisyHead(t *testing.T) {
	spec := DefaultSynthetic
	spec.HeadDims, spec.Heads, spec.Chunks, spec.Tokens = []int{64}, 2, 2, 100
	kv := SyntheticKV(spec)
	for ci := range kv.Chunks {
		l := &kv.Chunks[ci].Layers[0]
		for qi := range l.Q[0] {
			for c := range l.Q[0][qi] {
				l.Q[0][qi][c] *= 0.1
				l.Q[1][qi][c] *= 3
			}
		}
	}
	run := func() (GuardStats, []CompareRow) {
		var st GuardStats
		g := GuardSpec{BaseBits: 2, UpgradeBits: 4, Block: 32, Queries: 8, Budget: 0.05, Center: true}
		rows, err := Compare(kv, 0, []Contender{GuardContender(g, &st)})
		require.NoError(t, err)
		return st, rows
	}
	st, rows := run()
	// 2 chunks × 2 heads × ⌈100/32⌉ blocks; head 1's 8 upgraded.
	assert.Equal(t, 16, st.Blocks)
	assert.Equal(t, []int{0, 8}, st.HeadUpgrades)
	assert.Equal(t, 8, st.Upgraded)
	// Upgrading 2 → 4 bits adds 2·64/8 bytes per vector, keys and values.
	assert.EqualValues(t, 2*2*100*(2*64/8), st.ExtraBytes)
	// Half the vectors at 4 bits: the fixture rate is the mean of 2.25 and
	// 4.25 plus the means.
	assert.InDelta(t, 3.25+2*32*64*2*2/float64(2*2*100*64*2), rows[0].BitsFixture, 1e-12)

	again, rows2 := run()
	assert.Equal(t, st, again, "deterministic")
	assert.Equal(t, rows, rows2)
}

// TestGuardStudyRunsTheRealCache: the guard study's cache contenders are
// deterministic; with a budget no head meets, tq3-guard stores exactly
// tq4's codes (the upgraded codec is tq4's, same seed and means) and
// measures exactly as tq4; with one every head meets, exactly as tq3; in
// between, its rate lies between theirs.
func TestGuardStudyRunsTheRealCache(t *testing.T) {
	spec := DefaultSynthetic
	spec.HeadDims, spec.Heads, spec.Chunks, spec.Tokens = []int{64}, 2, 2, 60
	kv := SyntheticKV(spec)
	run := func() ([]CompareRow, []GuardStats) {
		cs, stats := GuardStudyContenders([]float64{1e-9, 0.5, 1e9}, DefaultGuardStream)
		rows, err := Compare(kv, 0, cs)
		require.NoError(t, err)
		out := make([]GuardStats, len(stats))
		for i, s := range stats {
			out[i] = *s
		}
		return rows, out
	}
	rows, stats := run()
	require.Len(t, rows, 8) // tq3, tq4, 3 budgets × (keys and values, keys only)
	tq3, tq4, tiny, mid, huge := rows[0], rows[1], rows[2], rows[3], rows[4]
	same := func(a, b CompareRow) {
		t.Helper()
		assert.Equal(t, a.CosMean, b.CosMean)
		assert.Equal(t, a.Top1, b.Top1)
		assert.Equal(t, a.OutErrAll, b.OutErrAll)
	}
	same(tiny, tq4)
	same(huge, tq3)
	assert.Equal(t, stats[1].CodeBits, stats[2].CodeBits, "every block upgraded costs tq4's bits")
	assert.Equal(t, stats[2].Blocks, stats[2].Upgraded)
	assert.Equal(t, stats[0].CodeBits, stats[4].CodeBits)
	assert.Zero(t, stats[4].Upgraded)
	assert.Greater(t, stats[3].CodeBits, stats[0].CodeBits)
	assert.Less(t, stats[3].CodeBits, stats[1].CodeBits)
	assert.Greater(t, mid.CosMean, tq3.CosMean)
	// Keys only: the probabilities are tq4's, the values stay at 3 bits.
	assert.Equal(t, tq4.CosMean, rows[5].CosMean)
	assert.Less(t, stats[5].CodeBits, stats[1].CodeBits)

	again, againStats := run()
	assert.Equal(t, rows, again, "deterministic")
	assert.Equal(t, stats, againStats)
}
