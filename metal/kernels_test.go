package metal

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestSourceHasKernels: the library Open compiles defines every entry point
// it builds a pipeline for, once.
func TestSourceHasKernels(t *testing.T) {
	src := Source()
	for _, k := range kernelNames {
		if n := strings.Count(src, "kernel void "+k+"("); n != 1 {
			t.Errorf("%s defined %d times in Source()", k, n)
		}
	}
	if !strings.HasPrefix(strings.TrimSpace(strings.SplitN(src, "\n", 2)[1]), "// common.metal") {
		t.Errorf("Source() does not start with common.metal")
	}
}

// TestArgStructsMatchMSL: the Go argument structs that setBytes copies
// have the fields of the MSL structs, in order, with the same 4-byte
// types, so the bytes mean the same on both sides even where the harness
// does not run.
func TestArgStructsMatchMSL(t *testing.T) {
	for _, c := range []struct {
		msl string
		typ reflect.Type
	}{{"EncodeArgs", reflect.TypeFor[encodeArgs]()}, {"AttendArgs", reflect.TypeFor[attendArgs]()}} {
		m := regexp.MustCompile(`struct ` + c.msl + ` \{([^}]*)\};`).FindStringSubmatch(Source())
		if m == nil {
			t.Fatalf("struct %s not found in the MSL", c.msl)
		}
		var want []string // "name type"
		for _, decl := range strings.Split(m[1], ";") {
			decl = strings.TrimSpace(decl)
			if decl == "" {
				continue
			}
			typ, names, _ := strings.Cut(decl, " ")
			for _, n := range strings.Split(names, ",") {
				want = append(want, strings.ToLower(strings.ReplaceAll(strings.TrimSpace(n), "_", ""))+" "+typ)
			}
		}
		var got []string
		for i := range c.typ.NumField() {
			f := c.typ.Field(i)
			typ := map[reflect.Kind]string{reflect.Int32: "int", reflect.Float32: "float"}[f.Type.Kind()]
			got = append(got, strings.ToLower(f.Name)+" "+typ)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Go fields %v, MSL %v", c.msl, got, want)
		}
	}
}
