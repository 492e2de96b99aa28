//go:build !linux

package xenstore

import (
	"io"
	"net"
)

func dialUnix(path string) (io.ReadWriteCloser, error) {
	return net.Dial("unix", path)
}
