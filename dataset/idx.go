package dataset

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// IDX is an array in the idx format of MNIST and Fashion-MNIST: a 4-byte
// magic (0, 0, type 0x08 = unsigned byte, number of dimensions), the
// dimensions as big-endian u32, then the bytes row-major.
type IDX struct {
	Dims []int
	Data []byte
}

const idxMaxDims = 4

// ReadIDX reads an unsigned-byte idx array. The data is read in 1 MiB
// pieces, so a header promising more than the input holds costs at most that.
func ReadIDX(r io.Reader) (*IDX, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, formatErr("idx header: %v", err)
	}
	if h[0] != 0 || h[1] != 0 || h[2] != 0x08 {
		return nil, formatErr("idx magic % x: want 00 00 08 (unsigned bytes)", h[:3])
	}
	nd := int(h[3])
	if nd < 1 || nd > idxMaxDims {
		return nil, formatErr("idx with %d dimensions, want 1–%d", nd, idxMaxDims)
	}
	x := &IDX{Dims: make([]int, nd)}
	total := uint64(1)
	for i := range x.Dims {
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, formatErr("idx dimension %d: %v", i, err)
		}
		d := binary.BigEndian.Uint32(b[:])
		total *= uint64(d)
		if total > MaxValues {
			return nil, formatErr("idx of more than %d bytes", uint64(MaxValues))
		}
		x.Dims[i] = int(d)
	}
	for uint64(len(x.Data)) < total {
		n := int(min(total-uint64(len(x.Data)), rawChunk))
		start := len(x.Data)
		if len(x.Data)+n > cap(x.Data) {
			t := make([]byte, len(x.Data), max(2*cap(x.Data), len(x.Data)+n))
			copy(t, x.Data)
			x.Data = t
		}
		x.Data = x.Data[:start+n]
		if _, err := io.ReadFull(r, x.Data[start:]); err != nil {
			return nil, formatErr("idx data truncated after %d of %d bytes: %v", start, total, err)
		}
	}
	return x, nil
}

// ReadIDXFile reads a gzip-compressed (name ending in .gz) or plain idx file.
func ReadIDXFile(path string) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReaderSize(f, rawChunk)
	if len(path) > 3 && path[len(path)-3:] == ".gz" {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, formatErr("gzip: %v", err))
		}
		r = zr
	}
	x, err := ReadIDX(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return x, nil
}

// Images converts an images array (n × rows × cols, or n × dim) to vectors
// of pixel values 0–255 as float32.
func (x *IDX) Images() (*Vectors, error) {
	if len(x.Dims) < 2 {
		return nil, fmt.Errorf("%w: idx of %d dimensions is not a set of images", ErrFormat, len(x.Dims))
	}
	dim := 1
	for _, d := range x.Dims[1:] {
		dim *= d
	}
	if dim < 1 || dim > MaxDim {
		return nil, fmt.Errorf("%w: image of %d pixels", ErrFormat, dim)
	}
	v := &Vectors{Dim: dim, Data: make([]float32, len(x.Data))}
	for i, b := range x.Data {
		v.Data[i] = float32(b)
	}
	return v, nil
}
