package llm

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/turboquant-go/tq/internal/half"
	"github.com/turboquant-go/tq/internal/simd"
)

// storage is how a matrix's rows are held.
type storage uint8

const (
	storeF32    storage = iota // float32 rows, read in place
	storeF16                   // fp16 rows, converted by the SIMD kernel as loaded
	storeQ8_0                  // ggml Q8_0 blocks, read by the fused SIMD kernel
	storeQ4_0                  // ggml Q4_0 blocks, read by the fused SIMD kernel
	storeBlocks                // other quantized blocks, expanded per chunk of rows
)

// Matrix is a weight matrix of Rows × Cols, row-major, as GGUF stores a
// torch Linear weight [out, in] (ne0 = in). Products read it in place: the
// mapped file is the only copy of the weights.
type Matrix struct {
	Name       string
	Rows, Cols int
	store      storage
	f32        []float32
	raw        []byte
	rowBytes   int
	// expand writes rows' values from their raw bytes (storeBlocks).
	expand func(dst []float32, src []byte) error
}

// NewMatrixF32 wraps float32 row-major data (tests, synthetic models).
func NewMatrixF32(name string, rows, cols int, data []float32) (*Matrix, error) {
	if rows <= 0 || cols <= 0 || len(data) != rows*cols {
		return nil, fmt.Errorf("%w: %s: %d values for %d×%d", ErrModel, name, len(data), rows, cols)
	}
	return &Matrix{Name: name, Rows: rows, Cols: cols, store: storeF32, f32: data}, nil
}

// newMatrixRaw wraps a tensor's raw bytes.
func newMatrixRaw(name string, rows, cols int, st storage, raw []byte, rowBytes int,
	expand func(dst []float32, src []byte) error) (*Matrix, error) {
	if rows <= 0 || cols <= 0 || rowBytes <= 0 || len(raw) != rows*rowBytes {
		return nil, fmt.Errorf("%w: %s: %d bytes for %d rows of %d", ErrModel, name, len(raw), rows, rowBytes)
	}
	m := &Matrix{Name: name, Rows: rows, Cols: cols, store: st, raw: raw, rowBytes: rowBytes, expand: expand}
	if st == storeF32 {
		m.f32 = bytesAsFloat32(raw)
		m.raw = nil
	}
	return m, nil
}

