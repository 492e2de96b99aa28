package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

//go:embed assets/dom0-init.sh
var dom0Init []byte

//go:embed assets/domu-init.sh
var domUInit []byte

// Config describes one lab run. The zero value of every field means the
// documented default.
type Config struct {
	// Work is the directory all build products and results go to. Required.
	Work string
	// KernelVersion is the Debian kernel used for dom0 and the guests; empty
	// means the newest /boot/vmlinuz-*.
	KernelVersion string
	// XenVersion selects /boot/xen-<v>-amd64.gz and /usr/lib/xen-<v>; empty
	// means "4.17".
	XenVersion string
	// Mode is passed to the payload as XENCKPT_LAB_MODE: "short" (default)
	// or "full".
	Mode string
	// QEMUMemMiB is QEMU's -m; zero means 3072.
	QEMUMemMiB int
	// Dom0MemMiB is Xen's dom0_mem; zero means 2048.
	Dom0MemMiB int
	// CPUs is QEMU's -smp and dom0_max_vcpus; zero means 2.
	CPUs int
	// Accel is QEMU's -accel; empty means "tcg,thread=multi".
	Accel string
	// CPU is QEMU's -cpu; empty means DefaultCPU.
	CPU string
	// Timeout bounds the whole QEMU run; zero means 20 minutes.
	Timeout time.Duration
	// PayloadDir, if set, is copied to /payload in dom0; its "run" is run
	// after the control plane is up, with a hard timeout of PayloadTimeout
	// (zero means Timeout minus 3 minutes).
	PayloadDir     string
	PayloadTimeout time.Duration
	// Export selects the save images (left by the payload in
	// /tmp/lab-images) that go into the result tar: "all", "project" (the
	// xenckpt-* images the project wrote) or "" for none.
	Export string
	// RequireAll is passed into dom0 as XENCKPT_REQUIRE_ALL=1 so that the
	// payload's skips become failures (set it in CI).
	RequireAll bool
	// Logf, if set, receives progress lines (for example t.Logf).
	Logf func(format string, args ...any)
}

