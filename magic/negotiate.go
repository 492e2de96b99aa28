package magic

import (
	"fmt"
	"strings"
)

// Convention is how a toolstack cancels a guest's suspend: the value it
// writes into vCPU0's return register (eax/rax) before resumedomain.
type Convention int

// Conventions. The zero value means "not specified" (no override in
// Sources); Negotiate never returns it.
const (
	// ConventionNone: the guest cannot tell a cancelled suspend from a
	// restore. Only the slow resume (the guest sees 0 and reconnects as
	// after a restore, xc_domain_resume_any) or a refusal is possible.
	ConventionNone Convention = iota + 1
	// ConventionSeed: the seed protocol (magic[] token "sc"); cancel
	// writes 0, a restore leaves a positive value.
	ConventionSeed
	// ConventionUpstream: Xen/Linux since 2007 (XEN_ELFNOTE_SUSPEND_CANCEL);
	// cancel writes 1, 0 means "resumed in a new domain".
	ConventionUpstream
)

func (c Convention) String() string {
	switch c {
	case 0:
		return "unspecified"
	case ConventionNone:
		return "none"
	case ConventionSeed:
		return "seed"
	case ConventionUpstream:
		return "upstream"
	}
	return fmt.Sprintf("Convention(%d)", int(c))
}

// CancelValue is the return value a cancel writes for c: 0 (seed) or 1
// (upstream). ok is false for ConventionNone and invalid values, which have
// no cancel value.
func (c Convention) CancelValue() (v uint64, ok bool) {
	switch c {
	case ConventionSeed:
		return 0, true
	case ConventionUpstream:
		return 1, true
	}
	return 0, false
}

// RestoreValue is the return value a guest of convention c must find
// after a restore into a new domain: 1 for seed (any positive value; Xen
// leaves 0, which a seed guest would take for a cancel), 0 for upstream and
// none (what Xen leaves anyway). ok is false for invalid values.
func (c Convention) RestoreValue() (v uint64, ok bool) {
	switch c {
	case ConventionSeed:
		return 1, true
	case ConventionUpstream, ConventionNone:
		return 0, true
	}
	return 0, false
}

func (c Convention) valid() bool { return c >= ConventionNone && c <= ConventionUpstream }

// Source names where a piece of evidence came from.
type Source int

// Sources of evidence, in the order Negotiate ranks agreeing claims.
const (
	SourceDefault  Source = iota // nothing claimed anything: ConventionNone
	SourceOverride               // Sources.Override, the caller's knowledge
	SourceXenstore               // the guest's control/feature-suspend-cancel key
	SourceMagic                  // the "sc" token in start_info.magic[]
	SourceELFNote                // XEN_ELFNOTE_SUSPEND_CANCEL in the kernel image
)

func (s Source) String() string {
	switch s {
	case SourceDefault:
		return "default"
	case SourceOverride:
		return "override"
	case SourceXenstore:
		return "xenstore"
	case SourceMagic:
		return "magic"
	case SourceELFNote:
		return "elf-note"
	}
	return fmt.Sprintf("Source(%d)", int(s))
}

// Xenstore keys, relative to the guest's domain path, that feed
// Sources.FeatureSuspend and Sources.FeatureSuspendCancel.
const (
	// XenstoreFeatureSuspend is written "1" by guests that handle
	// control/shutdown = "suspend" (Linux: setup_shutdown_watcher). It says
	// nothing about cancelling.
	XenstoreFeatureSuspend = "control/feature-suspend"
	// XenstoreFeatureSuspendCancel is this package's key for guests that
	// want to state their cancel convention at run time: "1" = upstream
	// (same value as the ELF note), "seed" = seed protocol, "0" = cannot
	// cancel. Any other value is ErrBadEvidence.
	XenstoreFeatureSuspendCancel = "control/feature-suspend-cancel"
)

// Sources is what is known about a guest. Zero fields mean "not known" and
// contribute nothing.
type Sources struct {
	// Magic is start_info.magic[] up to its NUL (StartInfo.Magic) of a PV
	// guest, "" for HVM/PVH guests or when not read. The "sc" token claims
	// ConventionSeed. A string that does not parse is no claim; it is
	// reported in Decision.Details.
	Magic string
	// Notes are the Xen ELF notes of the guest's kernel (ReadNotes).
	// SuspendCancel != 0 claims ConventionUpstream; 0 claims nothing (the
	// note only speaks for the upstream convention).
	Notes *Notes
	// FeatureSuspend is the value of XenstoreFeatureSuspend, "" if absent.
	// Informational only: reported in Decision.Details.
	FeatureSuspend string
	// FeatureSuspendCancel is the value of XenstoreFeatureSuspendCancel,
	// "" if absent: "1" claims upstream, "seed" claims seed, "0" claims none.
	FeatureSuspendCancel string
	// Override is the caller's own knowledge (for example a toolstack that
	// knows its guests, as libxl assumes every guest is upstream). Zero
	// means no override. It wins when no evidence contradicts it; if some
	// does, Negotiate fails with a *ConflictError unless Force is set.
	Override Convention
	// Force makes Override win over contradicting evidence, which is then
	// listed in Decision.Overruled instead of failing.
	Force bool
}

// Claim is one source's statement about the convention.
type Claim struct {
	Source     Source
	Convention Convention
	Evidence   string // what was seen, e.g. `magic[] "xen-3.0-x86_64 sc"`
}

func (c Claim) String() string {
	return fmt.Sprintf("%s says %s (%s)", c.Source, c.Convention, c.Evidence)
}

