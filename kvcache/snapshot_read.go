package kvcache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
)

// ReadSequence restores a snapshot written by Sequence.WriteTo into a new
// sequence of this pool. The snapshot's configuration must be the pool's;
// its quantizers are rebuilt from their specs, which must describe the
// storages this pool would have built (fingerprints included), so the restored
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
	// every head with the same storage shares.
	shared map[snapSharedKey]*quantStore
}

type snapSharedKey struct {
	storage Storage
	spec    string
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
	got, err := rs.sr.section("config", snapConfigFixed, snapConfigFixed+2*snapStorageBytes*snapMaxLayers+snapGuardConfig, nil)
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
	hdr, err := rs.readHeader(layer)
	if err != nil || !hdr.alloc {
		return err
	}
	heads, err := rs.readSpecs(layer)
	if err != nil {
		return err
	}
	if err := rs.readCenters(layer, heads); err != nil {
		return err
	}
	B := rs.pool.cfg.BlockTokens
	nBlocks := int((hdr.compressed + uint64(B) - 1) / uint64(B))
	var guard *layerGuard
	var lays []*blockLayout // nil: every block at the base layout
	if rs.pool.cfg.Guard.enabled() {
		if guard, lays, err = rs.readGuard(layer, nBlocks); err != nil {
			return err
		}
	}
	l := &seq.layers[layer]
	if err := rs.readTokens(layer, l, hdr); err != nil {
		return err
	}
	l.heads, l.alloc, l.decoded, l.guard = heads, true, hdr.decoded, guard
	return rs.readBlocks(layer, l, int(hdr.compressed), lays)
}

// layerHeader is a layer's header section (2a in snapshot_format.go).
type layerHeader struct {
	alloc, decoded     bool
	nSink              uint32
	winLen, compressed uint64
}

// readHeader reads and checks a layer's header: counts Append can produce.
func (rs *snapRestore) readHeader(layer int) (layerHeader, error) {
	cfg := rs.pool.cfg
	bad := func(format string, args ...any) (layerHeader, error) {
		return layerHeader{}, fmt.Errorf("%w: layer %d: "+format, append([]any{ErrSnapshot, layer}, args...)...)
	}
	b, err := rs.sr.section(fmt.Sprintf("layer %d header", layer), snapLayerBytes, snapLayerBytes, nil)
	if err != nil {
		return layerHeader{}, err
	}
	flags := binary.LittleEndian.Uint32(b)
	h := layerHeader{alloc: flags&snapAlloc != 0, decoded: flags&snapDecoded != 0, nSink: binary.LittleEndian.Uint32(b[4:]),
		winLen: binary.LittleEndian.Uint64(b[8:]), compressed: binary.LittleEndian.Uint64(b[16:])}
	nSink, winLen, compressed := h.nSink, h.winLen, h.compressed
	deferred := cfg.DeferPrefill && !h.decoded // the window may hold a whole prefill
	switch {
	case flags&^(snapAlloc|snapDecoded) != 0:
		return bad("unknown flags %#x", flags)
	case !h.alloc && (flags != 0 || nSink != 0 || winLen != 0 || compressed != 0):
		return bad("flags %#x, %d sink, %d window and %d compressed tokens in an empty layer", flags, nSink, winLen, compressed)
	case uint64(nSink) > uint64(cfg.Sinks):
		return bad("%d sink tokens, the pool keeps %d", nSink, cfg.Sinks)
	case winLen > uint64(cfg.Window) && !deferred:
		return bad("%d window tokens, the pool keeps %d", winLen, cfg.Window)
	case winLen > snapMaxWindowBytes/uint64(cfg.fp16TokenStride()) || compressed > snapMaxTokens:
		return bad("%d window and %d compressed tokens", winLen, compressed)
	case (compressed > 0 || winLen > 0) && int(nSink) != cfg.Sinks:
		return bad("%d of %d sink tokens, yet later tokens follow", nSink, cfg.Sinks)
	}
	return h, nil
}

// readSpecs reads a layer's specs section and rebuilds its heads' sides.
func (rs *snapRestore) readSpecs(layer int) ([]headStores, error) {
	cfg := rs.pool.cfg
	plan := &rs.pool.layers[layer]
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
	n := int64(cfg.KVHeads * perHead)
	sec, err := rs.sr.section(fmt.Sprintf("layer %d codecs", layer), n, n, nil)
	if err != nil {
		return nil, err
	}
	heads := make([]headStores, cfg.KVHeads)
	for h := range heads {
		hs := &heads[h]
		if hs.keys, sec, err = rs.side(plan.keys, layer, h, keysKV, sec, kLen); err != nil {
			return nil, err
		}
		if hs.values, sec, err = rs.side(plan.values, layer, h, valuesKV, sec, vLen); err != nil {
			return nil, err
		}
		if cfg.Guard.enabled() {
			if hs.upKeys, sec, err = rs.side(plan.upKeys, layer, h, keysKV, sec, ukLen); err != nil {
				return nil, err
			}
			if hs.upValues, sec, err = rs.side(plan.upValues, layer, h, valuesKV, sec, uvLen); err != nil {
				return nil, err
			}
		}
	}
	return heads, nil
}

