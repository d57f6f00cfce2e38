package gpucode

import (
	"testing"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
)

// TestLayoutOfSplitCodes: a rotated-domain split is laid out as two parts
// of one code: the tail reads the head's norm (code offset 0, norm offset
// 0), its indices follow the head's, and its coordinates continue the
// head's in the rotated query (the host rotates the whole query once,
// PrepareKernelQuery).
func TestLayoutOfSplitCodes(t *testing.T) {
	cfg, err := kvcache.Preset("k4v3.5", 1, 1, 1, 64)
	if err != nil {
		t.Fatal(err)
	}
	cd := cfg.Values
	q, err := turboquant.New(turboquant.Config{Dim: 64, Bits: cd.Bits, Method: cd.Method,
		Split: &turboquant.Split{Coords: cd.Split, Bits: cd.SplitBits}})
	if err != nil {
		t.Fatal(err)
	}
	var cent []float32
	lay, _, err := Layout(cd, q, 64, true, &cent)
	if err != nil {
		t.Fatal(err)
	}
	head, tail := lay[2:2+LayoutPart], lay[2+LayoutPart:2+2*LayoutPart]
	got := map[string][2]int32{
		"parts, code bytes":        {lay[0], lay[1]},
		"head: dim, bits":          {head[PDim], head[PBits]},
		"tail: dim, bits":          {tail[PDim], tail[PBits]},
		"tail: code, norm offsets": {tail[POffCode], tail[POffNorm]},
		"tail: index, rot offsets": {tail[POffIdx], tail[PRot]},
		"tail: centroids from":     {tail[PCent], int32(len(cent))},
	}
	want := map[string][2]int32{
		"parts, code bytes":        {2, int32(q.CodeSize())},
		"head: dim, bits":          {32, 3},
		"tail: dim, bits":          {32, 4},
		"tail: code, norm offsets": {0, 0},
		"tail: index, rot offsets": {2 + 32*3/8, 32},
		"tail: centroids from":     {8, 8 + 16},
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %v, want %v", k, got[k], w)
		}
	}
}
