// Package magic discovers whether, and how, a Xen guest can cancel a
// suspend: it decodes the PV start_info page, parses and formats the
// start_info.magic[] capability advertisement of the seed protocol, reads
// the Xen ELF notes of guest kernels (upstream's advertisement) and merges
// all evidence into one cancel convention with Negotiate.
//
// The package is pure and deterministic: it reads nothing from the
// environment. Kernel images come in as an io.ReaderAt or []byte.
//
// # start_info
//
// DecodeStartInfo and StartInfo.Encode convert struct start_info of a PV
// guest (xen/include/public/xen.h) for both guest widths: 8 bytes (x86_64,
// StartInfoSize64 = 1168 bytes) and 4 bytes (32-bit PV, StartInfoSize32 =
// 1112 bytes). The layouts, SIF_* flags and XEN_ELFNOTE_* numbers in
// zabi.go are generated from the installed Xen headers by compiling a C
// probe (go generate; see internal/mkabi); a test regenerates and compares.
//
// # The magic[] grammar (seed protocol capability advertisement)
//
// Keir Fraser's 2006 proposal: a guest that can handle a cancelled suspend
// says so by writing an informative string into its start_info.magic[].
// This is the exact format a guest author implements. In ABNF (RFC 5234;
// strings are case-sensitive here):
//
//	magic-field  = magic-string NUL *OCTET   ; exactly 32 octets in all
//	magic-string = guest-type *( SP token )  ; at most 31 octets
//	guest-type   = "xen-" number "." number "-" platform
//	number       = "0" / ( %x31-39 *2DIGIT ) ; 0..999, no leading zero
//	platform     = "x86_64" / "x86_32p" / "x86_32" / "aarch64" / "armv7l"
//	token        = name [ "=" value ]
//	name         = LCALPHA *( LCALPHA / DIGIT / "-" )
//	value        = 1*( LCALPHA / DIGIT / "-" / "." / "_" )
//	LCALPHA      = %x61-7A                   ; a-z
//	SP           = %x20                      ; exactly one between parts
//
// Rules:
//
//   - The guest keeps the guest type the domain builder wrote
//     ("xen-3.0-x86_64") and appends its tokens after it, each preceded by
//     one space, then a NUL. Writers fill the rest of the 32 bytes with NUL;
//     readers ignore everything after the first NUL. No leading, trailing
//     or doubled spaces.
//   - Defined tokens: "sc" (TokenSuspendCancel, no value): the guest
//     implements the seed suspend-cancel convention. The suspend
//     hypercall's return value (vCPU0 eax/rax) then means: 0 = the suspend
//     was cancelled and the guest continues in the same domain; positive =
//     the guest was restored into a new domain; negative = error. Because
//     Xen itself leaves 0 in eax on every resume (domain_shutdown returns
//     0), a toolstack restoring a seed guest must write a positive value
//     (Convention.RestoreValue: 1) before unpausing it. "sc=<anything>" is
//     malformed.
//   - Any other token is an extension. Readers preserve it
//     (Magic.Extensions) and otherwise ignore it; a name may appear once.
//     New tokens must be short: after "xen-3.0-x86_32p" 17 bytes remain
//     for the NUL and the space-prefixed tokens (" sc" takes 3).
//   - Parse rejects anything else with a *ParseError.
//
// Why a space. Tools that predate the tokens find the guest type in one of
// three ways, and a space keeps all three working: a prefix compare
// (strncmp(magic, "xen-3.0-x86_64", 14)) still matches; sscanf("%s") or a
// split on whitespace yields exactly the guest type; and Xen's own list of
// guest types, XENVER_capabilities ("xen-3.0-x86_64 xen-3.0-x86_32p
// hvm-3.0-x86_64"), is already space-separated, so code that tokenises
// capability lists (libxenguest's xc_dom_compat_check does strtok(" "))
// sees the first word unchanged. A "+" or "," separator would glue the
// token onto the platform for the last two. Only a full strcmp of the
// whole field breaks, and no separator can avoid that.
//
// Upstream Xen never adopted this: it advertises the capability with the
// XEN_ELFNOTE_SUSPEND_CANCEL ELF note, and cancels by writing 1 (see
// Negotiate). The two conventions differ in the cancel value, so the token
// and the note must never be confused.
//
// # Xen ELF notes
//
// ReadNotes and ReadNotesBytes read the "Xen" ELF notes of a guest kernel:
// a plain ELF (vmlinux), a gzip-compressed ELF, or a Linux x86 bzImage
// whose payload (located through the setup header's payload_offset and
// payload_length) is gzip, bzip2, xz (with the x86 BCJ filter, as Linux
// builds it), lzma, lzo (lzop container), lz4 (legacy frames) or zstd. Decompressed output is
// capped (ReadOptions.MaxSize, default 256 MiB). Notes.SuspendCancel is
// XEN_ELFNOTE_SUSPEND_CANCEL; Debian's and upstream Linux kernels set it to 1.
//
// Decompression is lazy: the program headers say where the PT_NOTE
// segments are and only that prefix of the payload is decoded (about a
// third of a Linux vmlinux). Integrity checks of the container (xz block
// CRC, lzop adler32) are therefore verified only for blocks decoded in
// full; a corrupt prefix still fails, either in the decoder or in the ELF
// reader.
//
// # Negotiation
//
// Negotiate merges what is known about a guest (Sources) into one
// Decision: the Convention that cancels its suspend, the value a cancel
// writes into vCPU0's eax/rax (CancelValue: seed 0, upstream 1), the
// deciding Source and every claim. Each source claims at most one
// convention:
//
//	source                               claims
//	control/feature-suspend-cancel "1"   upstream   (key defined here)
//	control/feature-suspend-cancel "seed" seed
//	control/feature-suspend-cancel "0"   none
//	magic[] token "sc"                   seed
//	XEN_ELFNOTE_SUSPEND_CANCEL != 0      upstream
//	control/feature-suspend, a zero note, a magic[] without "sc"
//	or one that does not parse           nothing (listed in Details)
//
// Claims must agree; otherwise the result is a *ConflictError naming them
// all. The caller's Override wins only if no claim contradicts it; with
// Force it wins anyway and the contradicting claims are listed in
// Decision.Overruled. With no claim and no override the answer is
// ConventionNone (slow resume or refusal, the caller's choice): a
// convention is never guessed, because writing the wrong value makes the
// guest take the wrong path (XEN-NOTES §0.1: an upstream guest handed 0
// reconnects to xenstore with stale frame numbers).
//
// # Concurrency
//
// The package has no state: every function may be called from any number
// of goroutines. Values (Magic, StartInfo, Notes, Decision) are plain data
// and are not modified by the package after they are returned.
//
// # Errors
//
// Every error wraps one of the Err* sentinels, usable with errors.Is. Parse
// and Format return *ParseError (with the byte offset), the image reader
// *ImageError (with the step), Negotiate *ConflictError for ErrConflict.
// Hostile input never panics; the fuzz targets (FuzzParse,
// FuzzDecodeStartInfo, FuzzReadNotes) check that.
//
// # Testing without Xen
//
// Everything here runs on bytes: tests use committed fixtures (testdata/,
// see its README), Debian's /boot/vmlinuz-* when installed, and gcc with
// libxen-dev to check the generated layouts against the headers.
package magic
