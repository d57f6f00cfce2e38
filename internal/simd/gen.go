package simd

//go:generate go run -C ../../_gen ./simd -out ../internal/simd/simd_gen_amd64.s -stubs ../internal/simd/simd_gen_amd64.go -pkg simd
//go:generate go run -C ../../_gen ./neon -out ../internal/simd/simd_gen_arm64.s -stubs ../internal/simd/simd_gen_arm64.go -pkg simd
