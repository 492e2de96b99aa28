package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/ulikunitz/xz"

	"github.com/xenckpt/xenckpt/checkpoint/stream"
)

func (a *app) inspectCmd() *cobra.Command {
	var list bool
	cmd := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Show the records and pages of a save image or migration stream",
		Long: `Read a save image or migration stream — ours, or one written by xl save, xl save -c
or captured from xl migrate — and report its layers (xl header, libxl, libxc),
record counts per type, checkpoints and pages. The stream is validated as
libxc/libxl restore would; a bad stream reports what was read before the error
and exits with code 6. FILE may be xz-compressed; "-" reads standard input.`,
		Args: exactArgs(1, "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runInspect(cmd.Context(), args[0], list)
		},
	}
	cmd.Flags().BoolVar(&list, "records", false, "also list every header and record with its offset")
	return cmd
}

// inspectResult is the JSON document of "inspect". Field names are stable.
type inspectResult struct {
	File string `json:"file"`
	// Compression is "xz" for an xz-compressed file, else empty.
	Compression string `json:"compression,omitempty"`
	// Layers present, outermost first: "xl", "libxl", "libxc".
	Layers []string   `json:"layers"`
	XL     *xlJSON    `json:"xl,omitempty"`
	Libxl  *libxlJSON `json:"libxl,omitempty"`
	// LibxcVersion is the image header's version (2 or 3).
	LibxcVersion uint32 `json:"libxc_version"`
	// DomainType is "pv" or "hvm" (PVH guests are "hvm").
	DomainType string `json:"domain_type"`
	XenVersion string `json:"xen_version"`
	// Records is the number of libxc and libxl records (headers excluded).
	Records int `json:"records"`
	// RecordCounts counts libxc records by type name (PAGE_DATA, ...).
	RecordCounts map[string]int `json:"record_counts"`
	// LibxlRecordCounts counts libxl records by type name.
	LibxlRecordCounts map[string]int `json:"libxl_record_counts,omitempty"`
	Checkpoints       int            `json:"checkpoints"`
	Pages             pagesJSON      `json:"pages"`
	// StreamBytes is the length of the stream up to its outermost END.
	StreamBytes int64 `json:"stream_bytes"`
	// TrailingBytes follow the END (xl migrate's handshake text, for
	// example); TrailingText is their printable prefix.
	TrailingBytes int64  `json:"trailing_bytes"`
	TrailingText  string `json:"trailing_text,omitempty"`
	// Complete is true when the outermost END was read.
	Complete bool         `json:"complete"`
	List     []recordJSON `json:"record_list,omitempty"`
	Error    *errorJSON   `json:"error,omitempty"`
}

type xlJSON struct {
	MandatoryFlags uint32 `json:"mandatory_flags"`
	ConfigBytes    int    `json:"config_bytes"`
}

type libxlJSON struct {
	Version uint32 `json:"version"`
	Options uint32 `json:"options"`
}

type pagesJSON struct {
	// PFNEntries counts pfn entries of every PAGE_DATA record, holes
	// included; DataPages counts the pages of data actually carried.
	PFNEntries uint64 `json:"pfn_entries"`
	DataPages  uint64 `json:"data_pages"`
	// UniquePFNs counts distinct pfns with data (live streams resend
	// pages; the difference is the precopy overhead).
	UniquePFNs uint64 `json:"unique_pfns"`
	// MaxPFN is the highest pfn with data, -1 when there is none.
	MaxPFN int64 `json:"max_pfn"`
	// ByType counts pfn entries by page type (NOTAB, L1TAB, ..., XTAB).
	ByType map[string]uint64 `json:"by_type"`
}

type recordJSON struct {
	Offset    int64  `json:"offset"`
	Layer     string `json:"layer"`
	Type      string `json:"type"`
	Length    int    `json:"length"`
	PFNs      int    `json:"pfns,omitempty"`
	DataPages int    `json:"data_pages,omitempty"`
}

var pageTypeNames = map[stream.PageType]string{
	stream.PageNoTab: "NOTAB", stream.PageL1Tab: "L1TAB", stream.PageL2Tab: "L2TAB",
	stream.PageL3Tab: "L3TAB", stream.PageL4Tab: "L4TAB",
	stream.PageL1TabPin: "L1TAB_PIN", stream.PageL2TabPin: "L2TAB_PIN",
	stream.PageL3TabPin: "L3TAB_PIN", stream.PageL4TabPin: "L4TAB_PIN",
	stream.PageBroken: "BROKEN", stream.PageXAlloc: "XALLOC", stream.PageXTab: "XTAB",
}

