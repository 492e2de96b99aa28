package checkpoint

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/hashicorp/go-multierror"

	"github.com/xenckpt/xenckpt/checkpoint/stream"
	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
	"github.com/xenckpt/xenckpt/magic"
	"github.com/xenckpt/xenckpt/xenstore"
)

// RestoreOptions configure a restore. The zero value (or nil) restores
// and unpauses the domain.
type RestoreOptions struct {
	// Paused leaves the restored domain paused (the caller unpauses it).
	Paused bool
	// Resume is used to decide the guest's convention, so a seed-protocol
	// guest sees a positive return value (restored) rather than 0
	// (cancelled). SlowResume is ignored.
	Resume ResumeOptions
	// MaxVCPUs and MaxMemKB override the domain config of the image (or
	// supply it when the image has none). Zero means the image's.
	MaxVCPUs uint32
	MaxMemKB uint64
	// Name is the restored domain's xenstore name; empty means the name in
	// the image's domain config, else "restored-<domid>".
	Name string
	// Progress, if set, receives progress events synchronously.
	Progress func(Progress)
}

// seedRestoreValue is what a seed-protocol guest finds in eax after a
// restore: positive ("+ve == restore").
const seedRestoreValue = 1

// restorer builds a domain from a stream.
type restorer struct {
	console consoleRing // HVM: the console wired at introduction
	c       *Controller
	o       RestoreOptions
	r       *stream.Reader
	dom     domctl.DomID
	made    bool

	cfg    domainConfig
	hasCfg bool
	hvm    bool
	width  int
	pv     *pvRestore // PV guests: the pfn -> new mfn map

	nodes      string // the xenstore directory written, to remove on abort
	introduced bool

	populated map[uint64]struct{}
	gfns      []uint64
	st        domainState
	pages     uint64
	bytes     uint64
}

func (c *Controller) newRestorer(r io.Reader, opts *RestoreOptions, mode stream.CheckpointMode) *restorer {
	rs := &restorer{c: c, populated: make(map[uint64]struct{}), width: 8}
	if opts != nil {
		rs.o = *opts
	}
	rs.r = stream.NewReader(r, &stream.ReaderOptions{Checkpoints: mode})
	return rs
}

// Restore reads an image (xl, libxl or libxc format) from r, builds a new
// domain from it and unpauses it (unless opts.Paused). A failure at any
// point destroys whatever was built; nothing half-restored remains.
func (c *Controller) Restore(ctx context.Context, r io.Reader, opts *RestoreOptions) (domctl.DomID, error) {
	rs := c.newRestorer(r, opts, stream.CheckpointsRefused)
	err := rs.readAll(ctx)
	if err == nil {
		err = rs.finish(ctx, !rs.o.Paused)
	}
	if err != nil {
		return 0, newOpError(OpRestore, rs.dom, rs.abort(ctx, err))
	}
	return rs.dom, nil
}

// abort destroys a half-built domain, collecting the cleanup error with
// the cause.
func (rs *restorer) abort(ctx context.Context, cause error) error {
	if !rs.made {
		return cause
	}
	var merr *multierror.Error
	merr = multierror.Append(merr, cause)
	bg := context.WithoutCancel(ctx)
	if err := rs.c.hv.DestroyDomain(bg, rs.dom); err != nil && !isGone(err) {
		merr = multierror.Append(merr, fmt.Errorf("destroying half-restored domain %d: %w", rs.dom, err))
	}
	if rs.introduced {
		if err := rs.c.xs.Release(bg, uint32(rs.dom)); err != nil {
			rs.c.log.DebugContext(ctx, "releasing half-restored domain from xenstore", "domain", rs.dom, "error", err)
		}
	}
	if rs.nodes != "" {
		rs.c.forget(bg, rs.dom, rs.nodes)
	}
	rs.made = false
	return merr.ErrorOrNil()
}

// readAll applies records until the end of the stream.
func (rs *restorer) readAll(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := rs.r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading image: %w", err)
		}
		if err := rs.apply(ctx, rec); err != nil {
			return err
		}
	}
}

