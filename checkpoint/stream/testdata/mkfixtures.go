//go:build ignore

// mkfixtures derives the small committed fixtures in this directory from
// real images written by Xen 4.17's xl (see README.md). Run from this
// directory:
//
//	go run mkfixtures.go DIR
//
// where DIR holds the unpacked xl-save-pv.img, xl-save-c-pvh.img and
// xl-migrate-live-pvh.stream.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/xenckpt/xenckpt/checkpoint/stream"
)

const (
	headBytes   = 16 << 10 // raw prefix kept of each image
	keepEntries = 4        // pfn entries kept from the first PAGE_DATA record
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: go run mkfixtures.go DIR")
	}
	for _, name := range []string{"xl-save-pv.img", "xl-save-c-pvh.img", "xl-migrate-live-pvh.stream"} {
		b, err := os.ReadFile(filepath.Join(os.Args[1], name))
		if err != nil {
			log.Fatal(err)
		}
		if name != "xl-migrate-live-pvh.stream" { // its head equals xl-save-c-pvh.img's
			if err := os.WriteFile(name+".head", b[:headBytes], 0o644); err != nil {
				log.Fatal(err)
			}
		}
		if err := sameAfterRewrite(b); err != nil {
			log.Fatalf("%s: %v", name, err)
		}
		small, err := derive(b)
		if err != nil {
			log.Fatalf("%s: %v", name, err)
		}
		if err := os.WriteFile(name+".small", small, 0o644); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: small %d bytes\n", name, len(small))
	}
}

// derive copies every record except page data, keeps the first keepEntries
// entries (and their pages) of the first PAGE_DATA record, and appends any
// bytes that follow the stream (xl migrate's handshake text).
func derive(b []byte) ([]byte, error) {
	var out bytes.Buffer
	w := stream.NewWriter(&out, nil)
	r := stream.NewReader(bytes.NewReader(b), nil)
	pageRecords := 0
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if rec.Kind != stream.KindLibxc || rec.Type != stream.RecPageData {
			if err := w.CopyRecord(r, rec); err != nil {
				return nil, err
			}
			continue
		}
		pageRecords++
		if pageRecords > 1 {
			continue
		}
		data, err := r.Pages()
		if err != nil {
			return nil, err
		}
		entries := rec.PFNs[:keepEntries]
		nd := 0
		for _, e := range entries {
			if stream.EntryType(e).HasData() {
				nd++
			}
		}
		if err := w.WritePageDataContiguous(entries, data[:nd*stream.PageSize]); err != nil {
			return nil, err
		}
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	out.Write(b[r.Offset():])
	return out.Bytes(), nil
}

// sameAfterRewrite checks that reading b and copying every record through a
// Writer reproduces b (up to the end of the stream).
func sameAfterRewrite(b []byte) error {
	var out bytes.Buffer
	w := stream.NewWriter(&out, nil)
	r := stream.NewReader(bytes.NewReader(b), nil)
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := w.CopyRecord(r, rec); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if !bytes.Equal(out.Bytes(), b[:r.Offset()]) {
		return errors.New("rewritten stream differs from the original")
	}
	return nil
}
