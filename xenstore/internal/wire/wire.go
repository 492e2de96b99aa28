package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"
)

// Type is xsd_sockmsg_type.
type Type uint32

// The message types of xs_wire.h. 20 (XS_RESTRICT) was removed upstream.
const (
	Control            Type = 0
	Directory          Type = 1
	Read               Type = 2
	GetPerms           Type = 3
	Watch              Type = 4
	Unwatch            Type = 5
	TransactionStart   Type = 6
	TransactionEnd     Type = 7
	Introduce          Type = 8
	Release            Type = 9
	GetDomainPath      Type = 10
	Write              Type = 11
	Mkdir              Type = 12
	Rm                 Type = 13
	SetPerms           Type = 14
	WatchEvent         Type = 15
	Error              Type = 16
	IsDomainIntroduced Type = 17
	Resume             Type = 18
	SetTarget          Type = 19
	ResetWatches       Type = 21
	DirectoryPart      Type = 22
	TypeCount          Type = 23
	Invalid            Type = 0xffff
)

var typeNames = map[Type]string{
	Control: "CONTROL", Directory: "DIRECTORY", Read: "READ", GetPerms: "GET_PERMS",
	Watch: "WATCH", Unwatch: "UNWATCH", TransactionStart: "TRANSACTION_START",
	TransactionEnd: "TRANSACTION_END", Introduce: "INTRODUCE", Release: "RELEASE",
	GetDomainPath: "GET_DOMAIN_PATH", Write: "WRITE", Mkdir: "MKDIR", Rm: "RM",
	SetPerms: "SET_PERMS", WatchEvent: "WATCH_EVENT", Error: "ERROR",
	IsDomainIntroduced: "IS_DOMAIN_INTRODUCED", Resume: "RESUME", SetTarget: "SET_TARGET",
	ResetWatches: "RESET_WATCHES", DirectoryPart: "DIRECTORY_PART",
}

// String returns the xs_wire.h name without the XS_ prefix.
func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return "TYPE_" + strconv.FormatUint(uint64(t), 10)
}

// Protocol limits from xs_wire.h.
const (
	HeaderSize = 16
	// PayloadMax is XENSTORE_PAYLOAD_MAX: the largest request payload,
	// including every NUL. cxenstored closes the connection past it.
	PayloadMax = 4096
	// AbsPathMax is XENSTORE_ABS_PATH_MAX, RelPathMax XENSTORE_REL_PATH_MAX.
	AbsPathMax = 3072
	RelPathMax = 2048
)

// Errors returned by the decoder.
var (
	// ErrTooLarge means a frame's length exceeds the caller's limit. The
	// payload was not read; the stream is no longer in sync.
	ErrTooLarge = errors.New("xenstore frame too large")
	// ErrMalformed means a payload does not have the shape its type needs.
	ErrMalformed = errors.New("malformed xenstore payload")
)

// Msg is one frame.
type Msg struct {
	Type    Type
	ReqID   uint32
	TxID    uint32
	Payload []byte
}

// AppendBinary appends the encoded frame to b.
func (m *Msg) AppendBinary(b []byte) ([]byte, error) {
	if uint64(len(m.Payload)) > 0xffffffff {
		return b, ErrTooLarge
	}
	b = binary.NativeEndian.AppendUint32(b, uint32(m.Type))
	b = binary.NativeEndian.AppendUint32(b, m.ReqID)
	b = binary.NativeEndian.AppendUint32(b, m.TxID)
	b = binary.NativeEndian.AppendUint32(b, uint32(len(m.Payload)))
	return append(b, m.Payload...), nil
}

// MarshalBinary encodes the frame.
func (m *Msg) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, HeaderSize+len(m.Payload)))
}

// UnmarshalBinary decodes exactly one frame from b; trailing bytes are an error.
func (m *Msg) UnmarshalBinary(b []byte) error {
	if len(b) < HeaderSize {
		return fmt.Errorf("%w: %d-byte frame is shorter than the header", ErrMalformed, len(b))
	}
	n := binary.NativeEndian.Uint32(b[12:16])
	if uint64(n) != uint64(len(b)-HeaderSize) {
		return fmt.Errorf("%w: header says %d payload bytes, frame has %d", ErrMalformed, n, len(b)-HeaderSize)
	}
	m.Type = Type(binary.NativeEndian.Uint32(b[0:4]))
	m.ReqID = binary.NativeEndian.Uint32(b[4:8])
	m.TxID = binary.NativeEndian.Uint32(b[8:12])
	m.Payload = make([]byte, len(b)-HeaderSize)
	copy(m.Payload, b[HeaderSize:])
	return nil
}

