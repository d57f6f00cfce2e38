package turboquant

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"math"

	"github.com/turboquant-go/tq/lloydmax"
	"github.com/turboquant-go/tq/polarquant"
	"github.com/turboquant-go/tq/qjl"
)

// Spec is everything needed to rebuild a Quantizer elsewhere and decode its
// codes: the configuration and a fingerprint of the codebooks, rotation and
// sketch this build derives from it. A Spec whose fingerprint differs from
// what the reading build computes is rejected with ErrSpec, so codes are
// never silently decoded with the wrong tables.
type Spec struct {
	Version     uint16
	Config      Config
	Fingerprint uint64
}

// SpecVersion is the version of the Spec encoding and of the code layout.
const SpecVersion = 1

var (
	specMagic  = [4]byte{'T', 'Q', 'Q', 'S'}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

const specFixed = 4 + 2 + 2 + 8 + 4 + 8 + 4 // magic … outlier count
const specTrailer = 8 + 4                   // fingerprint, CRC-32C

// Spec returns the quantizer's spec.
func (q *Quantizer) Spec() Spec {
	return Spec{Version: SpecVersion, Config: q.Config(), Fingerprint: q.fingerprint()}
}

// fingerprint hashes what the code layout depends on beyond the config: the
// codebooks, and the rotation and sketch as computed on a probe vector, so a
// change in any of them (or a platform that computes them differently) is
// detected when a spec is read.
func (q *Quantizer) fingerprint() uint64 {
	h := fnv.New64a()
	var b [8]byte
	put := func(v uint64) {
		binary.LittleEndian.PutUint64(b[:], v)
		h.Write(b[:])
	}
	// Codebooks are hashed as the float32 values encode and decode use: a
	// solver whose float64 result differs in the last bits on another
	// platform (fused multiply-adds) still yields the same codes.
	putCodebook := func(cb *lloydmax.Codebook) {
		for _, v := range cb.Centroids32 {
			put(uint64(math.Float32bits(v)))
		}
		for _, v := range cb.Boundaries32 {
			put(uint64(math.Float32bits(v)))
		}
	}
	put(SpecVersion)
	for _, c := range q.parts {
		put(uint64(c.dim))
		if c.cb != nil {
			putCodebook(c.cb)
		}
		if t := c.tail; t != nil {
			put(uint64(t.n))
			putCodebook(t.cb)
		}
		if c.polar != nil {
			for l := 1; l <= polarquant.Levels; l++ {
				putCodebook(polarquant.AngleCodebook(l))
			}
		}
		probe := make([]float32, c.dim)
		out := make([]float32, c.dim)
		for i := range probe {
			probe[i] = float32(i%7) - 3
		}
		c.rot.Forward(out, probe)
		for _, v := range out {
			put(uint64(math.Float32bits(v)))
		}
		if c.sketch != nil {
			proj := make([]float32, c.sketch.Rows())
			c.sketch.Project(proj, probe, make([]float32, c.sketch.ScratchLen()))
			for _, v := range proj {
				put(uint64(math.Float32bits(v)))
			}
		}
	}
	return h.Sum64()
}

// MarshalBinary encodes the spec: magic "TQQS", version, the split's
// coordinates (u16, 0 without a split; the field was reserved before
// splits existed, so older readers refuse a split), the config fields, the
// outlier channels, the fingerprint and a CRC-32C of all that precedes. The
// byte of the outlier bits holds the split's bits when there is a split.
func (s Spec) MarshalBinary() ([]byte, error) {
	c := s.Config
	var channels []int
	outBits, splitCoords := 0, 0
	if c.Outliers != nil {
		channels, outBits = c.Outliers.Channels, c.Outliers.Bits
	}
	if c.Split != nil {
		outBits, splitCoords = c.Split.Bits, c.Split.Coords
	}
	buf := make([]byte, 0, specFixed+4*len(channels)+specTrailer)
	buf = append(buf, specMagic[:]...)
	buf = binary.LittleEndian.AppendUint16(buf, s.Version)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(splitCoords))
	buf = append(buf, byte(c.Method), byte(c.Norm), byte(c.Correction), byte(c.Codebook),
		byte(c.Sketch), byte(c.Rounds), byte(c.Bits), byte(outBits))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(c.Dim))
	buf = binary.LittleEndian.AppendUint64(buf, c.Seed)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(channels)))
	for _, ch := range channels {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(ch))
	}
	buf = binary.LittleEndian.AppendUint64(buf, s.Fingerprint)
	return binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli)), nil
}

// UnmarshalBinary decodes a spec written by MarshalBinary. It checks the
// magic, version, checksum and lengths, and validates the configuration; it
// allocates no more than the input's length justifies.
func (s *Spec) UnmarshalBinary(data []byte) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrSpec}, args...)...)
	}
	if len(data) < specFixed+specTrailer {
		return bad("%d bytes, shorter than the smallest spec", len(data))
	}
	if [4]byte(data[:4]) != specMagic {
		return bad("bad magic %q", data[:4])
	}
	body := data[:len(data)-4]
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(data[len(data)-4:]); got != want {
		return bad("checksum mismatch")
	}
	version := binary.LittleEndian.Uint16(data[4:])
	if version != SpecVersion {
		return bad("version %d, this build reads %d", version, SpecVersion)
	}
	f := data[8:16]
	c := Config{
		Method: Method(f[0]), Norm: Precision(f[1]), Correction: Correction(f[2]),
		Codebook: lloydmax.Family(f[3]), Sketch: qjl.Kind(f[4]), Rounds: int(f[5]), Bits: int(f[6]),
		Dim:  int(binary.LittleEndian.Uint32(data[16:])),
		Seed: binary.LittleEndian.Uint64(data[20:]),
	}
	n := binary.LittleEndian.Uint32(data[28:])
	if uint64(len(data)) != specFixed+specTrailer+4*uint64(n) {
		return bad("%d outlier channels do not match the %d-byte length", n, len(data))
	}
	splitCoords := int(binary.LittleEndian.Uint16(data[6:]))
	switch {
	case splitCoords > 0 && n > 0:
		return bad("a split of %d coordinates and %d outlier channels", splitCoords, n)
	case splitCoords > 0:
		c.Split = &Split{Coords: splitCoords, Bits: int(f[7])}
	case n == 0 && f[7] != 0:
		return bad("outlier bits %d without outlier channels", f[7])
	}
	if n > 0 {
		o := &Outliers{Bits: int(f[7]), Channels: make([]int, n)}
		for i := range o.Channels {
			o.Channels[i] = int(binary.LittleEndian.Uint32(data[specFixed+4*i:]))
		}
		c.Outliers = o
	}
	if err := c.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrSpec, err)
	}
	*s = Spec{Version: version, Config: c, Fingerprint: binary.LittleEndian.Uint64(data[len(data)-specTrailer:])}
	return nil
}

// NewFromSpec rebuilds the Quantizer a spec describes, and fails with ErrSpec
// when this build's codebooks, rotation or sketch differ from the writer's.
func NewFromSpec(s Spec) (*Quantizer, error) {
	if s.Version != SpecVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads %d", ErrSpec, s.Version, SpecVersion)
	}
	q, err := New(s.Config)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSpec, err)
	}
	if fp := q.fingerprint(); fp != s.Fingerprint {
		return nil, fmt.Errorf("%w: fingerprint %#x, this build computes %#x", ErrSpec, s.Fingerprint, fp)
	}
	return q, nil
}
