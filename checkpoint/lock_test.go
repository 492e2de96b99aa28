//go:build unix

package checkpoint_test

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

const lockingWorks = true

const holdLockEnv = "XENCKPT_TEST_HOLD_LOCK"

// TestMain doubles as the helper process that holds a lock file: fcntl
// locks never conflict within one process, so a concurrent libxl is
// played by a child.
func TestMain(m *testing.M) {
	if path := os.Getenv(holdLockEnv); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			os.Exit(2)
		}
		lk := syscall.Flock_t{Type: syscall.F_WRLCK, Len: 1}
		if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("locked\n")
		_, _ = io.Copy(io.Discard, os.Stdin) // hold until the parent closes stdin
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// holdLock takes path's lock in a child process until the returned func
// is called.
func holdLock(t *testing.T, path string) func() {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdLockEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "locked\n", line)
	return func() {
		stdin.Close()
		_ = cmd.Wait()
	}
}
