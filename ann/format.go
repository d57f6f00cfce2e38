package ann

// Index files, version 1. Integers are little-endian.
//
//	preamble  magic ("TQAF" flat, "TQAI" IVF), u16 version (1), u16 reserved (0)
//	section   u64 n, n payload bytes, u32 CRC-32C (Castagnoli) of the 8
//	          length bytes and the payload
//
// Flat: sections (1) the quantizer (TQ.MarshalBinary, or PCA.MarshalBinary:
// pca_format.go), (2) u64 count,
// (3) the count codes, back to back.
//
// IVF: sections (1) the quantizer, (2) u32 lists, u32 dim, u64 count,
// (3) the centroids, lists·dim float32, finite, (4) the list lengths, lists
// u64 summing to count, then one section per list: its ids (u64 each, every
// id below count and each id in exactly one list) followed by its codes.
//
// Every section length is checked against what the sections before it
// imply before it is read, and payloads grow in 64 KiB steps as bytes arrive,
// so a truncated or hostile file costs no more memory than it holds. The
// format is canonical: an index that reads a file writes the same bytes.

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// FormatVersion is the version of the quantizer and index encodings.
const FormatVersion = 1

var (
	flatMagic = [4]byte{'T', 'Q', 'A', 'F'}
	ivfMagic  = [4]byte{'T', 'Q', 'A', 'I'}
)

const (
	readChunk = 1 << 16
	// maxSection bounds a section so that no size derived from it overflows.
	maxSection = 1 << 48
)

type sectionWriter struct {
	w   *bufio.Writer
	n   int64
	err error
}

func newSectionWriter(w io.Writer, magic [4]byte) *sectionWriter {
	sw := &sectionWriter{w: bufio.NewWriterSize(w, readChunk)}
	var pre [8]byte
	copy(pre[:], magic[:])
	binary.LittleEndian.PutUint16(pre[4:], FormatVersion)
	sw.write(pre[:])
	return sw
}

func (sw *sectionWriter) write(b []byte) {
	if sw.err != nil {
		return
	}
	n, err := sw.w.Write(b)
	sw.n += int64(n)
	sw.err = err
}

// section writes one section whose payload is the concatenation of parts.
func (sw *sectionWriter) section(parts ...[]byte) {
	var n uint64
	for _, p := range parts {
		n += uint64(len(p))
	}
	var l [8]byte
	binary.LittleEndian.PutUint64(l[:], n)
	crc := crc32.Update(0, castagnoli, l[:])
	sw.write(l[:])
	for _, p := range parts {
		crc = crc32.Update(crc, castagnoli, p)
		sw.write(p)
	}
	var c [4]byte
	binary.LittleEndian.PutUint32(c[:], crc)
	sw.write(c[:])
}

func (sw *sectionWriter) finish() (int64, error) {
	if sw.err == nil {
		sw.err = sw.w.Flush()
	}
	return sw.n, sw.err
}

type sectionReader struct {
	r *bufio.Reader
}

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFormat}, args...)...)
}

func newSectionReader(r io.Reader, magic [4]byte) (*sectionReader, error) {
	sr := &sectionReader{r: bufio.NewReaderSize(r, readChunk)}
	var pre [8]byte
	if _, err := io.ReadFull(sr.r, pre[:]); err != nil {
		return nil, formatErr("preamble: %v", err)
	}
	if [4]byte(pre[:4]) != magic {
		return nil, formatErr("bad magic %q, want %q", pre[:4], magic[:])
	}
	if v := binary.LittleEndian.Uint16(pre[4:]); v != FormatVersion {
		return nil, formatErr("version %d, this build reads %d", v, FormatVersion)
	}
	if binary.LittleEndian.Uint16(pre[6:]) != 0 {
		return nil, formatErr("reserved field is not zero")
	}
	return sr, nil
}

// section reads the next section. want ≥ 0 is the exact payload length the
// caller expects; -1 accepts any length up to limit.
func (sr *sectionReader) section(what string, want int64, limit int64) ([]byte, error) {
	var l [8]byte
	if _, err := io.ReadFull(sr.r, l[:]); err != nil {
		return nil, formatErr("%s: length: %v", what, err)
	}
	n := binary.LittleEndian.Uint64(l[:])
	if want >= 0 && n != uint64(want) {
		return nil, formatErr("%s: %d bytes, expected %d", what, n, want)
	}
	if n > uint64(limit) || n > maxSection {
		return nil, formatErr("%s: %d bytes, more than %d", what, n, limit)
	}
	var buf []byte
	for uint64(len(buf)) < n {
		m := int(min(n-uint64(len(buf)), readChunk))
		start := len(buf)
		if start+m > cap(buf) {
			nb := make([]byte, start, max(2*cap(buf), start+m))
			copy(nb, buf)
			buf = nb
		}
		buf = buf[:start+m]
		if _, err := io.ReadFull(sr.r, buf[start:]); err != nil {
			return nil, formatErr("%s: truncated after %d of %d bytes: %v", what, start, n, err)
		}
	}
	var c [4]byte
	if _, err := io.ReadFull(sr.r, c[:]); err != nil {
		return nil, formatErr("%s: checksum: %v", what, err)
	}
	crc := crc32.Update(crc32.Update(0, castagnoli, l[:]), castagnoli, buf)
	if crc != binary.LittleEndian.Uint32(c[:]) {
		return nil, formatErr("%s: checksum mismatch", what)
	}
	return buf, nil
}

// end checks that nothing follows the last section.
func (sr *sectionReader) end() error {
	if _, err := sr.r.ReadByte(); err != io.EOF {
		return formatErr("bytes after the last section")
	}
	return nil
}