func (c *Config) defaults() {
	if c.XenVersion == "" {
		c.XenVersion = "4.17"
	}
	if c.Mode == "" {
		c.Mode = "short"
	}
	if c.QEMUMemMiB == 0 {
		c.QEMUMemMiB = 3072
	}
	if c.Dom0MemMiB == 0 {
		c.Dom0MemMiB = 2048
	}
	if c.CPUs == 0 {
		c.CPUs = 2
	}
	if c.CPU == "" {
		c.CPU = DefaultCPU
	}
	if c.Accel == "" {
		c.Accel = "tcg,thread=multi"
	}
	if c.Timeout == 0 {
		c.Timeout = 20 * time.Minute
	}
	if c.PayloadTimeout == 0 {
		c.PayloadTimeout = c.Timeout - 3*time.Minute
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
}

// StepError is a failure of one named harness step.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return "lab step " + e.Step + ": " + e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

func stepErr(step string, err error) error {
	if err == nil {
		return nil
	}
	return &StepError{Step: step, Err: err}
}

// Files are the build products of Build, all under Config.Work.
type Files struct {
	Xen       string // the 32-bit multiboot ELF, unzipped
	Dom0Linux string // raw ELF vmlinux (multiboot module: nothing to decompress)
	Initrd    string // uncompressed dom0 initramfs
	Disk      string // sparse raw disk the dom0 writes its tar to
}

// newestKernel returns the version of the newest /boot/vmlinuz-*.
func newestKernel() (string, error) {
	m, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(m) == 0 {
		return "", errors.New("no /boot/vmlinuz-* (install linux-image-amd64)")
	}
	sort.Slice(m, func(i, j int) bool { return versionLess(m[i], m[j]) })
	return strings.TrimPrefix(m[len(m)-1], "/boot/vmlinuz-"), nil
}

// versionLess orders kernel versions by their numeric fields.
func versionLess(a, b string) bool {
	fa, fb := strings.FieldsFunc(a, notDigit), strings.FieldsFunc(b, notDigit)
	for i := 0; i < len(fa) && i < len(fb); i++ {
		if len(fa[i]) != len(fb[i]) {
			return len(fa[i]) < len(fb[i])
		}
		if fa[i] != fb[i] {
			return fa[i] < fb[i]
		}
	}
	return len(fa) < len(fb)
}

func notDigit(r rune) bool { return r < '0' || r > '9' }

// Build assembles everything QEMU needs under cfg.Work from installed
// Debian files.
func Build(ctx context.Context, cfg *Config) (*Files, error) {
	cfg.defaults()
	if cfg.Work == "" {
		return nil, stepErr("config", errors.New("Config.Work is empty"))
	}
	if err := os.MkdirAll(cfg.Work, 0o755); err != nil {
		return nil, stepErr("work dir", err)
	}
	if cfg.KernelVersion == "" {
		v, err := newestKernel()
		if err != nil {
			return nil, stepErr("find kernel", err)
		}
		cfg.KernelVersion = v
	}
	f := &Files{
		Xen:       filepath.Join(cfg.Work, "xen"),
		Dom0Linux: filepath.Join(cfg.Work, "vmlinux"),
		Initrd:    filepath.Join(cfg.Work, "initrd-dom0"),
		Disk:      filepath.Join(cfg.Work, "out.img"),
	}
	start := time.Now()
	if err := gunzipFile(filepath.Join("/boot", "xen-"+cfg.XenVersion+"-amd64.gz"), f.Xen); err != nil {
		return nil, stepErr("unpack xen", err)
	}
	if err := extractVmlinux(ctx, "/boot/vmlinuz-"+cfg.KernelVersion, f.Dom0Linux); err != nil {
		return nil, stepErr("extract vmlinux", err)
	}
	domUKernel, err := gzipBytesOfFile(f.Dom0Linux)
	if err != nil {
		return nil, stepErr("gzip domU kernel", err)
	}
	domUInitrd, err := buildDomUInitrd()
	if err != nil {
		return nil, stepErr("build domU initramfs", err)
	}
	if err := buildDom0Initrd(ctx, cfg, f.Initrd, domUKernel, domUInitrd); err != nil {
		return nil, stepErr("build dom0 initramfs", err)
	}
	if err := makeSparse(f.Disk, 3<<30); err != nil {
		return nil, stepErr("create result disk", err)
	}
	cfg.Logf("lab: built xen, kernel %s and initramfs in %.1fs", cfg.KernelVersion, time.Since(start).Seconds())
	return f, nil
}

func makeSparse(p string, size int64) error {
	_ = os.Remove(p)
	fh, err := os.Create(p)
	if err != nil {
		return err
	}
	if err := fh.Truncate(size); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

func gunzipFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := bufio.NewReader(zr).WriteTo(out); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", src, err)
	}
	return out.Close()
}

func gzipBytesOfFile(src string) ([]byte, error) {
	data, err := os.ReadFile(src)
	if err != nil {
		return nil, err
	}
	return gzipBytes(data)
}

