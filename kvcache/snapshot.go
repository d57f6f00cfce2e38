package kvcache

// Sequence snapshots: WriteTo writes a sequence's codes, fp16 tokens and
// quantizer specs as they are (nothing is dequantized or re-quantized);
// Pool.ReadSequence restores them into a new sequence of a pool with the
// same configuration, bit for bit.
//
// Format, version 1. Integers are little-endian.
//
//	preamble  "TQKV", u16 version (1), u16 reserved (0)
//	section   u64 n, n payload bytes, u32 CRC-32C (Castagnoli) of the
//	          8 length bytes and the payload
//
// After the preamble come these sections, in this order:
//
//  1. config (48 + 20·layers bytes): u32 layers, u32 KV heads, u64 query
//     heads, u32 head dim, u32 window, u32 sinks, u32 block tokens, u32 the
//     float32 bits of Scale, u64 seed, u32 flags (bit 0: DeferPrefill,
//     bit 1: Center; the others 0); then, for each layer, its key codec and its value codec,
//     10 bytes each: u8 kind, method, bits, norm, correction, outlier bits,
//     u32 outlier channels. A passthrough codec
//     (Float16, Float32) is its kind and nine zero bytes; outlier bits are 0
//     without outlier channels. It must equal the reading pool's config.
//  2. for each layer:
//     a. layer (24 bytes): u32 flags, u32 sink tokens, u64 window tokens,
//     u64 compressed tokens. Flag bit 0: the layer has been appended to
//     (it holds codecs and fp16 buffers) and b–e follow; without it the
//     layer is empty, as never appended to or reset, everything else is 0
//     and nothing else follows for the layer. Bit 1: a single-token append
//     has happened (which ends a deferred prefill). Other bits are 0.
//     b. codecs: for each KV head, the key codec's then the value codec's
//     quantizer spec (Spec.MarshalBinary, which carries the outlier
//     channels, seed and a fingerprint of the codebooks and rotation), each
//     as u32 length then the spec; a passthrough codec has none, so the
//     section is empty when neither codec quantizes.
//     b'. centers, only with Center: for each KV head, μ_k (if the keys are
//     quantized) then μ_v (if the values are), HeadDim float32 each, finite.
//     c. sinks: the sink tokens, each [KV heads][key, value][head dim]
//     IEEE half floats.
//     d. window: the window tokens in the same layout, oldest first.
//     e. blocks: one section per block of compressed tokens, ⌈compressed /
//     block tokens⌉ of them. Block i holds m = min(block tokens, compressed −
//     i·block tokens) tokens: the key codes [KV heads][m] then the value
//     codes [KV heads][m], each code its codec's exact size (so only the
//     used part of the last block is written).
//
// Every length is checked against the one the reading pool's configuration
// and the counts imply before anything is read into it, and payloads are
// read in bounded chunks, so a hostile or truncated stream costs no more
// memory than the bytes it holds (beyond the fp16 sink and window buffers of
// a layer, which the pool's configuration sizes and its budget pays for).
// Counts must be ones Append can produce: sinks ≤ Sinks, window ≤ Window
// (more only in a deferred prefill), the sinks full once anything follows
// them, and sink and window halves finite. The format is canonical: a
// restored sequence writes back the exact bytes it was read from.
//
// The window's capacity is not written: it is restored as max(Window, window
// tokens), which is what the original holds except after a deferred prefill
// was truncated (then the restored sequence holds less spare window, and its
// Stats' StoredBytes are smaller; its tokens and outputs are the same).

import (
	"github.com/turboquant-go/tq/turboquant"

	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"reflect"
	"slices"
)

// SnapshotVersion is the version of the snapshot format that WriteTo
// writes. ReadSequence reads it and version 1 (which has no guard: its
// config section lacks the guard fields, and it restores only into pools
// without a guard).
const SnapshotVersion = 2

var (
	snapshotMagic = [4]byte{'T', 'Q', 'K', 'V'}
	castagnoli    = crc32.MakeTable(crc32.Castagnoli)
)

