package e2e

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Result is what one lab boot produced.
type Result struct {
	// Serial is the path of the whole serial console, each line stamped
	// with the host's seconds since QEMU started.
	Serial string
	// Lines are the dom0's "LAB:" lines with the prefix removed, in order.
	Lines []string
	// Pass is true when dom0 reported "RESULT PASS".
	Pass bool
	// Done is true when dom0 reached "DONE" (it then powers off).
	Done bool
	// Failures are the "FAIL <step>: ..." lines of dom0.
	Failures []string
	// Out is the directory the result tar was unpacked into (empty if
	// the disk held no tar).
	Out string
	// ReadyAfter is the host time from QEMU start to dom0's "READY".
	ReadyAfter time.Duration
	// Wall is the host time QEMU ran.
	Wall time.Duration
}

// DefaultCPU is the lab's QEMU CPU model: qemu64 with SVM and nested
// paging, which Xen needs for PVH guests under TCG.
const DefaultCPU = "qemu64,+svm,+npt"

// QEMUArgs returns the QEMU command line for files (without the
// timeout(1) wrapper).
func QEMUArgs(cfg *Config, f *Files) []string {
	cfg.defaults()
	xenArgs := fmt.Sprintf("console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all dom0_mem=%dM,max:%dM dom0_max_vcpus=%d noreboot console_timestamps=boot",
		cfg.Dom0MemMiB, cfg.Dom0MemMiB, cfg.CPUs)
	// Inside -initrd, commas separate modules; a literal comma is ",,".
	dom0Args := "console=hvc0 earlyprintk=xen rdinit=/init loglevel=5"
	return []string{
		"qemu-system-x86_64",
		"-accel", cfg.Accel,
		"-cpu", cfg.CPU,
		"-m", strconv.Itoa(cfg.QEMUMemMiB),
		"-smp", strconv.Itoa(cfg.CPUs),
		"-nographic", "-monitor", "none", "-serial", "stdio", "-nic", "none", "-no-reboot",
		"-pidfile", filepath.Join(cfg.Work, "qemu.pid"),
		"-kernel", f.Xen,
		"-append", xenArgs,
		"-initrd", strings.ReplaceAll(f.Dom0Linux+" "+dom0Args, ",", ",,") + "," + strings.ReplaceAll(f.Initrd, ",", ",,"),
		"-drive", "file=" + f.Disk + ",format=raw,if=virtio",
	}
}

// Boot runs QEMU on the files of Build until dom0 powers off, the timeout
// expires or ctx is done, then reads the result tar back from the disk.
// QEMU runs under timeout(1) and in its own process group; it is stopped by
// its pid (never by name), also 60 s after dom0 reported DONE if it is
// still there.
func Boot(ctx context.Context, cfg *Config, f *Files) (*Result, error) {
	cfg.defaults()
	res := &Result{Serial: filepath.Join(cfg.Work, "serial.log")}
	args := QEMUArgs(cfg, f)
	secs := int(cfg.Timeout.Seconds())
	argv := append([]string{"-k", "10", strconv.Itoa(secs)}, args...)
	if err := os.WriteFile(filepath.Join(cfg.Work, "qemu.cmdline"), []byte(strings.Join(args, " ")+"\n"), 0o644); err != nil {
		return res, stepErr("write cmdline", err)
	}
	serial, err := os.Create(res.Serial)
	if err != nil {
		return res, stepErr("serial log", err)
	}
	defer serial.Close()

	cmd := exec.Command("timeout", argv...)
	// If this process dies (a go test timeout panic), timeout(1) gets
	// SIGTERM, which it forwards to QEMU.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return res, stepErr("start qemu", err)
	}
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, stepErr("start qemu", err)
	}
	cfg.Logf("lab: qemu started (pid %d under timeout %ds); serial in %s", cmd.Process.Pid, secs, res.Serial)

	// stop kills QEMU by the pid it wrote, and the timeout(1) wrapper by
	// the pid we started, once.
	var stopOnce sync.Once
	stop := func(why string) {
		stopOnce.Do(func() {
			cfg.Logf("lab: stopping qemu: %s", why)
			if b, err := os.ReadFile(filepath.Join(cfg.Work, "qemu.pid")); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		})
	}

	deadline := time.NewTimer(cfg.Timeout + 30*time.Second)
	defer deadline.Stop()
	doneSeen := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var once sync.Once
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			el := time.Since(start)
			fmt.Fprintf(serial, "[%8.2f] %s\n", el.Seconds(), line)
			i := strings.Index(line, "LAB: ")
			if i < 0 {
				continue
			}
			m := line[i+len("LAB: "):]
			res.Lines = append(res.Lines, m)
			if !strings.HasPrefix(m, "  [payload]") {
				cfg.Logf("lab [%6.1fs] %s", el.Seconds(), m)
			}
			switch {
			case strings.HasPrefix(m, "FAIL "):
				res.Failures = append(res.Failures, strings.TrimPrefix(m, "FAIL "))
			case strings.HasPrefix(m, "READY"):
				res.ReadyAfter = el
			case m == "RESULT PASS":
				res.Pass = true
			case m == "DONE":
				res.Done = true
				once.Do(func() { close(doneSeen) })
			}
		}
	}()

	waitErr := make(chan error, 1)
	go func() {
		<-readDone
		waitErr <- cmd.Wait()
	}()
	var runErr error
	var grace <-chan time.Time
loop:
	for {
		select {
		case err := <-waitErr:
			runErr = err
			break loop
		case <-doneSeen:
			doneSeen = nil
			grace = time.After(60 * time.Second)
		case <-grace:
			stop("still running 60 s after DONE")
		case <-deadline.C:
			stop("host deadline")
		case <-ctx.Done():
			stop("context: " + ctx.Err().Error())
		}
	}
	res.Wall = time.Since(start)
	cfg.Logf("lab: qemu exited after %.1fs (%v)", res.Wall.Seconds(), runErr)

	if !res.Done {
		var ee *exec.ExitError
		if errors.As(runErr, &ee) && ee.ExitCode() == 124 {
			return res, stepErr("boot", fmt.Errorf("timed out after %v; last dom0 line: %q", cfg.Timeout, lastLine(res.Lines)))
		}
		return res, stepErr("boot", fmt.Errorf("qemu ended (%v) before dom0 reported DONE; last dom0 line: %q; see %s", runErr, lastLine(res.Lines), res.Serial))
	}
	out := filepath.Join(cfg.Work, "out")
	if err := untar(f.Disk, out); err != nil {
		return res, stepErr("read result disk", err)
	}
	res.Out = out
	return res, nil
}

func lastLine(lines []string) string {
	if len(lines) == 0 {
		return "(none: dom0 never reached /init)"
	}
	return lines[len(lines)-1]
}

// untar unpacks the tar at the start of disk into dir.
func untar(disk, dir string) error {
	fh, err := os.Open(disk)
	if err != nil {
		return err
	}
	defer fh.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(fh)
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("after %d entries: %w", n, err)
		}
		n++
		name := filepath.Clean(h.Name)
		if name == "." || strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			continue
		}
		p := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			w, err := os.Create(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(w, tr)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
	if n == 0 {
		return errors.New("no tar archive on the disk")
	}
	return nil
}
