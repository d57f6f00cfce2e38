package kvcache

// Sequence snapshots: WriteTo writes a sequence's codes, fp16 tokens and
// quantizer specs as they are (nothing is dequantized or re-quantized);
// Pool.ReadSequence restores them into a new sequence of a pool with the
// same configuration, bit for bit. This file describes the wire format, the
// one place it is described; snapshot_write.go writes it, snapshot_read.go
// reads it and snapshot_check.go checks what it reads.
//
// # Format, version 2
//
// Integers are little-endian; floats are IEEE bit patterns stored as the
// integer of their width; "fp16" is IEEE half.
//
//	preamble  "TQKV", u16 version (2), u16 reserved (0)
//	section   u64 n, n payload bytes, u32 CRC-32C (Castagnoli) of the
//	          8 length bytes and the payload
//
// After the preamble come sections only, in this order:
//
//  1. config (48 + 20·layers + 36 bytes), the pool's Config with defaults
//     filled in; it must equal the reading pool's byte for byte:
//     u32 layers, u32 KV heads, u64 query heads, u32 head dim, u32 window,
//     u32 sinks, u32 block tokens, u32 Scale (float32 bits), u64 seed,
//     u32 flags (bit 0: DeferPrefill, bit 1: Center, bit 2: BlockCenter;
//     the others 0);
//     then, for each layer, its key storage and its value storage (the
//     Overrides applied), 10 bytes each: u8 kind, u8 method, u8 bits,
//     u8 norm, u8 correction, u8 outlier bits, u32 outlier channels — a
//     passthrough storage (Float16, Float32) is its kind and nine zero
//     bytes, and outlier bits are 0 without outlier channels; a Split
//     storage has 0x80|SplitBits there and Split in the u32;
//     then the guard: f64 Budget (bits), u64 Queries, the upgrade key and
//     value storages (10 bytes each, as above); all 36 bytes zero without
//     a guard.
//  2. for each layer, in order:
//     a. header (24 bytes): u32 flags, u32 sink tokens, u64 window tokens,
//     u64 compressed tokens. Flag bit 0: the layer has been appended to
//     (it holds quantizers and fp16 buffers) and b–g follow; without it
//     the layer is empty (never appended to, or reset), every other field
//     is 0 and nothing else follows for the layer. Bit 1: a single-token
//     append has happened (which ends a deferred prefill). Other bits 0.
//     b. specs: for each KV head, the quantizer spec of its key storage,
//     value storage, and, in a guard pool, upgrade key storage and upgrade
//     value storage, in that order; each as u32 length then
//     turboquant.Spec.MarshalBinary (which carries the outlier channels,
//     seed and a fingerprint of the codebooks and rotation). Passthrough
//     storages have no spec and contribute nothing, so the section is empty
//     when no storage quantizes.
//     c. centers, present only when the config's Center flag is set
//     (possibly empty): for each KV head, μ_k if the key storage quantizes,
//     then μ_v if the value storage does, HeadDim float32 each, finite.
//     d. guard, present only in a guard pool:
//     u64 n, the recent queries held (≤ Queries);
//     per KV head, 24 bytes: u64 flags (bit 0: upgraded), u64 the layer
//     position of the first token of the block it upgraded at, u64 the
//     error it measured there (float64 bits) — position and error 0 unless
//     upgraded;
//     the queries: per KV head its n queries, oldest first, HeadDim
//     float32 each, finite;
//     block flags: per block of e, per KV head, u8 1 if the head's codes in
//     that block are the upgrade storages', else 0.
//     e. sinks: the sink tokens, each [KV heads][key, value][head dim]
//     fp16.
//     f. window: the window tokens in the same layout, oldest first.
//     g. blocks: one section per block of compressed tokens, ⌈compressed /
//     block tokens⌉ of them. Block i holds m = min(block tokens,
//     compressed − i·block tokens) tokens: the key codes [KV heads][m]
//     then the value codes [KV heads][m], each code its storage's exact
//     size in that block (an upgraded head's codes are the upgrade
//     storage's size), so only the used part of the last block is written;
//     with BlockCenter, then the key drift codes [KV heads] and the value
//     drift codes [KV heads] (quantized sides only).
//
// Version 1 is version 2 without the guard: its preamble says 1, its config
// section lacks the 36 guard bytes and no layer has a guard section.
// ReadSequence reads it into pools without a guard; WriteTo writes version 2.
//
// # What a reader checks
//
// Every length is checked against the one the reading pool's configuration
// and the counts imply before anything is read into it, and payloads are
// read in bounded chunks, so a hostile or truncated stream costs no more
// memory than the bytes it holds (beyond the fp16 sink and window buffers of
// a layer, which the pool's configuration sizes and its budget pays for).
// Counts must be ones Append can produce: sinks ≤ Sinks, window ≤ Window
// (more only in a deferred prefill), the sinks full once anything follows
// them, and sink and window halves finite. Specs must describe exactly the
// quantizers this pool builds (storage, seed, fingerprint; outlier channels
// are taken from the spec) in canonical form. Guard state must be one
// Append can produce: an upgraded head exceeded the budget (so queries were
// held), at a position that starts a block; its flagged blocks are exactly
// those from the first flagged one on, which include every block starting
// at or after its position; no other head is flagged. The format is
// canonical: a restored sequence writes back the exact bytes it was read
// from.
//
// The window's capacity is not written: it is restored as max(Window, window
// tokens), which is what the original holds except after a deferred prefill
// was truncated (then the restored sequence holds less spare window, and its
// Stats' StoredBytes are smaller; its tokens and outputs are the same).

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/turboquant-go/tq/turboquant"
)

