package domctl_test

import (
	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/domctl"
)

// *Conn is the hypervisor checkpoint drives, on every backend.
var _ checkpoint.Hypervisor = (*domctl.Conn)(nil)
