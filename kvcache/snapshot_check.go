package kvcache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"

	"github.com/turboquant-go/tq/turboquant"
)

// readGuard reads a layer's guard section (2d in snapshot_format.go) and
// checks that it holds a state Append can produce.
func (rs *snapRestore) readGuard(layer, nBlocks int) (*layerGuard, []*blockLayout, error) {
	p, cfg := rs.pool, rs.pool.cfg
	plan := &p.layers[layer]
	H, B, d := cfg.KVHeads, cfg.BlockTokens, cfg.HeadDim
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: layer %d guard: "+format, append([]any{ErrSnapshot, layer}, args...)...)
	}
	lo := int64(8+snapGuardHead*H) + int64(nBlocks)*int64(H)
	sec, err := rs.sr.section(fmt.Sprintf("layer %d guard", layer), lo, lo+int64(cfg.Guard.Queries)*int64(H*d*4), nil)
	if err != nil {
		return nil, nil, err
	}
	n := binary.LittleEndian.Uint64(sec)
	if n > uint64(cfg.Guard.Queries) || int64(len(sec)) != lo+int64(n)*int64(H*d*4) {
		return nil, nil, bad("%d recent queries in a section of %d bytes (the pool keeps %d)", n, len(sec), cfg.Guard.Queries)
	}
	g := newLayerGuard(cfg, plan.base)
	g.n, g.next = int(n), int(n)%g.cap
	off := 8
	for h := range H {
		flags := binary.LittleEndian.Uint64(sec[off:])
		pos := binary.LittleEndian.Uint64(sec[off+8:])
		e := math.Float64frombits(binary.LittleEndian.Uint64(sec[off+16:]))
		off += snapGuardHead
		switch {
		case flags > 1:
			return nil, nil, bad("head %d flags %#x", h, flags)
		case flags == 0 && (pos != 0 || math.Float64bits(e) != 0):
			return nil, nil, bad("head %d not upgraded, yet position %d and error %v", h, pos, e)
		case flags == 1 && (n == 0 || !(e > cfg.Guard.Budget) || math.IsInf(e, 0)):
			return nil, nil, bad("head %d upgraded with error %v (budget %v) and %d queries", h, e, cfg.Guard.Budget, n)
		case flags == 1 && (pos < uint64(cfg.Sinks) || pos-uint64(cfg.Sinks) > snapMaxTokens || (pos-uint64(cfg.Sinks))%uint64(B) != 0):
			return nil, nil, bad("head %d upgraded at position %d, which starts no block", h, pos)
		}
		g.heads[h] = guardHead{up: flags == 1, pos: int(pos), err: e}
	}
	for h := range H {
		for i := range int(n) {
			q := g.ring[(h*g.cap+i)*d : (h*g.cap+i+1)*d]
			for j := range q {
				q[j] = math.Float32frombits(binary.LittleEndian.Uint32(sec[off:]))
				off += 4
				if math.IsNaN(float64(q[j])) || math.IsInf(float64(q[j]), 0) {
					return nil, nil, bad("head %d query %d component %d is not finite", h, i, j)
				}
			}
		}
	}
	flags := sec[off:]
	lays := make([]*blockLayout, nBlocks)
	var prev []bool
	for b := range nBlocks {
		up := make([]bool, H)
		any := false
		for h := range H {
			f := flags[b*H+h]
			gh := g.heads[h]
			start := uint64(cfg.Sinks) + uint64(b)*uint64(B)
			switch {
			case f > 1:
				return nil, nil, bad("block %d head %d flag %d", b, h, f)
			case f == 1 && !gh.up:
				return nil, nil, bad("block %d upgraded for head %d, which is not", b, h)
			case f == 0 && gh.up && (start >= uint64(gh.pos) || (prev != nil && prev[h])):
				return nil, nil, bad("block %d not upgraded for head %d, upgraded from position %d", b, h, gh.pos)
			}
			up[h] = f == 1
			any = any || up[h]
		}
		switch {
		case !any:
			lays[b] = plan.base
		case b > 0 && slices.Equal(prev, up) && lays[b-1] != plan.base:
			lays[b] = lays[b-1]
		default:
			lays[b] = newBlockLayout(plan, H, B, up)
		}
		prev = up
	}
	up := make([]bool, H)
	any := false
	for h, gh := range g.heads {
		up[h] = gh.up
		any = any || gh.up
	}
	if any {
		g.lay = newBlockLayout(plan, H, B, up)
	}
	return g, lays, nil
}

