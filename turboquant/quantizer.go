package turboquant

import (
	"fmt"
	"github.com/turboquant-go/tq/internal/vec"
	"math"
	"runtime"
	"sync"
)

// Quantizer encodes vectors of one dimension into fixed-size codes, decodes
// them, and scores prepared queries against them. It is immutable and safe
// for concurrent use; per-call working memory comes from an internal pool, so
// Encode, Decode and Query scoring do not allocate in steady state.
type Quantizer struct {
	cfg   Config
	parts []*part
	// channels[i] lists the input channels of parts[i] (nil when there is a
	// single part covering all channels in order).
	channels [][]int
	size     int
	pool     sync.Pool
}

// New builds a Quantizer. Codebooks for uncommon dimensions are solved on
// first use and memoized, so the first New for such a dimension takes longer.
func New(cfg Config) (*Quantizer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	q := &Quantizer{cfg: cfg}
	if o := cfg.Outliers; o != nil {
		regular := make([]int, 0, cfg.Dim-len(o.Channels))
		for ch, k := 0, 0; ch < cfg.Dim; ch++ {
			if k < len(o.Channels) && o.Channels[k] == ch {
				k++
				continue
			}
			regular = append(regular, ch)
		}
		q.channels = [][]int{regular, o.Channels}
		reg, err := newPart(len(regular), cfg.Bits, cfg, 0)
		if err != nil {
			return nil, err
		}
		out, err := newPart(len(o.Channels), o.Bits, cfg, 1)
		if err != nil {
			return nil, err
		}
		q.parts = []*part{reg, out}
	} else {
		c, err := newPart(cfg.Dim, cfg.Bits, cfg, 0)
		if err != nil {
			return nil, err
		}
		q.parts = []*part{c}
	}
	skLen := 0
	for _, p := range q.parts {
		q.size += p.size
		if p.sketch != nil {
			skLen = max(skLen, p.sketch.ScratchLen())
		}
	}
	q.pool.New = func() any {
		s := newScratch(cfg.Dim, skLen)
		for i, ch := range q.channels {
			s.parts[i] = make([]float32, len(ch))
		}
		return s
	}
	return q, nil
}

// Config returns the configuration with defaults filled in.
func (q *Quantizer) Config() Config {
	c := q.cfg
	if c.Outliers != nil {
		o := *c.Outliers
		o.Channels = append([]int(nil), o.Channels...)
		c.Outliers = &o
	}
	if c.Split != nil {
		sp := *c.Split
		c.Split = &sp
	}
	return c
}

// Dim is the vector dimension.
func (q *Quantizer) Dim() int { return q.cfg.Dim }

// CodeSize is the exact number of bytes of one code.
func (q *Quantizer) CodeSize() int { return q.size }

// BitsPerCoord is the storage cost per coordinate, every stored scalar included.
func (q *Quantizer) BitsPerCoord() float64 { return float64(8*q.size) / float64(q.cfg.Dim) }

func (q *Quantizer) get() *scratch  { return q.pool.Get().(*scratch) }
func (q *Quantizer) put(s *scratch) { q.pool.Put(s) }

// Encode writes the code of x (len Dim) into dst (len ≥ CodeSize). A zero
// vector is valid. On error nothing useful is in dst.
func (q *Quantizer) Encode(dst []byte, x []float32) error {
	if len(x) != q.cfg.Dim {
		return q.checkVector(x, "input")
	}
	if len(dst) < q.size {
		return fmt.Errorf("%w: code buffer of %d bytes, need %d", ErrLength, len(dst), q.size)
	}
	ss := sumSquares(x)
	if !isFinite(ss) {
		return q.checkVector(x, "input")
	}
	s := q.get()
	err := q.encode(dst, x, ss, s)
	q.put(s)
	return err
}

func (q *Quantizer) checkVector(x []float32, what string) error {
	if len(x) != q.cfg.Dim {
		return fmt.Errorf("%w: %s has %d components, quantizer dim is %d", ErrLength, what, len(x), q.cfg.Dim)
	}
	if i := vec.NonFinite(x); i >= 0 {
		return fmt.Errorf("%w: %s component %d is %v", ErrNonFinite, what, i, x[i])
	}
	return nil
}

