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