// WriteMsg writes m as one Write call, so concurrent writers serialized by
// a mutex never interleave frames.
func WriteMsg(w io.Writer, m *Msg) error {
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// ReadMsg reads one frame. A payload longer than limit is rejected with
// ErrTooLarge before anything is allocated for it. A clean EOF before the
// header returns io.EOF; EOF inside a frame returns io.ErrUnexpectedEOF.
func ReadMsg(r io.Reader, limit int) (*Msg, error) {
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.NativeEndian.Uint32(hdr[12:16])
	if limit < 0 || uint64(n) > uint64(limit) {
		return nil, fmt.Errorf("%w: %d-byte payload, limit %d", ErrTooLarge, n, limit)
	}
	m := &Msg{
		Type:    Type(binary.NativeEndian.Uint32(hdr[0:4])),
		ReqID:   binary.NativeEndian.Uint32(hdr[4:8]),
		TxID:    binary.NativeEndian.Uint32(hdr[8:12]),
		Payload: make([]byte, n),
	}
	if _, err := io.ReadFull(r, m.Payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return m, nil
}

// Strings builds a payload of NUL-terminated strings.
func Strings(s ...string) []byte {
	n := 0
	for _, x := range s {
		n += len(x) + 1
	}
	b := make([]byte, 0, n)
	for _, x := range s {
		b = append(b, x...)
		b = append(b, 0)
	}
	return b
}

// SplitStrings splits a payload of NUL-terminated strings. A final string
// without its NUL is returned too (daemons always terminate; READ replies
// are not lists). An empty payload yields no strings.
func SplitStrings(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return strings.Split(string(b), "\x00")
}

// CString returns the payload up to its first NUL; ok is false when there
// is no NUL.
func CString(b []byte) (s string, ok bool) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), true
		}
	}
	return string(b), false
}

// xsdErrors is the xsd_errors table of xs_wire.h, in its order.
var xsdErrors = []struct {
	errno syscall.Errno
	name  string
}{
	{syscall.EINVAL, "EINVAL"}, {syscall.EACCES, "EACCES"}, {syscall.EEXIST, "EEXIST"},
	{syscall.EISDIR, "EISDIR"}, {syscall.ENOENT, "ENOENT"}, {syscall.ENOMEM, "ENOMEM"},
	{syscall.ENOSPC, "ENOSPC"}, {syscall.EIO, "EIO"}, {syscall.ENOTEMPTY, "ENOTEMPTY"},
	{syscall.ENOSYS, "ENOSYS"}, {syscall.EROFS, "EROFS"}, {syscall.EBUSY, "EBUSY"},
	{syscall.EAGAIN, "EAGAIN"}, {syscall.EISCONN, "EISCONN"}, {syscall.E2BIG, "E2BIG"},
	{syscall.EPERM, "EPERM"},
}

// Errno maps an XS_ERROR name ("ENOENT") to its errno; ok is false for a
// name outside the xsd_errors table.
func Errno(name string) (errno syscall.Errno, ok bool) {
	for _, e := range xsdErrors {
		if e.name == name {
			return e.errno, true
		}
	}
	return 0, false
}

// ErrnoName maps an errno to its XS_ERROR name; errnos outside the table
// become "EINVAL", as cxenstored's send_error does.
func ErrnoName(errno syscall.Errno) string {
	for _, e := range xsdErrors {
		if e.errno == errno {
			return e.name
		}
	}
	return "EINVAL"
}

// validPathChars is the character set of cxenstored's is_valid_nodename.
func validPathChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '/' || c == '_' || c == '@'
}

// CheckPath reports whether p is a node path both daemons accept: only
// [A-Za-z0-9_@/-], no "//", no trailing "/" (except "/" itself), not
// empty, at most AbsPathMax bytes when absolute and RelPathMax when
// relative. It returns syscall.EINVAL otherwise, the daemons' answer.
func CheckPath(p string) error {
	if p == "" {
		return syscall.EINVAL
	}
	limit := RelPathMax
	if p[0] == '/' {
		limit = AbsPathMax
	}
	if len(p) > limit {
		return syscall.EINVAL
	}
	if p == "/" {
		return nil
	}
	if p[len(p)-1] == '/' || strings.Contains(p, "//") {
		return syscall.EINVAL
	}
	for i := 0; i < len(p); i++ {
		if !validPathChar(p[i]) {
			return syscall.EINVAL
		}
	}
	return nil
}

// CheckWatchPath is CheckPath, except that special paths ("@" followed by
// anything up to RelPathMax bytes) are allowed as watch targets.
func CheckWatchPath(p string) error {
	if strings.HasPrefix(p, "@") {
		if len(p) > RelPathMax {
			return syscall.EINVAL
		}
		return nil
	}
	return CheckPath(p)
}
