package rng

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGoldenStream(t *testing.T) {
	// Reference values of SplitMix64 from seed 1234567 (published test vector).
	s := New(1234567)
	want := []uint64{6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431, 16408922859458223821}
	for i, w := range want {
		require.Equal(t, w, s.Uint64(), "value %d", i)
	}
}

func TestNormMoments(t *testing.T) {
	s := New(7)
	const n = 200000
	var m1, m2, m4 float64
	for i := 0; i < n; i++ {
		x := s.Norm()
		m1 += x
		m2 += x * x
		m4 += x * x * x * x
	}
	m1 /= n
	m2 /= n
	m4 /= n
	require.InDelta(t, 0, m1, 4/math.Sqrt(n))
	require.InDelta(t, 1, m2, 4*math.Sqrt(2.0/n))
	require.InDelta(t, 3, m4, 4*math.Sqrt(96.0/n))
}

func TestIntnUniform(t *testing.T) {
	s := New(3)
	var counts [7]int
	const n = 70000
	for i := 0; i < n; i++ {
		counts[s.Intn(7)]++
	}
	for _, c := range counts {
		require.InDelta(t, n/7, c, 5*math.Sqrt(n/7))
	}
}

func TestDeriveSeparatesStreams(t *testing.T) {
	require.NotEqual(t, Derive(1, 0), Derive(1, 1))
	require.NotEqual(t, Derive(1, 0), Derive(2, 0))
	require.Equal(t, Derive(5, 9), Derive(5, 9))
}
