package kvcache_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	. "github.com/turboquant-go/tq/kvcache"
)

// TestReserveCoversTheAppends: for several presets, prefix lengths and step
// sizes, what Reserve sets aside covers appending the step to every layer
// (exactly, where no guard can upgrade a block), the appends draw on it
// rather than the pool, and release gives back the rest.
func TestReserveCoversTheAppends(t *testing.T) {
	sh := bhvShape{L: 3, H: 2, QH: 4, d: 64}
	const B, S, W = 16, 2, 8
	keys, values := kvData(120, sh.H, sh.d, 91)
	for _, preset := range []string{"fp16", "tq3", "tq3-guard", "k8v4"} {
		for _, defer_ := range []bool{false, true} {
			cfg := sh.config(t, preset, func(c *Config) { c.BlockTokens, c.Sinks, c.Window, c.DeferPrefill = B, S, W, defer_ })
			for _, n0 := range []int{0, 1, S + W, S + W + 5, 40} {
				for _, T := range []int{1, 3, B, 37} {
					name := fmt.Sprintf("%s defer=%v %d+%d", preset, defer_, n0, T)
					p, s := bhvNew(t, cfg, 0)
					sh.appendBatches(t, s, keys, values, 0, n0, 7, 1)
					used0 := p.Used()
					release, err := s.Reserve(T)
					require.NoError(t, err, name)
					reserved := p.Used() - used0
					sh.append(t, s, keys, values, n0, n0+T)
					require.Equal(t, used0+reserved, p.Used(), "%s: the appends took more than was reserved", name)
					release()
					release() // twice is harmless
					took := p.Used() - used0
					require.LessOrEqual(t, took, reserved, name)
					if preset != "tq3-guard" {
						require.Equal(t, reserved, took, "%s: the reservation is not the appends' exact size", name)
					}

					// The same appends without a reservation take the same bytes.
					p2, s2 := bhvNew(t, cfg, 0)
					sh.appendBatches(t, s2, keys, values, 0, n0, 7, 1)
					sh.append(t, s2, keys, values, n0, n0+T)
					require.Equal(t, p.Used(), p2.Used(), name)
				}
			}
		}
	}
}

// TestReserveHoldsTheBudget: a reservation the budget cannot hold is refused
// and changes nothing; one it can hold keeps its bytes from other sequences,
// so the reserved appends succeed even when the pool is otherwise full.
func TestReserveHoldsTheBudget(t *testing.T) {
	sh := bhvShape{L: 2, H: 2, QH: 4, d: 64}
	const B, S, W = 16, 2, 8
	const n0, T = S + W + B, B
	keys, values := kvData(n0+T+1, sh.H, sh.d, 92)
	queries, _ := kvData(1, sh.QH, sh.d, 93)
	cfg := sh.config(t, "tq3", func(c *Config) { c.BlockTokens, c.Sinks, c.Window = B, S, W })
	budget, err := cfg.PlanBytes(n0 + T)
	require.NoError(t, err)

	p, s := bhvNew(t, cfg, budget-1)
	sh.append(t, s, keys, values, 0, n0)
	before := sh.state(t, p, s, queries)
	_, err = s.Reserve(T)
	require.ErrorIs(t, err, ErrCacheFull)
	require.Equal(t, before, sh.state(t, p, s, queries))

	p, s = bhvNew(t, cfg, budget)
	sh.append(t, s, keys, values, 0, n0)
	release, err := s.Reserve(T)
	require.NoError(t, err)
	require.Equal(t, budget, p.Used())
	r := sh.row()
	other := p.NewSequence()
	require.ErrorIs(t, other.Append(0, keys[:r], values[:r]), ErrCacheFull, "the reservation is not held")
	sh.append(t, s, keys, values, n0, n0+T)
	release()
	require.Equal(t, budget, p.Used())

	// Reset and Close give back what a reservation holds.
	s.Reset()
	release, err = s.Reserve(T)
	require.NoError(t, err)
	require.NotZero(t, p.Used())
	s.Reset()
	require.Zero(t, p.Used())
	release()
	require.Zero(t, p.Used())
	_, err = s.Reserve(T)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.Zero(t, p.Used())

	_, err = s.Reserve(1)
	require.ErrorIs(t, err, ErrClosed)
	_, err = p.NewSequence().Reserve(0)
	require.ErrorIs(t, err, ErrLength)
}
