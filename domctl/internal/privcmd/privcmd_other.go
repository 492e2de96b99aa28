//go:build !linux

package privcmd

import "context"

// Device is unavailable off Linux.
type Device struct{}

// Open returns ErrNotSupported.
func Open() (*Device, error) { return nil, ErrNotSupported }

// Hypercall returns ErrNotSupported.
func (*Device) Hypercall(uint64, [5]uint64) (uint64, error) { return 0, ErrNotSupported }

// AllocBuffer returns ErrNotSupported.
func (*Device) AllocBuffer(int) ([]byte, error) { return nil, ErrNotSupported }

// FreeBuffer returns ErrNotSupported.
func (*Device) FreeBuffer([]byte) error { return ErrNotSupported }

// MapForeign returns ErrNotSupported.
func (*Device) MapForeign(uint16, int, []uint64, []int32) ([]byte, error) {
	return nil, ErrNotSupported
}

// UnmapForeign returns ErrNotSupported.
func (*Device) UnmapForeign([]byte) error { return ErrNotSupported }

// OpenEvtchn returns ErrNotSupported.
func (*Device) OpenEvtchn() (*Evtchn, error) { return nil, ErrNotSupported }

// Close returns ErrNotSupported.
func (*Device) Close() error { return ErrNotSupported }

// Evtchn is unavailable off Linux.
type Evtchn struct{}

// Ioctl returns ErrNotSupported.
func (*Evtchn) Ioctl(uint32, []byte) (int, error) { return 0, ErrNotSupported }

// Read returns ErrNotSupported.
func (*Evtchn) Read(context.Context, []byte) (int, error) { return 0, ErrNotSupported }

// Write returns ErrNotSupported.
func (*Evtchn) Write([]byte) (int, error) { return 0, ErrNotSupported }

// Close returns ErrNotSupported.
func (*Evtchn) Close() error { return ErrNotSupported }
