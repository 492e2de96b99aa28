package xenstore

import (
	"context"
	"net"
	"testing"

	"github.com/xenckpt/xenckpt/xenstore/internal/wire"
)

// FuzzReply feeds one arbitrary reply payload (and type) to every reply
// parser through a real Client: no panic, and a nil result exactly when
// there is an error.
func FuzzReply(f *testing.F) {
	f.Add(uint32(wire.GetPerms), []byte("n0\x00r5\x00"))
	f.Add(uint32(wire.Directory), []byte("a\x00b\x00"))
	f.Add(uint32(wire.TransactionStart), []byte("12\x00"))
	f.Add(uint32(wire.IsDomainIntroduced), []byte("T\x00"))
	f.Add(uint32(wire.Error), []byte("ENOENT\x00"))
	f.Add(uint32(wire.DirectoryPart), []byte("3\x00a\x00\x00"))
	f.Fuzz(func(t *testing.T, typ uint32, payload []byte) {
		a, b := net.Pipe()
		c := NewClient(a, nil)
		defer c.Close()
		defer b.Close()
		go func() {
			for {
				m, err := wire.ReadMsg(b, wire.PayloadMax)
				if err != nil {
					return
				}
				t := wire.Type(typ)
				if t == wire.WatchEvent {
					t = m.Type // an event never answers; avoid a hang
				}
				if m.Type == wire.DirectoryPart && t == wire.Error {
					t = m.Type
				}
				if err := wire.WriteMsg(b, &wire.Msg{Type: t, ReqID: m.ReqID, TxID: m.TxID, Payload: payload}); err != nil {
					return
				}
			}
		}()
		ctx := context.Background()
		if perms, err := c.GetPerms(ctx, "/p"); (perms == nil) == (err == nil) {
			t.Fatalf("GetPerms: %v, %v", perms, err)
		}
		if names, err := c.List(ctx, "/p"); err == nil && names == nil && len(payload) != 0 && wire.Type(typ) == wire.Directory {
			t.Fatalf("List: nil names for %q", payload)
		}
		_, _ = c.IsDomainIntroduced(ctx, 1)
		_, _ = c.GetDomainPath(ctx, 1)
		_ = c.Transaction(ctx, func(tx *Tx) error { return nil })
		w, err := c.Watch(ctx, "/w")
		if err == nil {
			w.Close()
		}
	})
}