const (
	snapPreambleBytes = 8
	snapConfigFixed   = 48
	snapGuardConfig   = 36 // version 2's guard fields at the end of the config section
	snapGuardHead     = 24 // per KV head in a layer's guard section
	snapCodecBytes    = 10
	snapLayerBytes    = 24
	snapAlloc         = 1 << 0  // layer flag: codecs and buffers
	snapDecoded       = 1 << 1  // layer flag: a single-token append happened
	snapDeferPrefill  = 1 << 0  // config flag
	snapCenter        = 1 << 1  // config flag
	snapMaxLayers     = 1 << 12 // Config.validate's bound
	// snapMaxTokens bounds a layer's compressed tokens, so that no count
	// derived from it overflows.
	snapMaxTokens = min(1<<40, math.MaxInt>>2)
	// snapMaxWindowBytes bounds the fp16 window of a deferred prefill (the
	// only one longer than Window), so that its size in bytes cannot overflow.
	snapMaxWindowBytes = min(1<<50, math.MaxInt>>2)
	// snapChunk is the most a read grows its buffer by before the bytes
	// have arrived; snapBuffer is the writer's buffer.
	snapChunk  = 1 << 16
	snapBuffer = 1 << 16
)

// WriteTo writes a snapshot of the sequence to w: the pool configuration that
// determines its layout, each layer's token counts and quantizer specs, its
// fp16 sink and window tokens and its compressed codes as stored, each
// section checksummed (the format is described in cache_snapshot.go).
// Nothing is dequantized. It holds the sequence's read lock while it
// writes, so attention may run meanwhile but appends wait. It implements
// io.WriterTo.
func (s *Sequence) WriteTo(w io.Writer) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	cfg := s.pool.cfg
	H, B := cfg.KVHeads, cfg.BlockTokens
	stride := s.tokenStride()
	sw := &snapWriter{w: w, buf: make([]byte, 0, snapBuffer)}
	var pre [snapPreambleBytes]byte
	copy(pre[:], snapshotMagic[:])
	binary.LittleEndian.PutUint16(pre[4:], SnapshotVersion)
	sw.raw(pre[:])
	sw.whole(cfg.snapshotConfig(SnapshotVersion))
	for layer := range s.layers {
		if sw.err != nil {
			break
		}
		l := &s.layers[layer]
		flags := uint32(0)
		if l.alloc {
			flags |= snapAlloc
		}
		if l.decoded {
			flags |= snapDecoded
		}
		hdr := make([]byte, 0, snapLayerBytes)
		hdr = binary.LittleEndian.AppendUint32(hdr, flags)
		hdr = binary.LittleEndian.AppendUint32(hdr, uint32(l.nSink))
		hdr = binary.LittleEndian.AppendUint64(hdr, uint64(l.winLen))
		hdr = binary.LittleEndian.AppendUint64(hdr, uint64(l.compressed))
		sw.whole(hdr)
		if !l.alloc {
			continue
		}

		var specs []byte
		for h := range l.heads {
			hc := &l.heads[h]
			for _, q := range []*turboquant.Quantizer{hc.kq, hc.vq, hc.ukq, hc.uvq} {
				if q == nil {
					continue
				}
				b, err := q.Spec().MarshalBinary()
				if err != nil {
					return sw.n, err
				}
				specs = binary.LittleEndian.AppendUint32(specs, uint32(len(b)))
				specs = append(specs, b...)
			}
		}
		sw.whole(specs)
		if cfg.Center {
			var centers []byte
			for _, hc := range l.heads {
				for _, mu := range [][]float32{hc.muK, hc.muV} {
					for _, v := range mu {
						centers = binary.LittleEndian.AppendUint32(centers, math.Float32bits(v))
					}
				}
			}
			sw.whole(centers)
		}
		if l.guard != nil {
			s.qmu.Lock() // Attend may be recording queries
			sw.whole(l.guard.snapshot(l.blocks[:(l.compressed+B-1)/B], cfg.HeadDim))
			s.qmu.Unlock()
		}

		sw.whole(l.sink[:l.nSink*stride])
		sw.begin(int64(l.winLen) * int64(stride))
		for i := range l.winLen {
			slot := s.winSlot(l, i)
			sw.put(l.win[slot*stride : (slot+1)*stride])
		}
		sw.end()

		for b := range (l.compressed + B - 1) / B {
			m := min(B, l.compressed-b*B)
			data, lay := l.blocks[b].data, l.blocks[b].lay
			sw.begin(int64(m) * lay.tokenBytes)
			for h := range H {
				sw.put(data[lay.kOff[h] : lay.kOff[h]+m*lay.kSize[h]])
			}
			for h := range H {
				sw.put(data[lay.vOff[h] : lay.vOff[h]+m*lay.vSize[h]])
			}
			sw.end()
		}
	}
	sw.flush()
	return sw.n, sw.err
}

