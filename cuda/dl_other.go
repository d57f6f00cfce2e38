//go:build !((linux || darwin || freebsd || netbsd) && !android) && !windows

package cuda

const defaultLibrary = ""

func openLibrary(string) (library, error) { return nil, errNoLibrary }
