package xensim

import (
	"encoding/binary"
	"unsafe"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
)

// The PV memory-management hypercalls a toolstack issues on behalf of a
// PV domain (foreigndom): __HYPERVISOR_mmu_update, __HYPERVISOR_mmuext_op,
// and GNTTABOP_setup_table of __HYPERVISOR_grant_table_op.

const (
	mmuUpdateSize = int(unsafe.Sizeof(abi.MMUUpdate{}))
	mmuExtOpSize  = int(unsafe.Sizeof(abi.MMUExtOp{}))

	// MMU_UPDATE_PREEMPTED (xen.h): a flag in the count of a continued
	// batch; the simulator never preempts.
	mmuUpdatePreempted = 1 << 31
	// GNTST_general_error (grant_table.h).
	gntstGeneralError = -1
)

// foreign resolves a foreigndom argument to the target domain: a
// toolstack acts on another domain; DOMID_SELF (dom0 itself) is refused.
func (x *xen) foreign(arg uint64) (*domain, error) {
	id := domctl.DomID(arg)
	if id == domctl.DomIDSelf || id == 0 {
		return nil, errEINVAL
	}
	d, err := x.lookupLocked(id)
	if err != nil {
		return nil, err
	}
	if d.dying || d.hvm {
		return nil, errEINVAL
	}
	return d, nil
}

// putDone writes a batch's success count to pdone (a guest handle to an
// unsigned int), if given.
func (x *xen) putDone(pdone uint64, n int) error {
	if pdone == 0 {
		return nil
	}
	b, err := x.bufs.resolve(pdone, 4)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b, uint32(n))
	return nil
}

// pvBatch runs op on each of the count size-byte entries at guest handle
// ptr for the PV domain foreigndom, with the hypervisor lock held; it
// stops at the first failure and reports how many succeeded in pdone, as
// mmu_update and mmuext_op do.
func (x *xen) pvBatch(ptr, count, pdone, foreigndom uint64, size int, op func(d *domain, entry []byte) error) error {
	count &^= mmuUpdatePreempted
	if count == 0 {
		return x.putDone(pdone, 0)
	}
	if count > 1<<20 {
		return errEINVAL
	}
	b, err := x.bufs.resolve(ptr, int(count)*size)
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	d, err := x.foreign(foreigndom)
	if err != nil {
		return err
	}
	for i := range int(count) {
		if err := op(d, b[i*size:(i+1)*size]); err != nil {
			_ = x.putDone(pdone, i)
			return err
		}
	}
	return x.putDone(pdone, int(count))
}

// mmuExtOp is __HYPERVISOR_mmuext_op(ops, count, pdone, foreigndom):
// MMUEXT_PIN_L{1..4}_TABLE and MMUEXT_UNPIN_TABLE, arg1 = the table's MFN.
func (x *xen) mmuExtOp(ops, count, pdone, foreigndom uint64) error {
	return x.pvBatch(ops, count, pdone, foreigndom, mmuExtOpSize, func(d *domain, entry []byte) error {
		op, err := view[abi.MMUExtOp](entry)
		if err != nil {
			return err
		}
		mfn := binary.LittleEndian.Uint64(op.Arg1[:])
		switch op.Cmd {
		case abi.MMUEXT_PIN_L1_TABLE, abi.MMUEXT_PIN_L2_TABLE, abi.MMUEXT_PIN_L3_TABLE, abi.MMUEXT_PIN_L4_TABLE:
			return d.pinTable(mfn, int(op.Cmd-abi.MMUEXT_PIN_L1_TABLE)+1)
		case abi.MMUEXT_UNPIN_TABLE:
			return d.unpinTable(mfn)
		}
		return errENOSYS
	})
}

