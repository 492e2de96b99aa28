package xsdaemon

import "syscall"

// sysProcAttr puts the daemon in its own session (so the whole group can
// be killed) and kills it if the test process dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
}
