package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// archive is an initramfs under construction: a set of entries keyed by
// their path inside the image (no leading slash), written as a "newc" cpio
// archive. Parent directories are added automatically. Building it in Go
// rather than with cpio(1) lets the lab add device nodes and root-owned files
// without running as root.
type archive struct {
	entries map[string]entry
}

type entryKind int

const (
	kindDir entryKind = iota
	kindFile
	kindSymlink
	kindCharDev
)

type entry struct {
	kind   entryKind
	mode   uint32 // permission bits
	src    string // kindFile: host file to copy (if data is nil)
	data   []byte // kindFile: literal content
	target string // kindSymlink
	major  uint32 // kindCharDev
	minor  uint32
}

func newArchive() *archive { return &archive{entries: map[string]entry{}} }

func clean(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

func (a *archive) dir(p string) {
	p = clean(p)
	if p == "" {
		return
	}
	if _, ok := a.entries[p]; ok {
		return
	}
	a.dir(path.Dir(p))
	a.entries[p] = entry{kind: kindDir, mode: 0o755}
}

func (a *archive) put(p string, e entry) {
	p = clean(p)
	a.dir(path.Dir(p))
	a.entries[p] = e
}

// file copies the host file src (following symlinks) to p.
func (a *archive) file(p, src string, mode uint32) {
	a.put(p, entry{kind: kindFile, src: src, mode: mode})
}

// bytes stores data at p.
func (a *archive) bytes(p string, data []byte, mode uint32) {
	a.put(p, entry{kind: kindFile, data: data, mode: mode})
}

func (a *archive) symlink(p, target string) {
	a.put(p, entry{kind: kindSymlink, target: target, mode: 0o777})
}

func (a *archive) chardev(p string, major, minor uint32) {
	a.put(p, entry{kind: kindCharDev, major: major, minor: minor, mode: 0o600})
}

// has reports whether p is already in the archive.
func (a *archive) has(p string) bool {
	_, ok := a.entries[clean(p)]
	return ok
}

// writeTo writes the archive to w in newc format, directories first by
// sorted path so that every parent precedes its children.
func (a *archive) writeTo(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	names := make([]string, 0, len(a.entries))
	for n := range a.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	ino := uint32(1)
	for _, n := range names {
		e := a.entries[n]
		var (
			mode uint32
			body []byte
			size int64
			src  *os.File
		)
		switch e.kind {
		case kindDir:
			mode = 0o040000 | e.mode
		case kindSymlink:
			mode = 0o120000 | e.mode
			body = []byte(e.target)
			size = int64(len(body))
		case kindCharDev:
			mode = 0o020000 | e.mode
		case kindFile:
			mode = 0o100000 | e.mode
			if e.data != nil {
				body = e.data
				size = int64(len(body))
			} else {
				f, err := os.Open(e.src)
				if err != nil {
					return fmt.Errorf("adding %s: %w", n, err)
				}
				st, err := f.Stat()
				if err != nil {
					f.Close()
					return fmt.Errorf("adding %s: %w", n, err)
				}
				src, size = f, st.Size()
			}
		}
		nlink := uint32(1)
		if e.kind == kindDir {
			nlink = 2
		}
		if err := writeHeader(bw, ino, mode, nlink, size, e.major, e.minor, n); err != nil {
			return err
		}
		ino++
		if src != nil {
			_, err := io.Copy(bw, src)
			src.Close()
			if err != nil {
				return fmt.Errorf("copying %s: %w", n, err)
			}
		} else if _, err := bw.Write(body); err != nil {
			return err
		}
		if err := pad4(bw, size); err != nil {
			return err
		}
	}
	if err := writeHeader(bw, 0, 0, 1, 0, 0, 0, "TRAILER!!!"); err != nil {
		return err
	}
	return bw.Flush()
}

func writeHeader(w *bufio.Writer, ino, mode, nlink uint32, size int64, major, minor uint32, name string) error {
	// c_magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize, check.
	_, err := fmt.Fprintf(w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, uint32(size), 0, 0, major, minor, len(name)+1, 0)
	if err != nil {
		return err
	}
	if _, err := w.WriteString(name + "\x00"); err != nil {
		return err
	}
	return pad4(w, int64(110+len(name)+1))
}

func pad4(w *bufio.Writer, n int64) error {
	if r := n % 4; r != 0 {
		_, err := w.Write(make([]byte, 4-r))
		return err
	}
	return nil
}
