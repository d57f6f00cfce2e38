//go:build windows

package cuda

import (
	"github.com/ebitengine/purego"
	"golang.org/x/sys/windows"
)

const defaultLibrary = "nvcuda.dll"

type windowsLibrary struct{ dll *windows.DLL }

func openLibrary(path string) (library, error) {
	dll, err := windows.LoadDLL(path)
	if err != nil {
		return nil, err
	}
	return windowsLibrary{dll}, nil
}

func (l windowsLibrary) bind(fptr any, name string) error {
	proc, err := l.dll.FindProc(name)
	if err != nil {
		return err
	}
	purego.RegisterFunc(fptr, proc.Addr())
	return nil
}
