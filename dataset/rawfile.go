package dataset

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
)

// RawVersion is the version of the raw float32 file format.
const RawVersion = 1

const (
	// MaxDim bounds the dimension of a raw file.
	MaxDim = 1 << 16
	// MaxValues bounds count·dim of a raw file (16 GiB of float32).
	MaxValues      = 1 << 32
	rawHeaderBytes = 28
	rawChunk       = 1 << 20
)

var (
	rawMagic   = [4]byte{'T', 'Q', 'V', 'F'}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFormat}, args...)...)
}

// RawWriter streams vectors into the raw format: the count is fixed up front
// (the header comes first), Write takes whole vectors, and Close checks the
// count and writes the trailer.
type RawWriter struct {
	w    *bufio.Writer
	dim  int
	left int64
	crc  uint32
	buf  []byte
	err  error
}

// NewRawWriter writes the header of a file of count vectors of dim values.
func NewRawWriter(w io.Writer, dim int, count int64) (*RawWriter, error) {
	if dim < 1 || dim > MaxDim || count < 0 || uint64(count)*uint64(dim) > MaxValues {
		return nil, fmt.Errorf("%w: %d vectors of dim %d", ErrArgument, count, dim)
	}
	h := make([]byte, 0, rawHeaderBytes)
	h = append(h, rawMagic[:]...)
	h = binary.LittleEndian.AppendUint16(h, RawVersion)
	h = binary.LittleEndian.AppendUint16(h, 0)
	h = binary.LittleEndian.AppendUint32(h, uint32(dim))
	h = binary.LittleEndian.AppendUint32(h, 0)
	h = binary.LittleEndian.AppendUint64(h, uint64(count))
	h = binary.LittleEndian.AppendUint32(h, crc32.Checksum(h, castagnoli))
	rw := &RawWriter{w: bufio.NewWriterSize(w, rawChunk), dim: dim, left: count}
	_, rw.err = rw.w.Write(h)
	return rw, rw.err
}

// Write appends vectors (len a multiple of dim, every value finite).
func (rw *RawWriter) Write(vectors []float32) error {
	if rw.err != nil {
		return rw.err
	}
	if len(vectors)%rw.dim != 0 || int64(len(vectors)/rw.dim) > rw.left {
		return fmt.Errorf("%w: %d values for dim %d with %d vectors left", ErrArgument, len(vectors), rw.dim, rw.left)
	}
	for i, x := range vectors {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("%w: value %d of vector %d is %v", ErrArgument, i%rw.dim, i/rw.dim, x)
		}
	}
	rw.buf = rw.buf[:0]
	for _, x := range vectors {
		rw.buf = binary.LittleEndian.AppendUint32(rw.buf, math.Float32bits(x))
	}
	rw.crc = crc32.Update(rw.crc, castagnoli, rw.buf)
	_, rw.err = rw.w.Write(rw.buf)
	rw.left -= int64(len(vectors) / rw.dim)
	return rw.err
}

// Close writes the trailer; it fails if fewer vectors than promised were
// written. It does not close the underlying writer.
func (rw *RawWriter) Close() error {
	if rw.err != nil {
		return rw.err
	}
	if rw.left != 0 {
		return fmt.Errorf("%w: %d promised vectors were not written", ErrArgument, rw.left)
	}
	var t [4]byte
	binary.LittleEndian.PutUint32(t[:], rw.crc)
	if _, err := rw.w.Write(t[:]); err != nil {
		return err
	}
	return rw.w.Flush()
}

// WriteRaw writes v to w in the raw format.
func WriteRaw(w io.Writer, v *Vectors) error {
	rw, err := NewRawWriter(w, v.Dim, int64(v.Len()))
	if err != nil {
		return err
	}
	for i := 0; i < len(v.Data); i += rawChunk / 4 / v.Dim * v.Dim {
		if err := rw.Write(v.Data[i:min(len(v.Data), i+rawChunk/4/v.Dim*v.Dim)]); err != nil {
			return err
		}
	}
	return rw.Close()
}

