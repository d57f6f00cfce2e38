//go:build !darwin

package metal

import (
	"fmt"
	"runtime"
)

func openRunner() (runner, error) {
	return nil, fmt.Errorf("%w: Metal is macOS-only (this is %s/%s)", ErrUnavailable, runtime.GOOS, runtime.GOARCH)
}
