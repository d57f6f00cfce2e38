//go:build linux

package simd

import (
	"math"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"unsafe"
)

// fenced returns a page of memory with an inaccessible page on each side:
// a kernel that reads past its contract (Slack bytes after a code's index
// stream, nothing after fp16 or float rows) faults instead of passing.
func fenced(t *testing.T) []byte {
	t.Helper()
	ps := os.Getpagesize()
	m, err := syscall.Mmap(-1, 0, 3*ps, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	t.Cleanup(func() { syscall.Munmap(m) })
	if err := syscall.Mprotect(m[:ps], syscall.PROT_NONE); err != nil {
		t.Skipf("mprotect: %v", err)
	}
	if err := syscall.Mprotect(m[2*ps:], syscall.PROT_NONE); err != nil {
		t.Skipf("mprotect: %v", err)
	}
	return m[ps : 2*ps : 2*ps]
}

func floatsAt(page []byte, off, n int) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(&page[off])), n)
}

// TestKernelsStayInsideTheirInputs places each input flush against the
// start and against the end of a fenced page.
func TestKernelsStayInsideTheirInputs(t *testing.T) {
	levels := vectorLevels(t)
	page, wPage := fenced(t), fenced(t)
	r := rand.New(rand.NewPCG(21, 22))
	fill := func(b []byte) {
		for i := range b {
			b[i] = byte(r.Uint32())
		}
	}
	for _, l := range levels {
		for _, atEnd := range []bool{false, true} {
			place := func(size, spare int) int { // offset of an input of size bytes
				if atEnd {
					return len(page) - size - spare
				}
				return 0
			}
			for _, bits := range []int{1, 2, 3, 4, 8} {
				for _, d := range []int{8, 24, 64, 100, 130} {
					for _, n := range []int{1, 5} {
						idxBytes := (d*bits + 7) / 8
						stride := 2 + idxBytes
						end := n * stride
						off := place(end, Slack)
						codes := page[off : off+end : off+end+Slack]
						fill(codes[:cap(codes)])
						for tk := range n {
							codes[tk*stride], codes[tk*stride+1] = 0x00, 0x3c // norm 1
						}
						tab := make([]float32, 1<<bits)
						for i := range tab {
							tab[i] = float32(r.NormFloat64())
						}
						want, got := make([]float32, n*d), make([]float32, n*d)
						decodeCodesGeneric(want, d, tab, bits, codes, stride, 2, 0, n, d, 0, 0)
						cb := NewCodebook(tab, bits)
						w := floatsAt(wPage, 0, 5*n) // the weights flush against a fence too
						if atEnd {
							w = floatsAt(wPage, len(wPage)-4*5*n, 5*n)
						}
						with(t, l, func() {
							DecodeCodes(got, d, cb, codes, stride, 2, 0, n, d, nil)
							DotCodes(make([]float32, 4*n), n, make([]float32, 4*d), d, 4, cb, codes, stride, 2, 0, n, d, nil)
							AxpyCodes(make([]float32, 5*d), d, w, n, 5, cb, codes, stride, 2, 0, n, d, nil)
						})
						for i := range want {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
								t.Fatalf("%v bits=%d d=%d: element %d = %v, want %v", l, bits, d, i, got[i], want[i])
							}
						}
					}
				}
			}
			for _, d := range []int{8, 24, 100} {
				n := 3
				off := place((n-1)*(2*d)+2*d, 0)
				src := page[off : off+n*2*d]
				fill(src)
				got := make([]float32, n*d)
				with(t, l, func() { DecodeF16(got, d, src, 2*d, n, d) })
			}
			for _, d := range []int{8, 24, 40, 100} {
				n, g := 7, 5
				rowsBytes := 4 * n * d
				off := place(rowsBytes, 0) &^ 3
				rows := floatsAt(page, off, n*d)
				for i := range rows {
					rows[i] = float32(r.NormFloat64())
				}
				q := make([]float32, g*d)
				acc := make([]float32, g*d)
				w := make([]float32, g*n)
				out := make([]float32, g*n)
				with(t, l, func() {
					Dot(out, n, q, rows, n, d, d, nil)
					Axpy(acc, w, n, rows, n, d, d, nil)
				})
				hOff := place(2*n*d, 0) &^ 1
				halves := page[hOff : hOff+2*n*d]
				fill(halves)
				with(t, l, func() {
					DotF16(out, n, q, halves, n, d, d, nil)
					AxpyF16(acc, w, n, halves, n, d, d, nil)
				})
			}
			for _, n := range []int{7, 8, 9, 16, 33} {
				off := place(4*n, 0) &^ 3
				x := floatsAt(page, off, n)
				for i := range x {
					x[i] = -float32(r.Float64())
				}
				with(t, l, func() { ExpSum(x, 0) })
				acc := make([]float64, n)
				halves := make([]byte, 2*n)
				with(t, l, func() {
					Max(x)
					MaxAbsBits(x)
					SumSquares(x)
					AddF64(acc, x)
					EncodeF16(halves, x)
					RoundF16(x, x)
					Scale(x, 0.5)
					for bits := 1; bits <= 4; bits++ {
						b := make([]float32, 1<<bits-1)
						QuantizePack(make([]byte, (n*bits+7)/8), x, NewBounds(b, bits))
					}
					if n&(n-1) == 0 {
						FWHT(x, x, nil)
					}
				})
			}
		}
	}
}