// ReadSequence restores a snapshot written by Sequence.WriteTo into a new
// sequence of this pool. The snapshot's configuration must be the pool's;
// its quantizers are rebuilt from their specs, which must describe the
// codecs this pool would have built (fingerprints included), so the restored
// sequence attends, appends and snapshots exactly as the original did.
//
// Memory is reserved from the pool's budget as it is restored: ErrCacheFull
// if it does not fit. A malformed, corrupt, truncated or mismatched snapshot
// gives an error wrapping ErrSnapshot (and io.ErrUnexpectedEOF when the
// input ends early, io.EOF when it is empty). On any error nothing stays
// reserved. ReadSequence reads exactly the snapshot's bytes from r, so
// snapshots may be followed by other data.
func (p *Pool) ReadSequence(r io.Reader) (*Sequence, error) {
	rs := &snapRestore{pool: p, sr: &snapReader{r: r}, shared: map[snapSharedKey]*quantStore{}}
	seq, err := rs.read()
	if err != nil {
		p.release(rs.reserved)
		return nil, err
	}
	return seq, nil
}

// snapRestore is the state of one ReadSequence.
type snapRestore struct {
	pool     *Pool
	sr       *snapReader
	reserved int64 // bytes reserved from the pool so far
	// shared holds the checked quantizers without outlier channels, which
	// every head with the same codec shares.
	shared map[snapSharedKey]*quantStore
}

type snapSharedKey struct {
	codec Storage
	spec  string
}

func (rs *snapRestore) read() (*Sequence, error) {
	p := rs.pool
	var pre [snapPreambleBytes]byte
	if err := rs.sr.full(pre[:]); err != nil {
		return nil, err
	}
	if [4]byte(pre[:4]) != snapshotMagic {
		return nil, fmt.Errorf("%w: bad magic %q", ErrSnapshot, pre[:4])
	}
	version := int(binary.LittleEndian.Uint16(pre[4:]))
	if version != 1 && version != SnapshotVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads 1 and %d", ErrSnapshot, version, SnapshotVersion)
	}
	if version == 1 && p.cfg.Guard.enabled() {
		return nil, fmt.Errorf("%w: a version 1 snapshot holds no guard state, and this pool has a guard", ErrSnapshot)
	}
	if v := binary.LittleEndian.Uint16(pre[6:]); v != 0 {
		return nil, fmt.Errorf("%w: reserved field %#x is not zero", ErrSnapshot, v)
	}
	got, err := rs.sr.section("config", snapConfigFixed, snapConfigFixed+2*snapCodecBytes*snapMaxLayers+snapGuardConfig, nil)
	if err != nil {
		return nil, err
	}
	if want := p.cfg.snapshotConfig(version); !bytes.Equal(got, want) {
		return nil, fmt.Errorf("%w: written by another cache configuration: %s", ErrSnapshot, describeConfigMismatch(got, want, version))
	}
	seq := p.NewSequence()
	for layer := range seq.layers {
		if err := rs.readLayer(seq, layer); err != nil {
			return nil, err
		}
	}
	return seq, nil
}

