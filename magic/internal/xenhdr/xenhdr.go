// Package xenhdr derives the magic package's ABI constants from the Xen
// public headers (libxen-dev: /usr/include/xen) by compiling and running a
// small C program with the host C compiler. It is build-time tooling: the
// generator (../mkabi) and the layout test use it; the magic package itself
// never runs it.
package xenhdr

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Field is one struct member: byte offset and size.
type Field struct {
	Name   string
	Offset uint64
	Size   uint64
}

// Layout is one start_info struct as the C compiler lays it out.
type Layout struct {
	Struct string // C struct name
	Size   uint64
	Fields []Field // in declaration order
}

// Const is one integer macro from the headers.
type Const struct {
	Name  string // C macro name
	Value uint64
}

// Values is everything Probe reads from the headers.
type Values struct {
	Layouts   []Layout // start_info_x86_64, start_info_x86_32
	SIF       []Const  // SIF_* flags
	ElfNotes  []Const  // XEN_ELFNOTE_*
	MaxCmdLen uint64   // MAX_GUEST_CMDLINE
}

// fields lists the start_info members in declaration order; the union
// console is probed through its domU view.
var fields = []string{
	"magic", "nr_pages", "shared_info", "flags", "store_mfn", "store_evtchn",
	"console.domU.mfn", "console.domU.evtchn", "pt_base", "nr_pt_frames",
	"mfn_list", "mod_start", "mod_len", "cmd_line", "first_p2m_pfn", "nr_p2m_frames",
}

var sifNames = []string{
	"SIF_PRIVILEGED", "SIF_INITDOMAIN", "SIF_MULTIBOOT_MOD", "SIF_MOD_START_PFN",
	"SIF_VIRT_P2M_4TOOLS", "SIF_PM_MASK",
}

var noteNames = []string{
	"XEN_ELFNOTE_INFO", "XEN_ELFNOTE_ENTRY", "XEN_ELFNOTE_HYPERCALL_PAGE",
	"XEN_ELFNOTE_VIRT_BASE", "XEN_ELFNOTE_PADDR_OFFSET", "XEN_ELFNOTE_XEN_VERSION",
	"XEN_ELFNOTE_GUEST_OS", "XEN_ELFNOTE_GUEST_VERSION", "XEN_ELFNOTE_LOADER",
	"XEN_ELFNOTE_PAE_MODE", "XEN_ELFNOTE_FEATURES", "XEN_ELFNOTE_BSD_SYMTAB",
	"XEN_ELFNOTE_HV_START_LOW", "XEN_ELFNOTE_L1_MFN_VALID", "XEN_ELFNOTE_SUSPEND_CANCEL",
	"XEN_ELFNOTE_INIT_P2M", "XEN_ELFNOTE_MOD_START_PFN", "XEN_ELFNOTE_SUPPORTED_FEATURES",
	"XEN_ELFNOTE_PHYS32_ENTRY", "XEN_ELFNOTE_MAX",
}

var structs = []string{"start_info_x86_64", "start_info_x86_32"}

// CSource returns the probe program.
func CSource() string {
	var b strings.Builder
	b.WriteString(`#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <xen/xen.h>
#include <xen/elfnote.h>
#include <xen/foreign/x86_32.h>
#include <xen/foreign/x86_64.h>
#define F(s, f) printf("field %s %s %zu %zu\n", #s, #f, offsetof(struct s, f), sizeof(((struct s *)0)->f))
#define S(s) printf("size %s %zu\n", #s, sizeof(struct s))
#define C(k, c) printf("%s %s %llu\n", k, #c, (unsigned long long)(c))
int main(void) {
`)
	for _, s := range structs {
		fmt.Fprintf(&b, "\tS(%s);\n", s)
		for _, f := range fields {
			fmt.Fprintf(&b, "\tF(%s, %s);\n", s, f)
		}
	}
	for _, c := range sifNames {
		fmt.Fprintf(&b, "\tC(\"sif\", %s);\n", c)
	}
	for _, c := range noteNames {
		fmt.Fprintf(&b, "\tC(\"note\", %s);\n", c)
	}
	b.WriteString("\tC(\"max\", MAX_GUEST_CMDLINE);\n\treturn 0;\n}\n")
	return b.String()
}

