// mkpost turns the output of cgo -godefs types_xen.go (on stdin) into the
// package's generated file (on stdout). It:
//
//   - writes the generating command on line 1;
//   - makes structs.HostLayout the first field of every struct;
//   - turns pointers and Xen guest handles (anonymous one-pointer structs,
//     which godefs can only name _Ctype_struct___N) into Pointer;
//   - restores the field names godefs shortened by stripping a prefix shared
//     by all of a struct's fields, and renames C snake_case to Go CamelCase;
//   - names padding "_" and makes char arrays byte arrays;
//   - with -layout FILE, also writes the cgo table the layout test compares
//     against: for every struct its C sizeof, and for every field that has
//     a C counterpart its offsetof and size, keyed by Go type and field
//     index (so padding named "_" is checked too).

//go:build ignore

package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io"
	"log"
	"os"
	"regexp"
	"strings"
)

// command is line 1 of the output; gen.go runs it.
const command = "// go tool cgo -godefs types_xen.go | go run mkpost.go -layout abicheck/zlayout.go > ztypes_le64.go  (see mkabi.sh)"

// restored undoes godefs' prefix stripping: "Type.GodefsName" -> C name.
var restored = map[string]string{
	"Domctl.Version":                    "interface_version",
	"DomctlShadowOp.Bitmap":             "dirty_bitmap",
	"DomctlMaxMem.Memkb":                "max_memkb",
	"IoctlEvtchnBindInterdomain.Domain": "remote_domain",
	"IoctlEvtchnBindInterdomain.Port":   "remote_port",
	"IoctlEvtchnBindUnboundPort.Domain": "remote_domain",
	"SchedRemoteShutdown.Id":            "domain_id",
	"HVMSaveHeader.Khz":                 "gtsc_khz",
	"DomctlVCPUExtState.Mask":           "xfeature_mask",
	"DomctlVCPUMSRs.Count":              "msr_count",
	"VCPUInfoX86_64.Upcall_pending":     "evtchn_upcall_pending",
	"VCPUInfoX86_64.Upcall_mask":        "evtchn_upcall_mask",
	"VCPUInfoX86_64.Pending_sel":        "evtchn_pending_sel",
	"VCPUInfoX86_32.Upcall_pending":     "evtchn_upcall_pending",
	"VCPUInfoX86_32.Upcall_mask":        "evtchn_upcall_mask",
	"VCPUInfoX86_32.Pending_sel":        "evtchn_pending_sel",
}

// byteArrays are anonymous C structs or unions that hold only bytes.
var byteArrays = map[string]string{
	"VCPUGuestContextX86_64.Fpu_ctxt": "[512]byte",
	"VCPUGuestContextX86_32.Fpu_ctxt": "[512]byte",
}

// initialisms maps a lower-case word of a C name to its Go spelling.
var initialisms = map[string]string{
	"id": "ID", "domid": "DomID", "vcpu": "VCPU", "vcpus": "VCPUs", "cpu": "CPU",
	"mfn": "MFN", "pfn": "PFN", "gfn": "GFN", "tsc": "TSC", "khz": "KHz", "mb": "MB",
	"memkb": "MemKB", "p2m": "P2M", "ldt": "LDT", "gdt": "GDT", "eip": "EIP",
	"cs": "CS", "ss": "SS", "msr": "MSR", "efer": "EFER", "lstar": "LSTAR",
	"cstar": "CSTAR", "star": "STAR", "idtr": "IDTR", "gdtr": "GDTR", "ldtr": "LDTR",
	"tr": "TR", "ssidref": "SSIDRef", "iommu": "IOMMU", "evtchn": "Evtchn",
	"nsec": "Nsec", "gpaddr": "GPAddr", "nr": "Nr",
}

var padName = regexp.MustCompile(`^(X_pad\d*|Pad\d*|Pad_cgo_\d+)$`)