// apply handles one record. It reports whether the record ended a
// checkpoint.
func (rs *restorer) apply(ctx context.Context, rec stream.Record) error {
	switch rec.Kind {
	case stream.KindXLHeader:
		if len(rec.XL.Config) > 0 {
			if err := json.Unmarshal(rec.XL.Config, &rs.cfg); err != nil {
				return fmt.Errorf("decoding domain config in xl header: %w", err)
			}
			rs.hasCfg = true
		}
	case stream.KindDomainHeader:
		rs.hvm = rec.Domain.Type == stream.DomainTypeHVM
		rs.st.HVM = rs.hvm
		if !rs.hvm && rs.pv == nil {
			rs.pv = newPVRestore()
		}
	case stream.KindLibxc:
		return rs.applyLibxc(ctx, rec)
	}
	return nil
}

func (rs *restorer) applyLibxc(ctx context.Context, rec stream.Record) error {
	switch rec.Type {
	case stream.RecX86PVInfo:
		pi, err := rec.X86PVInfo()
		if err != nil {
			return err
		}
		rs.width = int(pi.GuestWidth)
		if rs.pv != nil {
			rs.pv.info(pi)
		}
	case stream.RecX86PVP2MFrames:
		p, err := rec.P2MFrames()
		if err != nil {
			return err
		}
		if rs.pv == nil {
			return fmt.Errorf("%w: X86_PV_P2M_FRAMES in an HVM image", stream.ErrUnexpectedRecord)
		}
		return rs.pv.frames(p, rs.width)
	case stream.RecStaticDataEnd:
		return rs.create(ctx)
	case stream.RecPageData:
		if err := rs.create(ctx); err != nil {
			return err
		}
		if rs.pv != nil {
			return rs.loadPVPages(ctx, rec)
		}
		return rs.loadPages(ctx, rec)
	case stream.RecX86TSCInfo:
		t, err := rec.TSCInfo()
		if err != nil {
			return err
		}
		rs.st.TSC = domctl.TSCInfo{Mode: t.Mode, GTSCKHz: t.KHz, ElapsedNsec: t.Nsec, Incarnation: t.Incarnation}
	case stream.RecSharedInfo:
		rs.st.SharedInfo = append(rs.st.SharedInfo[:0], rec.Body...)
	case stream.RecX86PVVCPUBasic:
		v, err := rec.VCPU()
		if err != nil {
			return err
		}
		if len(v.Context) > 0 {
			rs.vcpu(v.ID).Ctx = slices.Clone(v.Context)
		}
	case stream.RecX86CPUIDPolicy:
		if rs.pv != nil {
			rs.pv.cpuid = slices.Clone(rec.Body)
		}
	case stream.RecX86MSRPolicy:
		if rs.pv != nil {
			rs.pv.msrs = slices.Clone(rec.Body)
		}
	case stream.RecX86PVVCPUExtended, stream.RecX86PVVCPUXSave, stream.RecX86PVVCPUMSRs:
		v, err := rec.VCPU()
		if err != nil {
			return err
		}
		if rs.pv == nil || len(v.Context) == 0 {
			break
		}
		vs, b := rs.vcpu(v.ID), slices.Clone(v.Context)
		switch rec.Type {
		case stream.RecX86PVVCPUExtended:
			vs.Ext = b
		case stream.RecX86PVVCPUXSave:
			vs.XSave = b
		default:
			vs.MSRs = b
		}
	case stream.RecHVMContext:
		rs.st.HVMContext = append(rs.st.HVMContext[:0], rec.Body...)
	case stream.RecHVMParams:
		ps, err := rec.HVMParams()
		if err != nil {
			return err
		}
		rs.st.HVMParams = rs.st.HVMParams[:0]
		for _, p := range ps {
			rs.st.HVMParams = append(rs.st.HVMParams, hvmParam{Index: p.Index, Value: p.Value})
		}
	}
	return nil
}

// vcpu returns the state kept for vCPU id, adding it.
func (rs *restorer) vcpu(id uint32) *vcpuState {
	for i := range rs.st.VCPUs {
		if rs.st.VCPUs[i].ID == id {
			return &rs.st.VCPUs[i]
		}
	}
	rs.st.VCPUs = append(rs.st.VCPUs, vcpuState{ID: id})
	return &rs.st.VCPUs[len(rs.st.VCPUs)-1]
}

