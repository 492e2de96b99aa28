package stream

// Typed decoders for record bodies. The Reader has already validated the
// body, so they fail only when called on a record of another type (with an
// error matching ErrUnexpectedRecord) or on a hand-made Record whose body
// is too short (ErrBadLength).

// minBody is the smallest body each decoded record type can have.
var minBody = map[RecordType]int{
	RecX86PVInfo: 8, RecX86PVP2MFrames: 8, RecX86PVVCPUBasic: 8, RecX86PVVCPUExtended: 8,
	RecX86PVVCPUXSave: 8, RecX86PVVCPUMSRs: 8, RecX86TSCInfo: 24, RecHVMParams: 8,
}

func (rec Record) want(t RecordType) error {
	if rec.Kind != KindLibxc || rec.Type != t {
		return errf(ErrUnexpectedRecord, "%v is not %v", recName(&rec), t)
	}
	if len(rec.Body) < minBody[t] {
		return errf(ErrBadLength, "%v body of %d bytes", t, len(rec.Body))
	}
	return nil
}

func (rec Record) wantLibxl(t LibxlRecordType) error {
	if rec.Kind != KindLibxl || rec.LibxlType != t {
		return errf(ErrUnexpectedRecord, "%v is not libxl %v", recName(&rec), t)
	}
	if len(rec.Body) < 4 {
		return errf(ErrBadLength, "%v body of %d bytes", t, len(rec.Body))
	}
	return nil
}

// X86PVInfo decodes X86_PV_INFO.
func (rec Record) X86PVInfo() (X86PVInfo, error) {
	if err := rec.want(RecX86PVInfo); err != nil {
		return X86PVInfo{}, err
	}
	return X86PVInfo{GuestWidth: rec.Body[0], PTLevels: rec.Body[1]}, nil
}

// P2MFrames decodes X86_PV_P2M_FRAMES.
func (rec Record) P2MFrames() (P2MFrames, error) {
	if err := rec.want(RecX86PVP2MFrames); err != nil {
		return P2MFrames{}, err
	}
	b := rec.Body
	p := P2MFrames{StartPFN: le.Uint32(b), EndPFN: le.Uint32(b[4:]), Frames: make([]uint64, 0, (len(b)-8)/8)}
	for i := 8; i < len(b); i += 8 {
		p.Frames = append(p.Frames, le.Uint64(b[i:]))
	}
	return p, nil
}

// VCPU decodes one of the X86_PV_VCPU_* records. Context aliases Body.
func (rec Record) VCPU() (VCPU, error) {
	switch rec.Type {
	case RecX86PVVCPUBasic, RecX86PVVCPUExtended, RecX86PVVCPUXSave, RecX86PVVCPUMSRs:
		if err := rec.want(rec.Type); err != nil {
			return VCPU{}, err
		}
		return VCPU{ID: le.Uint32(rec.Body), Context: rec.Body[8:]}, nil
	}
	return VCPU{}, errf(ErrUnexpectedRecord, "%v is not a vCPU record", recName(&rec))
}

// TSCInfo decodes X86_TSC_INFO.
func (rec Record) TSCInfo() (TSCInfo, error) {
	if err := rec.want(RecX86TSCInfo); err != nil {
		return TSCInfo{}, err
	}
	b := rec.Body
	return TSCInfo{Mode: le.Uint32(b), KHz: le.Uint32(b[4:]), Nsec: le.Uint64(b[8:]), Incarnation: le.Uint32(b[16:])}, nil
}

// HVMParams decodes HVM_PARAMS.
func (rec Record) HVMParams() ([]HVMParam, error) {
	if err := rec.want(RecHVMParams); err != nil {
		return nil, err
	}
	b := rec.Body[8:]
	ps := make([]HVMParam, 0, len(b)/16)
	for i := 0; i+16 <= len(b); i += 16 {
		ps = append(ps, HVMParam{Index: le.Uint64(b[i:]), Value: le.Uint64(b[i+8:])})
	}
	return ps, nil
}

// CPUIDPolicy decodes X86_CPUID_POLICY.
func (rec Record) CPUIDPolicy() ([]CPUIDLeaf, error) {
	if err := rec.want(RecX86CPUIDPolicy); err != nil {
		return nil, err
	}
	b := rec.Body
	ls := make([]CPUIDLeaf, 0, len(b)/24)
	for i := 0; i+24 <= len(b); i += 24 {
		u := func(j int) uint32 { return le.Uint32(b[i+4*j:]) }
		ls = append(ls, CPUIDLeaf{Leaf: u(0), Subleaf: u(1), A: u(2), B: u(3), C: u(4), D: u(5)})
	}
	return ls, nil
}

// MSRPolicy decodes X86_MSR_POLICY.
func (rec Record) MSRPolicy() ([]MSREntry, error) {
	if err := rec.want(RecX86MSRPolicy); err != nil {
		return nil, err
	}
	b := rec.Body
	ms := make([]MSREntry, 0, len(b)/16)
	for i := 0; i+16 <= len(b); i += 16 {
		ms = append(ms, MSREntry{Index: le.Uint32(b[i:]), Flags: le.Uint32(b[i+4:]), Value: le.Uint64(b[i+8:])})
	}
	return ms, nil
}

// Emulator decodes a libxl EMULATOR_XENSTORE_DATA or EMULATOR_CONTEXT
// record. Data aliases Body; for xenstore data see XenstorePairs.
func (rec Record) Emulator() (Emulator, error) {
	if rec.Kind != KindLibxl || (rec.LibxlType != LibxlEmulatorContext && rec.LibxlType != LibxlEmulatorXenstoreData) {
		return Emulator{}, errf(ErrUnexpectedRecord, "%v is not an emulator record", recName(&rec))
	}
	b := rec.Body
	if len(b) < 8 {
		return Emulator{}, errf(ErrBadLength, "%v body of %d bytes", rec.LibxlType, len(b))
	}
	return Emulator{ID: EmulatorID(le.Uint32(b)), Index: le.Uint32(b[4:]), Data: b[8:]}, nil
}

// CheckpointState decodes a libxl CHECKPOINT_STATE record.
func (rec Record) CheckpointState() (CheckpointState, error) {
	if err := rec.wantLibxl(LibxlCheckpointState); err != nil {
		return 0, err
	}
	return CheckpointState(le.Uint32(rec.Body)), nil
}

// DirtyPFNs decodes a CHECKPOINT_DIRTY_PFN_LIST record (COLO back channel).
func (rec Record) DirtyPFNs() ([]uint64, error) {
	if err := rec.want(RecCheckpointDirtyPFNList); err != nil {
		return nil, err
	}
	pfns := make([]uint64, 0, len(rec.Body)/8)
	for i := 0; i+8 <= len(rec.Body); i += 8 {
		pfns = append(pfns, le.Uint64(rec.Body[i:]))
	}
	return pfns, nil
}
