// Command tqbench measures the TurboQuant library: KV-cache memory, fidelity
// against exact attention, needle-in-a-haystack and decode speed against
// fp16 and fp32, plus codebooks and Monte Carlo distortion.
//
// Usage (main.go's command table lists the same commands; "tqbench help"
// prints it, "tqbench COMMAND -h" a command's flags):
//
//	tqbench [--quick] [--json] [--plot-dir DIR] [--quiet] [--backend auto|generic|avx2|neon]   the default report
//	tqbench ann        --data glove100|fmnist|FILE --bits 1,2,3,4 --methods mse,mse-norm,prod --metrics ip,cosine [--json] [--plot F.png]
//	tqbench backend    [--backend NAME --presets fp16,k8v4,tq4,tq3 --tokens 8192 --kvheads 8 --group 4 --dim 128 --steps 20]
//	tqbench compare    [--data FILE] [--synthetic] [--study outliers|guard --budgets 0.1,...] [--json]
//	tqbench data       fetch glove|fmnist  |  tqbench data info [--json]
//	tqbench kv         --presets tq4,tq3,naive3 --lengths 8192,32768 [--center] [--window N] [--json] [--plot F.png]
//	tqbench load       [--presets fp16,tq3 --kv-budget 16MiB --window 0 --max-tokens 256 --concurrency 1,16 --requests 32] [--url http://127.0.0.1:8080] [--json]
//	tqbench niah       --lengths 1024,...,131072 --depths 11 [--presets tq3,kivi3-g32,ideal-v3,…] [--center] [--json] [--plot F.png]
//	tqbench speed      --lengths 1024,4096,16384,32768 [--reps 7] [--json] [--plot F.png]
//	tqbench realkv     --presets tq4,tq3 [--center] [--window 0] [--data FILE] [--json] [--plot F.png]
//	tqbench plan       --model-layers 32 --kv-heads 8 --head-dim 128 --tokens 131072 --preset tq3 [--json]
//	tqbench codebook   --dim 128 --bits 1,2,3,4 --density beta|gaussian [--json]
//	tqbench distortion --dim 128 --bits 1,2,3,4 --method mse|prod|polar --n 10000 --seed 1 [--json]
//
// Exit status: 0 success, 1 error, 2 usage.
package main