// bytesAsFloat32 views little-endian float32 bytes in place when they are
// aligned (a mapped file's tensors are), copying otherwise.
func bytesAsFloat32(b []byte) []float32 {
	n := len(b) / 4
	if n == 0 {
		return nil
	}
	if uintptr(unsafe.Pointer(&b[0]))%4 == 0 {
		return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
	}
	f := make([]float32, n)
	for i := range f {
		f[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return f
}

// Bytes is the matrix's weight bytes as stored.
func (m *Matrix) Bytes() int64 {
	if m.store == storeF32 {
		return int64(len(m.f32)) * 4
	}
	return int64(len(m.raw))
}

// Row writes row i's values into dst (len Cols).
func (m *Matrix) Row(i int, dst []float32) error {
	if i < 0 || i >= m.Rows || len(dst) != m.Cols {
		return fmt.Errorf("%w: row %d of %s (%d×%d) into %d values", ErrArgument, i, m.Name, m.Rows, m.Cols, len(dst))
	}
	switch m.store {
	case storeF32:
		copy(dst, m.f32[i*m.Cols:(i+1)*m.Cols])
	case storeF16:
		src := m.raw[i*m.rowBytes:]
		for j := range dst {
			dst[j] = half.ToFloat32(binary.LittleEndian.Uint16(src[2*j:]))
		}
	default: // every block type keeps its expand function for single rows
		return m.expand(dst, m.raw[i*m.rowBytes:(i+1)*m.rowBytes])
	}
	return nil
}

// chunkBytes is the weight bytes one worker takes at a time: small enough
// to stay in L2 while every token of a prefill batch is multiplied into it.
const chunkBytes = 64 << 10

// parallelMin is the matrix size (elements) below which a product runs on
// one goroutine: a decode step of a tiny model is cheaper than a wake-up.
const parallelMin = 1 << 16

// expandScratch holds the float32 rows quantized blocks are expanded into,
// reused across products.
var expandScratch sync.Pool // *[]float32

func getScratch(n int) *[]float32 {
	p, _ := expandScratch.Get().(*[]float32)
	if p == nil || cap(*p) < n {
		s := make([]float32, n)
		p = &s
	}
	return p
}

// q8Scratch holds quantized activations, reused across products.
var q8Scratch sync.Pool // *simd.Q8Rows

func getQ8Rows() *simd.Q8Rows {
	if p, _ := q8Scratch.Get().(*simd.Q8Rows); p != nil {
		return p
	}
	return new(simd.Q8Rows)
}

// MulT computes y[t][r] = Σ_c x[t][c]·W[r][c] for the T = len(x)/Cols rows of
// x, splitting W's rows over the cores. y has T·Rows values and is
// overwritten.
func (m *Matrix) MulT(y, x []float32) error {
	T := len(x) / m.Cols
	if T == 0 || len(x) != T*m.Cols || len(y) != T*m.Rows {
		return fmt.Errorf("%w: %s (%d×%d) times %d inputs into %d outputs", ErrArgument, m.Name, m.Rows, m.Cols, len(x), len(y))
	}
	clear(y)
	// Q8_0 and Q4_0 weights multiply int8 activations, as ggml does: x is
	// quantized once (in blocks of 32) for every worker.
	var xq *simd.Q8Rows
	if m.store == storeQ8_0 || m.store == storeQ4_0 {
		xq = getQ8Rows()
		defer q8Scratch.Put(xq)
		xq.Quantize(x, m.Cols)
	}
	rowBytes := m.Cols * 4
	if m.store != storeF32 && m.store != storeBlocks {
		rowBytes = m.rowBytes
	}
	chunk := max(1, chunkBytes/rowBytes)
	if xq != nil {
		chunk = max(4, chunk&^3) // the int8 kernels take weight rows in fours
	}
	chunks := (m.Rows + chunk - 1) / chunk
	workers := 1
	if m.Rows*m.Cols*T >= parallelMin {
		workers = min(runtime.GOMAXPROCS(0), chunks)
	}
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	work := func() {
		var scratch *[]float32
		defer func() {
			if scratch != nil {
				expandScratch.Put(scratch)
			}
		}()
		for {
			c := int(next.Add(1) - 1)
			if c >= chunks {
				return
			}
			lo := c * chunk
			n := min(chunk, m.Rows-lo)
			out := y[lo:]
			switch m.store {
			case storeF32:
				simd.Dot(out, m.Rows, x, m.f32[lo*m.Cols:(lo+n)*m.Cols], n, m.Cols, m.Cols, nil)
			case storeF16:
				simd.DotF16(out, m.Rows, x, m.raw[lo*m.rowBytes:(lo+n)*m.rowBytes], n, m.Cols, m.Cols, nil)
			case storeQ8_0:
				simd.DotQ8_0Q8(out, m.Rows, xq, m.raw[lo*m.rowBytes:(lo+n)*m.rowBytes], n)
			case storeQ4_0:
				simd.DotQ4_0Q8(out, m.Rows, xq, m.raw[lo*m.rowBytes:(lo+n)*m.rowBytes], n)
			default:
				if scratch == nil {
					scratch = getScratch(chunk * m.Cols)
				}
				rows := (*scratch)[:n*m.Cols]
				for r := range n {
					if err := m.expand(rows[r*m.Cols:(r+1)*m.Cols], m.raw[(lo+r)*m.rowBytes:(lo+r+1)*m.rowBytes]); err != nil {
						errOnce.Do(func() { firstErr = fmt.Errorf("%w: %s row %d: %v", ErrModel, m.Name, lo+r, err) })
						return
					}
				}
				simd.Dot(out, m.Rows, x, rows, n, m.Cols, m.Cols, nil)
			}
		}
	}
	if workers <= 1 {
		work()
		return firstErr
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(work)
	}
	wg.Wait()
	return firstErr
}
