package kvstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// A value is
//
//	"TQKS", u16 version (1), u16 reserved (0),
//	32-byte key it was written under, u32 tokens, u64 n,
//	n bytes: a kvcache snapshot (Sequence.WriteTo) of exactly tokens tokens,
//	u32 CRC-32C (Castagnoli) of everything before it.
const (
	valueMagic   = "TQKS"
	valueVersion = 1
	valueHeader  = 4 + 2 + 2 + KeySize + 4 + 8
	valueTrailer = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeValue frames snapshot for key.
func encodeValue(key Key, tokens int, snapshot []byte) []byte {
	b := make([]byte, 0, valueHeader+len(snapshot)+valueTrailer)
	b = append(b, valueMagic...)
	b = binary.LittleEndian.AppendUint16(b, valueVersion)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = append(b, key[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(tokens))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(snapshot)))
	b = append(b, snapshot...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeValue checks v against the key and token count it must carry and
// returns the snapshot bytes it frames (aliasing v).
func decodeValue(v []byte, key Key, tokens int) ([]byte, error) {
	if len(v) < valueHeader+valueTrailer {
		return nil, fmt.Errorf("%w: %d bytes, below the %d-byte frame", ErrValue, len(v), valueHeader+valueTrailer)
	}
	if string(v[:4]) != valueMagic {
		return nil, fmt.Errorf("%w: magic %q", ErrValue, v[:4])
	}
	if ver := binary.LittleEndian.Uint16(v[4:]); ver != valueVersion {
		return nil, fmt.Errorf("%w: version %d (want %d)", ErrValue, ver, valueVersion)
	}
	if r := binary.LittleEndian.Uint16(v[6:]); r != 0 {
		return nil, fmt.Errorf("%w: reserved field %d", ErrValue, r)
	}
	body := v[:len(v)-valueTrailer]
	if want, got := binary.LittleEndian.Uint32(v[len(v)-valueTrailer:]), crc32.Checksum(body, castagnoli); want != got {
		return nil, fmt.Errorf("%w: CRC %08x, computed %08x", ErrValue, want, got)
	}
	if !bytes.Equal(v[8:8+KeySize], key[:]) {
		return nil, fmt.Errorf("%w: written under another key", ErrValue)
	}
	if n := binary.LittleEndian.Uint32(v[8+KeySize:]); int64(n) != int64(tokens) {
		return nil, fmt.Errorf("%w: %d tokens, want %d", ErrValue, n, tokens)
	}
	n := binary.LittleEndian.Uint64(v[12+KeySize:])
	if n != uint64(len(body)-valueHeader) {
		return nil, fmt.Errorf("%w: snapshot of %d bytes in a %d-byte value", ErrValue, n, len(v))
	}
	return body[valueHeader:], nil
}
