//go:build !unix

package checkpoint

import (
	"errors"
	"os"
)

var errLockHeld = errors.New("lock held")

// fcntlLock has no equivalent here; the lock file alone (created
// exclusively per process) is the best available.
func fcntlLock(*os.File) error { return nil }
