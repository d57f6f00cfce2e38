//go:build (linux || darwin || freebsd || netbsd) && !android

package cuda

import (
	"runtime"

	"github.com/ebitengine/purego"
)

var defaultLibrary = func() string {
	if runtime.GOOS == "darwin" {
		return "libcuda.dylib"
	}
	return "libcuda.so.1"
}()

type unixLibrary struct{ handle uintptr }

func openLibrary(path string) (library, error) {
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, err
	}
	return unixLibrary{h}, nil
}

func (l unixLibrary) bind(fptr any, name string) error {
	addr, err := purego.Dlsym(l.handle, name)
	if err != nil {
		return err
	}
	purego.RegisterFunc(fptr, addr)
	return nil
}
