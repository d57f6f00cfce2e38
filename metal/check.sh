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
# inputs; 2/3/4/8 bits; fp16 and fp32 norms; edge cases). Pool: tq_logits,
# softmax+P·V and the reduce over every fixed-rate and ladder preset, the
# guard (upgraded heads), block centring (+bc) and more configurations,
# within the tolerances stated in pool_test.go; snapshots byte-identical to
# the CPU pool's.
# Every test of the package runs on each device present (the Metal GPU, and
# the C++ harness too if clang++-16 is installed); -v lists each subtest.
if ! go test -count=1 -v ./metal/ >/tmp/tq-metal-check.log 2>&1; then
  grep -E '^(--- |ok|FAIL|panic)|_test.go' /tmp/tq-metal-check.log
  echo "FAIL: the Metal kernels disagree with the CPU codec (full log: /tmp/tq-metal-check.log)"
  exit 1
fi
grep -E '^ *--- (PASS|SKIP): Test[A-Za-z]+(/(metal|host))? |^ok ' /tmp/tq-metal-check.log

echo "== speed: encode (4096 × d128, 3 bits), Metal vs CPU"
go test -run '^$' -bench 'BenchmarkEncode' -benchtime 20x ./metal/

echo "== speed: decode attention, Metal vs the CPU's NEON kernels (8 KV heads × 4, d128, one layer)"
go run ./cmd/tqbench backend --backend metal --presets fp16,k8v4,tq4,tq3,tq3-guard,tq3+bc --tokens "$TOKENS"
go run ./cmd/tqbench backend --backend neon --presets fp16,k8v4,tq4,tq3,tq3-guard,tq3+bc --tokens "$TOKENS"
echo "== done: record the tables above (date, machine, command) in BENCHMARKS.md"