// encode is Encode after validation; ss is ‖x‖².
func (q *Quantizer) encode(dst []byte, x []float32, ss float64, s *scratch) error {
	if q.channels == nil {
		return q.parts[0].encode(dst[:q.size], x, ss, s)
	}
	off := 0
	for i, p := range q.parts {
		sub := gather(s.parts[i], x, q.channels[i])
		if err := p.encode(dst[off:off+p.size], sub, sumSquares(sub), s); err != nil {
			return err
		}
		off += p.size
	}
	return nil
}

func gather(dst, x []float32, channels []int) []float32 {
	dst = dst[:len(channels)]
	for i, ch := range channels {
		dst[i] = x[ch]
	}
	return dst
}

// EncodeBatch encodes the row-major vectors xs (len a multiple of Dim) into
// dst (CodeSize bytes per vector, back to back). Large batches are split
// across GOMAXPROCS goroutines. All inputs are validated before anything is
// encoded, so an invalid vector leaves dst untouched.
func (q *Quantizer) EncodeBatch(dst []byte, xs []float32) error {
	d := q.cfg.Dim
	if len(xs)%d != 0 {
		return fmt.Errorf("%w: batch of %d floats is not a multiple of dim %d", ErrLength, len(xs), d)
	}
	n := len(xs) / d
	if len(dst) < n*q.size {
		return fmt.Errorf("%w: code buffer of %d bytes, need %d for %d vectors", ErrLength, len(dst), n*q.size, n)
	}
	if i := vec.NonFinite(xs); i >= 0 {
		return fmt.Errorf("%w: vector %d component %d is %v", ErrNonFinite, i/d, i%d, xs[i])
	}
	encodeRange := func(lo, hi int) error {
		s := q.get()
		defer q.put(s)
		for i := lo; i < hi; i++ {
			x := xs[i*d : (i+1)*d]
			if err := q.encode(dst[i*q.size:(i+1)*q.size], x, sumSquares(x), s); err != nil {
				return fmt.Errorf("vector %d: %w", i, err)
			}
		}
		return nil
	}
	workers := min(runtime.GOMAXPROCS(0), n/minBatchPerWorker)
	if workers <= 1 {
		return encodeRange(0, n)
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = encodeRange(w*n/workers, (w+1)*n/workers)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// minBatchPerWorker keeps goroutine start-up small against the work it buys.
const minBatchPerWorker = 256

// Decode reconstructs the vector of code into dst (len Dim).
func (q *Quantizer) Decode(dst []float32, code []byte) error {
	if len(dst) != q.cfg.Dim {
		return fmt.Errorf("%w: output has %d components, quantizer dim is %d", ErrLength, len(dst), q.cfg.Dim)
	}
	if len(code) < q.size {
		return fmt.Errorf("%w: code of %d bytes, need %d", ErrLength, len(code), q.size)
	}
	s := q.get()
	defer q.put(s)
	if q.channels == nil {
		q.parts[0].decode(dst, code, s)
		return nil
	}
	off := 0
	for i, p := range q.parts {
		sub := s.parts[i][:p.dim]
		p.decode(sub, code[off:off+p.size], s)
		for j, ch := range q.channels[i] {
			dst[ch] = sub[j]
		}
		off += p.size
	}
	return nil
}

// Norm returns the vector norm stored in code (for Polar, the norm implied
// by its radii; with outlier channels, the norm of the whole vector).
func (q *Quantizer) Norm(code []byte) (float32, error) {
	if len(code) < q.size {
		return 0, fmt.Errorf("%w: code of %d bytes, need %d", ErrLength, len(code), q.size)
	}
	var ss float64
	off := 0
	for _, p := range q.parts {
		n := float64(p.norm(code[off : off+p.size]))
		ss += n * n
		off += p.size
	}
	return float32(math.Sqrt(ss)), nil
}
