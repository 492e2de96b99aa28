package magic_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/magic"
)

var (
	upstreamNotes = &magic.Notes{SuspendCancel: 1, Raw: []magic.Note{{Type: magic.NoteSuspendCancel, Desc: []byte{1, 0, 0, 0}}}}
	zeroNote      = &magic.Notes{Raw: []magic.Note{{Type: magic.NoteSuspendCancel, Desc: []byte{0, 0, 0, 0}}}}
)

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name   string
		src    magic.Sources
		conv   magic.Convention
		cancel uint64
		source magic.Source
		claims int
		over   int
	}{
		{"nothing", magic.Sources{}, magic.ConventionNone, 0, magic.SourceDefault, 0, 0},
		{"plain-magic", magic.Sources{Magic: "xen-3.0-x86_64", FeatureSuspend: "1"}, magic.ConventionNone, 0, magic.SourceDefault, 0, 0},
		{"seed-magic", magic.Sources{Magic: "xen-3.0-x86_64 sc"}, magic.ConventionSeed, 0, magic.SourceMagic, 1, 0},
		{"linux-note", magic.Sources{Magic: "xen-3.0-x86_64", Notes: upstreamNotes}, magic.ConventionUpstream, 1, magic.SourceELFNote, 1, 0},
		{"note-without-raw", magic.Sources{Notes: &magic.Notes{SuspendCancel: 1}}, magic.ConventionUpstream, 1, magic.SourceELFNote, 1, 0},
		{"zero-note", magic.Sources{Notes: zeroNote}, magic.ConventionNone, 0, magic.SourceDefault, 0, 0},
		{"zero-note-and-seed", magic.Sources{Notes: zeroNote, Magic: "xen-3.0-x86_32p sc"}, magic.ConventionSeed, 0, magic.SourceMagic, 1, 0},
		{"xenstore-upstream", magic.Sources{FeatureSuspendCancel: "1", Notes: upstreamNotes}, magic.ConventionUpstream, 1, magic.SourceXenstore, 2, 0},
		{"xenstore-seed", magic.Sources{FeatureSuspendCancel: "seed", Magic: "xen-3.0-x86_64 sc"}, magic.ConventionSeed, 0, magic.SourceXenstore, 2, 0},
		{"xenstore-none", magic.Sources{FeatureSuspendCancel: "0"}, magic.ConventionNone, 0, magic.SourceXenstore, 1, 0},
		{"garbage-magic-ignored", magic.Sources{Magic: "\xff\xfe junk sc"}, magic.ConventionNone, 0, magic.SourceDefault, 0, 0},
		{"override-alone", magic.Sources{Override: magic.ConventionUpstream}, magic.ConventionUpstream, 1, magic.SourceOverride, 0, 0},
		{"override-agrees", magic.Sources{Override: magic.ConventionSeed, Magic: "xen-3.0-x86_64 sc"}, magic.ConventionSeed, 0, magic.SourceOverride, 1, 0},
		{"override-none", magic.Sources{Override: magic.ConventionNone}, magic.ConventionNone, 0, magic.SourceOverride, 0, 0},
		{"override-forced", magic.Sources{Override: magic.ConventionUpstream, Force: true, Magic: "xen-3.0-x86_64 sc", Notes: upstreamNotes},
			magic.ConventionUpstream, 1, magic.SourceOverride, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := magic.Negotiate(tt.src)
			require.NoError(t, err)
			assert.Equal(t, tt.conv, d.Convention)
			assert.Equal(t, tt.cancel, d.CancelValue)
			assert.Equal(t, tt.source, d.Source)
			assert.Len(t, d.Claims, tt.claims)
			assert.Len(t, d.Overruled, tt.over)
			assert.NotEmpty(t, d.String())
		})
	}
}

func TestNegotiateDetails(t *testing.T) {
	d, err := magic.Negotiate(magic.Sources{Magic: "garbage", FeatureSuspend: "1", Notes: &magic.Notes{}})
	require.NoError(t, err)
	assert.Equal(t, magic.ConventionNone, d.Convention)
	require.Len(t, d.Details, 3)
	assert.Contains(t, d.Details[0], "magic[] ignored")
	assert.Contains(t, d.Details[1], "no XEN_ELFNOTE_SUSPEND_CANCEL note")
	assert.Contains(t, d.Details[2], "control/feature-suspend")
}