// mmuUpdate is __HYPERVISOR_mmu_update(reqs, count, pdone, foreigndom):
// MMU_NORMAL_PT_UPDATE writes the 8-byte entry at machine address ptr
// (validated like Xen's mod_l*_entry when the page is a page table) and
// MMU_MACHPHYS_UPDATE sets M2P[ptr >> 12] = val, moving the frame to pfn
// val (the simulator keeps one frame per pfn, so val must be a free pfn).
func (x *xen) mmuUpdate(reqs, count, pdone, foreigndom uint64) error {
	return x.pvBatch(reqs, count, pdone, foreigndom, mmuUpdateSize, func(d *domain, entry []byte) error {
		req, err := view[abi.MMUUpdate](entry)
		if err != nil {
			return err
		}
		switch req.Ptr & 3 {
		case abi.MMU_NORMAL_PT_UPDATE:
			return d.writePTE(req.Ptr&^3, req.Val)
		case abi.MMU_MACHPHYS_UPDATE:
			return x.machphys(d, req.Ptr>>pageShift, req.Val)
		}
		return errENOSYS
	})
}

// writePTE is one MMU_NORMAL_PT_UPDATE. Call with x.mu held.
func (d *domain) writePTE(maddr, val uint64) error {
	if maddr%8 != 0 {
		return errEINVAL
	}
	pfn, ok := d.framePFN(maddr >> pageShift)
	if !ok {
		return errEINVAL
	}
	idx := int(maddr&(PageSize-1)) / 8
	t := d.ptype[pfn] &^ pfinfoLPINTAB
	if lvl := int(t >> pfinfoShift); lvl > 0 && val&ptePresent != 0 {
		if xenSlot(lvl, idx) {
			return errEINVAL // Xen's own slots
		}
		if lvl == 1 {
			if _, own := d.framePFN(pteMFN(val)); !own {
				return errEINVAL
			}
		} else {
			if val&ptePSE != 0 {
				return errEINVAL
			}
			if err := d.typeTables(pteMFN(val), lvl-1); err != nil {
				return err
			}
		}
	}
	binary.LittleEndian.PutUint64(d.mem.page(pfn)[idx*8:], val)
	d.markDirty(pfn)
	return nil
}

// machphys is one MMU_MACHPHYS_UPDATE. Call with x.mu held.
func (x *xen) machphys(d *domain, mfn, pfn uint64) error {
	old, ok := d.framePFN(mfn)
	if !ok {
		return errEINVAL
	}
	if old == pfn {
		return nil
	}
	if !d.machine || pfn >= d.mem.limit || d.isPopulated(pfn) {
		return errEINVAL
	}
	copy(d.mem.page(pfn), d.mem.page(old))
	clear(d.mem.page(old))
	d.populated[old/64] &^= 1 << (old % 64)
	d.populated[pfn/64] |= 1 << (pfn % 64)
	if t, ok := d.ptype[old]; ok {
		d.ptype[pfn] = t
		delete(d.ptype, old)
	}
	d.clearFrame(old)
	d.setFrame(pfn, mfn)
	if pfn > d.maxGPFN {
		d.maxGPFN = pfn
	}
	return nil
}

// grantTableOp is __HYPERVISOR_grant_table_op(cmd, uop, count); only
// GNTTABOP_setup_table with count 1 is modelled: it reports the frame of
// the domain's single grant-table frame (grantFrameMFN; a PV toolstack
// maps it to seed the reserved entries).
func (x *xen) grantTableOp(cmd, uop, count uint64) error {
	if cmd != abi.GNTTABOP_setup_table {
		return errENOSYS
	}
	if count != 1 {
		return errEINVAL
	}
	st, err := resolveT[abi.GnttabSetupTable](x, uop)
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	d, err := x.lookupLocked(domctl.DomID(st.Dom))
	if err != nil || d.dying {
		st.Status = gntstGeneralError
		return nil
	}
	if st.NrFrames != 1 {
		st.Status = gntstGeneralError
		return nil
	}
	fl, err := x.bufs.resolve(st.FrameList.Addr(), 8)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(fl, grantFrameMFN(d))
	st.Status = 0
	return nil
}
