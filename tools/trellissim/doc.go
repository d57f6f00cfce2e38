// Command trellissim measures what a trellis-coded value codec would buy
// over the Lloyd–Max scalar codes the cache uses: the mean squared error
// of a bitshift trellis quantizer (the state is the last L bits of the
// code stream, each coordinate shifts in k bits and is reproduced as
// table[state]; Viterbi encoding; the table trained by Lloyd iterations on
// Gaussian vectors, the distribution of rotated coordinates) and the time
// one vector takes to encode. It is a study for the NIAH floors of issue 17
// (BENCHMARKS.md, "NIAH at equal bits"), not part of the library:
//
//	go run ./tools/trellissim -L 6 -k 3
package main