func TestNegotiateConflicts(t *testing.T) {
	tests := []struct {
		name   string
		src    magic.Sources
		claims []magic.Source
	}{
		{"seed-vs-note", magic.Sources{Magic: "xen-3.0-x86_64 sc", Notes: upstreamNotes}, []magic.Source{magic.SourceMagic, magic.SourceELFNote}},
		{"xenstore-none-vs-note", magic.Sources{FeatureSuspendCancel: "0", Notes: upstreamNotes}, []magic.Source{magic.SourceXenstore, magic.SourceELFNote}},
		{"xenstore-seed-vs-note", magic.Sources{FeatureSuspendCancel: "seed", Notes: upstreamNotes}, []magic.Source{magic.SourceXenstore, magic.SourceELFNote}},
		{"override-vs-magic", magic.Sources{Override: magic.ConventionUpstream, Magic: "xen-3.0-x86_64 sc"}, []magic.Source{magic.SourceMagic}},
		{"override-none-vs-note", magic.Sources{Override: magic.ConventionNone, Notes: upstreamNotes}, []magic.Source{magic.SourceELFNote}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := magic.Negotiate(tt.src)
			require.Error(t, err)
			assert.Equal(t, magic.Decision{}, d)
			assert.ErrorIs(t, err, magic.ErrConflict)
			var ce *magic.ConflictError
			require.True(t, errors.As(err, &ce))
			assert.Equal(t, tt.src.Override, ce.Override)
			var got []magic.Source
			for _, c := range ce.Claims {
				got = append(got, c.Source)
			}
			assert.Equal(t, tt.claims, got)
			assert.Contains(t, err.Error(), "says")
		})
	}
}

func TestNegotiateBadEvidence(t *testing.T) {
	_, err := magic.Negotiate(magic.Sources{FeatureSuspendCancel: "yes"})
	assert.ErrorIs(t, err, magic.ErrBadEvidence)
	_, err = magic.Negotiate(magic.Sources{Override: magic.Convention(9)})
	assert.ErrorIs(t, err, magic.ErrBadEvidence)
}

func TestConventionValues(t *testing.T) {
	v, ok := magic.ConventionSeed.CancelValue()
	assert.True(t, ok)
	assert.Equal(t, uint64(0), v)
	v, ok = magic.ConventionUpstream.CancelValue()
	assert.True(t, ok)
	assert.Equal(t, uint64(1), v)
	_, ok = magic.ConventionNone.CancelValue()
	assert.False(t, ok)
	_, ok = magic.Convention(0).CancelValue()
	assert.False(t, ok)
	v, ok = magic.ConventionSeed.RestoreValue()
	assert.True(t, ok)
	assert.Equal(t, uint64(1), v)
	v, ok = magic.ConventionUpstream.RestoreValue()
	assert.True(t, ok)
	assert.Equal(t, uint64(0), v)
	_, ok = magic.Convention(0).RestoreValue()
	assert.False(t, ok)
	assert.Equal(t, "unspecified", magic.Convention(0).String())
	assert.Equal(t, "seed", magic.ConventionSeed.String())
	assert.Equal(t, "Convention(7)", magic.Convention(7).String())
	assert.Equal(t, "elf-note", magic.SourceELFNote.String())
	assert.Equal(t, "Source(9)", magic.Source(9).String())
}

func FuzzNegotiate(f *testing.F) {
	f.Add("xen-3.0-x86_64 sc", uint64(0), true, "", "1", 0, false)
	f.Add("xen-3.0-x86_64", uint64(1), true, "seed", "", 3, true)
	f.Fuzz(func(t *testing.T, m string, note uint64, hasNote bool, fsc, fs string, override int, force bool) {
		src := magic.Sources{Magic: m, FeatureSuspendCancel: fsc, FeatureSuspend: fs, Override: magic.Convention(override), Force: force}
		if hasNote {
			src.Notes = &magic.Notes{SuspendCancel: note}
		}
		d, err := magic.Negotiate(src)
		if err != nil {
			assert.Equal(t, magic.Decision{}, d)
			if !errors.Is(err, magic.ErrConflict) && !errors.Is(err, magic.ErrBadEvidence) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if d.Convention < magic.ConventionNone || d.Convention > magic.ConventionUpstream {
			t.Fatalf("invalid convention %v", d.Convention)
		}
		if !force {
			for _, c := range d.Claims {
				if c.Convention != d.Convention {
					t.Fatalf("claim %v disagrees with %v without Force", c, d.Convention)
				}
			}
		}
		if v, ok := d.Convention.CancelValue(); ok && v != d.CancelValue {
			t.Fatalf("cancel value %d for %v", d.CancelValue, d.Convention)
		}
	})
}
