// Package xsdaemon starts Debian's real xenstored (C) and oxenstored
// (OCaml) for tests, without a hypervisor: it compiles the project's
// LD_PRELOAD shim (testdata/shim.c) with gcc and launches each daemon
// under it in a private directory, as /work/shared/XENSTORED.md
// describes. Everything is torn down by t.Cleanup.
//
// Missing pieces (gcc, libxen-dev headers, the daemons, root for
// oxenstored's bind mount) skip the test with a fix, and fail it in CI
// (internal/testutil.SkipOrFail).
package xsdaemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xenckpt/xenckpt/internal/testutil"
)

// Paths of Debian's xen-utils-4.17 daemons.
const (
	CXenstoredPath = "/usr/lib/xen-4.17/bin/xenstored"
	OXenstoredPath = "/usr/lib/xen-4.17/bin/oxenstored"
	oxenstoredConf = "/etc/xen/oxenstored.conf"
)

const fixPackages = "apt-get install xen-utils-4.17 libxen-dev gcc (scripts/setup.sh)"

// Daemon is a running real xenstored.
type Daemon struct {
	// Socket is the unix socket clients connect to (XENSTORED_PATH).
	Socket string
	// Dir is the daemon's private run directory.
	Dir string
	cmd *exec.Cmd
	log string
}

// Dial connects to the daemon, failing tb on error.
func (d *Daemon) Dial(tb testing.TB) net.Conn {
	tb.Helper()
	c, err := net.Dial("unix", d.Socket)
	// A full listen backlog answers EAGAIN until the daemon accepts.
	for i := 0; err != nil && errors.Is(err, syscall.EAGAIN) && i < 500; i++ {
		time.Sleep(2 * time.Millisecond)
		c, err = net.Dial("unix", d.Socket)
	}
	if err != nil {
		tb.Fatalf("dialing %s: %v; daemon output:\n%s", d.Socket, err, d.output())
	}
	return c
}

func (d *Daemon) output() string {
	b, _ := os.ReadFile(d.log)
	return string(b)
}

func sourceDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata")
}

// BuildShim compiles testdata/shim.c into a temporary directory and
// returns the shared object's path.
func BuildShim(tb testing.TB) string {
	tb.Helper()
	testutil.RequireCommand(tb, "gcc", fixPackages)
	testutil.RequireFile(tb, "/usr/include/xenctrl.h", fixPackages)
	out := filepath.Join(tb.TempDir(), "shim.so")
	cmd := exec.Command("gcc", "-O2", "-Wall", "-Werror", "-shared", "-fPIC", "-o", out,
		filepath.Join(sourceDir(), "shim.c"), "-ldl")
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building the shim: %v\n%s", err, b)
	}
	return out
}

// BuildC compiles a C program from testdata (name without .c) with extra
// gcc arguments such as "-lxenstore", and returns the binary's path.
func BuildC(tb testing.TB, name string, extra ...string) string {
	tb.Helper()
	testutil.RequireCommand(tb, "gcc", fixPackages)
	out := filepath.Join(tb.TempDir(), name)
	args := append([]string{"-O2", "-Wall", "-Werror", "-o", out, filepath.Join(sourceDir(), name+".c")}, extra...)
	if b, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		tb.Fatalf("building %s: %v\n%s", name, err, b)
	}
	return out
}

// StartCXenstored starts cxenstored (-N, no fork) under the shim with
// XENSTORED_RUNDIR and XENSTORED_PATH in a private directory.
func StartCXenstored(tb testing.TB) *Daemon {
	tb.Helper()
	testutil.RequireFile(tb, CXenstoredPath, fixPackages)
	shim := BuildShim(tb)
	dir := tb.TempDir()
	d := &Daemon{Socket: filepath.Join(dir, "socket"), Dir: dir, log: filepath.Join(dir, "daemon.log")}
	cmd := exec.Command(CXenstoredPath, "-N")
	cmd.Env = append(os.Environ(),
		"LD_PRELOAD="+shim,
		"XENSTORED_RUNDIR="+dir,
		"XENSTORED_PATH="+d.Socket,
		"XENSTORED_ROOTDIR="+dir,
	)
	d.start(tb, cmd)
	return d
}

// StartOXenstored starts oxenstored under the shim. Its socket path is
// fixed at /run/xenstored/socket, so it runs in a private mount namespace
// (unshare -m) where a private directory is bind-mounted there; the socket
// is reached from outside as Dir/socket. Needs root.
func StartOXenstored(tb testing.TB) *Daemon {
	tb.Helper()
	testutil.RequireFile(tb, OXenstoredPath, fixPackages)
	testutil.RequireFile(tb, oxenstoredConf, fixPackages)
	testutil.RequireCommand(tb, "unshare", "apt-get install util-linux")
	testutil.RequireRoot(tb)
	shim := BuildShim(tb)
	dir := tb.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	conf, err := os.ReadFile(oxenstoredConf)
	if err != nil {
		tb.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(conf), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "pid-file") {
			continue
		}
		lines = append(lines, l)
	}
	lines = append(lines,
		"pid-file = "+filepath.Join(dir, "xenstored.pid"),
		"access-log-file = "+filepath.Join(dir, "access.log"),
		"xenstored-log-file = "+filepath.Join(dir, "xenstored.log"),
	)
	confPath := filepath.Join(dir, "oxenstored.conf")
	if err := os.WriteFile(confPath, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.MkdirAll("/run/xenstored", 0o755); err != nil {
		tb.Fatal(err)
	}
	d := &Daemon{Socket: filepath.Join(dir, "socket"), Dir: dir, log: filepath.Join(dir, "daemon.log")}
	script := `mount --bind "$1" /run/xenstored && LD_PRELOAD="$2" exec "$3" --no-fork --config-file "$4"`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
		dir, shim, OXenstoredPath, confPath)
	d.start(tb, cmd)
	return d
}

func (d *Daemon) start(tb testing.TB, cmd *exec.Cmd) {
	tb.Helper()
	logf, err := os.Create(d.log)
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		tb.Fatalf("starting %s: %v", cmd.Path, err)
	}
	d.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tb.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		logf.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		if c, err := net.Dial("unix", d.Socket); err == nil {
			c.Close()
			return
		}
		select {
		case err := <-exited:
			exited <- err
			tb.Fatalf("%s exited before serving: %v; output:\n%s", filepath.Base(cmd.Path), err, d.output())
		case <-ctx.Done():
			tb.Fatalf("%s did not create %s in time; output:\n%s", filepath.Base(cmd.Path), d.Socket, d.output())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Pid is the daemon's process id (with oxenstored, of the unshare
// wrapper that execs it), for benchmarks that account its CPU time.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// String describes the daemon for test logs.
func (d *Daemon) String() string {
	return fmt.Sprintf("%s on %s", filepath.Base(d.cmd.Path), d.Socket)
}
