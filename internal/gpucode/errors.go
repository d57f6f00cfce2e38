package gpucode

import "errors"

// ErrUnsupported marks a codec or rotation the device kernels cannot run;
// each backend wraps it in its own ErrUnsupported.
var ErrUnsupported = errors.New("not supported by the device kernels")
