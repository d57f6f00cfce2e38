package turboquant

// Hooks for compute backends (the cuda package) that keep a cache's bytes
// elsewhere and score codes with their own kernels: the exact code layout
// of a Quantizer, query preparation in its rotated domain, and a read-only
// view of a Sequence layer's stored tokens. The generic Go path stays the
// oracle; these expose what it already computes, nothing new.

import (
	"fmt"

	"github.com/turboquant-go/tq/hadamard"
	"github.com/turboquant-go/tq/qjl"
)

// KernelPart is the layout of one part of a Quantizer's codes (one part, or
// two when outlier channels are split off). Offsets are bytes from the start
// of the part; the part starts Offset bytes into the code. Parts occupy
// consecutive ranges of the rotated domain that AccumulateRotated and
// FinishRotated use, in order.
type KernelPart struct {
	Method     Method
	Dim        int // coordinates in the part
	Bits       int // index bits of the scalar stage (Prod: Config.Bits−1, possibly 0)
	Norm       Precision
	Correction Correction
	Offset     int // the part's first byte within the code
	Size       int // the part's bytes
	OffNorm    int
	OffCorr    int // valid when Correction != NoCorrection
	OffIdx     int
	OffSigns   int // Prod only
	OffGamma   int // Prod only
	SketchRows int // Prod only
	// QJLScale is √(π/2)/SketchRows (Prod only).
	QJLScale float32
	// Centroids and Boundaries are the scalar codebook in float32 (copies;
	// nil when Bits is 0 or for Polar).
	Centroids, Boundaries []float32
	// Channels are the input channels of the part (nil: all, in order).
	Channels []int
	// Rotation is the part's rotation Π.
	Rotation *hadamard.Rotation
	// SketchKind is the QJL projection's kind (Prod only).
	SketchKind qjl.Kind
}

// KernelParts describes the code layout of q, part by part.
func (q *Quantizer) KernelParts() []KernelPart {
	parts := make([]KernelPart, len(q.parts))
	off := 0
	for i, c := range q.parts {
		p := KernelPart{
			Method: c.method, Dim: c.dim, Bits: c.bits, Norm: c.prec, Correction: c.corr,
			Offset: off, Size: c.size, OffNorm: c.offNorm, OffCorr: c.offCorr, OffIdx: c.offIdx,
			OffSigns: c.offSigns, OffGamma: c.offGamma, Rotation: c.rot,
		}
		if c.cb != nil {
			p.Centroids = append([]float32(nil), c.cb.Centroids32...)
			p.Boundaries = append([]float32(nil), c.cb.Boundaries32...)
		}
		if c.sketch != nil {
			p.SketchRows = c.sketch.Rows()
			p.QJLScale = qjl.Scale(c.sketch.Rows())
			p.SketchKind = c.sketch.Kind()
		}
		if q.channels != nil {
			p.Channels = append([]int(nil), q.channels[i]...)
		}
		parts[i] = p
		off += c.size
	}
	return parts
}

// PrepareKernelQuery writes what a kernel needs to score codes against y
// (len Dim, finite): rot (len Dim) gets each part's rotated query Π·y_part,
// parts side by side; proj gets, for each Prod part in order, the sketch
// projection S·Π·y_part (len the sum of their SketchRows; may be nil when
// there are none). These are the values the Query's lookup tables are
// built from.
func (q *Quantizer) PrepareKernelQuery(rot, proj, y []float32) error {
	if err := q.checkVector(y, "query"); err != nil {
		return err
	}
	rows := 0
	for _, c := range q.parts {
		if c.sketch != nil {
			rows += c.sketch.Rows()
		}
	}
	if len(rot) != q.cfg.Dim || len(proj) < rows {
		return fmt.Errorf("%w: kernel query buffers of %d and %d, need %d and %d", ErrLength, len(rot), len(proj), q.cfg.Dim, rows)
	}
	s := q.get()
	defer q.put(s)
	off, poff := 0, 0
	for i, c := range q.parts {
		sub := y
		if q.channels != nil {
			sub = gather(s.parts[i], y, q.channels[i])
		}
		r := rot[off : off+c.dim]
		c.rot.Forward(r, sub)
		if c.sketch != nil {
			c.sketch.Project(proj[poff:poff+c.sketch.Rows()], r, s.sk)
			poff += c.sketch.Rows()
		}
		off += c.dim
	}
	return nil
}

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
	KeyCodec, ValueCodec       Codec
	KeyCodeSize, ValueCodeSize int
	// Keys and Values are the quantizers per KV head (nil entries for the
	// fp16 and fp32 passthrough codecs); KeyMeans and ValueMeans the
	// Center means per KV head (nil: none).
	Keys, Values         []*Quantizer
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
	for _, b := range l.blocks {
		if b.lay.up != nil {
			return fmt.Errorf("%w: layer %d holds blocks the guard upgraded, which LayerView's uniform code layout cannot describe", ErrConfig, layer)
		}
	}
	v := LayerView{
		Appended: l.alloc, Sinks: l.nSink, Compressed: l.compressed, Window: l.winLen,
		SinkTokens: l.sink, WindowRing: l.win, WindowStart: l.winStart, WindowCap: l.winCap,
		KeyCodec: plan.keys, ValueCodec: plan.values, KeyCodeSize: plan.kSize, ValueCodeSize: plan.vSize,
	}
	for _, b := range l.blocks {
		v.Blocks = append(v.Blocks, b.data)
	}
	for _, hc := range l.heads {
		v.Keys = append(v.Keys, hc.kq)
		v.Values = append(v.Values, hc.vq)
		v.KeyMeans = append(v.KeyMeans, hc.muK)
		v.ValueMeans = append(v.ValueMeans, hc.muV)
	}
	f(v)
	return nil
}
