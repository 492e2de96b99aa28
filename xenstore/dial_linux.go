//go:build linux

package xenstore

import (
	"io"
	"os"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directWait bounds how long a caller on the direct path blocks in
// recv(2) without the Go scheduler knowing (SO_RCVTIMEO). Past it the
// caller hands the connection to the reader goroutine and waits like any
// other call. The same bound applies to a direct send(2) (SO_SNDTIMEO).
const directWait = 2 * 1000 // µs

// dialUnix connects a blocking unix socket with short send and receive
// timeouts, which make it usable on the direct path (see directConn).
func dialUnix(path string) (io.ReadWriteCloser, error) {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("connect", err)
	}
	tv := syscall.Timeval{Usec: directWait}
	for _, opt := range []int{syscall.SO_RCVTIMEO, syscall.SO_SNDTIMEO} {
		if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, opt, &tv); err != nil {
			syscall.Close(fd)
			return nil, os.NewSyscallError("setsockopt", err)
		}
	}
	return newBlockingConn(os.NewFile(uintptr(fd), path), fd)
}

// blockingConn is a unix socket in blocking mode with SO_RCVTIMEO and
// SO_SNDTIMEO set, not registered with the runtime's netpoller.
//
// Read and Write are the ordinary, scheduler-aware path: they wait in
// poll(2) for as long as it takes once the socket timeout expires.
// directRead and directWrite are the direct path: raw syscalls the
// scheduler does not see, exactly as libxenstore makes them, bounded by
// the socket timeouts (errDirectSlow past them). Every syscall runs under
// the *os.File's RawConn, which keeps the descriptor from being closed
// and reused underneath.
type blockingConn struct {
	f  *os.File
	rc syscall.RawConn
	fd int // for shutdown(2) only

	// Arguments and results of the prepared RawConn functions: reads
	// are done by one goroutine at a time (the Client's reader role) and
	// writes under the Client's write mutex.
	rbuf  []byte
	rn    int
	rerr  syscall.Errno
	rmode ioMode
	readF func(uintptr) bool
	prm   int32 // struct sched_param for sched_setscheduler(2), always 0

	wbuf   []byte
	wn     int
	werr   syscall.Errno
	wmode  ioMode
	writeF func(uintptr) bool

	once sync.Once
	err  error
}

func newBlockingConn(f *os.File, fd int) (*blockingConn, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	b := &blockingConn{f: f, rc: rc, fd: fd}
	b.readF = func(fd uintptr) bool {
		b.rn, b.rerr = rawIO(b.rmode, syscall.SYS_RECVFROM, fd, b.rbuf)
		return true
	}
	b.writeF = func(fd uintptr) bool {
		b.wn, b.werr = rawIO(b.wmode, syscall.SYS_SENDTO, fd, b.wbuf)
		return true
	}
	return b, nil
}

// ioMode is how rawIO makes its syscall.
type ioMode int

const (
	ioWait ioMode = iota // scheduler-aware, waiting up to the socket timeout
	ioRaw                // as a direct syscall, waiting up to the socket timeout
	ioNow                // as a direct syscall that does not wait (MSG_DONTWAIT)
)

// rawIO is one recvfrom(2) or sendto(2) of p on fd (read(2) and
// write(2) with flags).
func rawIO(mode ioMode, trap, fd uintptr, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	var (
		n     uintptr
		e     syscall.Errno
		flags uintptr
	)
	if mode == ioNow {
		flags = syscall.MSG_DONTWAIT
	}
	if trap == syscall.SYS_SENDTO {
		flags |= syscall.MSG_NOSIGNAL // EPIPE as an error, never SIGPIPE
	}
	if mode == ioWait {
		n, _, e = syscall.Syscall6(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), flags, 0, 0)
	} else {
		n, _, e = syscall.RawSyscall6(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), flags, 0, 0)
	}
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// read is one read under the RawConn.
func (b *blockingConn) read(p []byte, mode ioMode) (int, syscall.Errno, error) {
	b.rbuf, b.rmode = p, mode
	err := b.rc.Read(b.readF)
	b.rbuf = nil
	return b.rn, b.rerr, err
}

// write is one write under the RawConn.
func (b *blockingConn) write(p []byte, mode ioMode) (int, syscall.Errno, error) {
	b.wbuf, b.wmode = p, mode
	err := b.rc.Write(b.writeF)
	b.wbuf = nil
	return b.wn, b.werr, err
}

