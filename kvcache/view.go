package kvcache

import (
	"fmt"

	"github.com/turboquant-go/tq/turboquant"
)

// The hook for compute backends (the cuda and metal packages) that keep a
// cache's bytes elsewhere and score codes with their own kernels: a
// read-only view of a Sequence layer's stored tokens. With
// turboquant.Quantizer.Parts (the code layout) and PrepareKernelQuery
// (queries in the rotated domain) it is all a backend needs; the generic Go
// path stays the oracle.

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
	// [KVHeads][BlockTokens] then value codes [KVHeads][BlockTokens] (the
	// uniform layout; Layouts says where codes are when it is not).
	Blocks                     [][]byte
	KeyStorage, ValueStorage   Storage
	KeyCodeSize, ValueCodeSize int
	// Keys and Values are the quantizers per KV head (nil entries for the
	// fp16 and fp32 passthrough storages); KeyMeans and ValueMeans the
	// Center means per KV head (nil: none). Upgraded codes and drift codes
	// store x − μ with these means too.
	Keys, Values         []*turboquant.Quantizer
	KeyMeans, ValueMeans [][]float32

	// Set by ViewLayerBlocks only.
	//
	// Layouts is each block's layout, parallel to Blocks.
	Layouts []BlockLayout
	// UpKeys and UpValues are the guard's upgraded quantizers per KV head
	// (nil entries for passthrough storages; nil without a guard), of
	// UpKeyStorage and UpValueStorage, UpKeyCodeSize and UpValueCodeSize
	// bytes per code.
	UpKeys, UpValues               []*turboquant.Quantizer
	UpKeyStorage, UpValueStorage   Storage
	UpKeyCodeSize, UpValueCodeSize int
}

// BlockLayout is where one block's codes sit, per KV head h: its
// BlockTokens key codes from KeyOffsets[h] and value codes from
// ValueOffsets[h], each of the base storages' code size, or of the guard's
// when Upgraded[h]; with BlockCenter, one key drift code at KeyDrift[h] and
// one value drift code at ValueDrift[h], codes of the base storages (a
// side whose storage is a passthrough has none: nil). Each token of the
// block is stored as x − μ − drift and decodes to code + drift (+ μ); a
// block has drift codes or upgraded heads, never both. The slices are
// shared and never to be written.
type BlockLayout struct {
	KeyOffsets, ValueOffsets []int
	Upgraded                 []bool // nil: none
	KeyDrift, ValueDrift     []int  // nil: none
}

// ViewLayer calls f with a view of one layer, holding the sequence's read
// lock meanwhile. It refuses (ErrConfig) a layer whose blocks are not all
// in the uniform layout LayerView describes without Layouts: BlockCenter's
// drift codes and the guard's upgraded heads (see ViewLayerBlocks).
func (s *Sequence) ViewLayer(layer int, f func(LayerView)) error {
	return s.view(layer, false, f)
}

// ViewLayerBlocks is ViewLayer for backends that read each block's
// layout: it describes every block in LayerView.Layouts, and the guard's
// codecs in the Up fields, instead of refusing them.
func (s *Sequence) ViewLayerBlocks(layer int, f func(LayerView)) error {
	return s.view(layer, true, f)
}

func (s *Sequence) view(layer int, blocks bool, f func(LayerView)) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkLayer(layer); err != nil {
		return err
	}
	l, plan := &s.layers[layer], s.pool.layers[layer]
	if !blocks {
		if s.pool.cfg.BlockCenter {
			return fmt.Errorf("%w: BlockCenter's drift codes are not in LayerView's uniform code layout (ViewLayerBlocks describes them)", ErrConfig)
		}
		for _, b := range l.blocks {
			if b.lay.up != nil {
				return fmt.Errorf("%w: layer %d holds blocks the guard upgraded, which LayerView's uniform code layout cannot describe (ViewLayerBlocks can)", ErrConfig, layer)
			}
		}
	}
	v := LayerView{
		Appended: l.alloc, Sinks: l.nSink, Compressed: l.compressed, Window: l.winLen,
		SinkTokens: l.sink, WindowRing: l.win, WindowStart: l.winStart, WindowCap: l.winCap,
		KeyStorage: plan.keys, ValueStorage: plan.values, KeyCodeSize: plan.kSize, ValueCodeSize: plan.vSize,
	}
	for _, b := range l.blocks {
		v.Blocks = append(v.Blocks, b.data)
		if blocks {
			bl := BlockLayout{KeyOffsets: b.lay.kOff, ValueOffsets: b.lay.vOff, Upgraded: b.lay.up}
			if b.lay.kDSize > 0 {
				bl.KeyDrift = b.lay.kDOff
			}
			if b.lay.vDSize > 0 {
				bl.ValueDrift = b.lay.vDOff
			}
			v.Layouts = append(v.Layouts, bl)
		}
	}
	for _, hc := range l.heads {
		v.Keys = append(v.Keys, hc.keys.q)
		v.Values = append(v.Values, hc.values.q)
		v.KeyMeans = append(v.KeyMeans, hc.keys.mu)
		v.ValueMeans = append(v.ValueMeans, hc.values.mu)
		if blocks && s.pool.cfg.Guard.enabled() {
			v.UpKeys = append(v.UpKeys, hc.upKeys.q)
			v.UpValues = append(v.UpValues, hc.upValues.q)
		}
	}
	if blocks && s.pool.cfg.Guard.enabled() {
		v.UpKeyStorage, v.UpValueStorage = plan.upKeys, plan.upValues
		v.UpKeyCodeSize, v.UpValueCodeSize = plan.upKSize, plan.upVSize
	}
	f(v)
	return nil
}
