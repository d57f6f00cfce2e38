package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
)

// DefaultAlignment is the data-section alignment used when a file has no
// general.alignment key.
const DefaultAlignment = 32

// maxAlignment bounds general.alignment so that aligning an offset cannot
// overflow; real files use 32 (or a page size).
const maxAlignment = 1 << 30

// maxArrayDepth bounds nested metadata arrays: the format allows nesting,
// no real file nests more than twice, and a hostile file must not be able to
// recurse the parser without limit.
const maxArrayDepth = 16

// maxDims is ggml's GGML_MAX_DIMS.
const maxDims = 4

// Minimum encoded sizes, used to reject counts before allocating for them.
const (
	minStringBytes     = 8             // u64 length, empty text
	minArrayBytes      = 4 + 8         // element type, count
	minKVBytes         = 8 + 4 + 1     // empty key, value type, 1-byte value
	minTensorInfoBytes = 8 + 4 + 4 + 8 // empty name, n_dims=0, type, offset
	headerBytes        = 4 + 4 + 8 + 8 // magic, version, tensor count, kv count
)

// File is a parsed GGUF file. Metadata is copied out of the file's bytes;
// tensor Data slices point into them (into the memory mapping for Open), so
// they are valid only until Close.
type File struct {
	Version   uint32 // 2 or 3
	Alignment int    // data-section alignment (general.alignment or 32)
	// DataOffset is the file offset of the data section; tensor offsets are
	// relative to it.
	DataOffset int64
	Meta       []KV      // metadata in file order
	Tensors    []*Tensor // tensor infos in file order

	metaIndex   map[string]int
	tensorIndex map[string]int
	release     func() error
}

// Tensor is one tensor info plus its data.
type Tensor struct {
	Name string
	// Dims are ggml's ne: Dims[0] is the innermost, contiguous dimension (a
	// torch weight [out, in] is stored as Dims [in, out]).
	Dims   []int
	Type   Type
	Offset uint64 // relative to File.DataOffset
	// Data is the tensor's encoded bytes (exactly Bytes() long), aliasing the
	// file; read-only (a mapping of an Open'd file faults on write).
	Data []byte
}

// Cols is Dims[0], the length of one row (1 for a 0-dim tensor).
func (t *Tensor) Cols() int {
	if len(t.Dims) == 0 {
		return 1
	}
	return t.Dims[0]
}

// Rows is the product of Dims[1:] (1 for 0- or 1-dim tensors).
func (t *Tensor) Rows() int {
	r := 1
	for _, d := range t.Dims[min(1, len(t.Dims)):] {
		r *= d
	}
	return r
}

// Elements is the product of all dims.
func (t *Tensor) Elements() int { return t.Cols() * t.Rows() }

// Bytes is the encoded size of the tensor's data.
func (t *Tensor) Bytes() int { return len(t.Data) }

// RowBytes is the encoded size of one row.
func (t *Tensor) RowBytes() int {
	n, _ := RowBytes(t.Type, t.Cols()) // validated at parse
	return n
}

// Row returns the encoded bytes of row i (aliasing Data).
func (t *Tensor) Row(i int) ([]byte, error) {
	if i < 0 || i >= t.Rows() {
		return nil, fmt.Errorf("%w: tensor %q: row %d out of range [0,%d)", ErrSize, t.Name, i, t.Rows())
	}
	rb := t.RowBytes()
	return t.Data[i*rb : (i+1)*rb : (i+1)*rb], nil
}

// DequantizeRow decodes row i into dst, which must hold exactly Cols() values.
func (t *Tensor) DequantizeRow(i int, dst []float32) error {
	if !t.Type.Supported() {
		return fmt.Errorf("%w: tensor %q has type %v", ErrUnsupportedType, t.Name, t.Type)
	}
	row, err := t.Row(i)
	if err != nil {
		return err
	}
	if err := DequantizeRow(dst, t.Type, row); err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return nil
}

// Dequantize decodes the whole tensor into dst, which must hold exactly
// Elements() values (row-major, Dims[0] fastest).
func (t *Tensor) Dequantize(dst []float32) error {
	if !t.Type.Supported() {
		return fmt.Errorf("%w: tensor %q has type %v", ErrUnsupportedType, t.Name, t.Type)
	}
	if len(dst) != t.Elements() {
		return fmt.Errorf("%w: tensor %q has %d elements, dst holds %d", ErrSize, t.Name, t.Elements(), len(dst))
	}
	if err := DequantizeRow(dst, t.Type, t.Data); err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return nil
}

// Tensor looks a tensor up by name.
func (f *File) Tensor(name string) (*Tensor, bool) {
	i, ok := f.tensorIndex[name]
	if !ok {
		return nil, false
	}
	return f.Tensors[i], true
}

