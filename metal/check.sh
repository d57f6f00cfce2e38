#!/bin/sh
# metal/check.sh: the one command to run on a Mac (Apple silicon, macOS 13+,
# Go; no Xcode, no cgo): correctness of every Metal kernel against the CPU
# codec, then speed against the CPU path, printing the numbers to record in
# BENCHMARKS.md and docs/notes/metal.md.
#
#   sh metal/check.sh            # default workload (a few minutes)
#   TOKENS=4096 sh metal/check.sh  # a shorter speed run
set -eu
cd "$(dirname "$0")/.."
export CGO_ENABLED=0
TOKENS=${TOKENS:-4096,32768}

echo "== machine"
uname -mrs
sysctl -n machdep.cpu.brand_string 2>/dev/null || true
go version
date -u

echo "== backends"
go run ./cmd/tqbench backend

echo "== correctness: the kernels on the Metal device against the CPU codec"
# Encode: every code byte-identical to Quantizer.Encode (fp32, fp16, bf16
# inputs; 2/3/4/8 bits; fp16 and fp32 norms). Pool: tq_logits, softmax+P·V
# and the reduce over every fixed-rate preset, within the tolerances stated
# in pool_test.go; snapshots byte-identical to the CPU pool's.
go test -count=1 -v -run 'TestEncodeMatchesCPU|TestEncodeOverflowAndErrors|TestPoolMatchesCPU|TestPoolErrors' ./metal/ 2>&1 |
  grep -E '^(--- |ok|FAIL|PASS|panic)|_test.go' | grep -v -- '--- PASS: .*/' || true
go test -count=1 -run 'TestEncodeMatchesCPU|TestEncodeOverflowAndErrors|TestPoolMatchesCPU|TestPoolErrors' ./metal/ >/dev/null ||
  { echo "FAIL: the Metal kernels disagree with the CPU codec (details above)"; exit 1; }

echo "== speed: encode (4096 × d128, 3 bits), Metal vs CPU"
go test -run '^$' -bench 'BenchmarkEncode' -benchtime 20x ./metal/

echo "== speed: decode attention, Metal vs the CPU's NEON kernels (8 KV heads × 4, d128, one layer)"
go run ./cmd/tqbench backend --backend metal --presets fp16,k8v4,tq4,tq3 --tokens "$TOKENS"
go run ./cmd/tqbench backend --backend neon --presets fp16,k8v4,tq4,tq3 --tokens "$TOKENS"
echo "== done: record the tables above (date, machine, command) in BENCHMARKS.md"
