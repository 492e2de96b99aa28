package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/domctl"
)

// imageFile is the -o FILE of checkpoint and save. A regular FILE (or a
// new one) is written under a temporary name in its directory and renamed
// over FILE only once the image is complete and synced, so a refused or
// failed operation leaves an existing FILE as it was. Anything else (a
// device such as /dev/null, a FIFO) is written in place and never removed.
type imageFile struct {
	f    *os.File
	path string // FILE, symlinks resolved
	tmp  string // the temporary name; "" when written in place
	done bool   // committed: complete under FILE
}

// createImage opens FILE for an image.
func createImage(path string) (*imageFile, error) {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		return &imageFile{f: f, path: path}, nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-*")
	if err != nil {
		return nil, err
	}
	return &imageFile{f: f, path: path, tmp: f.Name()}, nil
}

func (i *imageFile) Write(p []byte) (int, error) { return i.f.Write(p) }

// Sync makes the image durable under FILE. Save calls it once the image is
// complete and before it destroys the domain, so the rename happens while
// the source still exists.
func (i *imageFile) Sync() error { return i.commit() }

// commit syncs the image, closes it and renames it to FILE (then syncs
// the directory). Committing twice is a no-op.
func (i *imageFile) commit() error {
	if i.done {
		return nil
	}
	if i.tmp == "" {
		// A device or FIFO: fsync is not defined for every kind.
		if err := i.f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
			return fmt.Errorf("syncing %s: %w", i.path, err)
		}
		i.done = true
		return i.f.Close()
	}
	if err := i.f.Sync(); err != nil {
		return fmt.Errorf("syncing image: %w", err)
	}
	if err := i.f.Close(); err != nil {
		return fmt.Errorf("closing image: %w", err)
	}
	if err := os.Rename(i.tmp, i.path); err != nil {
		return fmt.Errorf("renaming image into place: %w", err)
	}
	i.done = true
	if d, err := os.Open(filepath.Dir(i.path)); err == nil {
		_ = d.Sync() // the rename's durability; not every filesystem supports it
		d.Close()
	}
	return nil
}

// finish ends the image after the operation that wrote it returned err:
// committed if err is nil, else discarded (a partial image is useless and
// misleading; an existing FILE was not touched). It returns err, or the
// commit's error.
func (i *imageFile) finish(err error) error {
	if err == nil {
		err = i.commit()
	}
	if err != nil {
		i.discard()
	}
	return err
}

// discard drops the image after a failure: the temporary file, or FILE
// itself if the failure came after the image was committed (a save whose
// domain could not be destroyed: the guest was resumed, so the image is
// already stale). A device or FIFO is only closed.
func (i *imageFile) discard() {
	_ = i.f.Close()
	switch {
	case i.tmp != "" && !i.done:
		_ = os.Remove(i.tmp)
	case i.tmp != "":
		_ = os.Remove(i.path)
	}
}

// leftSuspended reports a failed operation whose source could not be
// resumed because it has no cancel convention and is an HVM or PVH guest
// with PV drivers (the library refuses to resume those in their domain:
// they would crash). Exit codes 7 and 130 promise a resumed source, so
// the error becomes unsupported (4) and says what state the domain is in;
// r no longer names a convention the guest was resumed with.
func (r *opResult) leftSuspended(err error, dom domctl.DomID) error {
	if err == nil || r.SourceRunning == nil || *r.SourceRunning || !errors.Is(err, checkpoint.ErrNotCancellable) {
		return err
	}
	r.Convention = ""
	return withCode(exitUnsupported, fmt.Errorf("domain %d is LEFT SUSPENDED (an HVM/PVH guest with no cancel convention cannot continue in its domain): %w", dom, err))
}

// refusalHint suggests what to do after the library refused a guest that
// cannot cancel a suspend and the guest runs on.
func (a *app) refusalHint(ctx context.Context, h *host, dom domctl.DomID, err error, running *bool) string {
	if err == nil || running == nil || !*running || !errors.Is(err, checkpoint.ErrNotCancellable) {
		return ""
	}
	info, ierr := h.hv.DomainInfo(context.WithoutCancel(ctx), dom)
	if ierr != nil {
		return ""
	}
	if info.HVM() {
		return "an HVM/PVH guest needs a cancel convention to be checkpointed (--kernel with its XEN_ELFNOTE_SUSPEND_CANCEL, or --convention); --slow-resume does not apply to it. save and migrate need none, but one that fails after the suspend leaves the guest suspended."
	}
	return "--slow-resume allows the slow resume (the guest reconnects as after a restore), or give its convention (--kernel, --convention)"
}