// SnapshotVersion is the version of the snapshot format that WriteTo
// writes. ReadSequence reads it and version 1 (which has no guard: its
// config section lacks the guard fields, and it restores only into pools
// without a guard).
const SnapshotVersion = 2

var (
	snapshotMagic = [4]byte{'T', 'Q', 'K', 'V'}
	castagnoli    = crc32.MakeTable(crc32.Castagnoli)
)

const (
	snapPreambleBytes = 8
	snapConfigFixed   = 48
	snapGuardConfig   = 36 // version 2's guard fields at the end of the config section
	snapGuardHead     = 24 // per KV head in a layer's guard section
	snapStorageBytes  = 10
	snapLayerBytes    = 24
	snapAlloc         = 1 << 0  // layer flag: codecs and buffers
	snapDecoded       = 1 << 1  // layer flag: a single-token append happened
	snapDeferPrefill  = 1 << 0  // config flag
	snapCenter        = 1 << 1  // config flag
	snapBlockCenter   = 1 << 2  // config flag
	snapMaxLayers     = 1 << 12 // Config.validate's bound
	// snapMaxTokens bounds a layer's compressed tokens, so that no count
	// derived from it overflows.
	snapMaxTokens = min(1<<40, math.MaxInt>>2)
	// snapMaxWindowBytes bounds the fp16 window of a deferred prefill (the
	// only one longer than Window), so that its size in bytes cannot overflow.
	snapMaxWindowBytes = min(1<<50, math.MaxInt>>2)
	// snapChunk is the most a read grows its buffer by before the bytes
	// have arrived; snapBuffer is the writer's buffer.
	snapChunk  = 1 << 16
	snapBuffer = 1 << 16
)

// snapSpecLen is the length of the spec of a storage's quantizers (0 for the
// passthrough storages, which have none).
func snapSpecLen(cd Storage, dim int) int {
	if cd.Kind != Quantized {
		return 0
	}
	// A spec's length depends only on the number of outlier channels, so
	// the placeholder channels give the length of every head's spec.
	cfg, err := cd.quantizerConfig(dim, 0, nil)
	if err != nil {
		return 0
	}
	b, _ := turboquant.Spec{Version: turboquant.SpecVersion, Config: cfg}.MarshalBinary()
	return len(b)
}

// snapshotConfig is the config section's payload (section 1) for c
// (defaults filled in) in a snapshot version.
func (c Config) snapshotConfig(version int) []byte {
	b := make([]byte, 0, snapConfigFixed+2*snapStorageBytes*c.Layers)
	b = binary.LittleEndian.AppendUint32(b, uint32(c.Layers))
	b = binary.LittleEndian.AppendUint32(b, uint32(c.KVHeads))
	b = binary.LittleEndian.AppendUint64(b, uint64(c.QHeads))
	b = binary.LittleEndian.AppendUint32(b, uint32(c.HeadDim))
	b = binary.LittleEndian.AppendUint32(b, uint32(c.Window))
	b = binary.LittleEndian.AppendUint32(b, uint32(c.Sinks))
	b = binary.LittleEndian.AppendUint32(b, uint32(c.BlockTokens))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(c.Scale))
	b = binary.LittleEndian.AppendUint64(b, c.Seed)
	flags := uint32(0)
	if c.DeferPrefill {
		flags |= snapDeferPrefill
	}
	if c.Center {
		flags |= snapCenter
	}
	if c.BlockCenter {
		flags |= snapBlockCenter
	}
	b = binary.LittleEndian.AppendUint32(b, flags)
	for l := range c.Layers {
		k, v := c.storages(l)
		b = appendSnapStorage(b, k)
		b = appendSnapStorage(b, v)
	}
	if version >= 2 {
		if !c.Guard.enabled() {
			return append(b, make([]byte, snapGuardConfig)...)
		}
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(c.Guard.Budget))
		b = binary.LittleEndian.AppendUint64(b, uint64(c.Guard.Queries))
		b = appendSnapStorage(b, c.Guard.Keys)
		b = appendSnapStorage(b, c.Guard.Values)
	}
	return b
}