func (rs *snapRestore) readLayer(seq *Sequence, layer int) error {
	p, cfg, sr := rs.pool, rs.pool.cfg, rs.sr
	plan := p.layers[layer]
	H, B := cfg.KVHeads, cfg.BlockTokens
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: layer %d: "+format, append([]any{ErrSnapshot, layer}, args...)...)
	}
	hdr, err := sr.section(fmt.Sprintf("layer %d header", layer), snapLayerBytes, snapLayerBytes, nil)
	if err != nil {
		return err
	}
	flags := binary.LittleEndian.Uint32(hdr)
	nSink := binary.LittleEndian.Uint32(hdr[4:])
	winLen := binary.LittleEndian.Uint64(hdr[8:])
	compressed := binary.LittleEndian.Uint64(hdr[16:])
	alloc, decoded := flags&snapAlloc != 0, flags&snapDecoded != 0
	deferred := cfg.DeferPrefill && !decoded // the window may hold a whole prefill
	switch {
	case flags&^(snapAlloc|snapDecoded) != 0:
		return bad("unknown flags %#x", flags)
	case !alloc && (flags != 0 || nSink != 0 || winLen != 0 || compressed != 0):
		return bad("flags %#x, %d sink, %d window and %d compressed tokens in an empty layer", flags, nSink, winLen, compressed)
	case uint64(nSink) > uint64(cfg.Sinks):
		return bad("%d sink tokens, the pool keeps %d", nSink, cfg.Sinks)
	case winLen > uint64(cfg.Window) && !deferred:
		return bad("%d window tokens, the pool keeps %d", winLen, cfg.Window)
	case winLen > snapMaxWindowBytes/uint64(seq.tokenStride()) || compressed > snapMaxTokens:
		return bad("%d window and %d compressed tokens", winLen, compressed)
	case (compressed > 0 || winLen > 0) && int(nSink) != cfg.Sinks:
		return bad("%d of %d sink tokens, yet later tokens follow", nSink, cfg.Sinks)
	}
	if !alloc {
		return nil
	}

	// Codecs.
	kLen, vLen := snapSpecLen(plan.keys, cfg.HeadDim), snapSpecLen(plan.values, cfg.HeadDim)
	ukLen, uvLen := 0, 0
	if cfg.Guard.enabled() {
		ukLen, uvLen = snapSpecLen(plan.upKeys, cfg.HeadDim), snapSpecLen(plan.upValues, cfg.HeadDim)
	}
	perHead := 0
	for _, n := range []int{kLen, vLen, ukLen, uvLen} {
		if n > 0 {
			perHead += 4 + n
		}
	}
	sec, err := sr.section(fmt.Sprintf("layer %d codecs", layer), int64(H*perHead), int64(H*perHead), nil)
	if err != nil {
		return err
	}
	heads := make([]headCodecs, H)
	for h := range heads {
		hc := &heads[h]
		if hc.k, hc.kq, sec, err = rs.codec(plan.keys, layer, h, false, sec, kLen); err != nil {
			return err
		}
		if hc.v, hc.vq, sec, err = rs.codec(plan.values, layer, h, true, sec, vLen); err != nil {
			return err
		}
		if cfg.Guard.enabled() {
			if hc.uk, hc.ukq, sec, err = rs.codec(plan.upKeys, layer, h, false, sec, ukLen); err != nil {
				return err
			}
			if hc.uv, hc.uvq, sec, err = rs.codec(plan.upValues, layer, h, true, sec, uvLen); err != nil {
				return err
			}
		}
	}

	// Centers (Center): μ_k then μ_v per head, float32, for quantized codecs.
	if cfg.Center {
		per := 0
		for _, cd := range []Storage{plan.keys, plan.values} {
			if cd.Kind == Quantized {
				per += cfg.HeadDim
			}
		}
		n := int64(H * per * 4)
		sec, err := sr.section(fmt.Sprintf("layer %d centers", layer), n, n, nil)
		if err != nil {
			return err
		}
		next := func() ([]float32, error) {
			mu := make([]float32, cfg.HeadDim)
			for i := range mu {
				mu[i] = math.Float32frombits(binary.LittleEndian.Uint32(sec[4*i:]))
				if math.IsNaN(float64(mu[i])) || math.IsInf(float64(mu[i]), 0) {
					return nil, bad("center component %d is not finite", i)
				}
			}
			sec = sec[4*cfg.HeadDim:]
			return mu, nil
		}
		for h := range heads {
			if heads[h].kq != nil {
				if heads[h].muK, err = next(); err != nil {
					return err
				}
			}
			if heads[h].vq != nil {
				if heads[h].muV, err = next(); err != nil {
					return err
				}
			}
		}
	}

	// Guard: recent queries, head states and block layouts.
	nBlocks := int((compressed + uint64(B) - 1) / uint64(B))
	var guard *layerGuard
	var lays []*blockLayout
	if cfg.Guard.enabled() {
		if guard, lays, err = rs.readGuard(layer, nBlocks); err != nil {
			return err
		}
	}

	// Sink and window tokens, read into their buffers. Those hold Sinks and
	// Window tokens (what the pool's configuration sizes), or, for a deferred
	// prefill, a longer window that grows only as its bytes arrive.
	stride := seq.tokenStride()
	winCap := max(cfg.Window, int(winLen))
	fixed := int64(cfg.Sinks+winCap)*cfg.fp16TokenBytes() + cfg.guardRingBytes()
	if err := p.reserve(fixed); err != nil {
		return fmt.Errorf("restoring layer %d: %w", layer, err)
	}
	rs.reserved += fixed
	l := &seq.layers[layer]
	n := int64(nSink) * int64(stride)
	sink, err := sr.section(fmt.Sprintf("layer %d sinks", layer), n, n, make([]byte, 0, cfg.Sinks*stride))
	if err != nil {
		return err
	}
	if i := nonFiniteHalf(sink); i >= 0 {
		return bad("sink half %d is not finite", i)
	}
	n = int64(winLen) * int64(stride)
	win, err := sr.section(fmt.Sprintf("layer %d window", layer), n, n, make([]byte, 0, cfg.Window*stride))
	if err != nil {
		return err
	}
	if i := nonFiniteHalf(win); i >= 0 {
		return bad("window half %d is not finite", i)
	}
	// Fresh memory is zero, like the unused slots of an appended layer's.
	l.sink, l.win = sink[:cfg.Sinks*stride], win[:winCap*stride]
	l.heads, l.alloc, l.decoded, l.guard = heads, true, decoded, guard
	l.nSink, l.winLen, l.winCap = int(nSink), int(winLen), winCap

	// Compressed blocks, each allocated once its bytes are in and checked.
	total := int(compressed)
	for b := 0; b*B < total; b++ {
		m := min(B, total-b*B)
		lay := plan.base
		if lays != nil {
			lay = lays[b]
		}
		n := int64(m) * lay.tokenBytes
		sec, err := sr.section(fmt.Sprintf("layer %d block %d", layer, b), n, n, nil)
		if err != nil {
			return err
		}
		if err := p.reserve(lay.bytes); err != nil {
			return fmt.Errorf("restoring layer %d: %w", layer, err)
		}
		rs.reserved += lay.bytes
		blk := &block{data: newBlockData(lay.bytes), lay: lay}
		blk.refs.Store(1)
		off := 0
		for h := range H {
			off += copy(blk.data[lay.kOff[h]:lay.kOff[h]+m*lay.kSize[h]], sec[off:])
		}
		for h := range H {
			off += copy(blk.data[lay.vOff[h]:lay.vOff[h]+m*lay.vSize[h]], sec[off:])
		}
		l.blocks = append(l.blocks, blk)
		l.compressed += m
	}
	return nil
}

