package ann

import (
	"encoding/binary"
	"hash/crc32"
	"math"
)

// PCA quantizer encoding, little-endian:
//
//	magic "TQAP", u16 version (1), u16 flags (pcaByteFields), u32 dim,
//	u8 bits, u8 metric, u16 reserved (0), u32 kept, f64 dropped variance,
//	kept u8 bits (1–8, summing to at most bits·dim), kept f32 standard
//	deviations (> 0), dim f32 mean, kept·dim f32 axes, u32 CRC-32C of all
//	before it.
//
// The code layout is not stored: packFields derives it from the bits.
var pcaMagic = [4]byte{'T', 'Q', 'A', 'P'}

// pcaByteFields is the flag of codes whose fields do not straddle bytes
// (packFields). Every PCA file has it; the bit-packed layout of the first
// build, which had none, is refused rather than misread.
const pcaByteFields = 1

const pcaFixed = 28

// maxPCABytes bounds a serialized PCA quantizer.
const maxPCABytes = pcaFixed + MaxPCADim*(1+4+4) + 4*MaxPCADim*MaxPCADim + 4

// MarshalBinary encodes the fitted model (mean, axes, allocation).
func (p *PCA) MarshalBinary() ([]byte, error) {
	kept := len(p.alloc)
	b := make([]byte, 0, pcaFixed+kept*5+4*p.dim*(1+kept)+4)
	b = append(b, pcaMagic[:]...)
	b = binary.LittleEndian.AppendUint16(b, FormatVersion)
	b = binary.LittleEndian.AppendUint16(b, pcaByteFields)
	b = binary.LittleEndian.AppendUint32(b, uint32(p.dim))
	b = append(b, byte(p.bits), byte(p.metric), 0, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(kept))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.dropVar))
	b = append(b, p.alloc...)
	for _, fs := range [][]float32{p.sigma, p.mean, p.axes} {
		for _, v := range fs {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// UnmarshalPCA rebuilds a quantizer written by PCA.MarshalBinary. Errors
// wrap ErrFormat.
func UnmarshalPCA(data []byte) (*PCA, error) {
	if len(data) < pcaFixed+4 || [4]byte(data[:4]) != pcaMagic {
		return nil, formatErr("PCA quantizer: %d bytes without the magic", len(data))
	}
	if crc32.Checksum(data[:len(data)-4], castagnoli) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return nil, formatErr("PCA quantizer: checksum mismatch")
	}
	if v := binary.LittleEndian.Uint16(data[4:]); v != FormatVersion {
		return nil, formatErr("PCA quantizer: version %d, this build reads %d", v, FormatVersion)
	}
	dim, bits, metric := int(binary.LittleEndian.Uint32(data[8:])), int(data[12]), Metric(data[13])
	kept := uint64(binary.LittleEndian.Uint32(data[16:]))
	switch {
	case binary.LittleEndian.Uint16(data[6:]) != pcaByteFields:
		return nil, formatErr("PCA quantizer: flags %#x, this build reads %#x (refit codes of an earlier build)", binary.LittleEndian.Uint16(data[6:]), pcaByteFields)
	case data[14] != 0 || data[15] != 0:
		return nil, formatErr("PCA quantizer: reserved fields are not zero")
	case dim < 2 || dim > MaxPCADim || bits < 1 || bits > 8:
		return nil, formatErr("PCA quantizer: dim %d, bits %d", dim, bits)
	case metric != InnerProduct && metric != Cosine && metric != L2:
		return nil, formatErr("PCA quantizer: metric %d", metric)
	case kept == 0 || kept > uint64(dim) || uint64(len(data)) != pcaFixed+kept*5+4*uint64(dim)*(1+kept)+4:
		return nil, formatErr("PCA quantizer: %d kept axes of dim %d in %d bytes", kept, dim, len(data))
	}
	p := &PCA{dim: dim, bits: bits, metric: metric,
		dropVar: math.Float64frombits(binary.LittleEndian.Uint64(data[20:]))}
	if !(p.dropVar >= 0) || math.IsInf(p.dropVar, 0) {
		return nil, formatErr("PCA quantizer: dropped variance %v", p.dropVar)
	}
	off := pcaFixed
	p.alloc = append([]uint8(nil), data[off:off+int(kept)]...)
	off += int(kept)
	total := 0
	for _, b := range p.alloc {
		if b < 1 || b > 8 {
			return nil, formatErr("PCA quantizer: an axis of %d bits", b)
		}
		total += int(b)
	}
	if total > bits*dim {
		return nil, formatErr("PCA quantizer: the axes' bits sum to %d, over %d·%d", total, bits, dim)
	}
	floats := func(n int) ([]float32, error) {
		fs := make([]float32, n)
		for i := range fs {
			fs[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[off+4*i:]))
			if math.IsNaN(float64(fs[i])) || math.IsInf(float64(fs[i]), 0) {
				return nil, formatErr("PCA quantizer: a non-finite parameter")
			}
		}
		off += 4 * n
		return fs, nil
	}
	var err error
	if p.sigma, err = floats(int(kept)); err != nil {
		return nil, err
	}
	for _, s := range p.sigma {
		if !(s > 0) {
			return nil, formatErr("PCA quantizer: standard deviation %v", s)
		}
	}
	if p.mean, err = floats(dim); err != nil {
		return nil, err
	}
	if p.axes, err = floats(int(kept) * dim); err != nil {
		return nil, err
	}
	books, err := unitGaussianBooks()
	if err != nil {
		return nil, err
	}
	if err := p.prepare(books); err != nil {
		return nil, formatErr("PCA quantizer: %v", err)
	}
	return p, nil
}

// unmarshalQuantizer rebuilds a TQ or PCA quantizer from its encoding.
func unmarshalQuantizer(data []byte) (Quantizer, error) {
	if len(data) >= 4 && [4]byte(data[:4]) == pcaMagic {
		return UnmarshalPCA(data)
	}
	return UnmarshalTQ(data)
}
