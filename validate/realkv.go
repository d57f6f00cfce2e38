package validate

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/turboquant-go/tq/internal/half"
	"github.com/turboquant-go/tq/kvcache"
)

// ErrRealKV is wrapped by every error LoadRealKV returns for malformed,
// truncated or oversized input (I/O errors are wrapped alongside it).
var ErrRealKV = errors.New("validate: bad TQKV1 real K/V data")

// RealKVFixture is the committed real K/V fixture, relative to the validate
// package directory.
const RealKVFixture = "testdata/kjv_kv.bin"

// Limits on TQKV1 header fields; anything larger is rejected before any
// allocation that depends on it.
const (
	realKVMagic       = "TQKV1\x00\x00\x00"
	realKVVersion     = 1
	realKVMaxChunks   = 1 << 20
	realKVMaxLayers   = 256
	realKVMaxMeta     = 1 << 20
	realKVMaxTokens   = 1 << 20
	realKVMaxHeads    = 1 << 10
	realKVMaxHeadDim  = 1 << 14
	realKVMaxValues   = 1 << 30 // Q+K+V values in the whole file (4 GiB as float32)
	realKVReadBytes   = 1 << 16 // read granularity
	realKVRecordBytes = 16
)

// RealKV is real transformer attention data: per-head queries, keys and values captured from a real
// transformer (Universal Sentence Encoder lite over King James Bible text, see
// tools/capturekv) and stored in the TQKV1 format below. The committed fixture
// is testdata/kjv_kv.bin (RealKVFixture); load it with LoadRealKVFile.
//
// TQKV1 format (all integers uint32 little-endian, no padding):
//
//	magic    8 bytes  "TQKV1\x00\x00\x00"
//	version  u32      1
//	nChunks  u32      number of chunks (independent forward passes)
//	nLayers  u32      layer records per chunk
//	metaLen  u32      length of meta
//	meta     metaLen bytes of UTF-8 JSON provenance (informative)
//	for each chunk, nLayers times:
//	  layer    u32    encoder layer index
//	  T        u32    tokens in the chunk
//	  heads    u32    attention heads
//	  headDim  u32    dimension per head
//	  Q, K, V  each heads·T·headDim IEEE fp16 little-endian, order [heads][T][headDim]
//
// The file ends right after the last record. Q is the query before the
// 1/√headDim scaling, so softmax(q·k/√headDim) over one chunk's keys is the
// model's attention (the encoder is bidirectional: every query attends to
// every key of its chunk). LoadRealKV also requires, beyond the layout, that
// every layer record of a chunk has the same T, that every chunk lists the
// same layers in the same order, and that a layer keeps its heads and
// headDim across chunks.
type RealKV struct {
	// Meta is the file's JSON provenance record, verbatim.
	Meta   string
	Chunks []RealKVChunk
}

// RealKVChunk is one forward pass: the same tokens seen by every layer.
type RealKVChunk struct {
	Layers []RealKVLayer
}

// RealKVLayer holds one attention layer's per-head projections for a chunk.
// Q, K and V are [Heads][Tokens][HeadDim]; the rows of one tensor share one
// contiguous backing array.
type RealKVLayer struct {
	Layer   int
	Tokens  int
	Heads   int
	HeadDim int
	Q, K, V [][][]float32
}

// LayerIndices returns the encoder layer indices present, in file order.
func (kv *RealKV) LayerIndices() []int {
	if len(kv.Chunks) == 0 {
		return nil
	}
	out := make([]int, len(kv.Chunks[0].Layers))
	for i, l := range kv.Chunks[0].Layers {
		out[i] = l.Layer
	}
	return out
}

// layerAt returns chunk c's record for encoder layer layer, or nil.
func (c *RealKVChunk) layerAt(layer int) *RealKVLayer {
	for i := range c.Layers {
		if c.Layers[i].Layer == layer {
			return &c.Layers[i]
		}
	}
	return nil
}

// Tokens returns the number of tokens captured for layer over all chunks.
func (kv *RealKV) Tokens(layer int) int {
	n := 0
	for i := range kv.Chunks {
		if l := kv.Chunks[i].layerAt(layer); l != nil {
			n += l.Tokens
		}
	}
	return n
}

// Keys returns every key row of one head of layer over all chunks, in file
// order (views into the loaded data, not copies). It returns nil when the
// layer or head is absent.
func (kv *RealKV) Keys(layer, head int) [][]float32 {
	var out [][]float32
	for i := range kv.Chunks {
		l := kv.Chunks[i].layerAt(layer)
		if l == nil || head < 0 || head >= l.Heads {
			return nil
		}
		out = append(out, l.K[head]...)
	}
	return out
}