// appendSnapCodec appends the 10 bytes of a storage in the config section.
func appendSnapStorage(b []byte, cd Storage) []byte {
	if cd.Kind != Quantized {
		return append(b, byte(cd.Kind), 0, 0, 0, 0, 0, 0, 0, 0, 0)
	}
	outBits, n := 0, cd.Outliers
	switch {
	case cd.Split != 0:
		outBits, n = snapSplit|cd.SplitBits, cd.Split
	case cd.Outliers != 0:
		outBits = cd.OutlierBits
	}
	b = append(b, byte(cd.Kind), byte(cd.Method), byte(cd.Bits), byte(cd.Norm), byte(cd.Correction), byte(outBits))
	return binary.LittleEndian.AppendUint32(b, uint32(n))
}

// snapSplit marks a storage's outlier-bits byte as a split's (its low bits
// the split's bits, the count field its coordinates). Outlier bits are
// 1–8, so the byte was never above 8 before splits and an older build
// refuses such a snapshot as a config mismatch.
const snapSplit = 0x80

// describeConfigMismatch names the first field where a snapshot's config
// section (got) differs from the pool's (want).
func describeConfigMismatch(got, want []byte, version int) string {
	if version >= 2 { // the fixed fields and codecs, then the guard's
		if len(got) < snapConfigFixed+snapGuardConfig || (len(got)-snapConfigFixed-snapGuardConfig)%(2*snapStorageBytes) != 0 {
			return fmt.Sprintf("config section of %d bytes", len(got))
		}
		gb, wb := got[:len(got)-snapGuardConfig], want[:len(want)-snapGuardConfig]
		if !bytes.Equal(gb, wb) {
			return describeConfigMismatch(gb, wb, 1)
		}
		g, w := got[len(gb):], want[len(wb):]
		return fmt.Sprintf("guard budget %v, %d queries, codecs %s %s; this pool's: budget %v, %d queries, codecs %s %s",
			math.Float64frombits(binary.LittleEndian.Uint64(g)), binary.LittleEndian.Uint64(g[8:]), snapStorageString(g[16:26]), snapStorageString(g[26:36]),
			math.Float64frombits(binary.LittleEndian.Uint64(w)), binary.LittleEndian.Uint64(w[8:]), snapStorageString(w[16:26]), snapStorageString(w[26:36]))
	}
	fields := []struct {
		name string
		size int
	}{
		{"layers", 4}, {"kv heads", 4}, {"query heads", 8}, {"head dim", 4}, {"window", 4},
		{"sinks", 4}, {"block tokens", 4}, {"scale", 4}, {"seed", 8}, {"flags", 4},
	}
	if len(got) < snapConfigFixed || (len(got)-snapConfigFixed)%(2*snapStorageBytes) != 0 {
		return fmt.Sprintf("config section of %d bytes", len(got))
	}
	field := func(b []byte, size int) uint64 {
		if size == 4 {
			return uint64(binary.LittleEndian.Uint32(b))
		}
		return binary.LittleEndian.Uint64(b)
	}
	off := 0
	for _, f := range fields {
		g, w := field(got[off:], f.size), field(want[off:], f.size)
		if g != w {
			if f.name == "scale" {
				return fmt.Sprintf("scale %v, this pool's is %v", math.Float32frombits(uint32(g)), math.Float32frombits(uint32(w)))
			}
			return fmt.Sprintf("%s %d, this pool's is %d", f.name, g, w)
		}
		off += f.size
	}
	for i := 0; off+snapStorageBytes <= min(len(got), len(want)); i, off = i+1, off+snapStorageBytes {
		if g, w := got[off:off+snapStorageBytes], want[off:off+snapStorageBytes]; !bytes.Equal(g, w) {
			what := "key"
			if i%2 == 1 {
				what = "value"
			}
			return fmt.Sprintf("layer %d %s codec %s, this pool's is %s", i/2, what, snapStorageString(g), snapStorageString(w))
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("%d layer codecs for %d layers", (len(got)-snapConfigFixed)/(2*snapStorageBytes), (len(want)-snapConfigFixed)/(2*snapStorageBytes))
	}
	return "config differs"
}

func snapStorageString(b []byte) string {
	what, bits := "outliers", b[5]
	if bits&snapSplit != 0 {
		what, bits = "split", bits&^snapSplit
	}
	return fmt.Sprintf("{kind %d method %d bits %d norm %d correction %d %s %d at %d bits}",
		b[0], b[1], b[2], b[3], b[4], what, binary.LittleEndian.Uint32(b[6:]), bits)
}
