// Package gpucode holds what the GPU backends (cuda, metal) hand their
// kernels to describe a cache's codes: the code layout arrays, which the CUDA
// and MSL kernels read identically, and the rotation sign plans of the encode
// kernels. One copy keeps the two backends' layouts from drifting apart.
package gpucode
