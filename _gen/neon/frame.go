package main

import (
	"bytes"
	"fmt"
	"strings"
)

// file accumulates one generated assembly file and its Go stubs.
type file struct {
	asm, stubs bytes.Buffer
	words      []inst // every WORD emitted, in order, for the encoding check
	args       map[string]int
}

// param is one Go parameter of a kernel.
type param struct{ name, typ string }

// parseParams reads "a, b []float32, n int": names before a type share it.
func parseParams(sig string) []param {
	var ps []param
	var pending []string
	for _, f := range strings.Split(sig, ",") {
		f = strings.TrimSpace(f)
		name, typ, ok := strings.Cut(f, " ")
		if !ok {
			pending = append(pending, f)
			continue
		}
		for _, p := range pending {
			ps = append(ps, param{p, typ})
		}
		pending = nil
		ps = append(ps, param{name, typ})
	}
	if len(pending) > 0 {
		panic("neon: parameters without a type in " + sig)
	}
	return ps
}

// size returns the ABI0 size and alignment of the few types kernels take.
func size(typ string) (n, align int) {
	switch {
	case strings.HasPrefix(typ, "[]"):
		return 24, 8
	case typ == "int", strings.HasPrefix(typ, "*"):
		return 8, 8
	case typ == "float64":
		return 8, 8
	case typ == "float32", typ == "uint32":
		return 4, 4
	}
	panic("neon: no size for type " + typ)
}

// text starts a kernel: its stub (doc lines, //go:noescape, declaration)
// and its TEXT line, with the ABI0 argument offsets recorded for arg.
// result is "" or the type of the one unnamed result.
func (f *file) text(name, sig, result string, doc ...string) {
	f.args = map[string]int{}
	off := 0
	for _, p := range parseParams(sig) {
		n, a := size(p.typ)
		off = (off + a - 1) &^ (a - 1)
		if strings.HasPrefix(p.typ, "[]") {
			f.args[p.name+"_base"] = off
			f.args[p.name+"_len"] = off + 8
			f.args[p.name+"_cap"] = off + 16
		} else {
			f.args[p.name] = off
		}
		off += n
	}
	decl := "func " + name + "(" + sig + ")"
	if result != "" {
		off = (off + 7) &^ 7
		f.args["ret"] = off
		n, _ := size(result)
		off += n
		decl += " " + result
	}
	for _, l := range doc {
		fmt.Fprintf(&f.stubs, "\n// %s", l)
	}
	fmt.Fprintf(&f.stubs, "\n//\n//go:noescape\n%s\n", decl)
	fmt.Fprintf(&f.asm, "\n// %s\nTEXT ·%s(SB), NOSPLIT, $0-%d\n", decl, name, off)
}

// arg returns the FP reference of an argument ("dst_base", "n", "ret").
func (f *file) arg(name string) string {
	off, ok := f.args[name]
	if !ok {
		panic("neon: no argument " + name)
	}
	return fmt.Sprintf("%s+%d(FP)", name, off)
}

// op emits one instruction Go's assembler knows.
func (f *file) op(format string, a ...any) {
	fmt.Fprintf(&f.asm, "\t"+format+"\n", a...)
}

// w emits a hand-encoded instruction with its GNU spelling as a comment.
func (f *file) w(i inst) {
	f.words = append(f.words, i)
	fmt.Fprintf(&f.asm, "\tWORD $0x%08x // %s\n", i.word, i.gnu)
}

func (f *file) label(l string) { fmt.Fprintf(&f.asm, "%s:\n", l) }

func (f *file) comment(c string) { fmt.Fprintf(&f.asm, "\t// %s\n", c) }
