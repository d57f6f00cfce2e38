package metal

import (
	"errors"
	"fmt"
)

// ErrUnavailable reports that Metal is not usable here: not macOS, no
// Metal framework, or no device.
var ErrUnavailable = errors.New("metal: not available")

// ErrMetal reports a Metal call that failed after the device was opened:
// a kernel that did not compile, a pipeline, buffer or command buffer
// that could not be made, a command buffer that finished with an error.
// The error is a *CallError that wraps ErrMetal.
var ErrMetal = errors.New("metal: call failed")

// ErrUnsupported reports a configuration the kernels do not handle (e.g.
// PolarQuant codes, Prod values, more than 16 query heads per KV head).
var ErrUnsupported = errors.New("metal: unsupported configuration")

// ErrLength reports a buffer of the wrong size passed to a device call.
var ErrLength = errors.New("metal: wrong length")

// CallError is a failed Metal call and Metal's description of it.
type CallError struct {
	Call string
	Desc string
}

func (e *CallError) Error() string {
	if e.Desc == "" {
		return fmt.Sprintf("metal: %s failed", e.Call)
	}
	return fmt.Sprintf("metal: %s: %s", e.Call, e.Desc)
}

func (e *CallError) Unwrap() error { return ErrMetal }