// ReadRaw reads a raw file. Allocation grows with the bytes that arrive
// (at most 1 MiB ahead of them), so a hostile header cannot make it allocate
// more than the input holds. Errors wrap ErrFormat.
func ReadRaw(r io.Reader) (*Vectors, error) {
	var h [rawHeaderBytes]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, formatErr("header: %v", err)
	}
	if [4]byte(h[:4]) != rawMagic {
		return nil, formatErr("bad magic %q", h[:4])
	}
	if got, want := crc32.Checksum(h[:24], castagnoli), binary.LittleEndian.Uint32(h[24:]); got != want {
		return nil, formatErr("header checksum mismatch")
	}
	if v := binary.LittleEndian.Uint16(h[4:]); v != RawVersion {
		return nil, formatErr("version %d, this build reads %d", v, RawVersion)
	}
	if binary.LittleEndian.Uint16(h[6:]) != 0 || binary.LittleEndian.Uint32(h[12:]) != 0 {
		return nil, formatErr("reserved fields are not zero")
	}
	dim := binary.LittleEndian.Uint32(h[8:])
	count := binary.LittleEndian.Uint64(h[16:])
	if dim < 1 || dim > MaxDim {
		return nil, formatErr("dim %d outside [1, %d]", dim, MaxDim)
	}
	if count > MaxValues/uint64(dim) {
		return nil, formatErr("%d vectors of dim %d exceed %d values", count, dim, uint64(MaxValues))
	}
	total := int(count * uint64(dim))
	v := &Vectors{Dim: int(dim)}
	buf := make([]byte, rawChunk)
	var crc uint32
	for len(v.Data) < total {
		n := min(total-len(v.Data), rawChunk/4)
		b := buf[:4*n]
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, formatErr("data truncated after %d of %d values: %v", len(v.Data), total, err)
		}
		crc = crc32.Update(crc, castagnoli, b)
		v.Data = growBy(v.Data, n)
		start := len(v.Data) - n
		for i := range n {
			x := math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, formatErr("value %d is %v", start+i, x)
			}
			v.Data[start+i] = x
		}
	}
	var t [4]byte
	if _, err := io.ReadFull(r, t[:]); err != nil {
		return nil, formatErr("trailer: %v", err)
	}
	if binary.LittleEndian.Uint32(t[:]) != crc {
		return nil, formatErr("data checksum mismatch")
	}
	if n, _ := r.Read(t[:1]); n != 0 {
		return nil, formatErr("trailing bytes after the trailer")
	}
	return v, nil
}

// growBy extends s by n elements, doubling capacity so that reading a large
// file costs amortized linear copying.
func growBy(s []float32, n int) []float32 {
	if len(s)+n > cap(s) {
		c := max(2*cap(s), len(s)+n)
		t := make([]float32, len(s), c)
		copy(t, s)
		s = t
	}
	return s[:len(s)+n]
}

// ReadRawFile reads a raw file from disk. Its size must match its header
// exactly, which is checked before anything is allocated.
func ReadRawFile(path string) (*Vectors, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var h [rawHeaderBytes]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return nil, fmt.Errorf("%s: %w", path, formatErr("header: %v", err))
	}
	dim, count := uint64(binary.LittleEndian.Uint32(h[8:])), binary.LittleEndian.Uint64(h[16:])
	if dim >= 1 && dim <= MaxDim && count <= MaxValues/dim {
		if want := rawHeaderBytes + 4*dim*count + 4; uint64(st.Size()) != want {
			return nil, fmt.Errorf("%s: %w", path, formatErr("%d bytes, header implies %d", st.Size(), want))
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	v, err := ReadRaw(bufio.NewReaderSize(f, rawChunk))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// WriteRawFile writes v to path atomically (a temporary file renamed into
// place), so an interrupted fetch never leaves a truncated cache file.
func WriteRawFile(path string, v *Vectors) error {
	return writeAtomically(path, func(w io.Writer) error { return WriteRaw(w, v) })
}

func writeAtomically(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(dirOf(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil { // CreateTemp makes it 0600
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func crc32Update(c uint32, b []byte) uint32 { return crc32.Update(c, castagnoli, b) }
