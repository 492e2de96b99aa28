package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/magic"
)

func (a *app) capsCmd() *cobra.Command {
	var sf simFlags
	var rf resumeFlags
	cmd := &cobra.Command{
		Use:   "caps DOMID|KERNEL",
		Short: "Show whether a guest can cancel a suspend, and by which convention",
		Long: `For a KERNEL image file (ELF, compressed ELF or bzImage), print its Xen ELF notes
and the suspend-cancel convention they imply: XEN_ELFNOTE_SUSPEND_CANCEL (14)
set means the upstream (Linux) convention.

For a DOMID (a running domain on this dom0, or with --sim a freshly booted
simulated guest), print the convention the toolstack negotiates from what the
guest advertises (start_info.magic[] seed token, ELF note given with --kernel,
--convention override) and where that answer came from.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if sf.sim {
				return exactArgs(0, "no DOMID with --sim")(cmd, args)
			}
			return exactArgs(1, "DOMID or KERNEL")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if !sf.sim {
				if _, err := os.Stat(args[0]); err == nil || !isDomID(args[0]) {
					return a.runCapsKernel(cmd.Context(), args[0])
				}
			}
			return a.runCapsDomain(cmd.Context(), &sf, &rf, args)
		},
	}
	sf.register(cmd)
	rf.register(cmd)
	return cmd
}

func isDomID(s string) bool {
	_, err := strconv.ParseUint(s, 10, 16)
	return err == nil
}

// capsKernelResult is the JSON document of "caps KERNEL".
type capsKernelResult struct {
	Kernel      string `json:"kernel"`
	Kind        string `json:"kind"`
	Compression string `json:"compression,omitempty"`
	// SuspendCancel is true when XEN_ELFNOTE_SUSPEND_CANCEL is present and
	// non-zero.
	SuspendCancel bool `json:"suspend_cancel"`
	// Convention is "upstream" with the note, else "unknown" (a kernel's
	// notes cannot prove the seed protocol or its absence).
	Convention       string     `json:"convention"`
	ConventionSource string     `json:"convention_source"`
	GuestOS          string     `json:"guest_os,omitempty"`
	XenVersion       string     `json:"xen_version,omitempty"`
	Features         string     `json:"features,omitempty"`
	Notes            []noteJSON `json:"notes"`
}

type noteJSON struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

func (a *app) runCapsKernel(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	notes, err := magic.ReadNotes(ctx, f, fi.Size(), nil)
	if err != nil {
		return withCode(exitImage, fmt.Errorf("reading ELF notes of %s: %w", path, err))
	}
	res := capsKernelResult{
		Kernel:           path,
		Kind:             string(notes.Kind),
		Compression:      string(notes.Compression),
		SuspendCancel:    notes.Has(magic.NoteSuspendCancel) && notes.SuspendCancel != 0,
		Convention:       "unknown",
		ConventionSource: "none",
		GuestOS:          notes.GuestOS,
		XenVersion:       notes.XenVersion,
		Features:         notes.Features,
		Notes:            []noteJSON{},
	}
	if res.Compression == string(magic.CompressionNone) {
		res.Compression = ""
	}
	if res.SuspendCancel {
		res.Convention, res.ConventionSource = "upstream", "elf-note"
	}
	for _, n := range notes.Raw {
		res.Notes = append(res.Notes, noteJSON{Type: n.Type.String(), Value: noteValue(n)})
	}
	return a.emit(res, func(w io.Writer) {
		fmt.Fprintf(w, "%s: %s kernel", path, res.Kind)
		if res.Compression != "" {
			fmt.Fprintf(w, " (%s)", res.Compression)
		}
		if res.GuestOS != "" {
			fmt.Fprintf(w, ", guest OS %s", res.GuestOS)
		}
		fmt.Fprintln(w)
		if res.SuspendCancel {
			fmt.Fprintln(w, "  suspend-cancel: yes (XEN_ELFNOTE_SUSPEND_CANCEL) -> upstream convention, cancel writes 1")
		} else {
			fmt.Fprintln(w, "  suspend-cancel: no ELF note; the convention must come from the guest (magic[] seed token) or the toolstack")
		}
		for _, n := range res.Notes {
			fmt.Fprintf(w, "  %-30s %s\n", n.Type, n.Value)
		}
	})
}

// noteValue renders a note's descriptor: text (NUL-terminated or not) as
// text, 4- and 8-byte values as numbers, anything else in hex.
func noteValue(n magic.Note) string {
	d := n.Desc
	text := bytes.TrimRight(d, "\x00")
	if len(text) > 1 && printablePrefix(text) == string(text) && (len(d) != 4 && len(d) != 8 || len(text) < len(d)) {
		return string(text)
	}
	switch len(d) {
	case 4:
		return fmt.Sprintf("%#x", binary.LittleEndian.Uint32(d))
	case 8:
		return fmt.Sprintf("%#x", binary.LittleEndian.Uint64(d))
	}
	return fmt.Sprintf("%x", d)
}

// capsDomainResult is the JSON document of "caps DOMID" (and caps --sim).
type capsDomainResult struct {
	Domain int  `json:"domain"`
	Sim    bool `json:"sim"`
	// GuestType is "pv" or "hvm" (PVH guests are "hvm").
	GuestType string `json:"guest_type"`
	// Magic is start_info.magic[] of a PV guest, when it could be read.
	Magic string `json:"magic,omitempty"`
	// FeatureSuspend and FeatureSuspendCancel are the guest's xenstore
	// control/feature-suspend and control/feature-suspend-cancel keys.
	FeatureSuspend       string `json:"feature_suspend,omitempty"`
	FeatureSuspendCancel string `json:"feature_suspend_cancel,omitempty"`
	// ELFNote is the kernel's XEN_ELFNOTE_SUSPEND_CANCEL, when --kernel
	// was given.
	ELFNote *bool `json:"elf_note_suspend_cancel,omitempty"`
	// Convention is the negotiated convention: seed, upstream or none;
	// ConventionSource where it came from: override, xenstore, magic,
	// elf-note or default (nothing claimed anything).
	Convention       string `json:"convention"`
	ConventionSource string `json:"convention_source"`
	// CancelValue is what a cancel writes into the guest's eax/rax.
	CancelValue *uint64  `json:"cancel_value,omitempty"`
	Claims      []string `json:"claims"`
	Details     []string `json:"details,omitempty"`
}

func (a *app) runCapsDomain(ctx context.Context, sf *simFlags, rf *resumeFlags, args []string) error {
	h, err := a.openHost(ctx, sf.sim, nil)
	if err != nil {
		return err
	}
	defer a.closeHost(h)
	dom, _, err := a.domainArg(ctx, h, sf, args)
	if err != nil {
		return err
	}
	ro, err := rf.options(ctx, sf)
	if err != nil {
		return err
	}
	src, res, err := h.gatherSources(ctx, dom, ro)
	if err != nil {
		return err
	}
	d, err := magic.Negotiate(src)
	if err != nil {
		return fmt.Errorf("negotiating the cancel convention of domain %d: %w", dom, err)
	}
	res.Convention, res.ConventionSource = d.Convention.String(), d.Source.String()
	if v, ok := d.Convention.CancelValue(); ok {
		res.CancelValue = &v
	}
	res.Claims = []string{}
	for _, c := range d.Claims {
		res.Claims = append(res.Claims, c.String())
	}
	res.Details = d.Details
	return a.emit(res, func(w io.Writer) {
		fmt.Fprintf(w, "domain %d (%s guest): convention %s, from %s", res.Domain, res.GuestType, res.Convention, res.ConventionSource)
		if res.CancelValue != nil {
			fmt.Fprintf(w, ": a cancel writes %d", *res.CancelValue)
		} else {
			fmt.Fprint(w, ": it cannot cancel a suspend (slow resume or refusal)")
		}
		fmt.Fprintln(w)
		if res.Magic != "" {
			fmt.Fprintf(w, "  start_info.magic[]: %q\n", res.Magic)
		}
		for _, c := range res.Claims {
			fmt.Fprintf(w, "  claim: %s\n", c)
		}
		for _, s := range res.Details {
			fmt.Fprintf(w, "  %s\n", s)
		}
	})
}

// gatherSources collects what the toolstack knows about dom's cancel
// convention, as the checkpoint package does before a cancel: the magic[]
// of a PV guest, the xenstore feature keys, the caller's ELF notes and
// override.
func (h *host) gatherSources(ctx context.Context, dom domctl.DomID, ro checkpoint.ResumeOptions) (magic.Sources, *capsDomainResult, error) {
	res := &capsDomainResult{Domain: int(dom), Sim: h.sim != nil, GuestType: "pv"}
	src := magic.Sources{Notes: ro.Notes, Override: ro.Convention}
	if ro.Notes != nil {
		res.ELFNote = ptr(ro.Notes.SuspendCancel != 0)
	}
	info, err := h.hv.DomainInfo(ctx, dom)
	if err != nil {
		return src, nil, err
	}
	if info.HVM() {
		res.GuestType = "hvm"
	} else if m, ok := h.readMagic(ctx, dom, info); ok {
		src.Magic, res.Magic = m, m
	}
	if path, err := h.xs.GetDomainPath(ctx, uint32(dom)); err == nil {
		if v, err := h.xs.Read(ctx, path+"/"+magic.XenstoreFeatureSuspend); err == nil {
			src.FeatureSuspend, res.FeatureSuspend = string(v), string(v)
		}
		if v, err := h.xs.Read(ctx, path+"/"+magic.XenstoreFeatureSuspendCancel); err == nil {
			src.FeatureSuspendCancel, res.FeatureSuspendCancel = string(v), string(v)
		}
	}
	return src, res, nil
}

// readMagic reads start_info.magic[] of a PV guest. Xen tells dom0 where
// start_info is only in vCPU0's rdx at suspend time, so a running guest's
// is found only on the simulator, whose guests keep it in pfn 1.
func (h *host) readMagic(ctx context.Context, dom domctl.DomID, info domctl.DomainInfo) (string, bool) {
	bits, err := h.hv.AddressSize(ctx, dom)
	if err != nil {
		return "", false
	}
	width := bits / 8
	var frame uint64
	switch {
	case info.Suspended():
		vc, err := h.hv.VCPUContext(ctx, dom, 0, width)
		if err != nil {
			return "", false
		}
		frame = vc.RDX()
	case h.sim != nil:
		// pfn 1, reached through its machine frame as on real Xen.
		if frame, err = h.sim.Frame(dom, 1); err != nil {
			return "", false
		}
	default:
		return "", false
	}
	m, err := h.hv.MapForeign(ctx, dom, domctl.ProtRead, []uint64{frame})
	if err != nil {
		return "", false
	}
	defer m.Close()
	if m.Err(0) != nil {
		return "", false
	}
	si, err := magic.DecodeStartInfo(m.Bytes(), width)
	if err != nil {
		return "", false
	}
	return si.Magic, true
}

// negotiateSim is the demo's capabilities check of one simulated guest.
func negotiateSim(ctx context.Context, h *host, dom domctl.DomID, notes *magic.Notes) (*capsDomainResult, error) {
	src, res, err := h.gatherSources(ctx, dom, checkpoint.ResumeOptions{Notes: notes})
	if err != nil {
		return nil, err
	}
	d, err := magic.Negotiate(src)
	if err != nil {
		return nil, err
	}
	res.Convention, res.ConventionSource = d.Convention.String(), d.Source.String()
	return res, nil
}
