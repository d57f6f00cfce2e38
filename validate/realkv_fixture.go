package validate

import (
	"bytes"
	_ "embed"
)

// realKVFixture is the committed fixture, embedded so that tqbench's default
// report and the tests have real K/V on a fresh machine.
//
//go:embed testdata/kjv_kv.bin
var realKVFixture []byte

// LoadEmbeddedRealKV decodes the embedded KJV fixture (RealKVFixture).
func LoadEmbeddedRealKV() (*RealKV, error) { return LoadRealKV(bytes.NewReader(realKVFixture)) }