// readCenters reads a layer's centers section, when the pool centres:
// μ_k then μ_v per head, for the quantized sides.
func (rs *snapRestore) readCenters(layer int, heads []headStores) error {
	cfg := rs.pool.cfg
	if !cfg.Center {
		return nil
	}
	plan := &rs.pool.layers[layer]
	per := 0
	for _, cd := range []Storage{plan.keys, plan.values} {
		if cd.Kind == Quantized {
			per += cfg.HeadDim
		}
	}
	n := int64(cfg.KVHeads * per * 4)
	sec, err := rs.sr.section(fmt.Sprintf("layer %d centers", layer), n, n, nil)
	if err != nil {
		return err
	}
	next := func() ([]float32, error) {
		mu := make([]float32, cfg.HeadDim)
		for i := range mu {
			mu[i] = math.Float32frombits(binary.LittleEndian.Uint32(sec[4*i:]))
			if math.IsNaN(float64(mu[i])) || math.IsInf(float64(mu[i]), 0) {
				return nil, fmt.Errorf("%w: layer %d: center component %d is not finite", ErrSnapshot, layer, i)
			}
		}
		sec = sec[4*cfg.HeadDim:]
		return mu, nil
	}
	for h := range heads {
		for _, sd := range []*side{&heads[h].keys, &heads[h].values} {
			if sd.q != nil {
				if sd.mu, err = next(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// readTokens reserves a layer's fp16 buffers and reads its sink and window
// sections into them. The buffers hold Sinks and Window tokens (what the
// pool's configuration sizes), or, for a deferred prefill, a longer window
// that grows only as its bytes arrive.
func (rs *snapRestore) readTokens(layer int, l *seqLayer, hdr layerHeader) error {
	p, cfg, sr := rs.pool, rs.pool.cfg, rs.sr
	stride := cfg.fp16TokenStride()
	winCap := max(cfg.Window, int(hdr.winLen))
	fixed := int64(cfg.Sinks+winCap)*cfg.fp16TokenBytes() + cfg.guardRingBytes()
	if err := p.reserve(fixed); err != nil {
		return fmt.Errorf("restoring layer %d: %w", layer, err)
	}
	rs.reserved += fixed
	n := int64(hdr.nSink) * int64(stride)
	sink, err := sr.section(fmt.Sprintf("layer %d sinks", layer), n, n, make([]byte, 0, cfg.Sinks*stride))
	if err != nil {
		return err
	}
	if i := nonFiniteHalf(sink); i >= 0 {
		return fmt.Errorf("%w: layer %d: sink half %d is not finite", ErrSnapshot, layer, i)
	}
	n = int64(hdr.winLen) * int64(stride)
	win, err := sr.section(fmt.Sprintf("layer %d window", layer), n, n, make([]byte, 0, cfg.Window*stride))
	if err != nil {
		return err
	}
	if i := nonFiniteHalf(win); i >= 0 {
		return fmt.Errorf("%w: layer %d: window half %d is not finite", ErrSnapshot, layer, i)
	}
	// Fresh memory is zero, like the unused slots of an appended layer's.
	l.sink, l.win = sink[:cfg.Sinks*stride], win[:winCap*stride]
	l.nSink, l.winLen, l.winCap = int(hdr.nSink), int(hdr.winLen), winCap
	return nil
}

// readBlocks reads a layer's block sections, each block allocated (and
// reserved) once its bytes are in and checked.
func (rs *snapRestore) readBlocks(layer int, l *seqLayer, total int, lays []*blockLayout) error {
	p, B := rs.pool, rs.pool.cfg.BlockTokens
	for b := 0; b*B < total; b++ {
		m := min(B, total-b*B)
		lay := p.layers[layer].base
		if lays != nil {
			lay = lays[b]
		}
		n := lay.usedBytes(m)
		sec, err := rs.sr.section(fmt.Sprintf("layer %d block %d", layer, b), n, n, nil)
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
		lay.usedRegions(blk.data, m, func(r []byte) { off += copy(r, sec[off:]) })
		l.blocks = append(l.blocks, blk)
		l.compressed += m
	}
	return nil
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