// side restores the side of one (layer, head) for keys or values from
// the front of a specs section (2b in snapshot_format.go), and returns the
// rest of sec.
func (rs *snapRestore) side(cd Storage, layer, head int, which kv, sec []byte, specLen int) (side, []byte, error) {
	d := rs.pool.cfg.HeadDim
	switch cd.Kind {
	case Float16:
		return side{store: fp16Store{d}}, sec, nil
	case Float32:
		return side{store: fp32Store{d}}, sec, nil
	}
	what := which.String()
	// The section's length was checked, so sec holds this head's bytes.
	if n := binary.LittleEndian.Uint32(sec); n != uint32(specLen) {
		return side{}, nil, fmt.Errorf("%w: layer %d head %d %s spec of %d bytes, want %d", ErrSnapshot, layer, head, what, n, specLen)
	}
	spec, rest := sec[4:4+specLen], sec[4+specLen:]
	qs, err := rs.quantizer(cd, layer, head, which, spec)
	if err != nil {
		return side{}, nil, fmt.Errorf("%w: layer %d head %d %s codec: %w", ErrSnapshot, layer, head, what, err)
	}
	return side{store: qs, q: qs.q}, rest, nil
}

// quantizer rebuilds the quantizer a spec describes (NewFromSpec: the
// fingerprint must match this build's), after checking that it is the one
// this pool builds for (layer, head, keys or values) given the spec's
// outlier channels: same codec, same seed. As in Pool.newSide, quantizers
// without outlier channels are the pool's shared ones.
func (rs *snapRestore) quantizer(cd Storage, layer, head int, which kv, b []byte) (*quantStore, error) {
	p, cfg := rs.pool, rs.pool.cfg
	sk := snapSharedKey{cd, string(b)}
	if q := rs.shared[sk]; q != nil {
		return q, nil // checked for another head with this codec
	}
	var spec turboquant.Spec
	if err := spec.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	// Mirror Pool.newSide: outlier channels come from the data, and give each
	// (layer, head, keys/values) its own seed stream.
	var channels []int
	if cd.Outliers > 0 {
		if spec.Config.Outliers == nil {
			return nil, errors.New("spec has no outlier channels")
		}
		channels = spec.Config.Outliers.Channels
	}
	want, err := cd.quantizerConfig(cfg.HeadDim, p.quantizerSeed(layer, head, which, channels != nil), channels)
	if err != nil {
		return nil, err
	}
	if !reflect.DeepEqual(want, spec.Config) {
		return nil, fmt.Errorf("spec %s is not this pool's codec %s", snapConfigString(spec.Config), snapConfigString(want))
	}
	q, err := turboquant.NewFromSpec(spec)
	if err != nil {
		return nil, err
	}
	if again, _ := q.Spec().MarshalBinary(); !bytes.Equal(again, b) {
		return nil, errors.New("spec is not in canonical form")
	}
	if channels != nil {
		return newQuantStore(q), nil
	}
	qs, err := p.quantizer(want)
	if err != nil {
		return nil, err
	}
	rs.shared[sk] = qs
	return qs, nil
}

func snapConfigString(c turboquant.Config) string {
	o, sp := c.Outliers, c.Split
	c.Outliers, c.Split = nil, nil
	s := fmt.Sprintf("%+v", c)
	if o != nil {
		s += fmt.Sprintf(" with outlier channels %v at %d bits", o.Channels, o.Bits)
	}
	if sp != nil {
		s += fmt.Sprintf(" with %d rotated coordinates at %d bits", sp.Coords, sp.Bits)
	}
	return s
}

// nonFiniteHalf returns the index of the first infinite or NaN half in b,
// or −1.
func nonFiniteHalf(b []byte) int {
	for i := 0; i+1 < len(b); i += 2 {
		if b[i+1]&0x7c == 0x7c {
			return i / 2
		}
	}
	return -1
}
