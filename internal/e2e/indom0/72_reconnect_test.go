//go:build xenckpt_dom0

package indom0

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/magic"
	"github.com/xenckpt/xenckpt/xenstore"
)

// vkbd is a virtual keyboard plugged into a guest with this test playing
// the backend in dom0: the guest kernel's built-in xen-kbdfront finds
// device/vkbd/0, grants a ring page, binds an event channel, writes them
// and walks its state to Connected. A xenbus device is what reconnects
// after a suspend the guest was told was not cancelled (xenbus_dev_resume),
// so its frontend nodes are where a reconnect storm shows.
type vkbd struct {
	front, back string
}

// XenbusState values (xen/io/xenbus.h).
const (
	xbInitialising = "1"
	xbInitWait     = "2"
	xbConnected    = "4"
)

func plugVkbd(t *testing.T, xs *xenstore.Client, dom domctl.DomID) vkbd {
	t.Helper()
	ctx := t.Context()
	dp, err := xs.GetDomainPath(ctx, uint32(dom))
	require.NoError(t, err)
	d := vkbd{
		front: dp + "/device/vkbd/0",
		back:  fmt.Sprintf("/local/domain/0/backend/vkbd/%d/0", dom),
	}
	w := func(tx *xenstore.Tx, p, v string) error { return tx.Write(ctx, p, []byte(v)) }
	// The backend first (owned by dom0, readable by the guest), then the
	// frontend in one transaction so the guest's probe sees state 1 with
	// everything else in place (xenbus_probe_node ignores other states).
	require.NoError(t, xs.Transaction(ctx, func(tx *xenstore.Tx) error {
		if err := tx.Mkdir(ctx, d.back); err != nil {
			return err
		}
		if err := tx.SetPerms(ctx, d.back, []xenstore.Perm{{Dom: 0, Access: xenstore.AccessNone}, {Dom: uint32(dom), Access: xenstore.AccessRead}}); err != nil {
			return err
		}
		for _, kv := range [][2]string{{"frontend", d.front}, {"frontend-id", fmt.Sprint(dom)}, {"online", "1"}, {"state", xbInitWait}} {
			if err := w(tx, d.back+"/"+kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	}), "step plug vkbd backend")
	t.Cleanup(func() {
		ctx := context.Background()
		xs.Remove(ctx, d.front)
		xs.Remove(ctx, d.back)
	})
	front := func() {
		require.NoError(t, xs.Transaction(ctx, func(tx *xenstore.Tx) error {
			if err := tx.Mkdir(ctx, d.front); err != nil {
				return err
			}
			if err := tx.SetPerms(ctx, d.front, []xenstore.Perm{{Dom: uint32(dom), Access: xenstore.AccessNone}, {Dom: 0, Access: xenstore.AccessRead}}); err != nil {
				return err
			}
			for _, kv := range [][2]string{{"backend", d.back}, {"backend-id", "0"}, {"state", xbInitialising}} {
				if err := w(tx, d.front+"/"+kv[0], kv[1]); err != nil {
					return err
				}
			}
			return nil
		}), "step plug vkbd frontend")
		d.waitState(t, xs, xbConnected)
	}
	// The same watch that must stay quiet across a cancelled suspend sees
	// the guest connect: nodes only the guest's kbdfront writes appear.
	// This is what makes the empty result below mean something.
	wrote := d.frontendWrites(t, xs, time.Second, front)
	t.Logf("frontend writes while connecting: %v", wrote)
	require.Contains(t, wrote, "event-channel", "the watch must see the guest's own frontend writes")
	require.Contains(t, wrote, "page-ref")
	// The backend says Connected too, as a real one would.
	require.NoError(t, xs.Write(ctx, d.back+"/state", []byte(xbConnected)))
	return d
}

// waitState waits for the frontend to reach state.
func (d vkbd) waitState(t *testing.T, xs *xenstore.Client, state string) {
	t.Helper()
	deadline := time.Now().Add(tickWait)
	var last string
	for time.Now().Before(deadline) {
		b, err := xs.Read(t.Context(), d.front+"/state")
		last = strings.TrimRight(string(b), "\x00")
		if err == nil && last == state {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("vkbd frontend %s stayed in state %q, want %q", d.front, last, state)
}

// frontendWrites runs op with a watch on the frontend and returns the
// paths the guest wrote while it ran and for settle afterwards.
func (d vkbd) frontendWrites(t *testing.T, xs *xenstore.Client, settle time.Duration, op func()) []string {
	t.Helper()
	w, err := xs.Watch(t.Context(), d.front)
	require.NoError(t, err)
	defer w.Close()
	select { // the event every daemon fires on registration
	case <-w.Events():
	case <-time.After(20 * time.Second):
		t.Fatal("no initial watch event")
	}
	op()
	var paths []string
	timeout := time.After(settle)
	for {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				require.NoError(t, w.Err())
				return paths
			}
			paths = append(paths, strings.TrimPrefix(ev.Path, d.front+"/"))
		case <-timeout:
			return paths
		}
	}
}

// TestNoReconnectStorm proves the point of cancelling a suspend instead
// of resuming the guest as if restored: after the project's checkpoint
// with cancel, the guest's xenbus devices are untouched (no frontend node
// written). plugVkbd shows the same watch seeing the guest's writes when
// it connects. (A same-domain slow resume cannot serve as the control: told
// 0 in place, Linux 6.1 panics re-registering its vcpu_info, which is why
// checkpoint refuses to slow-resume HVM guests.)
func TestNoReconnectStorm(t *testing.T) {
	requireDom0(t)
	ctl, _, notes := controller(t)
	xs := dialStore(t)
	for _, typ := range guestTypes {
		t.Run(typ, func(t *testing.T) {
			g := ensureGuest(t, typ)
			dom := domctl.DomID(g.domid(t))
			kbd := plugVkbd(t, xs, dom)
			_, m0 := g.freshTick(t)

			var res *checkpoint.Result
			var err error
			wrote := kbd.frontendWrites(t, xs, 3*time.Second, func() {
				res, err = ctl.Checkpoint(t.Context(), dom, io.Discard, &checkpoint.SaveOptions{Resume: checkpoint.ResumeOptions{Notes: notes}})
			})
			require.NoError(t, err, "step checkpoint with cancel")
			assert.Equal(t, magic.ConventionUpstream, res.Convention)
			assert.Empty(t, wrote, "the guest rewrote its vkbd frontend after a cancelled suspend: a reconnect")
			kbd.waitState(t, xs, xbConnected)
			g.waitTick(t, g.mark(), tickWait)
			consecutive(t, "after checkpoint with cancel", g.ticksSince(m0-1))

		})
	}
}