// LoadRealKVFile opens path and calls LoadRealKV.
func LoadRealKVFile(path string) (*RealKV, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	kv, err := LoadRealKV(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return kv, nil
}

// LoadRealKV reads a TQKV1 stream (see the package notes above). Counts are
// checked against fixed maxima and, when the remaining length of r is known
// (r has a Len method, like *bytes.Reader, or is an io.Seeker, like
// *os.File), against the bytes actually present before anything is
// allocated; otherwise tensors are read in 64 KiB pieces so memory grows only
// with data that really arrives. Limits: ≤ 2^20 chunks, ≤ 256 layers,
// ≤ 1 MiB metadata, T ≤ 2^20, heads ≤ 1024, headDim ≤ 16384 and ≤ 2^30 values
// in all. Errors wrap ErrRealKV.
func LoadRealKV(r io.Reader) (*RealKV, error) {
	remaining := int64(-1)
	switch s := r.(type) {
	case interface{ Len() int }:
		remaining = int64(s.Len())
	case io.Seeker:
		if cur, err := s.Seek(0, io.SeekCurrent); err == nil {
			if end, err := s.Seek(0, io.SeekEnd); err == nil {
				if _, err := s.Seek(cur, io.SeekStart); err != nil {
					return nil, fmt.Errorf("%w: seek: %w", ErrRealKV, err)
				}
				if end >= cur {
					remaining = end - cur
				}
			}
		}
	}
	d := &realKVDecoder{r: bufio.NewReaderSize(r, realKVReadBytes), remaining: remaining}
	return d.decode()
}

// prefill returns a one-layer sequence of cfg holding the layer's keys and
// values, appended in one prefill.
func (l *RealKVLayer) prefill(cfg kvcache.Config) (*kvcache.Sequence, error) {
	pool, err := kvcache.NewPool(cfg, 0)
	if err != nil {
		return nil, err
	}
	H, T, d := l.Heads, l.Tokens, l.HeadDim
	keys, values := make([]float32, T*H*d), make([]float32, T*H*d)
	for h := range H {
		for t := range T {
			copy(keys[(t*H+h)*d:], l.K[h][t])
			copy(values[(t*H+h)*d:], l.V[h][t])
		}
	}
	seq := pool.NewSequence()
	if err := seq.Append(0, keys, values); err != nil {
		return nil, err
	}
	return seq, nil
}

type realKVDecoder struct {
	r         *bufio.Reader
	remaining int64 // bytes left in the input, or -1 when unknown
	buf       []byte
}

func realKVErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrRealKV}, args...)...)
}

// need reports an error when n more bytes are certainly not present.
func (d *realKVDecoder) need(n int64, what string) error {
	if d.remaining >= 0 && n > d.remaining {
		return realKVErr("%s needs %d bytes but only %d remain", what, n, d.remaining)
	}
	return nil
}

func (d *realKVDecoder) full(p []byte, what string) error {
	if _, err := io.ReadFull(d.r, p); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return realKVErr("truncated in %s", what)
		}
		return fmt.Errorf("%w: reading %s: %w", ErrRealKV, what, err)
	}
	if d.remaining >= 0 {
		d.remaining -= int64(len(p))
	}
	return nil
}

func (d *realKVDecoder) u32s(dst []uint32, what string) error {
	var b [realKVRecordBytes]byte
	p := b[:4*len(dst)]
	if err := d.full(p, what); err != nil {
		return err
	}
	for i := range dst {
		dst[i] = binary.LittleEndian.Uint32(p[4*i:])
	}
	return nil
}