// wait blocks in poll(2), scheduler-aware, until fd is ready for events
// or hung up.
func (b *blockingConn) wait(events int16) error {
	var perr error
	err := b.rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
		for {
			_, perr = unix.Poll(fds, -1)
			if perr != unix.EINTR {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return perr
}

// Read reads, waiting as long as needed.
func (b *blockingConn) Read(p []byte) (int, error) { return b.readRaw(p, false) }

// readMany is Read for a reader that waits for several replies. What has
// arrived is returned at once. Otherwise the thread waits as a
// SCHED_BATCH thread if it is an ordinary SCHED_OTHER one (restored
// before returning): woken by the first reply, it then does not preempt
// the daemon when the two share a CPU, so the daemon answers every queued
// request before this thread reads them all in one read(2), instead of
// being interrupted after each reply. (Where a CPU is idle, the woken
// thread runs at once either way.)
func (b *blockingConn) readMany(p []byte) (int, error) {
	n, errno, err := b.read(p, ioNow)
	switch {
	case err != nil:
		return 0, err
	case errno == 0 && n > 0:
		return n, nil
	case errno != 0 && errno != syscall.EAGAIN && errno != syscall.EINTR:
		return 0, os.NewSyscallError("read", errno)
	}
	// The policy is the thread's: keep this goroutine on it until the
	// policy is restored.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if b.batchThread() {
		defer b.unbatchThread()
	}
	return b.readRaw(p, false)
}

// batchThread makes the calling thread SCHED_BATCH if it is SCHED_OTHER
// (without SCHED_RESET_ON_FORK), and reports whether it did. Its nice
// value is kept; a custom time slice set with sched_setattr(2) would be
// back to the default after unbatchThread (Go's threads have none).
func (b *blockingConn) batchThread() bool {
	pol, _, e := syscall.RawSyscall(syscall.SYS_SCHED_GETSCHEDULER, 0, 0, 0)
	if e != 0 || pol != unix.SCHED_NORMAL {
		return false
	}
	_, _, e = syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, 0, unix.SCHED_BATCH, uintptr(unsafe.Pointer(&b.prm)))
	return e == 0
}

// unbatchThread makes the calling thread SCHED_OTHER again.
func (b *blockingConn) unbatchThread() {
	syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, 0, unix.SCHED_NORMAL, uintptr(unsafe.Pointer(&b.prm)))
}

// readRaw reads; with raw, as a direct syscall that fails with
// errDirectSlow past the socket timeout.
func (b *blockingConn) readRaw(p []byte, raw bool) (int, error) {
	mode := ioWait
	if raw {
		mode = ioRaw
	}
	for {
		n, errno, err := b.read(p, mode)
		switch {
		case err != nil:
			return 0, err
		case errno == syscall.EINTR && raw:
			// A signal, the runtime preempting this thread for
			// instance (for a garbage collection): yield first.
			runtime.Gosched()
		case errno == syscall.EINTR:
		case errno == syscall.EAGAIN && raw:
			return 0, errDirectSlow
		case errno == syscall.EAGAIN:
			if err := b.wait(unix.POLLIN); err != nil {
				return 0, os.NewSyscallError("poll", err)
			}
		case errno != 0:
			return 0, os.NewSyscallError("read", errno)
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		default:
			return n, nil
		}
	}
}

// Write writes all of p, waiting as long as needed.
func (b *blockingConn) Write(p []byte) (int, error) {
	return b.writeAll(p, false)
}

// writeAll writes all of p, starting with direct syscalls when raw.
func (b *blockingConn) writeAll(p []byte, raw bool) (int, error) {
	done := 0
	mode := ioWait
	if raw {
		mode = ioRaw
	}
	for done < len(p) {
		n, errno, err := b.write(p[done:], mode)
		switch {
		case err != nil:
			return done, err
		case errno == syscall.EINTR:
		case errno == syscall.EAGAIN:
			mode = ioWait
			if err := b.wait(unix.POLLOUT); err != nil {
				return done, os.NewSyscallError("poll", err)
			}
		case errno != 0:
			return done, os.NewSyscallError("write", errno)
		}
		done += n
	}
	return done, nil
}

// directWrite writes all of p, by direct syscalls while they complete
// within the socket timeout and scheduler-aware after that.
func (b *blockingConn) directWrite(p []byte) (int, error) {
	return b.writeAll(p, true)
}

// writeNow writes what the socket takes of p without waiting, and
// returns how much that was.
func (b *blockingConn) writeNow(p []byte) (int, error) {
	for {
		n, errno, err := b.write(p, ioNow)
		switch {
		case err != nil:
			return 0, err
		case errno == syscall.EINTR:
		case errno == syscall.EAGAIN:
			return 0, nil
		case errno != 0:
			return 0, os.NewSyscallError("write", errno)
		default:
			return n, nil
		}
	}
}

// directRead is one direct read(2). It returns errDirectSlow when
// nothing arrived within the socket timeout.
func (b *blockingConn) directRead(p []byte) (int, error) { return b.readRaw(p, true) }

// Close shuts the socket down first: close(2) alone does not wake a
// thread blocked in read(2) or poll(2).
func (b *blockingConn) Close() error {
	b.once.Do(func() {
		_ = syscall.Shutdown(b.fd, syscall.SHUT_RDWR)
		b.err = b.f.Close()
	})
	return b.err
}
