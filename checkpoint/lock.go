package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// suspendLock is the per-domain lock file libxenguest takes before binding
// a guest's suspend event channel (xg_suspend.c lock_suspend_event), so this
// package and libxl never both drive the same channel.
type suspendLock struct {
	path string
	f    *os.File
}

func lockPath(dir string, dom uint32) string {
	return filepath.Join(dir, fmt.Sprintf("suspend-evtchn-%d.lock", dom))
}

// lockSuspendEvtchn creates and write-locks the lock file, retrying when a
// concurrent holder unlinked the file between open and lock (the inode
// check of libxenguest).
func lockSuspendEvtchn(dir string, dom uint32) (*suspendLock, error) {
	path := lockPath(dir, dom)
	for range 16 {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, fmt.Errorf("opening suspend lock %s: %w", path, err)
		}
		if err := fcntlLock(f); err != nil {
			f.Close()
			if errors.Is(err, errLockHeld) {
				return nil, fmt.Errorf("suspend lock %s: %w", path, ErrBusy)
			}
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		fi, err1 := f.Stat()
		pi, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(fi, pi) {
			return &suspendLock{path: path, f: f}, nil
		}
		f.Close() // unlinked under us by the previous holder: retry
	}
	return nil, fmt.Errorf("suspend lock %s keeps being replaced: %w", path, ErrBusy)
}

func (l *suspendLock) release() error {
	if l == nil {
		return nil
	}
	err := os.Remove(l.path)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}
