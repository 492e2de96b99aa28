//go:build xenckpt_dom0

package indom0

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/magic"
)

// TestGuestKernelELFNote reads the Xen ELF notes of the kernel the lab's
// guests boot: Debian's Linux advertises upstream suspend-cancel.
func TestGuestKernelELFNote(t *testing.T) {
	requireDom0(t)
	b, err := os.ReadFile("/boot/vmlinuz")
	require.NoError(t, err)
	n, err := magic.ReadNotesBytes(t.Context(), b, nil)
	require.NoError(t, err)
	t.Logf("guest kernel: %s %s, compression %q, guest os %q, features %q", n.Kind, n.Class, n.Compression, n.GuestOS, n.Features)
	assert.True(t, n.Has(magic.NoteSuspendCancel), "XEN_ELFNOTE_SUSPEND_CANCEL present")
	assert.Equal(t, uint64(1), n.SuspendCancel)
	assert.Equal(t, "linux", n.GuestOS)
	assert.NotZero(t, n.Entry)
}

// suspendPV asks the guest to suspend through control/shutdown, the way a
// toolstack does, and waits for SHUTDOWN_suspend.
func suspendPV(t *testing.T, c *domctl.Conn, dom domctl.DomID) {
	t.Helper()
	xs := dialStore(t)
	p, err := xs.GetDomainPath(t.Context(), uint32(dom))
	require.NoError(t, err)
	require.NoError(t, xs.Write(t.Context(), p+"/control/shutdown", []byte("suspend")), "step request suspend")
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	for {
		info, err := c.DomainInfo(ctx, dom)
		require.NoError(t, err, "step wait for suspend")
		if info.Suspended() {
			return
		}
		if info.Shutdown() {
			t.Fatalf("domain %d shut down with %v instead of suspending", dom, info.ShutdownReason())
		}
		select {
		case <-ctx.Done():
			t.Fatalf("step wait for suspend: domain %d did not suspend: %v", dom, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// cancelSuspendUpstream resumes a suspended PV guest with the upstream
// (Linux) cancel convention: rax = 1, resumedomain, XS_RESUME.
func cancelSuspendUpstream(t *testing.T, c *domctl.Conn, dom domctl.DomID) {
	t.Helper()
	ctx := t.Context()
	vc, err := c.VCPUContext(ctx, dom, 0, 8)
	require.NoError(t, err, "step cancel: read vCPU0")
	vc.SetRAX(1)
	require.NoError(t, c.SetVCPUContext(ctx, dom, 0, vc), "step cancel: write rax")
	require.NoError(t, c.ResumeDomain(ctx, dom), "step cancel: resumedomain")
	require.NoError(t, dialStore(t).Resume(ctx, uint32(dom)), "step cancel: XS_RESUME")
}

// TestStartInfoMagicOfSuspendedPV suspends the running PV guest, reads its
// real start_info page (the frame the guest passes in rdx to the suspend
// hypercall) through a foreign mapping, parses magic[], and cancels the
// suspend so that the guest carries on.
func TestStartInfoMagicOfSuspendedPV(t *testing.T) {
	requireDom0(t)
	g := ensureGuest(t, "pv")
	c := openConn(t)
	dom := domctl.DomID(g.domid(t))
	g.freshTick(t)
	suspendPV(t, c, dom)
	ticks := g.ticks()
	last, m := ticks[len(ticks)-1], len(ticks)
	vc, err := c.VCPUContext(t.Context(), dom, 0, 8)
	require.NoError(t, err)
	siMFN := vc.RDX()
	mp, err := c.MapForeign(t.Context(), dom, domctl.ProtRead, []uint64{siMFN})
	require.NoError(t, err, "step map start_info mfn %#x", siMFN)
	require.NoError(t, mp.Err(0), "start_info frame %#x", siMFN)
	si, err := magic.DecodeStartInfo(mp.Page(0)[:magic.StartInfoSize64], 8)
	mp.Close()
	require.NoError(t, err)
	t.Logf("start_info at mfn %#x: magic %q nr_pages %d store %#x console %#x cmdline %q", siMFN, si.Magic, si.NrPages, si.StoreMFN, si.ConsoleMFN, si.CmdLine)
	assert.True(t, strings.HasPrefix(si.Magic, "xen-3.0-x86_64"), "magic %q", si.Magic)
	mg, err := si.ParseMagic()
	if assert.NoError(t, err) {
		assert.Equal(t, magic.PlatformX86_64, mg.Platform)
		assert.False(t, mg.SuspendCancel, "stock Linux does not advertise the seed token")
	}
	assert.InDelta(t, 32768, float64(si.NrPages), 2048)
	assert.Contains(t, si.CmdLine, "rdinit=/init")

	cancelSuspendUpstream(t, c, dom)
	next := g.waitTick(t, m, tickWait)
	assert.Equal(t, last+1, next, "counter after the cancelled suspend")
}