// readGuard reads a layer's guard section (version 2, guard pools):
//
//	u64 n, the recent queries held (≤ GuardConfig.Queries)
//	per KV head: u64 flags (bit 0: upgraded), u64 position, u64 the
//	  float64 bits of the error (position and error 0 unless upgraded)
//	the queries: per KV head, its n queries oldest first, HeadDim float32
//	  each, finite
//	block flags: per block, per KV head, u8 1 if the head's codes in that
//	  block are the upgraded codecs', else 0
//
// It checks what Append can produce: an upgraded head exceeded the budget
// (so queries were held), at a position that starts a block; its flagged
// blocks are exactly those from the first flagged one on, which include
// every block starting at or after its position; no other head is flagged.
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

// snapshot is the layer's guard section (see readGuard); blocks are the
// layer's blocks that hold tokens.
func (g *layerGuard) snapshot(blocks []*block, d int) []byte {
	H := len(g.heads)
	b := make([]byte, 0, 8+snapGuardHead*H+g.n*H*d*4+len(blocks)*H)
	b = binary.LittleEndian.AppendUint64(b, uint64(g.n))
	for _, gh := range g.heads {
		var flags uint64
		if gh.up {
			flags = 1
		}
		b = binary.LittleEndian.AppendUint64(b, flags)
		b = binary.LittleEndian.AppendUint64(b, uint64(gh.pos))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(gh.err))
	}
	for h := range H {
		for i := range g.n {
			for _, v := range g.query(h, i, d) {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
			}
		}
	}
	for _, blk := range blocks {
		for h := range H {
			f := byte(0)
			if blk.lay.upgraded(h) {
				f = 1
			}
			b = append(b, f)
		}
	}
	return b
}