// ErrNoCompiler is returned when no C compiler is found.
var ErrNoCompiler = errors.New("xenhdr: no C compiler (gcc or $CC) on PATH")

// Probe compiles and runs the probe program with cc ("" means $CC, then
// gcc) against the headers under the compiler's default include path.
func Probe(ctx context.Context, cc string) (*Values, error) {
	if cc == "" {
		cc = os.Getenv("CC")
	}
	if cc == "" {
		cc = "gcc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoCompiler, err)
	}
	dir, err := os.MkdirTemp("", "xenhdr")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "probe.c")
	bin := filepath.Join(dir, "probe")
	if err := os.WriteFile(src, []byte(CSource()), 0o600); err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, cc, "-o", bin, src).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("compiling header probe: %w: %s", err, out)
	}
	out, err = exec.CommandContext(ctx, bin).Output()
	if err != nil {
		return nil, fmt.Errorf("running header probe: %w", err)
	}
	return parse(out)
}

func parse(out []byte) (*Values, error) {
	v := &Values{}
	byName := map[string]*Layout{}
	for _, s := range structs {
		v.Layouts = append(v.Layouts, Layout{Struct: s})
	}
	for i := range v.Layouts {
		byName[v.Layouts[i].Struct] = &v.Layouts[i]
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		var numErr error
		num := func(s string) uint64 {
			n, perr := strconv.ParseUint(s, 10, 64)
			if perr != nil {
				numErr = perr
			}
			return n
		}
		switch {
		case (len(f) == 5 && f[0] == "field" || len(f) == 3 && f[0] == "size") && byName[f[1]] == nil:
			return nil, fmt.Errorf("probe output for unknown struct %q", f[1])
		case len(f) == 5 && f[0] == "field":
			l := byName[f[1]]
			l.Fields = append(l.Fields, Field{Name: f[2], Offset: num(f[3]), Size: num(f[4])})
		case len(f) == 3 && f[0] == "size":
			byName[f[1]].Size = num(f[2])
		case len(f) == 3 && f[0] == "sif":
			v.SIF = append(v.SIF, Const{f[1], num(f[2])})
		case len(f) == 3 && f[0] == "note":
			v.ElfNotes = append(v.ElfNotes, Const{f[1], num(f[2])})
		case len(f) == 3 && f[0] == "max":
			v.MaxCmdLen = num(f[2])
		default:
			return nil, fmt.Errorf("unexpected probe output %q", sc.Text())
		}
		if numErr != nil {
			return nil, fmt.Errorf("probe output %q: %w", sc.Text(), numErr)
		}
	}
	return v, sc.Err()
}

// goFieldName maps a C member to the Go layout field name.
var goFieldName = map[string]string{
	"magic": "Magic", "nr_pages": "NrPages", "shared_info": "SharedInfo", "flags": "Flags",
	"store_mfn": "StoreMFN", "store_evtchn": "StoreEvtchn", "console.domU.mfn": "ConsoleMFN",
	"console.domU.evtchn": "ConsoleEvtchn", "pt_base": "PTBase", "nr_pt_frames": "NrPTFrames",
	"mfn_list": "MFNList", "mod_start": "ModStart", "mod_len": "ModLen", "cmd_line": "CmdLine",
	"first_p2m_pfn": "FirstP2MPFN", "nr_p2m_frames": "NrP2MFrames",
}

var goSIFName = map[string]string{
	"SIF_PRIVILEGED": "SIFPrivileged", "SIF_INITDOMAIN": "SIFInitDomain",
	"SIF_MULTIBOOT_MOD": "SIFMultibootMod", "SIF_MOD_START_PFN": "SIFModStartPFN",
	"SIF_VIRT_P2M_4TOOLS": "SIFVirtP2M4Tools", "SIF_PM_MASK": "SIFPMMask",
}