func (d *realKVDecoder) decode() (*RealKV, error) {
	var magic [8]byte
	if err := d.full(magic[:], "magic"); err != nil {
		return nil, err
	}
	if string(magic[:]) != realKVMagic {
		return nil, realKVErr("bad magic %q (want %q)", magic[:], realKVMagic)
	}
	var hdr [4]uint32
	if err := d.u32s(hdr[:], "header"); err != nil {
		return nil, err
	}
	version, nChunks, nLayers, metaLen := hdr[0], hdr[1], hdr[2], hdr[3]
	switch {
	case version != realKVVersion:
		return nil, realKVErr("unsupported version %d (want %d)", version, realKVVersion)
	case nChunks == 0 || nChunks > realKVMaxChunks:
		return nil, realKVErr("chunk count %d outside 1..%d", nChunks, realKVMaxChunks)
	case nLayers == 0 || nLayers > realKVMaxLayers:
		return nil, realKVErr("layer count %d outside 1..%d", nLayers, realKVMaxLayers)
	case metaLen > realKVMaxMeta:
		return nil, realKVErr("metadata length %d exceeds %d", metaLen, realKVMaxMeta)
	}
	// Every layer record has at least its 16-byte header and 3 values.
	if err := d.need(int64(metaLen)+int64(nChunks)*int64(nLayers)*(realKVRecordBytes+6), "header counts"); err != nil {
		return nil, err
	}
	meta := make([]byte, metaLen)
	if err := d.full(meta, "metadata"); err != nil {
		return nil, err
	}
	if metaLen > 0 && !json.Valid(meta) {
		return nil, realKVErr("metadata is not valid JSON")
	}
	kv := &RealKV{Meta: string(meta)}
	kv.Chunks = make([]RealKVChunk, 0, min(int(nChunks), 1024))
	var totalValues int64
	for c := range int(nChunks) {
		ch := RealKVChunk{Layers: make([]RealKVLayer, 0, nLayers)}
		for li := range int(nLayers) {
			where := fmt.Sprintf("chunk %d layer record %d", c, li)
			var rec [4]uint32
			if err := d.u32s(rec[:], where); err != nil {
				return nil, err
			}
			layer, t, heads, dim := rec[0], rec[1], rec[2], rec[3]
			switch {
			case layer >= realKVMaxLayers:
				return nil, realKVErr("%s: layer index %d exceeds %d", where, layer, realKVMaxLayers-1)
			case t == 0 || t > realKVMaxTokens:
				return nil, realKVErr("%s: token count %d outside 1..%d", where, t, realKVMaxTokens)
			case heads == 0 || heads > realKVMaxHeads:
				return nil, realKVErr("%s: head count %d outside 1..%d", where, heads, realKVMaxHeads)
			case dim == 0 || dim > realKVMaxHeadDim:
				return nil, realKVErr("%s: head dim %d outside 1..%d", where, dim, realKVMaxHeadDim)
			}
			if li > 0 && int(t) != ch.Layers[0].Tokens {
				return nil, realKVErr("%s: %d tokens, but layer record 0 of the chunk has %d", where, t, ch.Layers[0].Tokens)
			}
			for _, prev := range ch.Layers {
				if prev.Layer == int(layer) {
					return nil, realKVErr("%s: layer %d repeated in the chunk", where, layer)
				}
			}
			if c > 0 {
				first := kv.Chunks[0].Layers[li]
				if first.Layer != int(layer) || first.Heads != int(heads) || first.HeadDim != int(dim) {
					return nil, realKVErr("%s: layer %d with %d×%d differs from chunk 0's record (layer %d, %d×%d)",
						where, layer, heads, dim, first.Layer, first.Heads, first.HeadDim)
				}
			}
			n := int64(t) * int64(heads) * int64(dim) // ≤ 2^44, no overflow
			totalValues += 3 * n
			if totalValues > realKVMaxValues {
				return nil, realKVErr("%s: more than %d values in the file", where, realKVMaxValues)
			}
			if err := d.need(6*n, where); err != nil {
				return nil, err
			}
			l := RealKVLayer{Layer: int(layer), Tokens: int(t), Heads: int(heads), HeadDim: int(dim)}
			for _, dst := range []*[][][]float32{&l.Q, &l.K, &l.V} {
				flat, err := d.halfs(int(n), where)
				if err != nil {
					return nil, err
				}
				*dst = realKVViews(flat, l.Heads, l.Tokens, l.HeadDim)
			}
			ch.Layers = append(ch.Layers, l)
		}
		kv.Chunks = append(kv.Chunks, ch)
	}
	if _, err := d.r.ReadByte(); err == nil {
		return nil, realKVErr("trailing bytes after the last record")
	} else if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: after the last record: %w", ErrRealKV, err)
	}
	return kv, nil
}

// halfs reads n fp16 values. With a known remaining length (already checked
// by need) it allocates exactly; otherwise it grows with the data read.
func (d *realKVDecoder) halfs(n int, where string) ([]float32, error) {
	var out []float32
	if d.remaining >= 0 {
		out = make([]float32, 0, n)
	} else {
		out = make([]float32, 0, min(n, realKVReadBytes))
	}
	if d.buf == nil {
		d.buf = make([]byte, realKVReadBytes)
	}
	for left := n; left > 0; {
		k := min(left, len(d.buf)/2)
		p := d.buf[:2*k]
		if err := d.full(p, where); err != nil {
			return nil, err
		}
		for i := range k {
			out = append(out, half.ToFloat32(binary.LittleEndian.Uint16(p[2*i:])))
		}
		left -= k
	}
	return out, nil
}

// realKVViews shapes flat (heads·t·dim values) as [heads][t][dim] views.
func realKVViews(flat []float32, heads, t, dim int) [][][]float32 {
	rows := make([][]float32, heads*t)
	for i := range rows {
		rows[i] = flat[i*dim : (i+1)*dim : (i+1)*dim]
	}
	out := make([][][]float32, heads)
	for h := range out {
		out[h] = rows[h*t : (h+1)*t : (h+1)*t]
	}
	return out
}