// codec restores the codec of one (layer, head) for keys or values from the
// front of sec (a u32 length and a spec for quantized codecs, nothing for
// passthrough ones), and returns the rest of sec.
func (rs *snapRestore) codec(cd Storage, layer, head int, values bool, sec []byte, specLen int) (store, *turboquant.Quantizer, []byte, error) {
	d := rs.pool.cfg.HeadDim
	switch cd.Kind {
	case Float16:
		return fp16Store{d}, nil, sec, nil
	case Float32:
		return fp32Store{d}, nil, sec, nil
	}
	what := "key"
	if values {
		what = "value"
	}
	// The section's length was checked, so sec holds this head's bytes.
	if n := binary.LittleEndian.Uint32(sec); n != uint32(specLen) {
		return nil, nil, nil, fmt.Errorf("%w: layer %d head %d %s spec of %d bytes, want %d", ErrSnapshot, layer, head, what, n, specLen)
	}
	spec, rest := sec[4:4+specLen], sec[4+specLen:]
	qs, err := rs.quantizer(cd, layer, head, values, spec)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: layer %d head %d %s codec: %w", ErrSnapshot, layer, head, what, err)
	}
	return qs, qs.q, rest, nil
}

// quantizer rebuilds the quantizer a spec describes (NewFromSpec: the
// fingerprint must match this build's), after checking that it is the one
// this pool builds for (layer, head, keys or values) given the spec's
// outlier channels: same codec, same seed. As in Pool.codec, quantizers
// without outlier channels are the pool's shared ones.
func (rs *snapRestore) quantizer(cd Storage, layer, head int, values bool, b []byte) (*quantStore, error) {
	p, cfg := rs.pool, rs.pool.cfg
	sk := snapSharedKey{cd, string(b)}
	if q := rs.shared[sk]; q != nil {
		return q, nil // checked for another head with this codec
	}
	var spec turboquant.Spec
	if err := spec.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	// Mirror Pool.codec: outlier channels come from the data, and give each
	// (layer, head, keys/values) its own seed stream.
	var channels []int
	if cd.Outliers > 0 {
		if spec.Config.Outliers == nil {
			return nil, errors.New("spec has no outlier channels")
		}
		channels = spec.Config.Outliers.Channels
	}
	want, err := cd.quantizerConfig(cfg.HeadDim, p.codecSeed(layer, head, values, channels != nil), channels)
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
	o := c.Outliers
	c.Outliers = nil
	if o == nil {
		return fmt.Sprintf("%+v", c)
	}
	return fmt.Sprintf("%+v with outlier channels %v at %d bits", c, o.Channels, o.Bits)
}

// snapSpecLen is the length of the spec of a codec's quantizers (0 for the
// passthrough codecs, which have none).
func snapSpecLen(cd Storage, dim int) int {
	if cd.Kind != Quantized {
		return 0
	}
	// A spec's length depends only on the number of outlier channels, so
	// the placeholder channels give the length of every head's spec.
	cfg, err := cd.quantizerConfig(dim, 0, nil)
	if err != nil {
		return 0
	}
	b, _ := turboquant.Spec{Version: turboquant.SpecVersion, Config: cfg}.MarshalBinary()
	return len(b)
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

// snapshotConfig is the config section's payload for c (defaults filled
// in) in a snapshot version. Version 2 appends the guard fields: f64 budget
// bits, u64 recent queries, the upgrade key and value codecs (10 bytes each,
// as the layer codecs); all zero without a guard.
func (c Config) snapshotConfig(version int) []byte {
	b := make([]byte, 0, snapConfigFixed+2*snapCodecBytes*c.Layers)
	b = binary.LittleEndian.AppendUint32(b, uint32(c.Layers))
	b = binary.LittleEndian.AppendUint32(b, uint32(c.KVHeads))
	b = binary.LittleEndian.AppendUint64(b, uint64(c.QHeads))
	b = binary.LittleEndian.AppendUint32(b, uint32(c.HeadDim))
	b = binary.LittleEndian.AppendUint32(b, uint32(c.Window))
	b = binary.LittleEndian.AppendUint32(b, uint32(c.Sinks))
	b = binary.LittleEndian.AppendUint32(b, uint32(c.BlockTokens))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(c.Scale))
	b = binary.LittleEndian.AppendUint64(b, c.Seed)
	flags := uint32(0)
	if c.DeferPrefill {
		flags |= snapDeferPrefill
	}
	if c.Center {
		flags |= snapCenter
	}
	b = binary.LittleEndian.AppendUint32(b, flags)
	for l := range c.Layers {
		k, v := c.codecs(l)
		b = appendSnapCodec(b, k)
		b = appendSnapCodec(b, v)
	}
	if version >= 2 {
		if !c.Guard.enabled() {
			return append(b, make([]byte, snapGuardConfig)...)
		}
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(c.Guard.Budget))
		b = binary.LittleEndian.AppendUint64(b, uint64(c.Guard.Queries))
		b = appendSnapCodec(b, c.Guard.Keys)
		b = appendSnapCodec(b, c.Guard.Values)
	}
	return b
}

