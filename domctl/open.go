package domctl

import (
	"context"
	"fmt"

	"github.com/xenckpt/xenckpt/domctl/internal/privcmd"
)

// Open opens the local hypervisor through the privcmd driver
// (/dev/xen/privcmd, /dev/xen/hypercall, /dev/xen/evtchn) and negotiates
// the domctl interface version (see NewConn). It needs root in dom0. Off
// Linux it returns ErrNotSupported. Close the Conn to close the driver.
func Open(ctx context.Context) (*Conn, error) { return OpenConfig(ctx, nil) }

// OpenConfig is Open with a Config (nil means every default).
func OpenConfig(ctx context.Context, cfg *Config) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dev, err := privcmd.Open()
	if err != nil {
		return nil, fmt.Errorf("opening hypervisor: %w", err)
	}
	c, err := NewConn(privcmdBackend{dev}, cfg)
	if err != nil {
		dev.Close()
		return nil, err
	}
	c.closer = dev
	return c, nil
}

// privcmdBackend adapts *privcmd.Device, which knows no domctl types, to
// Backend.
type privcmdBackend struct{ *privcmd.Device }

func (p privcmdBackend) MapForeign(dom DomID, prot Prot, gfns []uint64, errs []int32) ([]byte, error) {
	return p.Device.MapForeign(uint16(dom), int(prot), gfns, errs)
}

func (p privcmdBackend) OpenEvtchn() (EvtchnDevice, error) {
	e, err := p.Device.OpenEvtchn()
	if err != nil {
		return nil, err
	}
	return e, nil
}
