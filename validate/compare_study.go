package validate

import (
	"fmt"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
)

// OutlierChoice is how a mixed-precision study picks the channels that get
// the higher bit width.
type OutlierChoice uint8

const (
	// ByNorm picks the channels of largest norm over the chunk as captured
	// (TopChannels on the raw prefill: the paper's code and the cache's
	// behaviour).
	ByNorm OutlierChoice = iota
	// ByCentredNorm picks them by norm after the per-head mean is removed
	// (the same as ByNorm when the study does not centre).
	ByCentredNorm
	// Fixed gives the higher width to channels 0…k−1 whatever the data:
	// the outliers are left to the rotation, and the split only sets the
	// average bit rate.
	Fixed
)

func (c OutlierChoice) String() string {
	switch c {
	case ByNorm:
		return "by-norm"
	case ByCentredNorm:
		return "by-centred-norm"
	case Fixed:
		return "fixed"
	}
	return fmt.Sprintf("OutlierChoice(%d)", uint8(c))
}

// OutlierSplit is a mixed-precision MSE code: Outliers channels (per 128,
// scaled with the head dim as the presets do) at OutlierBits, the rest at
// Bits, each part with its own rotation and fp16 norm.
type OutlierSplit struct {
	Name                  string
	Outliers, OutlierBits int
	Bits                  int
}

// OutlierSplits are the presets' splits: tq3.5 (64@4 + 64@3 per 128) and
// tq2.5 (32@4 + 96@2).
var OutlierSplits = []OutlierSplit{{"tq3.5", 64, 4, 3}, {"tq2.5", 32, 4, 2}}

// OutlierContender is a quantizer study of one split with one channel
// choice, plain or centred; its bits are the split's exactly, whatever the
// choice.
func OutlierContender(s OutlierSplit, choice OutlierChoice, center bool) Contender {
	count := func(dim int) int { return s.Outliers * dim / 128 }
	bits := func(dim int) float64 {
		k := count(dim)
		return float64(k*s.OutlierBits+(dim-k)*s.Bits+2*16) / float64(dim)
	}
	name := fmt.Sprintf("%s %s", s.Name, choice)
	return QuantizerContender(name, "outlier-study", center, bits,
		func(dim, head int, rawK, rawV, k, v [][]float32) (turboquant.Config, turboquant.Config, error) {
			cfg := func(raw, stored [][]float32) (turboquant.Config, error) {
				src := raw
				if choice == ByCentredNorm {
					src = stored
				}
				var channels []int
				if choice == Fixed {
					for c := range count(dim) {
						channels = append(channels, c)
					}
				} else {
					flat := make([]float32, 0, len(src)*dim)
					for _, r := range src {
						flat = append(flat, r...)
					}
					var err error
					if channels, err = turboquant.TopChannels(flat, dim, count(dim)); err != nil {
						return turboquant.Config{}, err
					}
				}
				return turboquant.Config{Dim: dim, Bits: s.Bits, Method: turboquant.MSE,
					Outliers: &turboquant.Outliers{Channels: channels, Bits: s.OutlierBits}}, nil
			}
			kc, err := cfg(rawK, k)
			if err != nil {
				return kc, kc, err
			}
			vc, err := cfg(rawV, v)
			return kc, vc, err
		})
}

// OutlierStudyContenders compares, for every split of OutlierSplits, plain
// and centred: the cache preset itself, and the three channel choices at the
// same bits.
func OutlierStudyContenders() []Contender {
	var out []Contender
	for _, s := range OutlierSplits {
		for _, center := range []bool{false, true} {
			out = append(out, PresetContender(s.Name, func(c *kvcache.Config) { c.Center = center }))
			for _, ch := range []OutlierChoice{ByNorm, ByCentredNorm, Fixed} {
				if ch == ByCentredNorm && !center {
					continue
				}
				out = append(out, OutlierContender(s, ch, center))
			}
		}
	}
	return out
}
