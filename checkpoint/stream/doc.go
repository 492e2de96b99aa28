// Package stream reads and writes Xen's save/migration image format: the
// libxc migration stream (v2/v3), optionally inside the libxl stream (v2),
// optionally behind xl's save-file header. Images it writes pass Xen 4.17's
// verify-stream-v2 (except where that tool has known bugs) and keep to the
// stricter rules libxc and libxl restore apply; it reads, and rewrites byte
// for byte, the images Xen 4.17's xl save and xl migrate write.
//
// The package is pure and deterministic: it does no I/O beyond the
// io.Reader and io.Writer it is given and reads nothing from the
// environment.
//
// # Byte layout
//
// An image as `xl save` writes it. Multi-byte fields are little-endian
// unless marked BE; every record body is padded with zeros to a multiple of
// 8 bytes.
//
//	xl header (48 bytes, then optional data)        Layer LayerXL
//	+--------------------------------------------------------------+
//	| magic [32]  "Xen saved domain, xl format\n \0 \r"             |
//	| byteorder u32 = 0x01020304  | mandatory_flags u32 (JSON|v2)  |
//	| optional_flags u32 = 0      | optional_data_len u32          |
//	+--------------------------------------------------------------+
//	| config_len u32 | config: libxl_domain_config JSON, NUL-ended  |
//	+--------------------------------------------------------------+
//
//	libxl stream                                    Layer LayerLibxl
//	+--------------------------------------------------------------+
//	| ident u64 BE "LibxlFmt" | version u32 BE = 2 | options u32 BE |
//	+--------------------------------------------------------------+
//	| record: type u32 | length u32 | body [length] | pad to 8      |
//	|   LIBXC_CONTEXT (empty): the libxc stream follows inline      |
//	|   ...libxc stream until its END...                            |
//	|   EMULATOR_XENSTORE_DATA, EMULATOR_CONTEXT (HVM only):        |
//	|     emulator_id u32 | index u32 | data                        |
//	|   END                                                         |
//	+--------------------------------------------------------------+
//
//	libxc stream                                    Layer LayerLibxc
//	+--------------------------------------------------------------+
//	| image header (24, BE): marker u64 = ~0 | id u32 "XENF"        |
//	|   version u32 (2..3) | options u16 (bit 0: BE) | res u16, u32 |
//	| domain header (16): type u32 (1 PV, 2 HVM/PVH)               |
//	|   page_shift u16 = 12 | res u16 | xen_major u32 | xen_minor  |
//	+--------------------------------------------------------------+
//	| static data: [X86_PV_INFO] X86_CPUID_POLICY X86_MSR_POLICY     |
//	| STATIC_DATA_END (v3)                                          |
//	| [X86_PV_P2M_FRAMES]                                           |
//	| PAGE_DATA ... (≤ 1024 pfns each)                               |
//	| X86_TSC_INFO, then PV: SHARED_INFO, X86_PV_VCPU_* per vCPU    |
//	|               or HVM: HVM_CONTEXT, HVM_PARAMS                 |
//	| [CHECKPOINT, then the next round from PAGE_DATA on] ...        |
//	| END                                                           |
//	+--------------------------------------------------------------+
//
//	PAGE_DATA body
//	+----------+--------+------------------------+--------------------+
//	| count u32| res u32| pfn entry u64 [count]  | 4096-byte pages    |
//	+----------+--------+------------------------+--------------------+
//	pfn entry: bits 63-60 page type (PageType), 59-52 zero, 51-0 pfn.
//	One page of data follows for each entry whose type HasData (not
//	BROKEN, XALLOC or XTAB), in entry order.
//
// In a checkpointed (Remus/COLO) libxl stream, each libxc CHECKPOINT hands
// over to libxl records (emulator state) closed by CHECKPOINT_END, after
// which libxc records continue; there is one LIBXC_CONTEXT per stream.
// COLO's back channel (secondary to primary, LayerBackChannel) carries
// bare records: libxl CHECKPOINT_STATE and libxc CHECKPOINT_DIRTY_PFN_LIST
// (u64 pfn[]).
//
// # Rules enforced
//
// The Reader enforces what Xen 4.17's libxc and libxl restore enforce, not
// just what verify-stream-v2 checks: magic, versions (libxc 2..3, libxl 2),
// little-endian streams, zero reserved fields and padding, record lengths
// ≤ MaxRecordLength checked before anything is allocated, the exact length
// of every fixed-size record and of PAGE_DATA, known page types, pfns ≤
// ReaderOptions.MaxPFN, STATIC_DATA_END before PAGE_DATA and P2M frames in
// v3 (inferred in v2), X86_PV_INFO once and before P2M frames, shared info
// and vCPU records, PV records only in PV streams and HVM records only in
// HVM ones, vCPU0's X86_PV_VCPU_BASIC (PV) or HVM_CONTEXT (HVM) present at
// END and at each CHECKPOINT, CHECKPOINT only in checkpointed streams,
// libxl CHECKPOINT_END/STATE only inside a checkpoint, emulator records
// never for PV guests. Unknown optional records (bit 31) are passed on.
// The Writer checks the same rules, so it cannot produce an image the
// Reader refuses.
//
// # Writing
//
// The Writer streams: nothing but one staging buffer (1 MiB by default) is
// kept, small records are collected into large writes, and PAGE_DATA goes
// to BuffersWriter or net.Conn destinations as one vectored write per
// record that references the caller's page memory. For other destinations
// (files) pages are copied into the staging buffer, except that
// WritePageDataContiguous writes large contiguous batches straight from
// the caller's memory.
//
// # Checkpoints
//
// With ReaderOptions.Checkpoints = CheckpointsBuffered the Reader behaves as
// libxc restore (xg_sr_restore.c) and libxl do for Remus/COLO: the first
// checkpoint streams through, and each later one is buffered until its
// boundary (libxc CHECKPOINT, or libxl CHECKPOINT_END when there is a libxl
// layer), so a stream cut mid-checkpoint leaves the caller with the last
// complete checkpoint and an error matching ErrIncompleteCheckpoint.
//
// # Errors
//
// Every violation is a *FormatError naming the layer, the record and its
// stream offset; its Err wraps a sentinel (ErrBadMagic, ErrRecordTooLarge,
// ErrBadPadding, ErrOrder, ...) to test with errors.Is. Truncation matches
// both ErrTruncated and io.ErrUnexpectedEOF. Reader errors are sticky;
// Writer format errors are not (the call is refused and nothing written),
// but I/O errors are.
//
// # Concurrency
//
// Readers and Writers are not safe for concurrent use; use one per
// goroutine.
//
// # Testing without Xen
//
// Everything here runs without Xen. The tests run Debian's verify-stream-v2
// on every image the Writer produces, read fixtures derived from real xl
// images (testdata/README.md), and fuzz the Reader.
package stream