func gzipBytes(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// extractVmlinux writes the ELF vmlinux inside the xz-compressed bzImage
// src to dst. Under TCG, Xen and libxenguest take 5-17 s to unpack an xz
// kernel; a raw (dom0) or gzip'd (domU) ELF takes a fraction of that.
func extractVmlinux(ctx context.Context, src, dst string) error {
	img, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	xzMagic := []byte("\xfd7zXZ\x00")
	for off := 0; ; {
		i := bytes.Index(img[off:], xzMagic)
		if i < 0 {
			return fmt.Errorf("%s: no xz stream holding an ELF vmlinux", src)
		}
		off += i
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		cmd := exec.CommandContext(cctx, "xz", "-dc", "--single-stream")
		cmd.Stdin = bytes.NewReader(img[off:])
		var out bytes.Buffer
		cmd.Stdout = &out
		err := cmd.Run()
		cancel()
		if out.Len() > 4 && bytes.HasPrefix(out.Bytes(), []byte("\x7fELF")) {
			// xz exits non-zero on the trailing garbage after the stream
			// on some versions; the ELF header is what matters.
			return os.WriteFile(dst, out.Bytes(), 0o644)
		}
		if errors.Is(err, exec.ErrNotFound) {
			return fmt.Errorf("xz: %w (install xz-utils)", err)
		}
		off++
	}
}

func buildDomUInitrd() ([]byte, error) {
	a := newArchive()
	for _, d := range []string{"proc", "sys", "dev", "tmp"} {
		a.dir(d)
	}
	a.chardev("dev/console", 5, 1)
	a.chardev("dev/null", 1, 3)
	a.file("bin/busybox", "/bin/busybox", 0o755)
	a.symlink("bin/sh", "busybox")
	a.bytes("init", domUInit, 0o755)
	var buf bytes.Buffer
	if err := a.writeTo(&buf); err != nil {
		return nil, err
	}
	return gzipBytes(buf.Bytes())
}

// dom0Binaries are the Xen tools the dom0 runs, relative to
// /usr/lib/xen-<v>/bin; missing optional ones are skipped.
var dom0Binaries = []struct {
	name     string
	optional bool
}{
	{"xl", false}, {"xenstored", false}, {"xenconsoled", false},
	{"libxl-save-helper", false}, {"xen-init-dom0", false},
	{"xenconsole", true}, {"lsevtchn", true}, {"readnotes", true},
}

var xenstoreTools = []string{
	"xenstore-read", "xenstore-write", "xenstore-exists", "xenstore-list",
	"xenstore-ls", "xenstore-rm", "xenstore-chmod", "xenstore-watch",
}

// dom0Modules are loaded in the order modprobe --show-depends gives.
var dom0Modules = []string{
	"xen-evtchn", "xen-privcmd", "xenfs", "xen-gntdev", "xen-gntalloc",
	"xen-blkback", "virtio_pci", "virtio_blk",
}

func domUConfig(typ string) string {
	return fmt.Sprintf(`name = "domU-%[1]s"
type = "%[1]s"
kernel = "/boot/vmlinuz"
ramdisk = "/boot/initrd-domU.gz"
extra = "console=hvc0 rdinit=/init loglevel=4"
memory = 128
maxmem = 128
vcpus = 1
vif = []
disk = []
on_crash = "preserve"
`, typ)
}

func buildDom0Initrd(ctx context.Context, cfg *Config, dst string, domUKernel, domUInitrd []byte) error {
	a := newArchive()
	for _, d := range []string{"proc", "sys", "dev", "run", "tmp", "root", "etc/xen", "var/lib/xen", "var/log/xen", "lib64", "lib/x86_64-linux-gnu"} {
		a.dir(d)
	}
	a.symlink("var/run", "../run")
	a.symlink("var/lock", "../run/lock")
	a.chardev("dev/console", 5, 1)
	a.chardev("dev/null", 1, 3)
	a.file("bin/busybox", "/bin/busybox", 0o755)
	a.symlink("bin/sh", "busybox")
	a.bytes("init", dom0Init, 0o755)
	a.bytes("etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	a.bytes("etc/group", []byte("root:x:0:\n"), 0o644)
	// Without it every xl command warns on stderr.
	a.bytes("etc/xen/xl.conf", []byte("# xenckpt lab: xl defaults\nautoballoon=\"off\"\n"), 0o644)

	var elfs []string
	xenBin := "/usr/lib/xen-" + cfg.XenVersion + "/bin/"
	for _, b := range dom0Binaries {
		p := xenBin + b.name
		if _, err := os.Stat(p); err != nil {
			if b.optional {
				continue
			}
			return fmt.Errorf("%s: %w (install xen-utils-%s)", p, err, cfg.XenVersion)
		}
		a.file(p, p, 0o755)
		elfs = append(elfs, p)
	}
	for _, n := range xenstoreTools {
		p := "/usr/bin/" + n
		if !isELF(p) {
			return fmt.Errorf("%s is not an ELF executable (install xenstore-utils)", p)
		}
		a.file(p, p, 0o755)
		elfs = append(elfs, p)
	}
	// The payload, which may hold dynamically linked programs too.
	var payloadFiles []string
	if cfg.PayloadDir != "" {
		err := filepath.WalkDir(cfg.PayloadDir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(cfg.PayloadDir, p)
			a.file("payload/"+rel, p, 0o755)
			payloadFiles = append(payloadFiles, p)
			return nil
		})
		if err != nil {
			return fmt.Errorf("payload: %w", err)
		}
	}
	libs, err := sharedLibs(ctx, append(elfs, payloadFiles...))
	if err != nil {
		return err
	}
	// glibc dlopen()s libgcc_s for pthread_cancel; ldd cannot see that.
	libs = append(libs, "/lib/x86_64-linux-gnu/libgcc_s.so.1")
	for _, l := range libs {
		a.file(l, l, 0o755)
	}

	mods, err := moduleOrder(ctx, cfg.KernelVersion)
	if err != nil {
		return err
	}
	var list strings.Builder
	for _, m := range mods {
		a.file(m, m, 0o644)
		list.WriteString(m + "\n")
	}
	a.bytes("lab/modules.list", []byte(list.String()), 0o644)

	requireAll := 0
	if cfg.RequireAll {
		requireAll = 1
	}
	env := fmt.Sprintf("LAB_XENVER=%s\nLAB_MODE=%s\nLAB_EXPORT=%s\nLAB_REQUIRE_ALL=%d\nLAB_PAYLOAD_TIMEOUT=%d\n",
		cfg.XenVersion, cfg.Mode, cfg.Export, requireAll, int(cfg.PayloadTimeout.Seconds()))
	a.bytes("lab/env", []byte(env), 0o644)

	a.bytes("boot/vmlinuz", domUKernel, 0o644)
	a.bytes("boot/initrd-domU.gz", domUInitrd, 0o644)
	for _, typ := range []string{"pv", "pvh"} {
		a.bytes("etc/xen/domU-"+typ+".cfg", []byte(domUConfig(typ)), 0o644)
	}

	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if err := a.writeTo(out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func isELF(p string) bool {
	fh, err := os.Open(p)
	if err != nil {
		return false
	}
	defer fh.Close()
	var m [4]byte
	_, err = fh.Read(m[:])
	return err == nil && string(m[:]) == "\x7fELF"
}

// sharedLibs returns every library ldd lists for the given programs,
// including the ELF interpreter (its line has no "=>").
func sharedLibs(ctx context.Context, progs []string) ([]string, error) {
	seen := map[string]bool{}
	var libs []string
	for _, p := range progs {
		if !isELF(p) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		out, err := exec.CommandContext(cctx, "ldd", p).Output()
		cancel()
		if err != nil {
			// Static executables (the Go payload) make ldd exit 1.
			if bytes.Contains(out, []byte("not a dynamic executable")) || len(out) == 0 {
				continue
			}
			return nil, fmt.Errorf("ldd %s: %w", p, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			fields := strings.Fields(line)
			var lib string
			switch {
			case len(fields) >= 3 && fields[1] == "=>" && strings.HasPrefix(fields[2], "/"):
				lib = fields[2]
			case len(fields) >= 1 && strings.HasPrefix(fields[0], "/"):
				lib = fields[0]
			case len(fields) >= 2 && fields[1] == "=>" && (len(fields) < 3 || fields[2] == "not"):
				return nil, fmt.Errorf("ldd %s: %s", p, strings.TrimSpace(line))
			}
			if lib != "" && !seen[lib] {
				seen[lib] = true
				libs = append(libs, lib)
			}
		}
	}
	return libs, nil
}

// moduleOrder lists the .ko files to insmod, dependencies first, without
// duplicates; built-in modules are skipped.
func moduleOrder(ctx context.Context, kver string) ([]string, error) {
	seen := map[string]bool{}
	var mods []string
	for _, m := range dom0Modules {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		out, err := exec.CommandContext(cctx, "modprobe", "-S", kver, "--show-depends", m).CombinedOutput()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("modprobe --show-depends %s: %w: %s (install kmod and linux-image-%s)", m, err, bytes.TrimSpace(out), kver)
		}
		for _, line := range strings.Split(string(out), "\n") {
			fields := strings.Fields(line)
			if len(fields) < 2 || fields[0] != "insmod" || seen[fields[1]] {
				continue
			}
			seen[fields[1]] = true
			mods = append(mods, fields[1])
		}
	}
	return mods, nil
}
