package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func le32(v ...uint32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.NativeEndian.AppendUint32(b, x)
	}
	return b
}

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  Msg
		want []byte
	}{
		{"read", Msg{Type: Read, ReqID: 7, Payload: []byte("/a\x00")}, append(le32(2, 7, 0, 3), "/a\x00"...)},
		{"txend", Msg{Type: TransactionEnd, ReqID: 1, TxID: 9, Payload: []byte("T\x00")}, append(le32(7, 1, 9, 2), "T\x00"...)},
		{"error", Msg{Type: Error, ReqID: 3, Payload: []byte("ENOENT\x00")}, append(le32(16, 3, 0, 7), "ENOENT\x00"...)},
		{"empty", Msg{Type: Directory, Payload: []byte{}}, le32(1, 0, 0, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.msg.MarshalBinary()
			require.NoError(t, err)
			assert.Equal(t, tc.want, b)
			var m Msg
			require.NoError(t, m.UnmarshalBinary(b))
			assert.Equal(t, tc.msg, m)
			got, err := ReadMsg(bytes.NewReader(b), PayloadMax)
			require.NoError(t, err)
			assert.Equal(t, tc.msg, *got)
		})
	}
}

func TestReadMsgErrors(t *testing.T) {
	_, err := ReadMsg(bytes.NewReader(nil), PayloadMax)
	assert.ErrorIs(t, err, io.EOF)
	_, err = ReadMsg(bytes.NewReader(le32(2, 0)), PayloadMax)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	_, err = ReadMsg(bytes.NewReader(append(le32(2, 0, 0, 5), "ab"...)), PayloadMax)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	_, err = ReadMsg(bytes.NewReader(le32(2, 0, 0, PayloadMax+1)), PayloadMax)
	assert.ErrorIs(t, err, ErrTooLarge)
	_, err = ReadMsg(bytes.NewReader(le32(2, 0, 0, 0xffffffff)), 1<<20)
	assert.ErrorIs(t, err, ErrTooLarge, "no 4 GiB allocation")
	var m Msg
	assert.ErrorIs(t, m.UnmarshalBinary(le32(2, 0, 0, 1)), ErrMalformed)
	assert.ErrorIs(t, m.UnmarshalBinary(le32(2, 0)), ErrMalformed)
}

func TestErrnoTable(t *testing.T) {
	for _, name := range []string{"EINVAL", "EACCES", "EEXIST", "EISDIR", "ENOENT", "ENOMEM", "ENOSPC", "EIO",
		"ENOTEMPTY", "ENOSYS", "EROFS", "EBUSY", "EAGAIN", "EISCONN", "E2BIG", "EPERM"} {
		e, ok := Errno(name)
		require.True(t, ok, name)
		assert.Equal(t, name, ErrnoName(e))
	}
	_, ok := Errno("EWHATEVER")
	assert.False(t, ok)
	assert.Equal(t, "EINVAL", ErrnoName(syscall.EXDEV))
}

func TestCheckPath(t *testing.T) {
	good := []string{"/", "/a", "/local/domain/0/name", "rel/x", "@x", "/a-b_c@d/E9"}
	for _, p := range good {
		assert.NoError(t, CheckPath(p), p)
	}
	bad := []string{"", "/a/", "a//b", "/a.b", "/a b", "/é", "/" + string(bytes.Repeat([]byte("a"), AbsPathMax)),
		string(bytes.Repeat([]byte("a"), RelPathMax+1))}
	for _, p := range bad {
		assert.ErrorIs(t, CheckPath(p), syscall.EINVAL, "%.30q", p)
	}
	assert.NoError(t, CheckPath("/"+string(bytes.Repeat([]byte("a"), AbsPathMax-1))))
	assert.NoError(t, CheckWatchPath("@releaseDomain"))
	assert.ErrorIs(t, CheckWatchPath("/a/"), syscall.EINVAL)
}

func TestStrings(t *testing.T) {
	assert.Equal(t, []byte("a\x00bc\x00\x00"), Strings("a", "bc", ""))
	assert.Equal(t, []string{"a", "bc", ""}, SplitStrings([]byte("a\x00bc\x00\x00")))
	assert.Nil(t, SplitStrings(nil))
	assert.Equal(t, []string{"x"}, SplitStrings([]byte("x")))
	s, ok := CString([]byte("ab\x00cd"))
	assert.True(t, ok)
	assert.Equal(t, "ab", s)
	_, ok = CString([]byte("ab"))
	assert.False(t, ok)
	assert.Equal(t, "WATCH_EVENT", WatchEvent.String())
	assert.Equal(t, "TYPE_20", Type(20).String())
}

// FuzzReadMsg checks the decoder: no panic, nil message exactly when
// there is an error, the payload never beyond the limit, and
// decode→encode reproducing the input bytes.
func FuzzReadMsg(f *testing.F) {
	for _, m := range []Msg{
		{Type: Read, ReqID: 1, Payload: []byte("/a\x00")},
		{Type: WatchEvent, Payload: []byte("/a\x00tok\x00")},
		{Type: Error, ReqID: 2, TxID: 3, Payload: []byte("EAGAIN\x00")},
		{Type: Directory},
	} {
		b, _ := m.MarshalBinary()
		f.Add(b)
	}
	f.Add(le32(2, 0, 0, 0xffffffff))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ReadMsg(bytes.NewReader(b), PayloadMax)
		if (m == nil) == (err == nil) {
			t.Fatalf("message %v with error %v", m, err)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(m.Payload) > PayloadMax {
			t.Fatalf("payload of %d bytes", len(m.Payload))
		}
		enc, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, b[:len(enc)]) {
			t.Fatalf("re-encoding differs")
		}
		var m2 Msg
		if err := m2.UnmarshalBinary(enc); err != nil {
			t.Fatal(err)
		}
		if m2.Type != m.Type || m2.ReqID != m.ReqID || m2.TxID != m.TxID || !bytes.Equal(m2.Payload, m.Payload) {
			t.Fatalf("round trip differs")
		}
	})
}

func BenchmarkCodec(b *testing.B) {
	for _, size := range []int{16, 256, 4096} {
		m := &Msg{Type: Write, ReqID: 1, Payload: make([]byte, size)}
		enc, _ := m.MarshalBinary()
		b.Run("encode/"+strconv.Itoa(size), func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, len(enc))
			for b.Loop() {
				buf, _ = m.AppendBinary(buf[:0])
			}
		})
		b.Run("decode/"+strconv.Itoa(size), func(b *testing.B) {
			b.ReportAllocs()
			r := bytes.NewReader(enc)
			for b.Loop() {
				r.Reset(enc)
				if _, err := ReadMsg(r, PayloadMax); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