// create makes the target domain, once.
func (rs *restorer) create(ctx context.Context) error {
	if rs.made {
		return nil
	}
	cc := domctl.CreateConfig{HVM: rs.hvm, MaxVCPUs: rs.cfg.BInfo.MaxVCPUs, MaxMemKB: rs.cfg.BInfo.MaxMemKB}
	if !rs.hvm {
		cc.AddressSize = rs.width * 8
	}
	if rs.hvm && (rs.cfg.CInfo.Type == "pvh" || rs.cfg.BInfo.TypePVH != nil) {
		// PVH: an HVM container with only the local APIC emulated, as
		// libxl builds it; Xen refuses the full HVM set without a device
		// model.
		cc.EmulationFlags = domctl.X86EmuLAPIC
	}
	if h, ok := parseUUID(rs.cfg.CInfo.UUID); ok {
		cc.Handle = h
	}
	if rs.o.MaxVCPUs != 0 {
		cc.MaxVCPUs = rs.o.MaxVCPUs
	}
	if rs.o.MaxMemKB != 0 {
		cc.MaxMemKB = rs.o.MaxMemKB
	}
	dom, err := rs.c.hv.CreateDomain(ctx, cc)
	if err != nil {
		return fmt.Errorf("creating domain: %w", err)
	}
	rs.dom, rs.made = dom, true
	rs.c.log.DebugContext(ctx, "created restore target", "domain", dom, "hvm", rs.hvm)
	if rs.pv != nil {
		return rs.pvCPUPolicy(ctx)
	}
	return nil
}

// loadPages populates the frames of one PAGE_DATA record and copies its
// data into them.
func (rs *restorer) loadPages(ctx context.Context, rec stream.Record) error {
	rs.gfns = rs.gfns[:0]
	var fresh []uint64
	for _, e := range rec.PFNs {
		t := stream.EntryType(e)
		pfn := stream.EntryPFN(e)
		if t == stream.PageXTab || t == stream.PageBroken {
			continue
		}
		if _, ok := rs.populated[pfn]; !ok {
			fresh = append(fresh, pfn)
			rs.populated[pfn] = struct{}{}
		}
		if t.HasData() {
			rs.gfns = append(rs.gfns, pfn)
		}
	}
	if len(fresh) > 0 {
		if err := rs.c.hv.PopulatePhysmap(ctx, rs.dom, fresh); err != nil {
			return fmt.Errorf("populating %d frames: %w", len(fresh), err)
		}
	}
	rs.pages += uint64(len(rec.PFNs))
	if len(rs.gfns) == 0 {
		return nil
	}
	mp, err := mapFrames(ctx, rs.c.hv, rs.dom, domctl.ProtWrite, rs.gfns)
	if err != nil {
		return fmt.Errorf("mapping %d frames for writing: %w", len(rs.gfns), err)
	}
	// Straight from the stream into the guest.
	err = rs.r.ReadPagesContiguous(mp.Bytes()[:len(rs.gfns)*pageSize])
	if cerr := mp.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("unmapping restored frames: %w", cerr)
	}
	if err != nil {
		return fmt.Errorf("reading page data: %w", err)
	}
	rs.bytes += uint64(len(rs.gfns)) * pageSize
	if rs.o.Progress != nil {
		rs.o.Progress(Progress{Domain: rs.dom, Phase: PhaseRestore, Pages: rs.pages, Bytes: rs.bytes})
	}
	return nil
}

// loadState applies the register and platform state gathered so far.
func (rs *restorer) loadState(ctx context.Context) error {
	hv, dom := rs.c.hv, rs.dom
	if err := hv.SetTSCInfo(ctx, dom, rs.st.TSC); err != nil {
		return fmt.Errorf("setting TSC info: %w", err)
	}
	if rs.hvm {
		if len(rs.st.HVMContext) == 0 {
			return fmt.Errorf("%w: image has no HVM context", stream.ErrMissing)
		}
		for _, p := range rs.st.HVMParams {
			if err := hv.SetHVMParam(ctx, dom, uint32(p.Index), p.Value); err != nil {
				return fmt.Errorf("setting HVM param %d: %w", p.Index, err)
			}
		}
		if err := hv.SetHVMContext(ctx, dom, rs.st.HVMContext); err != nil {
			return fmt.Errorf("setting HVM context: %w", err)
		}
		return nil
	}
	return rs.loadPVState(ctx)
}

