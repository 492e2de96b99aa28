package checkpoint

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/xenckpt/xenckpt/domctl"
)

// Migration handshake. Each message is one line; the image travels between
// "ready" and "received" in chunks (a 4-byte big-endian length, then that
// many bytes; length 0 ends the image), so the receiver never reads past
// the image whatever its stream reader buffers.
//
//	receiver                         sender
//	ready              ----------->
//	                   <-----------  image chunks, 0
//	received | error:  ----------->
//	                   <-----------  go        (sender then destroys the source)
//	unpaused | error:  ----------->
const (
	msgReady    = "xenckpt migration receiver ready"
	msgReceived = "xenckpt domain received, ready to unpause"
	msgGo       = "xenckpt domain is yours, unpause it"
	msgUnpaused = "xenckpt domain unpaused"
	msgErr      = "xenckpt error: "
	maxLine     = 1024
	maxChunk    = 16 << 20
)

func writeLine(w io.Writer, s string) error {
	_, err := io.WriteString(w, s+"\n")
	return err
}

// readLine reads one line a byte at a time (never past it).
func readLine(r io.Reader) (string, error) {
	var b [1]byte
	var sb strings.Builder
	for sb.Len() < maxLine {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			if errors.Is(err, io.EOF) && sb.Len() > 0 {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		if b[0] == '\n' {
			return sb.String(), nil
		}
		sb.WriteByte(b[0])
	}
	return "", fmt.Errorf("%w: line longer than %d bytes", ErrProtocol, maxLine)
}

// expectLine reads a line and checks it is want; an error message from the
// peer becomes ErrRemote.
func expectLine(r io.Reader, want string) error {
	got, err := readLine(r)
	if err != nil {
		return fmt.Errorf("waiting for %q: %w", want, err)
	}
	if got == want {
		return nil
	}
	if msg, ok := strings.CutPrefix(got, msgErr); ok {
		return fmt.Errorf("%w: %s", ErrRemote, msg)
	}
	return fmt.Errorf("%w: got %q, want %q", ErrProtocol, got, want)
}

// chunkWriter frames the image.
type chunkWriter struct {
	w   io.Writer
	hdr [4]byte
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), maxChunk)
		binary.BigEndian.PutUint32(c.hdr[:], uint32(k))
		if _, err := c.w.Write(c.hdr[:]); err != nil {
			return n, err
		}
		m, err := c.w.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

// WriteBuffers sends bufs as one chunk with a vectored write (writev on a
// TCP connection), so page data goes from the foreign mapping to the
// socket without a copy (stream.BuffersWriter).
func (c *chunkWriter) WriteBuffers(bufs net.Buffers) (int64, error) {
	var total int
	for _, b := range bufs {
		total += len(b)
	}
	if total > maxChunk {
		var n int64
		for _, b := range bufs {
			m, err := c.Write(b)
			n += int64(m)
			if err != nil {
				return n, err
			}
		}
		return n, nil
	}
	if total == 0 {
		return 0, nil
	}
	binary.BigEndian.PutUint32(c.hdr[:], uint32(total))
	vec := append(net.Buffers{c.hdr[:]}, bufs...)
	n, err := vec.WriteTo(c.w)
	return max(n-4, 0), err
}

func (c *chunkWriter) close() error {
	binary.BigEndian.PutUint32(c.hdr[:], 0)
	_, err := c.w.Write(c.hdr[:])
	return err
}

// chunkReader unframes the image; it returns io.EOF at the terminator.
type chunkReader struct {
	r    io.Reader
	left int
	done bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for c.left == 0 {
		if c.done {
			return 0, io.EOF
		}
		var h [4]byte
		if _, err := io.ReadFull(c.r, h[:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		n := binary.BigEndian.Uint32(h[:])
		if n > maxChunk {
			return 0, fmt.Errorf("%w: chunk of %d bytes", ErrProtocol, n)
		}
		c.left = int(n)
		c.done = n == 0
	}
	n, err := c.r.Read(p[:min(len(p), c.left)])
	c.left -= n
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// drain reads to the terminator, so the next line can be read.
func (c *chunkReader) drain() error {
	_, err := io.Copy(io.Discard, c)
	return err
}

// deadliner is implemented by net.Conn and *os.File pipes.
type deadliner interface{ SetDeadline(time.Time) error }

// bindCtx makes ctx cancellation interrupt blocked reads and writes on
// conn when conn supports deadlines. The returned stop must be called.
func bindCtx(ctx context.Context, conn io.ReadWriter) (stop func()) {
	d, ok := conn.(deadliner)
	if !ok {
		return func() {}
	}
	stopc := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-ctx.Done():
			_ = d.SetDeadline(time.Unix(1, 0))
		case <-stopc:
		}
	}()
	return func() { close(stopc); <-done }
}

// ctxErr makes an I/O error caused by ctx's cancellation match ctx's error.
func ctxErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return err
}

