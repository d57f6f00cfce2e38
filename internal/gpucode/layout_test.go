package gpucode

import (
	"errors"
	"testing"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
)

// TestLayoutRefusesSplitCodes: the device kernels rotate each part on its
// own, so a rotated-domain split (two parts under one rotation) must be
// refused, not laid out as two independently rotated parts.
func TestLayoutRefusesSplitCodes(t *testing.T) {
	cfg, err := kvcache.Preset("k4v3.5", 1, 1, 1, 64)
	if err != nil {
		t.Fatal(err)
	}
	for _, cd := range []kvcache.Storage{cfg.Keys, cfg.Values} {
		qc := turboquant.Config{Dim: 64, Bits: cd.Bits, Method: cd.Method}
		if cd.Split != 0 {
			qc.Split = &turboquant.Split{Coords: cd.Split, Bits: cd.SplitBits}
		}
		q, err := turboquant.New(qc)
		if err != nil {
			t.Fatal(err)
		}
		var cent []float32
		_, _, err = Layout(cd, q, 64, true, &cent)
		if split := cd.Split != 0; split != errors.Is(err, ErrUnsupported) {
			t.Errorf("split %v: Layout error %v", split, err)
		}
	}
}