// finish loads the state, sets the convention's restore value, connects
// the domain to xenstore and (if run) unpauses it.
func (rs *restorer) finish(ctx context.Context, run bool) error {
	if !rs.made {
		return fmt.Errorf("%w: image holds no memory", stream.ErrMissing)
	}
	if err := rs.loadState(ctx); err != nil {
		return err
	}
	info, err := rs.c.hv.DomainInfo(ctx, rs.dom)
	if err != nil {
		return fmt.Errorf("getting domain info: %w", err)
	}
	conv, err := rs.c.convention(ctx, rs.dom, info, &rs.o.Resume)
	if err != nil {
		return err
	}
	if conv == magic.ConventionSeed {
		if err := rs.c.setReturn(ctx, rs.dom, info, seedRestoreValue, true); err != nil {
			return err
		}
	}
	if err := rs.introduce(ctx, info); err != nil {
		return err
	}
	if err := rs.c.cfg.Hooks.PostRestore(ctx, rs.dom); err != nil {
		return fmt.Errorf("post-restore hook: %w", err)
	}
	if run {
		if err := rs.c.hv.Unpause(ctx, rs.dom); err != nil {
			return fmt.Errorf("unpausing restored domain: %w", err)
		}
	}
	return nil
}

// introduce gives the restored guest a xenstore connection: a fresh event
// channel for the store ring, recorded where the guest looks for it
// (start_info for PV, HVM_PARAM_STORE_EVTCHN for HVM), then
// XS_INTRODUCE.
func (rs *restorer) introduce(ctx context.Context, info domctl.DomainInfo) error {
	hv, dom := rs.c.hv, rs.dom
	var storeFrame uint64
	var port uint32
	if rs.hvm {
		var err error
		if port, err = hv.AllocUnboundEvtchn(ctx, dom, 0); err != nil {
			return fmt.Errorf("allocating store event channel: %w", err)
		}
		if storeFrame, err = hv.HVMParam(ctx, dom, abi.HVM_PARAM_STORE_PFN); err != nil {
			return fmt.Errorf("getting store pfn: %w", err)
		}
		if err := hv.SetHVMParam(ctx, dom, abi.HVM_PARAM_STORE_EVTCHN, uint64(port)); err != nil {
			return fmt.Errorf("setting store event channel: %w", err)
		}
		console, err := rs.hvmConsole(ctx)
		if err != nil {
			return err
		}
		if err := rs.seedGrantTable(ctx, storeFrame, console.frame); err != nil {
			return err
		}
		rs.console = console
	} else {
		// loadPVState wired the store into start_info.
		storeFrame, port = rs.pv.storeMFN, rs.pv.storePort
	}
	if err := rs.writeNodes(ctx); err != nil {
		return err
	}
	if err := rs.c.xs.Introduce(ctx, uint32(dom), storeFrame, port); err != nil {
		return fmt.Errorf("introducing domain to xenstore: %w", err)
	}
	rs.introduced = true
	return nil
}

// hvmConsole gives a restored HVM guest a fresh console event channel
// (HVM_PARAM_CONSOLE_EVTCHN), as libxc's restore does; frame is the
// console page from HVM_PARAM_CONSOLE_PFN, 0 when the image has none.
func (rs *restorer) hvmConsole(ctx context.Context) (consoleRing, error) {
	hv, dom := rs.c.hv, rs.dom
	frame, err := hv.HVMParam(ctx, dom, abi.HVM_PARAM_CONSOLE_PFN)
	if err != nil || frame == 0 {
		return consoleRing{}, nil // no console page: nothing to wire
	}
	port, err := hv.AllocUnboundEvtchn(ctx, dom, 0)
	if err != nil {
		return consoleRing{}, fmt.Errorf("allocating console event channel: %w", err)
	}
	if err := hv.SetHVMParam(ctx, dom, abi.HVM_PARAM_CONSOLE_EVTCHN, uint64(port)); err != nil {
		return consoleRing{}, fmt.Errorf("setting console event channel: %w", err)
	}
	return consoleRing{frame: frame, port: port}, nil
}