// appendSnapCodec appends the fields of cd that determine its layout; the
// ones a passthrough codec ignores are written as zeros.
func appendSnapCodec(b []byte, cd Storage) []byte {
	if cd.Kind != Quantized {
		return append(b, byte(cd.Kind), 0, 0, 0, 0, 0, 0, 0, 0, 0)
	}
	outBits := 0
	if cd.Outliers != 0 {
		outBits = cd.OutlierBits
	}
	b = append(b, byte(cd.Kind), byte(cd.Method), byte(cd.Bits), byte(cd.Norm), byte(cd.Correction), byte(outBits))
	return binary.LittleEndian.AppendUint32(b, uint32(cd.Outliers))
}

// describeConfigMismatch names the first field where a snapshot's config
// section (got) differs from the pool's (want).
func describeConfigMismatch(got, want []byte, version int) string {
	if version >= 2 { // the fixed fields and codecs, then the guard's
		if len(got) < snapConfigFixed+snapGuardConfig || (len(got)-snapConfigFixed-snapGuardConfig)%(2*snapCodecBytes) != 0 {
			return fmt.Sprintf("config section of %d bytes", len(got))
		}
		gb, wb := got[:len(got)-snapGuardConfig], want[:len(want)-snapGuardConfig]
		if !bytes.Equal(gb, wb) {
			return describeConfigMismatch(gb, wb, 1)
		}
		g, w := got[len(gb):], want[len(wb):]
		return fmt.Sprintf("guard budget %v, %d queries, codecs %s %s; this pool's: budget %v, %d queries, codecs %s %s",
			math.Float64frombits(binary.LittleEndian.Uint64(g)), binary.LittleEndian.Uint64(g[8:]), snapCodecString(g[16:26]), snapCodecString(g[26:36]),
			math.Float64frombits(binary.LittleEndian.Uint64(w)), binary.LittleEndian.Uint64(w[8:]), snapCodecString(w[16:26]), snapCodecString(w[26:36]))
	}
	fields := []struct {
		name string
		size int
	}{
		{"layers", 4}, {"kv heads", 4}, {"query heads", 8}, {"head dim", 4}, {"window", 4},
		{"sinks", 4}, {"block tokens", 4}, {"scale", 4}, {"seed", 8}, {"flags", 4},
	}
	if len(got) < snapConfigFixed || (len(got)-snapConfigFixed)%(2*snapCodecBytes) != 0 {
		return fmt.Sprintf("config section of %d bytes", len(got))
	}
	field := func(b []byte, size int) uint64 {
		if size == 4 {
			return uint64(binary.LittleEndian.Uint32(b))
		}
		return binary.LittleEndian.Uint64(b)
	}
	off := 0
	for _, f := range fields {
		g, w := field(got[off:], f.size), field(want[off:], f.size)
		if g != w {
			if f.name == "scale" {
				return fmt.Sprintf("scale %v, this pool's is %v", math.Float32frombits(uint32(g)), math.Float32frombits(uint32(w)))
			}
			return fmt.Sprintf("%s %d, this pool's is %d", f.name, g, w)
		}
		off += f.size
	}
	for i := 0; off+snapCodecBytes <= min(len(got), len(want)); i, off = i+1, off+snapCodecBytes {
		if g, w := got[off:off+snapCodecBytes], want[off:off+snapCodecBytes]; !bytes.Equal(g, w) {
			what := "key"
			if i%2 == 1 {
				what = "value"
			}
			return fmt.Sprintf("layer %d %s codec %s, this pool's is %s", i/2, what, snapCodecString(g), snapCodecString(w))
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("%d layer codecs for %d layers", (len(got)-snapConfigFixed)/(2*snapCodecBytes), (len(want)-snapConfigFixed)/(2*snapCodecBytes))
	}
	return "config differs"
}

func snapCodecString(b []byte) string {
	return fmt.Sprintf("{kind %d method %d bits %d norm %d correction %d outliers %d at %d bits}",
		b[0], b[1], b[2], b[3], b[4], binary.LittleEndian.Uint32(b[6:]), b[5])
}

// snapWriter writes sections through a bounded buffer, counting the bytes
// that reached w and keeping the first error.
type snapWriter struct {
	w    io.Writer
	buf  []byte
	crc  uint32
	left int64 // payload bytes the open section still expects
	n    int64
	err  error
}

func (sw *snapWriter) write(p []byte) {
	if sw.err != nil {
		return
	}
	k, err := sw.w.Write(p)
	sw.n += int64(k)
	if err == nil && k < len(p) {
		err = io.ErrShortWrite
	}
	sw.err = err
}

func (sw *snapWriter) flush() {
	if len(sw.buf) > 0 {
		sw.write(sw.buf)
		sw.buf = sw.buf[:0]
	}
}

// raw buffers p outside any checksum.
func (sw *snapWriter) raw(p []byte) {
	if sw.err != nil {
		return
	}
	if len(sw.buf)+len(p) > snapBuffer {
		sw.flush()
		if len(p) >= snapBuffer {
			sw.write(p)
			return
		}
	}
	sw.buf = append(sw.buf, p...)
}

// begin opens a section of n payload bytes.
func (sw *snapWriter) begin(n int64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(n))
	sw.crc = crc32.Update(0, castagnoli, b[:])
	sw.left = n
	sw.raw(b[:])
}

