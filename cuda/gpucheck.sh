#!/bin/sh
# gpucheck.sh: the GPU verification of the cuda package, in two halves so
# the GPU machine needs no Go toolchain.
#
#   sh cuda/gpucheck.sh build [DIR]   on the CPU machine: cross-compile the
#                                     test binary and tqbench into DIR
#                                     (default gpucheck-bin, CGO_ENABLED=0)
#   sh cuda/gpucheck.sh run [DIR]     on the GPU machine: run them; logs go
#                                     to $OUT (or DIR/out)
#
# The run half checks, in order:
#   1. the driver binding and the stub-driver tests (needs gcc; skipped without);
#   2. the kernels against their Go models and the CPU path, every preset,
#      decode and multi-token batches (TestGPUAttendMatchesModelAndCPU), the
#      encode kernel byte for byte (TestGPUEncodeMatchesCPU), the dense
#      baseline (TestGPUDenseMatchesCPU);
#   3. BenchmarkGPUDecode: one decode step's kernels, 8 KV heads × 4 query
#      heads × d=128, at 8K, 32K and 128K tokens, for tq4, tq3, k8v4, fp16
#      and the dense fp16/fp32 baselines; µs/step, GB/s read, and the
#      fraction of the cuMemcpyDtoD bandwidth measured in the same process;
#   4. tqbench backend (availability) and tqbench backend --backend cuda
#      (host wall time, kernel time and error against the generic backend).
# Record the card (nvidia-smi line in the log), the numbers and this command.
set -eu
mode=${1:-}
dir=${2:-gpucheck-bin}
case "$mode" in
build)
	root=$(cd "$(dirname "$0")/.." && pwd)
	mkdir -p "$dir"
	arch=${GOARCH:-amd64}
	(cd "$root" && CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go test -c -o "$dir/cuda.test" ./cuda)
	(cd "$root" && CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -o "$dir/tqbench" ./cmd/tqbench)
	cp "$root/cuda/testdata/stubcuda.c" "$dir/"
	echo "built $dir/cuda.test and $dir/tqbench for linux/$arch"
	;;
run)
	out=${OUT:-$dir/out}
	mkdir -p "$out" "$dir/testdata"
	cp "$dir/stubcuda.c" "$dir/testdata/" 2>/dev/null || true
	log="$out/gpucheck.log"
	{
		date -u
		nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.mem --format=csv || true
		cd "$dir"
		echo "== 1-2: tests"
		./cuda.test -test.v -test.count=1 -test.run 'Stub|Open|Model|RotationPlan|Pool|GPU' 2>&1
		echo "== 3: BenchmarkGPUDecode"
		./cuda.test -test.run '^$' -test.bench '^BenchmarkGPUDecode$' -test.benchtime 5x -test.count 3 -test.v 2>&1
		echo "== 4: tqbench"
		./tqbench backend
		./tqbench backend --backend cuda --presets fp16,k8v4,tq4,tq3 --tokens 8192,32768,131072
	} 2>&1 | tee "$log"
	;;
*)
	echo "usage: sh cuda/gpucheck.sh build|run [DIR]" >&2
	exit 2
	;;
esac
