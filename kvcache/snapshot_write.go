package kvcache

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/turboquant-go/tq/turboquant"
)

// WriteTo writes a snapshot of the sequence to w: the pool configuration that
// determines its layout, each layer's token counts and quantizer specs, its
// fp16 sink and window tokens and its compressed codes as stored, each
// section checksummed (the format is described in snapshot_format.go).
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
	B := cfg.BlockTokens
	stride := cfg.fp16TokenStride()
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
			for _, q := range []*turboquant.Quantizer{hc.keys.q, hc.values.q, hc.upKeys.q, hc.upValues.q} {
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
				for _, mu := range [][]float32{hc.keys.mu, hc.values.mu} {
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
			sw.begin(lay.usedBytes(m))
			lay.usedRegions(data, m, sw.put)
			sw.end()
		}
	}
	sw.flush()
	return sw.n, sw.err
}

// snapshot is the layer's guard section (2d in snapshot_format.go); blocks
// are the layer's blocks that hold tokens.
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