// put writes payload bytes of the open section.
func (sw *snapWriter) put(p []byte) {
	sw.crc = crc32.Update(sw.crc, castagnoli, p)
	sw.left -= int64(len(p))
	sw.raw(p)
}

// end closes the open section with its checksum.
func (sw *snapWriter) end() {
	if sw.left != 0 && sw.err == nil {
		sw.err = fmt.Errorf("kvcache: internal error: snapshot section off by %d bytes", sw.left)
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], sw.crc)
	sw.raw(b[:])
}

// whole writes a section whose payload is p.
func (sw *snapWriter) whole(p []byte) {
	sw.begin(int64(len(p)))
	sw.put(p)
	sw.end()
}

// snapReader reads sections, never past the snapshot's last byte.
type snapReader struct {
	r   io.Reader
	n   int64  // bytes read so far
	buf []byte // the last section's payload
}

// full fills p from the reader; running out of input is ErrSnapshot.
func (sr *snapReader) full(p []byte) error {
	k, err := io.ReadFull(sr.r, p)
	sr.n += int64(k)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF) && sr.n == 0:
		return fmt.Errorf("%w: no input: %w", ErrSnapshot, io.EOF)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: input ends after %d bytes: %w", ErrSnapshot, sr.n, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("kvcache: reading snapshot: %w", err)
}

// section reads a section whose payload must be lo to hi bytes long and
// checks its checksum. The payload is appended to dst[:0], which grows by at
// most snapChunk bytes ahead of the bytes read; with a nil dst it goes to a
// buffer that is reused by the next call.
func (sr *snapReader) section(what string, lo, hi int64, dst []byte) ([]byte, error) {
	var head [8]byte
	if err := sr.full(head[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint64(head[:])
	if n < uint64(lo) || n > uint64(hi) {
		if lo == hi {
			return nil, fmt.Errorf("%w: %s section of %d bytes, want %d", ErrSnapshot, what, n, lo)
		}
		return nil, fmt.Errorf("%w: %s section of %d bytes, want %d to %d", ErrSnapshot, what, n, lo, hi)
	}
	scratch := dst == nil
	if scratch {
		dst = sr.buf
	}
	dst = dst[:0]
	for rem := int(n); rem > 0; {
		c := min(rem, snapChunk)
		start := len(dst)
		dst = slices.Grow(dst, c)[:start+c]
		if err := sr.full(dst[start:]); err != nil {
			return nil, err
		}
		rem -= c
	}
	if scratch {
		sr.buf = dst
	}
	var tail [4]byte
	if err := sr.full(tail[:]); err != nil {
		return nil, err
	}
	crc := crc32.Update(crc32.Update(0, castagnoli, head[:]), castagnoli, dst)
	if binary.LittleEndian.Uint32(tail[:]) != crc {
		return nil, fmt.Errorf("%w: %s section: checksum mismatch", ErrSnapshot, what)
	}
	return dst, nil
}