// consoleRing is a restored guest's console page and event channel.
type consoleRing struct {
	frame uint64
	port  uint32
}

// seedGrantTable writes the reserved grant entries through which dom0's
// xenstored (GNTTAB_RESERVED_XENSTORE) and xenconsoled
// (GNTTAB_RESERVED_CONSOLE) map a new HVM domain's rings, as libxc's
// xc_dom_gnttab_seed: grant frame 0 is put at a scratch gfn just past the
// physmap, written through a foreign mapping, and taken out again.
// xenstored refuses XS_INTRODUCE of a domain whose entry is missing.
func (rs *restorer) seedGrantTable(ctx context.Context, storeFrame, consoleFrame uint64) error {
	hv, dom := rs.c.hv, rs.dom
	maxGFN, err := hv.MaxGPFN(ctx, dom)
	if err != nil {
		return fmt.Errorf("getting maximum gpfn: %w", err)
	}
	scratch := maxGFN + 1
	if err := hv.MapGrantTable(ctx, dom, 0, scratch); err != nil {
		return fmt.Errorf("mapping grant table frame at %#x: %w", scratch, err)
	}
	werr := func() error {
		mp, err := mapFrames(ctx, hv, dom, domctl.ProtReadWrite, []uint64{scratch})
		if err != nil {
			return fmt.Errorf("mapping grant table: %w", err)
		}
		defer mp.Close()
		writeReservedGrants(mp.Bytes(), storeFrame, consoleFrame)
		return nil
	}()
	if err := hv.RemoveFromPhysmap(ctx, dom, scratch); err != nil {
		return errors.Join(werr, fmt.Errorf("removing grant table frame from %#x: %w", scratch, err))
	}
	return werr
}

// writeReservedGrants fills grant frame 0 (b) with the reserved entries
// through which dom0's xenconsoled (GNTTAB_RESERVED_CONSOLE, skipped when
// consoleFrame is 0) and xenstored (GNTTAB_RESERVED_XENSTORE) map the
// guest's rings, as libxc's xc_dom_set_gnttab_entry: flags written last.
func writeReservedGrants(b []byte, storeFrame, consoleFrame uint64) {
	put := func(ref int, frame uint64) {
		e := b[ref*8:]
		binary.LittleEndian.PutUint16(e[2:], 0) // dom0 maps it
		binary.LittleEndian.PutUint32(e[4:], uint32(frame))
		binary.LittleEndian.PutUint16(e, abi.GTF_permit_access)
	}
	if consoleFrame != 0 {
		put(abi.GNTTAB_RESERVED_CONSOLE, consoleFrame)
	}
	put(abi.GNTTAB_RESERVED_XENSTORE, storeFrame)
}

// writeNodes creates the domain's xenstore directory as libxl does at
// domain creation: read-only identity nodes, and the nodes the guest
// writes (control/, device/suspend/, data/) owned by the guest.
func (rs *restorer) writeNodes(ctx context.Context) error {
	id := uint32(rs.dom)
	p, err := rs.c.xs.GetDomainPath(ctx, id)
	if err != nil {
		return fmt.Errorf("getting domain path: %w", err)
	}
	rs.nodes = p
	name := rs.o.Name
	if name == "" {
		name = rs.cfg.CInfo.Name
	}
	if name == "" {
		name = "restored-" + strconv.Itoa(int(id))
	}
	nodes := xenstore.DomainNodes(p, id, name)
	if rs.console.frame != 0 {
		nodes = append(nodes, consoleNodes(p, id, rs.console)...)
	}
	err = rs.c.xs.Transaction(ctx, func(tx *xenstore.Tx) error {
		return tx.WriteNodes(ctx, nodes)
	})
	if err != nil {
		return fmt.Errorf("writing xenstore nodes of domain %d: %w", id, err)
	}
	return nil
}
