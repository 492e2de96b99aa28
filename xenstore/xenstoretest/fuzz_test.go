package xenstoretest_test

import (
	"testing"
	"time"

	"github.com/xenckpt/xenckpt/xenstore/internal/wire"
	"github.com/xenckpt/xenckpt/xenstore/xenstoretest"
)

// FuzzServer sends arbitrary request frames (any type, tx id and payload)
// from dom0 and from an introduced domU: the server must not panic, must
// answer every frame it accepts, and must keep serving.
func FuzzServer(f *testing.F) {
	f.Add(uint32(wire.Write), uint32(0), []byte("/a/b\x00value"), false)
	f.Add(uint32(wire.TransactionStart), uint32(0), []byte("\x00"), false)
	f.Add(uint32(wire.TransactionEnd), uint32(1), []byte("T\x00"), false)
	f.Add(uint32(wire.SetPerms), uint32(0), []byte("/tool\x00b5\x00r\x00"), true)
	f.Add(uint32(wire.DirectoryPart), uint32(0), []byte("/\x00999\x00"), false)
	f.Add(uint32(wire.Watch), uint32(0), []byte("@releaseDomain\x00t\x00"), true)
	f.Add(uint32(wire.Introduce), uint32(0), []byte("5\x001\x002\x00"), false)
	f.Add(uint32(wire.Rm), uint32(0), []byte("/\x00"), false)
	f.Fuzz(func(t *testing.T, typ, tx uint32, payload []byte, domU bool) {
		if len(payload) > wire.PayloadMax {
			return // the server drops such connections by design
		}
		srv := xenstoretest.NewServer(nil)
		defer srv.Close()
		dom := uint32(0)
		if domU {
			c, err := srv.Client(0)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Introduce(t.Context(), 7, 1, 1); err != nil {
				t.Fatal(err)
			}
			c.Close()
			dom = 7
		}
		conn, err := srv.Connect(dom)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		send := func(m *wire.Msg) {
			if err := wire.WriteMsg(conn, m); err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		reply := func(id uint32) *wire.Msg {
			for {
				m, err := wire.ReadMsg(conn, 1<<20)
				if err != nil {
					t.Fatalf("no reply to request %d: %v", id, err)
				}
				if m.Type != wire.WatchEvent {
					if m.ReqID != id {
						t.Fatalf("reply to %d, want %d", m.ReqID, id)
					}
					return m
				}
			}
		}
		send(&wire.Msg{Type: wire.Type(typ), ReqID: 1, TxID: tx, Payload: payload})
		if m := reply(1); wire.Type(typ) == wire.Release && m.Type != wire.Error {
			return // releasing itself closes a domU's connection
		}
		send(&wire.Msg{Type: wire.GetDomainPath, ReqID: 2, Payload: []byte("3\x00")})
		if m := reply(2); m.Type != wire.GetDomainPath || string(m.Payload) != "/local/domain/3\x00" {
			t.Fatalf("server broken after fuzz frame: %v %q", m.Type, m.Payload)
		}
	})
}
