package checkpoint

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/xenckpt/xenckpt/checkpoint/stream"
)

// The Xen version written into the domain header: the ABI this project
// speaks (XEN_DOMCTL_INTERFACE_VERSION 0x15).
const (
	streamXenMajor = 4
	streamXenMinor = 17
)

// domainConfig is the subset of libxl_domain_config (as xl stores it as
// JSON in its save header) that a restore needs to create the domain.
type domainConfig struct {
	CInfo struct {
		Type string `json:"type"` // "pv", "hvm" or "pvh"
		Name string `json:"name,omitempty"`
		UUID string `json:"uuid,omitempty"`
	} `json:"c_info"`
	BInfo struct {
		MaxVCPUs    uint32   `json:"max_vcpus"`
		AvailVCPUs  []uint32 `json:"avail_vcpus,omitempty"`
		MaxMemKB    uint64   `json:"max_memkb"`
		TargetMemKB uint64   `json:"target_memkb"`
		// The build-info union, keyed like libxl's JSON ("type.pvh": {}):
		// libxl reads the domain type from this key.
		TypePV  *struct{} `json:"type.pv,omitempty"`
		TypeHVM *struct{} `json:"type.hvm,omitempty"`
		TypePVH *struct{} `json:"type.pvh,omitempty"`
	} `json:"b_info"`
}

// configJSON returns the xl header's config: the caller's, checked to be
// JSON with the fields Restore reads, or a minimal one.
func configJSON(user []byte, sh guestShape, handle [16]byte, name string) ([]byte, error) {
	if user != nil {
		var dc domainConfig
		if err := json.Unmarshal(user, &dc); err != nil {
			return nil, fmt.Errorf("%w: SaveOptions.XLConfig is not a libxl domain config: %w", ErrBadConfig, err)
		}
		return user, nil
	}
	b, err := json.Marshal(configFor(sh, handle, name))
	if err != nil {
		return nil, fmt.Errorf("encoding domain config: %w", err)
	}
	return b, nil
}

func configFor(sh guestShape, handle [16]byte, name string) domainConfig {
	var dc domainConfig
	dc.CInfo.Name = name
	dc.CInfo.Type = sh.Type
	if handle != ([16]byte{}) {
		h := hex.EncodeToString(handle[:])
		dc.CInfo.UUID = h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	}
	dc.BInfo.MaxVCPUs = sh.MaxVCPUs
	for v := range sh.MaxVCPUs {
		if !slices.Contains(sh.OfflineVCPUs, v) {
			dc.BInfo.AvailVCPUs = append(dc.BInfo.AvailVCPUs, v)
		}
	}
	dc.BInfo.MaxMemKB = sh.MaxMemKB
	dc.BInfo.TargetMemKB = sh.MaxMemKB
	switch sh.Type {
	case "pvh":
		dc.BInfo.TypePVH = &struct{}{}
	case "hvm":
		dc.BInfo.TypeHVM = &struct{}{}
	default:
		dc.BInfo.TypePV = &struct{}{}
	}
	return dc
}

func parseUUID(s string) ([16]byte, bool) {
	var h [16]byte
	b := make([]byte, 0, 32)
	for i := 0; i < len(s); i++ {
		if s[i] != '-' {
			b = append(b, s[i])
		}
	}
	if len(b) != 32 {
		return h, false
	}
	if _, err := hex.Decode(h[:], b); err != nil {
		return h, false
	}
	return h, true
}

// streamSink writes an image as xl writes it: xl header with the domain
// config, the libxl layer, and the libxc stream inside LIBXC_CONTEXT.
type streamSink struct {
	w     *stream.Writer
	width int
	hvm   bool
	ents  []uint64
}

// newStreamSink starts an image on w. cfg is the JSON domain config for
// the xl header.
func newStreamSink(w io.Writer, sh guestShape, cfg []byte) (*streamSink, error) {
	s := &streamSink{w: stream.NewWriter(w, nil), width: sh.Width, hvm: sh.HVM, ents: make([]uint64, 0, batchPages)}
	typ := stream.DomainTypePV
	if sh.HVM {
		typ = stream.DomainTypeHVM
	}
	steps := []func() error{
		func() error { return s.w.WriteXLHeader(cfg) },
		s.w.WriteLibxlHeader,
		s.w.WriteLibxcContext,
		s.w.WriteImageHeader,
		func() error {
			return s.w.WriteDomainHeader(stream.DomainHeader{Type: typ, XenMajor: streamXenMajor, XenMinor: streamXenMinor})
		},
		func() error {
			if sh.HVM {
				return nil
			}
			levels := uint8(4)
			if sh.Width == 4 {
				levels = 3
			}
			return s.w.WriteX86PVInfo(stream.X86PVInfo{GuestWidth: uint8(sh.Width), PTLevels: levels})
		},
		s.w.WriteStaticDataEnd,
	}
	for _, f := range steps {
		if err := f(); err != nil {
			return nil, fmt.Errorf("writing image headers: %w", err)
		}
	}
	return s, nil
}

func (s *streamSink) pages(pfns []uint64, types []uint8, data [][]byte) error {
	s.ents = s.ents[:0]
	for i, p := range pfns {
		s.ents = append(s.ents, stream.PFNEntry(p, stream.PageType(types[i])))
	}
	return s.w.WritePageData(s.ents, data)
}

func (s *streamSink) state(st *domainState) error {
	err := s.w.WriteTSCInfo(stream.TSCInfo{Mode: st.TSC.Mode, KHz: st.TSC.GTSCKHz, Nsec: st.TSC.ElapsedNsec, Incarnation: st.TSC.Incarnation})
	if err != nil {
		return err
	}
	if st.HVM {
		if err := s.w.WriteHVMContext(st.HVMContext); err != nil {
			return err
		}
		params := make([]stream.HVMParam, len(st.HVMParams))
		for i, p := range st.HVMParams {
			params[i] = stream.HVMParam{Index: p.Index, Value: p.Value}
		}
		return s.w.WriteHVMParams(params)
	}
	if len(st.SharedInfo) > 0 {
		if err := s.w.WriteSharedInfo(st.SharedInfo); err != nil {
			return err
		}
	}
	// libxc's order: each online vCPU's BASIC, EXTENDED, XSAVE, MSRS.
	for _, v := range st.VCPUs {
		recs := [...]struct {
			t    stream.RecordType
			blob []byte
		}{
			{stream.RecX86PVVCPUBasic, v.Ctx},
			{stream.RecX86PVVCPUExtended, v.Ext},
			{stream.RecX86PVVCPUXSave, v.XSave},
			{stream.RecX86PVVCPUMSRs, v.MSRs},
		}
		for _, r := range recs {
			if len(r.blob) == 0 && r.t != stream.RecX86PVVCPUBasic {
				continue
			}
			if err := s.w.WriteVCPU(r.t, stream.VCPU{ID: v.ID, Context: r.blob}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *streamSink) checkpoint() error {
	if err := s.w.WriteCheckpoint(); err != nil {
		return err
	}
	return s.w.WriteCheckpointEnd()
}

func (s *streamSink) end() error {
	if err := s.w.WriteEnd(); err != nil {
		return err
	}
	return s.w.WriteLibxlEnd()
}