func camel(c string) string {
	var b strings.Builder
	for _, w := range strings.Split(strings.ToLower(c), "_") {
		if w == "" {
			continue
		}
		if s, ok := initialisms[w]; ok {
			b.WriteString(s)
			continue
		}
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}

// layoutRow is one line of the layout table.
type layoutRow struct {
	goType, cType, cField string
	index                 int // Go field index; -1 for the struct's size
}

func main() {
	layoutFile := flag.String("layout", "", "also write the layout-check table to `file`")
	flag.Parse()
	cTypes, preamble := readInput("types_xen.go")
	var rows []layoutRow
	src, err := io.ReadAll(os.Stdin)
	if err != nil {
		log.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "godefs.go", src, 0)
	if err != nil {
		log.Fatal(err)
	}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return false
		}
		cType := cTypes[ts.Name.Name]
		if cType == "" {
			log.Fatalf("type %s is not in types_xen.go", ts.Name.Name)
		}
		rows = append(rows, layoutRow{goType: ts.Name.Name, cType: cType, index: -1})
		for i, fld := range st.Fields.List {
			if len(fld.Names) != 1 {
				log.Fatalf("%s: godefs field list with %d names", ts.Name.Name, len(fld.Names))
			}
			for _, name := range fld.Names {
				key := ts.Name.Name + "." + name.Name
				if !strings.HasPrefix(name.Name, "Pad_cgo_") {
					rows = append(rows, layoutRow{goType: ts.Name.Name, cType: cType,
						cField: cFieldName(key, name.Name), index: i + 1})
				}
				switch {
				case padName.MatchString(name.Name):
					name.Name = "_"
				case restored[key] != "":
					name.Name = camel(restored[key])
				default:
					name.Name = camel(name.Name)
				}
				if t, ok := byteArrays[key]; ok {
					fld.Type = ast.NewIdent(t)
				}
			}
			fld.Type = fixType(fld.Type)
		}
		host := &ast.Field{Names: []*ast.Ident{ast.NewIdent("_")}, Type: ast.NewIdent("structs.HostLayout")}
		st.Fields.List = append([]*ast.Field{host}, st.Fields.List...)
		return false
	})
	var body bytes.Buffer
	if err := format.Node(&body, fset, f); err != nil {
		log.Fatal(err)
	}
	// Drop godefs' own header (everything before "package").
	text := body.String()
	text = text[strings.Index(text, "package abi"):]
	text = strings.Replace(text, "package abi\n", "package abi\n\nimport \"structs\"\n", 1)
	out := fmt.Sprintf("%s\n// Code generated by the command above; DO NOT EDIT.\n"+
		"// Input: Debian libxen-dev 4.17 headers in /usr/include/xen (XEN_DOMCTL_INTERFACE_VERSION 0x15).\n\n"+
		"//go:build amd64 || arm64\n\n%s", command, text)
	res, err := format.Source([]byte(out))
	if err != nil {
		log.Fatalf("formatting output: %v", err)
	}
	if strings.Contains(string(res), "_Ctype_") {
		log.Fatal("output still contains an unnamed C type; extend mkpost")
	}
	if _, err := os.Stdout.Write(res); err != nil {
		log.Fatal(err)
	}
	if *layoutFile != "" {
		if err := os.WriteFile(*layoutFile, layoutSource(preamble, rows), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// readInput returns, from the godefs input file, the C type behind each Go
// type ("struct xen_domctl") and the cgo preamble.
func readInput(name string) (map[string]string, string) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
	if err != nil {
		log.Fatal(err)
	}
	types := map[string]string{}
	preamble := ""
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, spec := range gd.Specs {
			switch s := spec.(type) {
			case *ast.ImportSpec:
				if s.Path.Value == `"C"` && gd.Doc != nil {
					preamble = gd.Doc.Text()
				}
			case *ast.TypeSpec:
				if sel, ok := s.Type.(*ast.SelectorExpr); ok {
					types[s.Name.Name] = strings.Replace(sel.Sel.Name, "struct_", "struct ", 1)
				}
			}
		}
	}
	if preamble == "" {
		log.Fatal("no cgo preamble in " + name)
	}
	return types, preamble
}

// cFieldName recovers the C name of a godefs field: godefs upper-cases the
// first letter and spells a leading underscore "X_".
func cFieldName(key, godefs string) string {
	if c, ok := restored[key]; ok {
		return c
	}
	if strings.HasPrefix(godefs, "X_") {
		return "_" + godefs[2:]
	}
	return strings.ToLower(godefs[:1]) + godefs[1:]
}

func layoutSource(preamble string, rows []layoutRow) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n// Code generated by the command above; DO NOT EDIT.\n\n//go:build cgo\n\npackage abicheck\n\n/*\n%s\n", command, preamble)
	b.WriteString("struct xenckpt_layout { const char *go_type; int index; const char *c_field; unsigned long offset, size; };\n")
	b.WriteString("static const struct xenckpt_layout xenckpt_layouts[] = {\n")
	for _, r := range rows {
		if r.index < 0 {
			fmt.Fprintf(&b, "\t{%q, -1, \"\", 0, sizeof(%s)},\n", r.goType, r.cType)
			continue
		}
		fmt.Fprintf(&b, "\t{%q, %d, %q, offsetof(%s, %s), sizeof(((%s *)0)->%s)},\n",
			r.goType, r.index, r.cField, r.cType, r.cField, r.cType, r.cField)
	}
	b.WriteString("};\nstatic int xenckpt_nlayouts(void) { return sizeof(xenckpt_layouts) / sizeof(xenckpt_layouts[0]); }\nstatic const struct xenckpt_layout *xenckpt_layout(int i) { return &xenckpt_layouts[i]; }\n*/\nimport \"C\"\n\n")
	b.WriteString(`func table() []Row {
	n := int(C.xenckpt_nlayouts())
	rows := make([]Row, 0, n)
	for i := range n {
		l := C.xenckpt_layout(C.int(i))
		rows = append(rows, Row{
			GoType: C.GoString(l.go_type),
			Index:  int(l.index),
			CField: C.GoString(l.c_field),
			Offset: uintptr(l.offset),
			Size:   uintptr(l.size),
		})
	}
	return rows
}
`)
	res, err := format.Source(b.Bytes())
	if err != nil {
		log.Fatalf("formatting layout table: %v", err)
	}
	return res
}

// fixType turns pointers and guest handles into Pointer and char arrays
// into byte arrays.
func fixType(e ast.Expr) ast.Expr {
	switch t := e.(type) {
	case *ast.StarExpr:
		return ast.NewIdent("Pointer")
	case *ast.Ident:
		if strings.HasPrefix(t.Name, "_Ctype_struct___") {
			// An anonymous struct godefs could not name: on x86 the only
			// ones in our input are guest handles, struct { T *p; }.
			return ast.NewIdent("Pointer")
		}
	case *ast.ArrayType:
		if id, ok := t.Elt.(*ast.Ident); ok && id.Name == "int8" {
			t.Elt = ast.NewIdent("byte")
		}
	}
	return e
}
