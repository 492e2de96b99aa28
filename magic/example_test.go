package magic_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/xenckpt/xenckpt/magic"
)

// A seed-protocol guest advertises suspend-cancel by appending the "sc"
// token to the guest type the domain builder wrote.
func ExampleMagic_Format() {
	m := magic.Magic{Major: 3, Minor: 0, Platform: magic.PlatformX86_64, SuspendCancel: true}
	field, err := m.Format()
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q\n", field[:20])
	// Output:
	// "xen-3.0-x86_64 sc\x00\x00\x00"
}

func ExampleParse() {
	var field [magic.MagicSize]byte
	copy(field[:], "xen-3.0-x86_32p sc")
	m, err := magic.Parse(field[:])
	if err != nil {
		panic(err)
	}
	fmt.Println(m.GuestType(), m.Platform.Width(), m.SuspendCancel)

	_, err = magic.Parse([]byte("xen-3.0-x86_64 SC\x00"))
	fmt.Println(errors.Is(err, magic.ErrBadToken))
	// Output:
	// xen-3.0-x86_32p 4 true
	// true
}

// A simulated guest builds its start_info page; the toolstack decodes it.
func ExampleDecodeStartInfo() {
	page := make([]byte, 4096)
	si := magic.StartInfo{Magic: "xen-3.0-x86_64 sc", NrPages: 65536, StoreMFN: 0x1234, StoreEvtchn: 1}
	if err := si.EncodeTo(page, 8); err != nil {
		panic(err)
	}
	got, err := magic.DecodeStartInfo(page, 8)
	if err != nil {
		panic(err)
	}
	m, err := got.ParseMagic()
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d pages, store %#x/%d, suspend-cancel %t\n", got.NrPages, got.StoreMFN, got.StoreEvtchn, m.SuspendCancel)
	// Output:
	// 65536 pages, store 0x1234/1, suspend-cancel true
}

func ExampleNegotiate() {
	// A Linux guest: plain magic[], kernel note XEN_ELFNOTE_SUSPEND_CANCEL = 1.
	notes := &magic.Notes{SuspendCancel: 1}
	d, err := magic.Negotiate(magic.Sources{Magic: "xen-3.0-x86_64", Notes: notes, FeatureSuspend: "1"})
	if err != nil {
		panic(err)
	}
	fmt.Println(d.Convention, d.CancelValue, d.Source)

	// A guest claiming both conventions is refused, never guessed.
	_, err = magic.Negotiate(magic.Sources{Magic: "xen-3.0-x86_64 sc", Notes: notes})
	fmt.Println(errors.Is(err, magic.ErrConflict))
	fmt.Println(err)
	// Output:
	// upstream 1 elf-note
	// true
	// magic: conflicting suspend-cancel evidence: magic says seed (magic[] "xen-3.0-x86_64 sc"); elf-note says upstream (XEN_ELFNOTE_SUSPEND_CANCEL = 1)
}

// Reading a kernel image from disk: here an xz-compressed vmlinux made
// like Linux's (xz --x86); a /boot/vmlinuz bzImage works the same way.
func ExampleReadNotes() {
	f, err := os.Open("testdata/notes64.elf.xz")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		panic(err)
	}
	n, err := magic.ReadNotes(context.Background(), f, st.Size(), &magic.ReadOptions{MaxSize: 64 << 20})
	if err != nil {
		panic(err)
	}
	fmt.Println(n.Kind, n.Compression, n.GuestOS, n.Has(magic.NoteSuspendCancel), n.SuspendCancel)
	// Output:
	// compressed-elf xz linux true 1
}