func (a *app) runInspect(ctx context.Context, name string, list bool) error {
	var in io.Reader
	if name == "-" {
		in = a.stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	res, err := inspect(ctx, in, list)
	res.File = name
	if err != nil {
		res.Error = &errorJSON{Message: err.Error(), Class: exitNames[exitCode(err)], ExitCode: exitCode(err)}
	}
	if perr := a.emit(res, res.text); perr != nil {
		return perr
	}
	return printed(err)
}

// inspect reads a whole stream from in. On error the result holds what
// was read before it.
func inspect(ctx context.Context, in io.Reader, list bool) (*inspectResult, error) {
	res := &inspectResult{
		RecordCounts: map[string]int{},
		Pages:        pagesJSON{ByType: map[string]uint64{}, MaxPFN: -1},
	}
	br := bufio.NewReaderSize(ctxReader{ctx, in}, 1<<20)
	if head, _ := br.Peek(6); bytes.Equal(head, []byte("\xfd7zXZ\x00")) {
		zr, err := xz.NewReader(br)
		if err != nil {
			return res, withCode(exitImage, fmt.Errorf("reading xz: %w", err))
		}
		res.Compression = "xz"
		br = bufio.NewReaderSize(zr, 1<<20)
	}
	r := stream.NewReader(br, &stream.ReaderOptions{Checkpoints: stream.CheckpointsUnbuffered})
	seen := map[uint64]struct{}{}
	var err error
	for {
		var rec stream.Record
		rec, err = r.Next()
		if err != nil {
			break
		}
		if list {
			res.List = append(res.List, recordEntry(rec))
		}
		switch rec.Kind {
		case stream.KindXLHeader:
			res.Layers = append(res.Layers, "xl")
			res.XL = &xlJSON{MandatoryFlags: rec.XL.MandatoryFlags, ConfigBytes: len(rec.XL.Config)}
		case stream.KindLibxlHeader:
			res.Layers = append(res.Layers, "libxl")
			res.Libxl = &libxlJSON{Version: rec.Libxl.Version, Options: rec.Libxl.Options}
			res.LibxlRecordCounts = map[string]int{}
		case stream.KindImageHeader:
			res.Layers = append(res.Layers, "libxc")
			res.LibxcVersion = rec.Image.Version
		case stream.KindDomainHeader:
			res.DomainType = domainTypeName(rec.Domain.Type)
			res.XenVersion = fmt.Sprintf("%d.%d", rec.Domain.XenMajor, rec.Domain.XenMinor)
		case stream.KindLibxl:
			res.Records++
			res.LibxlRecordCounts[rec.LibxlType.String()]++
		case stream.KindLibxc:
			res.Records++
			res.RecordCounts[rec.Type.String()]++
			if rec.Type == stream.RecPageData {
				res.Pages.add(rec, seen)
			}
		}
	}
	res.Checkpoints = r.Checkpoints()
	res.StreamBytes = r.Offset()
	if !errors.Is(err, io.EOF) {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if _, ok := errors.AsType[*stream.FormatError](err); ok {
			return res, withCode(exitImage, err)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return res, withCode(exitImage, err)
		}
		return res, err
	}
	res.Complete = true
	// Whatever follows the END: xl migrate's handshake, or garbage.
	var tail bytes.Buffer
	n, terr := io.Copy(&tail, io.LimitReader(br, 4096))
	rest, terr2 := io.Copy(io.Discard, br)
	res.TrailingBytes = n + rest
	res.TrailingText = printablePrefix(tail.Bytes())
	if terr != nil || terr2 != nil {
		return res, errors.Join(terr, terr2)
	}
	return res, nil
}

func (p *pagesJSON) add(rec stream.Record, seen map[uint64]struct{}) {
	p.PFNEntries += uint64(len(rec.PFNs))
	p.DataPages += uint64(rec.DataPages)
	for _, e := range rec.PFNs {
		t := stream.EntryType(e)
		name, ok := pageTypeNames[t]
		if !ok {
			name = fmt.Sprintf("TYPE_%#x", uint8(t))
		}
		p.ByType[name]++
		if !t.HasData() {
			continue
		}
		pfn := stream.EntryPFN(e)
		if _, dup := seen[pfn]; !dup {
			seen[pfn] = struct{}{}
			p.UniquePFNs++
		}
		if int64(pfn) > p.MaxPFN {
			p.MaxPFN = int64(pfn)
		}
	}
}

func recordEntry(rec stream.Record) recordJSON {
	e := recordJSON{Offset: rec.Offset, Length: len(rec.Body)}
	switch rec.Kind {
	case stream.KindXLHeader:
		e.Layer, e.Type = "xl", "XL_HEADER"
	case stream.KindLibxlHeader:
		e.Layer, e.Type = "libxl", "LIBXL_HEADER"
	case stream.KindImageHeader:
		e.Layer, e.Type = "libxc", "IMAGE_HEADER"
	case stream.KindDomainHeader:
		e.Layer, e.Type = "libxc", "DOMAIN_HEADER"
	case stream.KindLibxl:
		e.Layer, e.Type = "libxl", rec.LibxlType.String()
	case stream.KindLibxc:
		e.Layer, e.Type = "libxc", rec.Type.String()
		e.PFNs, e.DataPages = len(rec.PFNs), rec.DataPages
		if rec.Type == stream.RecPageData {
			e.Length += rec.DataPages * stream.PageSize
		}
	}
	return e
}

func domainTypeName(t stream.DomainType) string {
	switch t {
	case stream.DomainTypePV:
		return "pv"
	case stream.DomainTypeHVM:
		return "hvm"
	}
	return t.String()
}

// printablePrefix returns the leading printable ASCII of b, trimmed.
func printablePrefix(b []byte) string {
	i := 0
	for i < len(b) && (b[i] >= 0x20 && b[i] < 0x7f || b[i] == '\n' || b[i] == '\t') {
		i++
	}
	return strings.TrimSpace(string(b[:i]))
}

func (res *inspectResult) text(w io.Writer) {
	fmt.Fprintf(w, "%s:", res.File)
	if res.Compression != "" {
		fmt.Fprintf(w, " %s-compressed", res.Compression)
	}
	fmt.Fprintf(w, " %s stream", strings.Join(res.Layers, " > "))
	if res.DomainType != "" {
		fmt.Fprintf(w, ", %s guest, Xen %s, libxc v%d", res.DomainType, res.XenVersion, res.LibxcVersion)
	}
	fmt.Fprintln(w)
	if res.XL != nil {
		fmt.Fprintf(w, "  xl header: mandatory flags %#x, %d bytes of config\n", res.XL.MandatoryFlags, res.XL.ConfigBytes)
	}
	fmt.Fprintf(w, "  %d records, %d checkpoints, %d bytes\n", res.Records, res.Checkpoints, res.StreamBytes)
	printCounts(w, "  libxc", res.RecordCounts)
	if res.Libxl != nil {
		printCounts(w, "  libxl", res.LibxlRecordCounts)
	}
	p := res.Pages
	fmt.Fprintf(w, "  pages: %d pfn entries, %d data pages, %d unique pfns", p.PFNEntries, p.DataPages, p.UniquePFNs)
	if p.MaxPFN >= 0 {
		fmt.Fprintf(w, ", max pfn %#x", p.MaxPFN)
	}
	fmt.Fprintln(w)
	if len(p.ByType) > 0 {
		printCounts(w, "  page types", p.ByType)
	}
	if res.TrailingBytes > 0 {
		fmt.Fprintf(w, "  %d bytes after END: %q\n", res.TrailingBytes, res.TrailingText)
	}
	for _, e := range res.List {
		fmt.Fprintf(w, "  @%-10d %-5s %-26s %d bytes", e.Offset, e.Layer, e.Type, e.Length)
		if e.PFNs > 0 {
			fmt.Fprintf(w, " (%d pfns, %d pages)", e.PFNs, e.DataPages)
		}
		fmt.Fprintln(w)
	}
	if !res.Complete {
		fmt.Fprintln(w, "  INCOMPLETE: the stream did not reach its END record")
	}
}

func printCounts[V int | uint64](w io.Writer, label string, m map[string]V) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	fmt.Fprintf(w, "%s: %s\n", label, strings.Join(parts, ", "))
}

// ctxReader fails reads once ctx is done, so Ctrl-C stops a long read.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
