package serve

import (
	"strings"
	"testing"
)

// TestTextStream feeds a decoding that grows piece by piece: the increments
// concatenate to the text up to the first stop string, and never include
// half a character or a stop string's beginning that has not resolved.
func TestTextStream(t *testing.T) {
	for _, c := range []struct {
		name   string
		pieces []string
		stops  []string
		clean  bool
		want   string
		stop   bool
	}{
		{"plain", []string{"In", " the", " beginning"}, nil, false, "In the beginning", false},
		{"stop across pieces", []string{"And", " God", " sa", "id, Let"}, []string{"said"}, false, "And God ", true},
		{"false start of a stop", []string{"sa", "y ", "said"}, []string{"said"}, false, "say ", true},
		{"utf-8 split", []string{"caf", "\xc3", "\xa9!"}, nil, false, "café!", false},
		{"clean-up tail", []string{"word", " .", " next"}, nil, true, "word . next", false},
	} {
		var ts textStream
		full, got := "", ""
		stopped := false
		for i, p := range c.pieces {
			full += p
			out, st := ts.update(full, c.stops, c.clean, i == len(c.pieces)-1)
			if strings.HasSuffix(out, "\xc3") {
				t.Fatalf("%s: sent half a character", c.name)
			}
			got += out
			if st {
				stopped = true
				break
			}
		}
		if got != c.want || stopped != c.stop {
			t.Errorf("%s: got %q (stop %v), want %q (stop %v)", c.name, got, stopped, c.want, c.stop)
		}
	}
}