// Decision is Negotiate's answer.
type Decision struct {
	Convention Convention
	// CancelValue is what a cancel writes: 0 for seed, 1 for upstream.
	// Meaningless for ConventionNone (there is no cancel): check Convention.
	CancelValue uint64
	// Source is the deciding source: SourceOverride, the highest-ranked
	// claim (xenstore, then magic, then ELF note), or SourceDefault.
	Source Source
	// Claims are all claims from evidence, in rank order; without Force
	// they all agree with Convention.
	Claims []Claim
	// Overruled are the claims a forced Override beat.
	Overruled []Claim
	// Details are informational findings that claimed nothing
	// (feature-suspend, an unparsable magic, a zero ELF note).
	Details []string
}

func (d Decision) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s from %s", d.Convention, d.Source)
	if v, ok := d.Convention.CancelValue(); ok {
		fmt.Fprintf(&b, " (cancel writes %d)", v)
	}
	for _, c := range d.Claims {
		fmt.Fprintf(&b, "; %s", c)
	}
	for _, c := range d.Overruled {
		fmt.Fprintf(&b, "; overruled: %s", c)
	}
	for _, s := range d.Details {
		fmt.Fprintf(&b, "; %s", s)
	}
	return b.String()
}

// ConflictError is returned by Negotiate when the evidence disagrees, or
// contradicts an Override without Force. errors.Is(err, ErrConflict) holds.
type ConflictError struct {
	Override Convention // the caller's override, zero if none
	Claims   []Claim    // every claim, in rank order
}

func (e *ConflictError) Error() string {
	var b strings.Builder
	b.WriteString(ErrConflict.Error())
	if e.Override != 0 {
		fmt.Fprintf(&b, ": override says %s", e.Override)
	}
	for i, c := range e.Claims {
		if i == 0 && e.Override == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(c.String())
	}
	return b.String()
}

func (e *ConflictError) Unwrap() error { return ErrConflict }

// Negotiate merges the evidence in src into one cancel convention.
//
// Claims are collected from the xenstore key, the magic[] token and the ELF
// note (see the Sources fields for what each claims). Then:
//
//  1. With an Override: if no claim contradicts it, it is the decision
//     (Source = SourceOverride, agreeing claims listed). If a claim
//     contradicts it, Negotiate fails with a *ConflictError, unless Force
//     is set, in which case the override wins and the contradicting claims
//     are in Decision.Overruled. An invalid Override is ErrBadEvidence.
//  2. Without an Override: all claims must agree, else *ConflictError.
//     Their common convention is the decision, its Source the
//     highest-ranked claim.
//  3. With no claim at all the decision is ConventionNone from
//     SourceDefault: nothing is ever guessed.
//
// An uninterpretable FeatureSuspendCancel is ErrBadEvidence. On error the
// Decision is zero.
func Negotiate(src Sources) (Decision, error) {
	var d Decision
	if src.Override != 0 && !src.Override.valid() {
		return Decision{}, fmt.Errorf("override %v: %w", src.Override, ErrBadEvidence)
	}
	switch v := src.FeatureSuspendCancel; v {
	case "":
	case "1":
		d.Claims = append(d.Claims, Claim{SourceXenstore, ConventionUpstream, XenstoreFeatureSuspendCancel + ` = "1"`})
	case "seed":
		d.Claims = append(d.Claims, Claim{SourceXenstore, ConventionSeed, XenstoreFeatureSuspendCancel + ` = "seed"`})
	case "0":
		d.Claims = append(d.Claims, Claim{SourceXenstore, ConventionNone, XenstoreFeatureSuspendCancel + ` = "0"`})
	default:
		return Decision{}, fmt.Errorf("%s = %q: %w", XenstoreFeatureSuspendCancel, v, ErrBadEvidence)
	}
	if src.Magic != "" {
		m, err := ParseString(src.Magic)
		switch {
		case err != nil:
			d.Details = append(d.Details, fmt.Sprintf("magic[] ignored: %v", err))
		case m.SuspendCancel:
			d.Claims = append(d.Claims, Claim{SourceMagic, ConventionSeed, fmt.Sprintf("magic[] %q", src.Magic)})
		default:
			d.Details = append(d.Details, fmt.Sprintf("magic[] %q has no %q token", src.Magic, TokenSuspendCancel))
		}
	}
	if n := src.Notes; n != nil {
		switch {
		case n.SuspendCancel != 0:
			d.Claims = append(d.Claims, Claim{SourceELFNote, ConventionUpstream, fmt.Sprintf("%v = %d", NoteSuspendCancel, n.SuspendCancel)})
		case n.Has(NoteSuspendCancel):
			d.Details = append(d.Details, fmt.Sprintf("%v = 0", NoteSuspendCancel))
		default:
			d.Details = append(d.Details, fmt.Sprintf("kernel has no %v note", NoteSuspendCancel))
		}
	}
	if src.FeatureSuspend != "" {
		d.Details = append(d.Details, fmt.Sprintf("%s = %q", XenstoreFeatureSuspend, src.FeatureSuspend))
	}

	switch {
	case src.Override != 0:
		var agree, against []Claim
		for _, c := range d.Claims {
			if c.Convention == src.Override {
				agree = append(agree, c)
			} else {
				against = append(against, c)
			}
		}
		if len(against) > 0 && !src.Force {
			return Decision{}, &ConflictError{Override: src.Override, Claims: d.Claims}
		}
		d.Convention, d.Source, d.Claims, d.Overruled = src.Override, SourceOverride, agree, against
	case len(d.Claims) == 0:
		d.Convention, d.Source = ConventionNone, SourceDefault
	default:
		for _, c := range d.Claims[1:] {
			if c.Convention != d.Claims[0].Convention {
				return Decision{}, &ConflictError{Claims: d.Claims}
			}
		}
		d.Convention, d.Source = d.Claims[0].Convention, d.Claims[0].Source
	}
	d.CancelValue, _ = d.Convention.CancelValue()
	return d, nil
}
