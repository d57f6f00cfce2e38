package kvcache

import (
	"fmt"

	"github.com/turboquant-go/tq/turboquant"
)

// The hook for compute backends (the cuda package) that keep a cache's
// bytes elsewhere and score codes with their own kernels: a read-only view
// of a Sequence layer's stored tokens. With turboquant.Quantizer.Parts (the
// code layout) and PrepareKernelQuery (queries in the rotated domain) it is
// all a backend needs; the generic Go path stays the oracle.

// LayerView is a read-only view of one layer of a Sequence as stored. Its
// slices alias the sequence's memory: valid only inside the ViewLayer
// callback, and never to be written.
type LayerView struct {
	Appended   bool // codecs and fp16 buffers exist
	Sinks      int  // tokens [0, Sinks) in SinkTokens
	Compressed int  // tokens [Sinks, Sinks+Compressed) in Blocks
	Window     int  // the rest, in WindowRing
	// SinkTokens and WindowRing hold fp16 tokens [slot][KVHeads][key,
	// value][HeadDim]; window token i (oldest first) is in slot
	// (WindowStart+i) % WindowCap.
	SinkTokens, WindowRing []byte
	WindowStart, WindowCap int
	// Blocks hold BlockTokens compressed tokens each: key codes
	// [KVHeads][BlockTokens] then value codes [KVHeads][BlockTokens].
	Blocks                     [][]byte
	KeyStorage, ValueStorage   Storage
	KeyCodeSize, ValueCodeSize int
	// Keys and Values are the quantizers per KV head (nil entries for the
	// fp16 and fp32 passthrough storages); KeyMeans and ValueMeans the
	// Center means per KV head (nil: none).
	Keys, Values         []*turboquant.Quantizer
	KeyMeans, ValueMeans [][]float32
}

// ViewLayer calls f with a view of one layer, holding the sequence's read
// lock meanwhile.
func (s *Sequence) ViewLayer(layer int, f func(LayerView)) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkLayer(layer); err != nil {
		return err
	}
	l, plan := &s.layers[layer], s.pool.layers[layer]
	if s.pool.cfg.BlockCenter {
		return fmt.Errorf("%w: BlockCenter's drift codes are not in LayerView's code layout", ErrConfig)
	}
	for _, b := range l.blocks {
		if b.lay.up != nil {
			return fmt.Errorf("%w: layer %d holds blocks the guard upgraded, which LayerView's uniform code layout cannot describe", ErrConfig, layer)
		}
	}
	v := LayerView{
		Appended: l.alloc, Sinks: l.nSink, Compressed: l.compressed, Window: l.winLen,
		SinkTokens: l.sink, WindowRing: l.win, WindowStart: l.winStart, WindowCap: l.winCap,
		KeyStorage: plan.keys, ValueStorage: plan.values, KeyCodeSize: plan.kSize, ValueCodeSize: plan.vSize,
	}
	for _, b := range l.blocks {
		v.Blocks = append(v.Blocks, b.data)
	}
	for _, hc := range l.heads {
		v.Keys = append(v.Keys, hc.keys.q)
		v.Values = append(v.Values, hc.values.q)
		v.KeyMeans = append(v.KeyMeans, hc.keys.mu)
		v.ValueMeans = append(v.ValueMeans, hc.values.mu)
	}
	f(v)
	return nil
}
