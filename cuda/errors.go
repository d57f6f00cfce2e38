package cuda

import (
	"errors"
	"fmt"
)

// ErrNoCUDA reports that CUDA is not usable here: no driver library, a
// driver without a required entry point, a driver that fails to initialise,
// or no device.
var ErrNoCUDA = errors.New("cuda: not available")

// ErrCUDA reports a driver call that failed after the driver was loaded.
// The error is a *DriverError that wraps ErrCUDA.
var ErrCUDA = errors.New("cuda: driver call failed")

// ErrUnsupported reports a configuration the device kernels do not handle
// (e.g. PolarQuant codes, Prod values).
var ErrUnsupported = errors.New("cuda: unsupported configuration")

// ErrLength reports a buffer of the wrong size passed to a device call.
var ErrLength = errors.New("cuda: wrong length")

// DriverError is a failed driver call: the call, its CUresult and the
// driver's name and description of it.
type DriverError struct {
	Call string
	Code int32
	Name string // e.g. CUDA_ERROR_OUT_OF_MEMORY; empty if the driver gave none
	Desc string
}

func (e *DriverError) Error() string {
	name := e.Name
	if name == "" {
		name = fmt.Sprintf("CUresult %d", e.Code)
	}
	if e.Desc != "" {
		return fmt.Sprintf("cuda: %s: %s (%s)", e.Call, name, e.Desc)
	}
	return fmt.Sprintf("cuda: %s: %s", e.Call, name)
}

func (e *DriverError) Unwrap() error { return ErrCUDA }

// CUresult values the package acts on.
const (
	cudaSuccess           = 0
	cudaErrorNoDevice     = 100
	cudaErrorInvalidValue = 1
)