var goNoteName = map[string]string{
	"XEN_ELFNOTE_INFO": "NoteInfo", "XEN_ELFNOTE_ENTRY": "NoteEntry",
	"XEN_ELFNOTE_HYPERCALL_PAGE": "NoteHypercallPage", "XEN_ELFNOTE_VIRT_BASE": "NoteVirtBase",
	"XEN_ELFNOTE_PADDR_OFFSET": "NotePaddrOffset", "XEN_ELFNOTE_XEN_VERSION": "NoteXenVersion",
	"XEN_ELFNOTE_GUEST_OS": "NoteGuestOS", "XEN_ELFNOTE_GUEST_VERSION": "NoteGuestVersion",
	"XEN_ELFNOTE_LOADER": "NoteLoader", "XEN_ELFNOTE_PAE_MODE": "NotePAEMode",
	"XEN_ELFNOTE_FEATURES": "NoteFeatures", "XEN_ELFNOTE_BSD_SYMTAB": "NoteBSDSymtab",
	"XEN_ELFNOTE_HV_START_LOW": "NoteHVStartLow", "XEN_ELFNOTE_L1_MFN_VALID": "NoteL1MFNValid",
	"XEN_ELFNOTE_SUSPEND_CANCEL": "NoteSuspendCancel", "XEN_ELFNOTE_INIT_P2M": "NoteInitP2M",
	"XEN_ELFNOTE_MOD_START_PFN":      "NoteModStartPFN",
	"XEN_ELFNOTE_SUPPORTED_FEATURES": "NoteSupportedFeatures",
	"XEN_ELFNOTE_PHYS32_ENTRY":       "NotePhys32Entry", "XEN_ELFNOTE_MAX": "NoteMax",
}

var goLayoutVar = map[string]string{
	"start_info_x86_64": "layoutX86_64", "start_info_x86_32": "layoutX86_32",
}

// Render returns the generated Go file for package magic.
func Render(v *Values) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("// Code generated by go run ./internal/mkabi; DO NOT EDIT.\n")
	b.WriteString("// Source: /usr/include/xen/{xen.h,elfnote.h,foreign/x86_32.h,foreign/x86_64.h} via the C compiler.\n\n")
	b.WriteString("package magic\n\n")
	b.WriteString("// Sizes of struct start_info for each PV guest width.\nconst (\n")
	for _, l := range v.Layouts {
		name := map[string]string{"start_info_x86_64": "StartInfoSize64", "start_info_x86_32": "StartInfoSize32"}[l.Struct]
		fmt.Fprintf(&b, "\t%s = %d // sizeof(struct %s)\n", name, l.Size, l.Struct)
	}
	fmt.Fprintf(&b, "\t// MaxCmdLine is MAX_GUEST_CMDLINE, the size of start_info.cmd_line including its NUL.\n\tMaxCmdLine = %d\n)\n\n", v.MaxCmdLen)
	b.WriteString("// start_info.flags bits (SIF_*).\nconst (\n")
	for _, c := range v.SIF {
		fmt.Fprintf(&b, "\t%s uint32 = %#x // %s\n", goSIFName[c.Name], c.Value, c.Name)
	}
	b.WriteString(")\n\n// Xen ELF note types (XEN_ELFNOTE_*).\nconst (\n")
	for _, c := range v.ElfNotes {
		fmt.Fprintf(&b, "\t%s NoteType = %d // %s\n", goNoteName[c.Name], c.Value, c.Name)
	}
	b.WriteString(")\n\nvar noteNames = map[NoteType]string{\n")
	for _, c := range v.ElfNotes {
		if c.Name == "XEN_ELFNOTE_MAX" {
			continue
		}
		fmt.Fprintf(&b, "\t%d: %q,\n", c.Value, c.Name)
	}
	b.WriteString("}\n\n")
	for _, l := range v.Layouts {
		fmt.Fprintf(&b, "// %s is struct %s.\nvar %s = startInfoLayout{\n\tSize: %d,\n", goLayoutVar[l.Struct], l.Struct, goLayoutVar[l.Struct], l.Size)
		for _, f := range l.Fields {
			fmt.Fprintf(&b, "\t%s: field{%d, %d},\n", goFieldName[f.Name], f.Offset, f.Size)
		}
		b.WriteString("}\n\n")
	}
	return format.Source(b.Bytes())
}
