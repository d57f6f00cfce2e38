// Package metal is the Metal backend for Apple GPUs: a binding to Metal
// through the Objective-C runtime with purego (no cgo), MSL kernels
// embedded in the binary and compiled by the device at Open, and a KV
// cache whose tokens live in shared-storage device buffers and whose
// attention runs on the GPU.
//
// Kernels (kernels/*.metal; the code layouts and spec are cuda's, see
// cuda/kernels/codes.cuh and internal/gpucode):
//
//   - tq_encode_mse: batched encode (norm, randomized Hadamard rotation,
//     Lloyd–Max boundary search, LSB-first packing) of fp32, fp16 or bf16
//     vectors: the codes of turboquant.Quantizer.Encode, byte for byte
//     (float64 norm accumulation emulated in integers; see encode.metal).
//   - tq_logits: scaled logits on the packed codes of a layer, one thread
//     per token computing the whole GQA group from one read of its code.
//   - tq_attend_partial / tq_attend_reduce: softmax and P·V split over the
//     context, then the merge of the splits, in cuda's partial-row format.
//
// Blocks are found through a per-(block, KV head) table, so every preset
// runs, the guard's (blocks whose heads were upgraded to other codecs) and
// BlockCenter's (a drift code per block and head) included.
//
// Without a Mac the kernels are still exercised: the tests compile the
// same MSL files as C++ with clang++-16 behind testdata/msl_host.h and run
// every kernel over whole grids through the same Device, Encoder and Pool
// code, against the CPU codec. docs/notes/metal.md says what is verified
// where; check.sh is the one command to run on a Mac.
//
// On any OS but macOS, and on a Mac without a Metal device, Open returns
// an error wrapping ErrUnavailable.
package metal