// Close releases the memory mapping of a file from Open (tensor Data slices
// become invalid). It is a no-op for Parse'd files and safe to call twice.
func (f *File) Close() error {
	if f.release == nil {
		return nil
	}
	r := f.release
	f.release = nil
	return r()
}

// Parse parses a GGUF file held in memory. Tensor Data slices alias data.
func Parse(data []byte) (*File, error) {
	p := parser{b: data}
	return p.file()
}

type parser struct {
	b   []byte
	pos int
}

func (p *parser) rem() int { return len(p.b) - p.pos }

func (p *parser) need(n int, what string) error {
	if n < 0 || n > p.rem() {
		return fmt.Errorf("%w: %s needs %d bytes at offset %d, %d left", ErrTruncated, what, n, p.pos, p.rem())
	}
	return nil
}

func (p *parser) take(n int, what string) ([]byte, error) {
	if err := p.need(n, what); err != nil {
		return nil, err
	}
	s := p.b[p.pos : p.pos+n : p.pos+n]
	p.pos += n
	return s, nil
}

func (p *parser) u32(what string) (uint32, error) {
	s, err := p.take(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(s), nil
}

func (p *parser) u64(what string) (uint64, error) {
	s, err := p.take(8, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(s), nil
}

// count reads a u64 element count and checks that count·minSize bytes are
// still present, so that no allocation is sized by an unchecked count.
func (p *parser) count(what string, minSize int) (int, error) {
	n, err := p.u64(what)
	if err != nil {
		return 0, err
	}
	if n > uint64(p.rem()/minSize) {
		return 0, fmt.Errorf("%w: %s = %d needs at least %d bytes each, %d left at offset %d", ErrTruncated, what, n, minSize, p.rem(), p.pos)
	}
	return int(n), nil
}

func (p *parser) str(what string) (string, error) {
	n, err := p.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > uint64(p.rem()) {
		return "", fmt.Errorf("%w: %s length %d, %d bytes left at offset %d", ErrTruncated, what, n, p.rem(), p.pos)
	}
	s, _ := p.take(int(n), what)
	return string(s), nil // copies: metadata outlives a mapping
}

func (p *parser) file() (*File, error) {
	if err := p.need(headerBytes, "header"); err != nil {
		return nil, err
	}
	if string(p.b[:4]) != "GGUF" {
		return nil, fmt.Errorf("%w: bad magic %q", ErrFormat, p.b[:4])
	}
	p.pos = 4
	version, _ := p.u32("version")
	switch {
	case version == 2 || version == 3:
	case version&0xffff == 0 && bits.ReverseBytes32(version) <= 0xffff:
		// A big-endian writer stores the version byte-swapped after the
		// (byte-order independent) magic.
		return nil, fmt.Errorf("%w: version field %#08x reads as big-endian version %d", ErrBigEndian, version, bits.ReverseBytes32(version))
	default:
		return nil, fmt.Errorf("%w: %d (want 2 or 3)", ErrVersion, version)
	}
	f := &File{Version: version, Alignment: DefaultAlignment}

	nTensors, err := p.u64("tensor count")
	if err != nil {
		return nil, err
	}
	nKV, err := p.u64("metadata count")
	if err != nil {
		return nil, err
	}
	// Both tables follow; reject impossible counts now, before any allocation.
	if nTensors > uint64(p.rem()/minTensorInfoBytes) {
		return nil, fmt.Errorf("%w: %d tensors cannot fit in %d bytes", ErrTruncated, nTensors, p.rem())
	}
	if nKV > uint64(p.rem()/minKVBytes) {
		return nil, fmt.Errorf("%w: %d metadata pairs cannot fit in %d bytes", ErrTruncated, nKV, p.rem())
	}

	f.Meta = make([]KV, 0, nKV)
	f.metaIndex = make(map[string]int, nKV)
	for i := 0; i < int(nKV); i++ {
		at := p.pos
		key, err := p.str("metadata key")
		if err != nil {
			return nil, fmt.Errorf("metadata pair %d: %w", i, err)
		}
		if _, dup := f.metaIndex[key]; dup {
			return nil, fmt.Errorf("%w: duplicate metadata key %q at offset %d", ErrFormat, key, at)
		}
		vt, err := p.u32("value type")
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", key, err)
		}
		v, err := p.value(ValueType(vt), 0)
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", key, err)
		}
		f.metaIndex[key] = len(f.Meta)
		f.Meta = append(f.Meta, KV{Key: key, Value: v})
	}

	if f.Has("general.alignment") {
		a, err := f.Uint("general.alignment")
		if err != nil {
			return nil, fmt.Errorf("%w: general.alignment: %v", ErrFormat, err)
		}
		if a == 0 || a > maxAlignment || a&(a-1) != 0 {
			return nil, fmt.Errorf("%w: general.alignment = %d is not a power of two in [1, 2^30]", ErrFormat, a)
		}
		f.Alignment = int(a)
	}

	if nTensors > uint64(p.rem()/minTensorInfoBytes) {
		return nil, fmt.Errorf("%w: %d tensor infos cannot fit in %d bytes", ErrTruncated, nTensors, p.rem())
	}
	f.Tensors = make([]*Tensor, 0, nTensors)
	f.tensorIndex = make(map[string]int, nTensors)
	for i := 0; i < int(nTensors); i++ {
		t, err := p.tensorInfo()
		if err != nil {
			return nil, fmt.Errorf("tensor info %d: %w", i, err)
		}
		if _, dup := f.tensorIndex[t.Name]; dup {
			return nil, fmt.Errorf("%w: duplicate tensor name %q", ErrFormat, t.Name)
		}
		f.tensorIndex[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}

	// p.pos ≤ len(b) and alignment ≤ 2^30, so this cannot overflow int64.
	a := int64(f.Alignment)
	start := (int64(p.pos) + a - 1) / a * a
	f.DataOffset = start
	if len(f.Tensors) == 0 {
		return f, nil // a metadata-only file may omit the final padding
	}
	if start > int64(len(p.b)) {
		return nil, fmt.Errorf("%w: data section at offset %d, file is %d bytes", ErrTruncated, start, len(p.b))
	}
	avail := uint64(int64(len(p.b)) - start)
	for _, t := range f.Tensors {
		if t.Offset%uint64(f.Alignment) != 0 {
			return nil, fmt.Errorf("%w: tensor %q offset %d is not a multiple of the alignment %d", ErrFormat, t.Name, t.Offset, f.Alignment)
		}
		size, _ := RowBytes(t.Type, t.Cols()) // validated in tensorInfo
		rows := t.Rows()
		// size·rows ≤ MaxInt was checked in tensorInfo.
		total := uint64(size) * uint64(rows)
		if t.Offset > avail || total > avail-t.Offset {
			return nil, fmt.Errorf("%w: tensor %q data [%d, +%d) extends past the end of the data section (%d bytes)", ErrTruncated, t.Name, t.Offset, total, avail)
		}
		s := int(start) + int(t.Offset)
		t.Data = p.b[s : s+int(total) : s+int(total)]
	}
	return f, nil
}

func (p *parser) tensorInfo() (*Tensor, error) {
	name, err := p.str("tensor name")
	if err != nil {
		return nil, err
	}
	nd, err := p.u32("n_dims")
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	if nd > maxDims {
		return nil, fmt.Errorf("%w: tensor %q has %d dims (max %d)", ErrFormat, name, nd, maxDims)
	}
	t := &Tensor{Name: name, Dims: make([]int, nd)}
	elems := uint64(1)
	for j := range t.Dims {
		d, err := p.u64("dim")
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		if d > math.MaxInt { // ggml's ne is int64; here it must also fit int
			return nil, fmt.Errorf("%w: tensor %q dim %d = %d is too large", ErrFormat, name, j, d)
		}
		hi, lo := bits.Mul64(elems, d)
		if hi != 0 || lo > math.MaxInt {
			return nil, fmt.Errorf("%w: tensor %q element count overflows", ErrFormat, name)
		}
		elems = lo
		t.Dims[j] = int(d)
	}
	typ, err := p.u32("tensor type")
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	t.Type = Type(typ)
	if !t.Type.Known() {
		return nil, fmt.Errorf("%w: tensor %q has unknown type id %d", ErrUnsupportedType, name, typ)
	}
	rb, err := RowBytes(t.Type, t.Cols())
	if err != nil {
		return nil, fmt.Errorf("%w: tensor %q: %v", ErrFormat, name, err)
	}
	if hi, lo := bits.Mul64(uint64(rb), uint64(t.Rows())); hi != 0 || lo > math.MaxInt {
		return nil, fmt.Errorf("%w: tensor %q byte size overflows", ErrFormat, name)
	}
	if t.Offset, err = p.u64("tensor offset"); err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	return t, nil
}

// value decodes one metadata value of type vt.
func (p *parser) value(vt ValueType, depth int) (Value, error) {
	v := Value{Type: vt}
	switch vt {
	case TypeString:
		s, err := p.str("string value")
		if err != nil {
			return v, err
		}
		v.V = s
		return v, nil
	case TypeArray:
		if depth >= maxArrayDepth {
			return v, fmt.Errorf("%w: arrays nested deeper than %d", ErrFormat, maxArrayDepth)
		}
		et, err := p.u32("array element type")
		if err != nil {
			return v, err
		}
		v.Elem = ValueType(et)
		return p.array(v, depth)
	}
	size := vt.scalarSize()
	if size == 0 {
		return v, fmt.Errorf("%w: unknown value type %d at offset %d", ErrFormat, uint32(vt), p.pos-4)
	}
	s, err := p.take(size, vt.String()+" value")
	if err != nil {
		return v, err
	}
	switch vt {
	case TypeUint8:
		v.V = s[0]
	case TypeInt8:
		v.V = int8(s[0])
	case TypeBool:
		if s[0] > 1 {
			return v, fmt.Errorf("%w: bool value %d at offset %d", ErrFormat, s[0], p.pos-1)
		}
		v.V = s[0] == 1
	case TypeUint16:
		v.V = binary.LittleEndian.Uint16(s)
	case TypeInt16:
		v.V = int16(binary.LittleEndian.Uint16(s))
	case TypeUint32:
		v.V = binary.LittleEndian.Uint32(s)
	case TypeInt32:
		v.V = int32(binary.LittleEndian.Uint32(s))
	case TypeFloat32:
		v.V = math.Float32frombits(binary.LittleEndian.Uint32(s))
	case TypeUint64:
		v.V = binary.LittleEndian.Uint64(s)
	case TypeInt64:
		v.V = int64(binary.LittleEndian.Uint64(s))
	case TypeFloat64:
		v.V = math.Float64frombits(binary.LittleEndian.Uint64(s))
	}
	return v, nil
}

func (p *parser) array(v Value, depth int) (Value, error) {
	minSize := v.Elem.scalarSize()
	switch v.Elem {
	case TypeString:
		minSize = minStringBytes
	case TypeArray:
		minSize = minArrayBytes
	}
	if minSize == 0 {
		return v, fmt.Errorf("%w: unknown array element type %d at offset %d", ErrFormat, uint32(v.Elem), p.pos-4)
	}
	n, err := p.count("array length", minSize)
	if err != nil {
		return v, err
	}
	switch v.Elem {
	case TypeString:
		a := make([]string, n)
		for i := range a {
			if a[i], err = p.str("array string"); err != nil {
				return v, fmt.Errorf("element %d: %w", i, err)
			}
		}
		v.V = a
		return v, nil
	case TypeArray:
		a := make([]Value, n)
		for i := range a {
			if a[i], err = p.value(TypeArray, depth+1); err != nil {
				return v, fmt.Errorf("element %d: %w", i, err)
			}
		}
		v.V = a
		return v, nil
	}
	s, _ := p.take(n*minSize, "array") // n·minSize ≤ rem was checked
	le := binary.LittleEndian
	switch v.Elem {
	case TypeUint8:
		v.V = append([]uint8(nil), s...)
	case TypeInt8:
		a := make([]int8, n)
		for i := range a {
			a[i] = int8(s[i])
		}
		v.V = a
	case TypeBool:
		a := make([]bool, n)
		for i := range a {
			if s[i] > 1 {
				return v, fmt.Errorf("%w: bool array element %d = %d", ErrFormat, i, s[i])
			}
			a[i] = s[i] == 1
		}
		v.V = a
	case TypeUint16:
		a := make([]uint16, n)
		for i := range a {
			a[i] = le.Uint16(s[2*i:])
		}
		v.V = a
	case TypeInt16:
		a := make([]int16, n)
		for i := range a {
			a[i] = int16(le.Uint16(s[2*i:]))
		}
		v.V = a
	case TypeUint32:
		a := make([]uint32, n)
		for i := range a {
			a[i] = le.Uint32(s[4*i:])
		}
		v.V = a
	case TypeInt32:
		a := make([]int32, n)
		for i := range a {
			a[i] = int32(le.Uint32(s[4*i:]))
		}
		v.V = a
	case TypeFloat32:
		a := make([]float32, n)
		for i := range a {
			a[i] = math.Float32frombits(le.Uint32(s[4*i:]))
		}
		v.V = a
	case TypeUint64:
		a := make([]uint64, n)
		for i := range a {
			a[i] = le.Uint64(s[8*i:])
		}
		v.V = a
	case TypeInt64:
		a := make([]int64, n)
		for i := range a {
			a[i] = int64(le.Uint64(s[8*i:]))
		}
		v.V = a
	case TypeFloat64:
		a := make([]float64, n)
		for i := range a {
			a[i] = math.Float64frombits(le.Uint64(s[8*i:]))
		}
		v.V = a
	}
	return v, nil
}
