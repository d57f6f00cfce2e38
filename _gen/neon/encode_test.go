package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// everyForm returns each encoder with register numbers that exercise every
// bit of each field, so a shifted or truncated field cannot hide behind
// the few registers the kernels happen to use.
func everyForm() []inst {
	three := []func(d, n, m vreg) inst{fadd4s, fsub4s, fmul4s, faddp4s, fcmgt4s, ushl4s, mul4s, bic16b, fmax4s, umax4s, fadd2d, fmla2d,
		smull8h, smull28h, smlal8h, smlal28h}
	two := []func(d, n vreg) inst{faddpS, fcvtl, fcvtl2, frintn4s, fcvtzs4s, neg4s, fmaxvS, umaxvS, faddpD, fcvtlD, fcvtl2D, fcvtn, fcvtn2,
		sxtl8h, sxtl28h, sxtl4s, sxtl24s, scvtf4s, saddlp4s, sadalp4s}
	regs := [][3]vreg{{0, 0, 0}, {31, 31, 31}, {1, 2, 4}, {8, 16, 30}, {21, 10, 5}}
	var is []inst
	for _, r := range regs {
		for _, e := range three {
			is = append(is, e(r[0], r[1], r[2]))
		}
		for _, e := range two {
			is = append(is, e(r[0], r[1]))
		}
		for idx := range uint32(4) {
			is = append(is, fmlaElem4s(r[0], r[1], r[2], idx))
		}
	}
	return is
}

var objdumpLine = regexp.MustCompile(`^\s*[0-9a-f]+:\s+([0-9a-f]{8})\s+(.*)$`)

// TestEncodingsMatchBinutils assembles the GNU spelling of every WORD the
// generator emits (and of every encoder over edge registers) with
// aarch64-linux-gnu-as and compares the words objdump reads back.
func TestEncodingsMatchBinutils(t *testing.T) {
	as, err := exec.LookPath("aarch64-linux-gnu-as")
	if err != nil {
		t.Skip("aarch64-linux-gnu-as not found (apt-get install binutils-aarch64-linux-gnu): encodings not checked")
	}
	objdump, err := exec.LookPath("aarch64-linux-gnu-objdump")
	if err != nil {
		t.Skip("aarch64-linux-gnu-objdump not found: encodings not checked")
	}
	want := append(generate().words, everyForm()...)
	var src strings.Builder
	src.WriteString("\t.text\n")
	for _, i := range want {
		fmt.Fprintf(&src, "\t%s\n", i.gnu)
	}
	dir := t.TempDir()
	s, o := filepath.Join(dir, "w.s"), filepath.Join(dir, "w.o")
	if err := os.WriteFile(s, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(as, "-o", o, s).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", as, err, out)
	}
	out, err := exec.Command(objdump, "-d", o).Output()
	if err != nil {
		t.Fatalf("%s: %v", objdump, err)
	}
	var got []uint32
	var text []string
	for _, l := range strings.Split(string(out), "\n") {
		m := objdumpLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		w, err := strconv.ParseUint(m[1], 16, 32)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, uint32(w))
		text = append(text, m[2])
	}
	if len(got) != len(want) {
		t.Fatalf("objdump read %d instructions, assembled %d", len(got), len(want))
	}
	for k, i := range want {
		if got[k] != i.word {
			t.Errorf("%s: encoded %#08x, binutils %#08x (%s)", i.gnu, i.word, got[k], text[k])
		}
	}
	t.Logf("%d encodings match binutils", len(want))
}

// TestGenerateIsDeterministic guards the CI regenerate-and-diff check.
func TestGenerateIsDeterministic(t *testing.T) {
	a, b := generate(), generate()
	if a.asm.String() != b.asm.String() || a.stubs.String() != b.stubs.String() {
		t.Fatal("two runs of the generator differ")
	}
}