// Migrate live-migrates (or, without opts.Live, stop-and-copy migrates)
// dom to the receiver at the other end of conn (see Receive). The source
// is destroyed only after the receiver reported a complete domain and was
// told to run it. Any failure before that point (a cut connection, an error
// from the receiver, ctx cancellation) resumes the source, which keeps
// running; the receiver destroys what it built.
//
// One window remains that no protocol closes: if the "go" message is
// written successfully but lost in transit, both copies are gone. It is
// a single small write after a long exchange; Result reports whether the
// receiver confirmed.
func (c *Controller) Migrate(ctx context.Context, dom domctl.DomID, conn io.ReadWriter, opts *SaveOptions) (*Result, error) {
	stop := bindCtx(ctx, conn)
	defer stop()
	s, err := c.run(ctx, OpMigrate, dom, opts, func(s *session) error {
		return ctxErr(ctx, s.migrate(ctx, conn))
	})
	if s == nil {
		return nil, err
	}
	return &s.res, err
}

func (s *session) migrate(ctx context.Context, conn io.ReadWriter) error {
	if err := expectLine(conn, msgReady); err != nil {
		return err
	}
	cw := &chunkWriter{w: conn}
	if err := s.image(ctx, cw); err != nil {
		return err
	}
	if err := cw.close(); err != nil {
		return fmt.Errorf("ending image: %w", err)
	}
	if err := expectLine(conn, msgReceived); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := writeLine(conn, msgGo); err != nil {
		return fmt.Errorf("sending go: %w", err)
	}
	// Committed: the receiver runs the guest now.
	s.res.PauseTime = time.Since(s.suspendAt)
	bg := context.WithoutCancel(ctx)
	var merr *multierror.Error
	if err := s.c.hv.DestroyDomain(bg, s.dom); err != nil && !isGone(err) {
		merr = multierror.Append(merr, fmt.Errorf("destroying migrated source: %w", err))
	} else {
		s.c.forget(bg, s.dom, s.susp.domPath)
	}
	s.suspended = false // never resume after go
	if err := expectLine(conn, msgUnpaused); err != nil {
		merr = multierror.Append(merr, fmt.Errorf("receiver after go: %w", err))
	}
	return merr.ErrorOrNil()
}

// Receive is the receiving end of Migrate: it announces readiness on conn,
// restores the image into a new paused domain, reports, and unpauses the
// domain only when the sender says go (or leaves that to the caller with
// opts.Paused). On any failure (a cut connection,
// a bad image, ctx cancellation, no go) the half-built domain is destroyed
// and the sender is told why when the connection still works.
func (c *Controller) Receive(ctx context.Context, conn io.ReadWriter, opts *RestoreOptions) (domctl.DomID, error) {
	stop := bindCtx(ctx, conn)
	defer stop()
	rs, committed, err := c.receive(ctx, conn, opts)
	if err != nil {
		err = ctxErr(ctx, err)
		if committed {
			// The sender has destroyed its copy: keep ours, paused.
			return rs.dom, newOpError(OpReceive, rs.dom, err)
		}
		if rs != nil {
			err = rs.abort(ctx, err)
			return 0, newOpError(OpReceive, rs.dom, err)
		}
		return 0, newOpError(OpReceive, 0, err)
	}
	return rs.dom, nil
}

func (c *Controller) receive(ctx context.Context, conn io.ReadWriter, opts *RestoreOptions) (*restorer, bool, error) {
	if err := writeLine(conn, msgReady); err != nil {
		return nil, false, fmt.Errorf("sending ready: %w", err)
	}
	cr := &chunkReader{r: conn}
	rs := c.newRestorer(cr, opts, 0)
	err := rs.readAll(ctx)
	if err == nil {
		err = cr.drain()
	}
	if err == nil {
		err = rs.finish(ctx, false)
	}
	if err != nil {
		// The sender writes the whole image before it reads our answer:
		// take the rest of it (until the end or a broken connection) so
		// the error can be delivered.
		_ = cr.drain()
		_ = writeLine(conn, msgErr+oneLine(err))
		return rs, false, err
	}
	if err := writeLine(conn, msgReceived); err != nil {
		return rs, false, fmt.Errorf("sending received: %w", err)
	}
	if err := expectLine(conn, msgGo); err != nil {
		return rs, false, err
	}
	// Committed: the sender destroys its copy now. (With opts.Paused the
	// caller unpauses it.)
	if rs.o.Paused {
		_ = writeLine(conn, msgUnpaused)
		return rs, true, nil
	}
	if err := c.hv.Unpause(context.WithoutCancel(ctx), rs.dom); err != nil {
		_ = writeLine(conn, msgErr+oneLine(err))
		return rs, true, fmt.Errorf("unpausing received domain: %w", err)
	}
	_ = writeLine(conn, msgUnpaused)
	return rs, true, nil
}

func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
