package xenstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
	"syscall"

	"github.com/xenckpt/xenckpt/xenstore/internal/wire"
)

// Config tunes a Client. A nil *Config, and every zero field, means the
// documented default.
type Config struct {
	// MaxTransactionAttempts is how many times Transaction runs its
	// function before giving up on repeated EAGAIN conflicts.
	// Zero means 16.
	MaxTransactionAttempts int
	// MaxReplySize is the largest reply payload accepted, in bytes.
	// oxenstored sends directory listings beyond XENSTORE_PAYLOAD_MAX, so
	// the limit is higher than 4096. Zero means 1 MiB.
	MaxReplySize int
	// PreemptingWaits keeps the reader an ordinary thread while several
	// calls are in flight on a unix socket; by default it then waits for
	// their replies as SCHED_BATCH (see Client). Set it where a reply
	// must be handled at once even while another task keeps the CPU busy.
	PreemptingWaits bool
}

func (c *Config) maxAttempts() int {
	if c == nil || c.MaxTransactionAttempts <= 0 {
		return 16
	}
	return c.MaxTransactionAttempts
}

func (c *Config) maxReply() int {
	if c == nil || c.MaxReplySize <= 0 {
		return 1 << 20
	}
	return c.MaxReplySize
}

// Client is a connection to xenstored.
//
// A Client is safe for concurrent use. Requests from many goroutines are
// pipelined on the one connection: each gets its own req_id, and a single
// reader goroutine routes replies back by req_id and watch events to their
// Watch. Every call takes a ctx; cancelling it stops the wait, but the
// request has already been sent and the daemon still carries it out (its
// late reply is dropped).
//
// One goroutine at a time holds the reader role. The reader goroutine
// takes it only while something is expected: a reply to a call in
// flight, or events for a registered watch; otherwise it waits for the
// next call to wake it, instead of sitting in read(2).
//
// The direct path: on a unix socket (DialSocket, Dial), a call made
// while no other call is in flight, no watch is registered and no call
// overlapped another in the last 64 calls takes the reader role itself.
// It writes its request and reads its reply with raw syscalls, as
// libxenstore does: two syscalls, no goroutine switch, and no thread
// handoff by the scheduler. The raw read is bounded by a 2 ms socket
// timeout; past it, or when other calls or watches appear meanwhile,
// the caller routes what it read and hands the role to the reader
// goroutine (see docs/bench-xenstore.md).
//
// Batching, on a unix socket: while several calls are in flight, the
// requests made while the reader goroutine hands out replies are queued
// and written together in one write(2) when it resumes, and the reader
// waits for their replies with its thread in SCHED_BATCH, which does not
// preempt the running task when a reply wakes it (Linux; the thread's
// policy is restored after the wait, and only an ordinary SCHED_OTHER
// thread is changed). With the daemon on the same CPU, it then answers
// the whole batch before the reader runs, instead of being interrupted
// after every reply; on an idle CPU the woken reader runs at once either
// way. Config.PreemptingWaits turns the SCHED_BATCH wait off. A lone
// caller is not affected.
//
// Through /dev/xen/xenbus one request at a time is in flight (see
// DialXenbus).
type Client struct {
	rwc io.ReadWriteCloser
	cfg Config
	rd  frameReader // used by the reader role's holder

	direct directConn    // rwc, when it offers the direct path
	dsrc   io.Reader     // directReader{direct}
	msrc   io.Reader     // what the reader reads while several calls are in flight
	kslot  chan struct{} // rwc is the xenbus device (see kernelConn): full while a request is in flight
	maxReq int           // largest request payload rwc accepts

	chans sync.Pool // of chan *wire.Msg: recycled reply channels

	wmu  sync.Mutex // serializes frame writes
	wbuf []byte     // frame being written, under wmu

	mu        sync.Mutex
	nextReq   uint32
	pending   map[uint32]chan *wire.Msg
	watches   map[string]*Watch // by token
	nextToken uint64
	shared    int           // calls left before the direct path is tried again
	yielding  bool          // the reader goroutine yields, holding the role
	stolen    bool          // a direct caller took the role while it yielded
	err       error         // why the connection stopped; set once, before done closes
	closing   bool          // Close was called
	shut      bool          // the connection was closed (Close, or a failed write)
	reading   bool          // the reader reads, or closeConn claimed the connection
	kick      chan struct{} // wakes the reader
	obuf      []byte        // frames queued for the yielding reader to write
	ospare    []byte        // obuf's spare buffer, for the batch after next

	done chan struct{} // closed when the connection has stopped
}

// NewClient starts a Client on rwc, which carries xsd_sockmsg frames: a
// unix socket to xenstored, /dev/xen/xenbus, or an in-memory connection
// to xenstoretest. The Client owns rwc and closes it in Close.
func NewClient(rwc io.ReadWriteCloser, cfg *Config) *Client {
	c := &Client{
		rwc:     rwc,
		pending: make(map[uint32]chan *wire.Msg),
		watches: make(map[string]*Watch),
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	c.chans.New = func() any { return make(chan *wire.Msg, 1) }
	if cfg != nil {
		c.cfg = *cfg
	}
	c.msrc = rwc
	if d, ok := rwc.(directConn); ok {
		c.direct, c.dsrc = d, directReader{d}
		if !c.cfg.PreemptingWaits {
			c.msrc = manyReader{d}
		}
	}
	c.maxReq = wire.PayloadMax
	if k, ok := rwc.(kernelConn); ok {
		c.maxReq = k.maxPayload()
		c.kslot = make(chan struct{}, 1)
	}
	go c.background()
	return c
}

// Close closes the connection. Calls in flight and later calls return an
// error wrapping net.ErrClosed; every Watch's channel is closed, dropping
// events not yet received.
func (c *Client) Close() error {
	c.mu.Lock()
	already := c.closing
	c.closing = true
	c.mu.Unlock()
	if already {
		<-c.done
		return nil
	}
	return c.closeConn()
}

// closeConn closes the connection and waits until it has stopped. A
// reading reader notices the closed connection itself; when it is idle,
// reading is claimed here so that it does not start, and the Client is
// stopped directly.
func (c *Client) closeConn() error {
	c.mu.Lock()
	idle := !c.reading
	c.reading = true
	c.shut = true
	c.mu.Unlock()
	err := c.rwc.Close()
	if idle {
		c.stop(io.EOF)
	}
	<-c.done
	return err
}

// stop ends the Client after the connection failed with cause (or was
// closed): it records the error every later call returns, releases
// waiting callers and ends every Watch. It runs once; later calls do
// nothing.
func (c *Client) stop(cause error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	closing := c.closing
	if closing {
		c.err = fmt.Errorf("xenstore client closed: %w", net.ErrClosed)
	} else {
		c.err = fmt.Errorf("xenstore connection lost: %w: %w", net.ErrClosed, cause)
	}
	watches := c.watches
	c.watches = map[string]*Watch{}
	c.pending = map[uint32]chan *wire.Msg{}
	c.mu.Unlock()
	close(c.done)
	if !closing {
		c.rwc.Close()
	}
	for _, w := range watches {
		w.shutdown(c.err)
		if closing {
			w.drop() // the caller closed the Client: nobody waits for the rest
		}
	}
}

// background is the reader. A call wakes it when it is idle; it then
// reads until no call is in flight and no watch registered.
func (c *Client) background() {
	for {
		select {
		case <-c.kick:
		case <-c.done:
			return
		}
		var src io.Reader = c.rwc
		for {
			routed, err := c.readOne(src)
			if err != nil {
				c.stop(err)
				return
			}
			c.mu.Lock()
			if routed && !c.rd.buffered() {
				// Let the woken caller run on this thread now,
				// instead of waiting for another thread to steal
				// it while this one blocks in read(2). Its next
				// call finds the reader busy, and may take the
				// role over for the direct path (stolen); calls
				// sharing the Client queue their requests for
				// the write below.
				c.yielding = true
				c.mu.Unlock()
				runtime.Gosched()
				c.mu.Lock()
				c.yielding = false
				if err := c.flushQueued(); err != nil {
					c.mu.Unlock()
					c.stop(err)
					return
				}
				if c.stolen {
					c.stolen = false
					c.mu.Unlock()
					break
				}
			}
			if len(c.pending) > 0 || len(c.watches) > 0 {
				src = c.rwc
				if len(c.pending) > 1 {
					src = c.msrc
				}
				c.mu.Unlock()
				continue
			}
			stop := c.release()
			c.mu.Unlock()
			if stop {
				c.stop(io.EOF)
				return
			}
			break
		}
	}
}

// release makes the reader idle; c.mu is held. It returns true when the
// connection was closed meanwhile: the reader must then stop the Client,
// since closeConn counts on it to do so.
func (c *Client) release() bool {
	if c.shut {
		return true
	}
	c.reading = false
	return false
}

// flushQueued writes the frames queued while the reader yielded in one
// write(2); c.mu is held, and released meanwhile.
func (c *Client) flushQueued() error {
	if len(c.obuf) == 0 {
		return nil
	}
	batch := c.obuf
	c.obuf, c.ospare = c.ospare[:0], nil
	c.mu.Unlock()
	spare, err := c.writeBatch(batch)
	c.mu.Lock()
	c.ospare = spare
	return err
}

// writeBatch writes batch for the reader, which never waits to write:
// what the socket does not take at once, or all of it while another
// write is under way, is written by a goroutine of its own, so that the
// reader goes on reading replies (a daemon may wait for those to be read
// before it reads more requests). It returns batch emptied for reuse
// when it was written here.
func (c *Client) writeBatch(batch []byte) ([]byte, error) {
	if !c.wmu.TryLock() {
		go c.writeRest(batch, false)
		return nil, nil
	}
	n, err := c.direct.writeNow(batch)
	if err == nil && n < len(batch) {
		go c.writeRest(batch[n:], true)
		return nil, nil
	}
	c.wmu.Unlock()
	if err != nil || cap(batch) > maxQueued {
		return nil, err
	}
	return batch[:0], nil
}

// writeRest writes the rest of a batch, waiting as long as needed; held
// tells whether the caller holds the write mutex for it.
func (c *Client) writeRest(rest []byte, held bool) {
	if !held {
		c.wmu.Lock()
	}
	_, err := c.rwc.Write(rest)
	c.wmu.Unlock()
	if err != nil {
		c.closeConn() // the stream is unusable, as after any failed write
	}
}

// maxQueued bounds the bytes of frames queued for one batched write.
const maxQueued = 64 << 10

// readOne reads one frame from src, scheduler-aware, and routes it;
// routed reports whether a call got its reply. (Reading
// here with direct syscalls was tried: it keeps the other callers from
// running while the reader blocks, so the daemon gets smaller batches
// and pipelined calls cost more CPU on one CPU.)
func (c *Client) readOne(src io.Reader) (routed bool, err error) {
	m, err := c.rd.next(src, c.cfg.maxReply())
	if err != nil {
		return false, err
	}
	return c.route(m), nil
}

// route delivers a frame: a watch event to its Watch, a reply to the call
// waiting for it; a late reply to a cancelled call is dropped. It reports
// whether a call was handed its reply.
func (c *Client) route(m *wire.Msg) bool {
	if m.Type == wire.WatchEvent {
		c.dispatchEvent(m)
		return false
	}
	if c.kslot != nil {
		c.kfree() // the one request in flight is answered
	}
	c.mu.Lock()
	ch, ok := c.pending[m.ReqID]
	if ok {
		delete(c.pending, m.ReqID)
	}
	c.mu.Unlock()
	if ok {
		ch <- m // buffered, never blocks
	}
	return ok
}

// readDirect is the direct path's read: the caller holds the reader role
// and reads, with raw syscalls, until its own reply (on ch) arrives,
// routing whatever else comes. Then it passes the role on: to the reader
// goroutine if other calls or watches need it, else back to idle. It
// returns false, the role handed to the reader goroutine, when the daemon
// is slow (the caller then waits on ch like any call), and false after
// stopping the Client when the connection failed.
func (c *Client) readDirect(ch chan *wire.Msg) (*wire.Msg, bool) {
	// Let runnable goroutines go first: on one CPU, callers sharing the
	// Client then queue their requests behind this one, and the daemon
	// answers them in one go, instead of each waiting for the last.
	runtime.Gosched()
	for {
		m, err := c.rd.next(c.dsrc, c.cfg.maxReply())
		if errors.Is(err, errDirectSlow) {
			c.mu.Lock()
			c.kick <- struct{}{} // the role stays taken: now the reader's
			// A slow daemon (or one in this process, needing the
			// thread this call holds): the next calls wait through
			// the reader goroutine.
			c.shared = sharedCalls
			c.mu.Unlock()
			return nil, false
		}
		if err != nil {
			c.stop(err)
			return nil, false
		}
		c.route(m)
		select {
		case r := <-ch:
			c.mu.Lock()
			stop := false
			if len(c.pending) > 0 || len(c.watches) > 0 {
				c.kick <- struct{}{}
			} else {
				stop = c.release()
			}
			c.mu.Unlock()
			if stop {
				c.stop(io.EOF)
			}
			return r, true
		default:
		}
	}
}

func (c *Client) dispatchEvent(m *wire.Msg) {
	parts := wire.SplitStrings(m.Payload)
	if len(parts) < 2 {
		return
	}
	c.mu.Lock()
	w := c.watches[parts[1]]
	c.mu.Unlock()
	if w != nil {
		w.deliver(Event{Path: parts[0], Token: parts[1]})
	}
}

// call sends one request and waits for its reply. An XS_ERROR reply
// becomes its syscall.Errno.
func (c *Client) call(ctx context.Context, t wire.Type, tx uint32, payload []byte) ([]byte, error) {
	if len(payload) == 0 {
		payload = []byte{0} // oxenstored stalls on empty payloads
	}
	if len(payload) > c.maxReq {
		return nil, syscall.E2BIG
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.kslot != nil {
		// One request at a time through the xenbus device, as
		// libxenstore does: Linux 6.1 mixes up the payloads of
		// requests in flight together on one open file (seen in the
		// lab: values written under other paths). The slot is freed
		// when the reply arrives, even for a cancelled call.
		select {
		case c.kslot <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.done:
			return nil, c.err
		}
	}
	ch := c.chans.Get().(chan *wire.Msg)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		c.kfree()
		return nil, err
	}
	c.nextReq++
	for _, busy := c.pending[c.nextReq]; busy; _, busy = c.pending[c.nextReq] {
		c.nextReq++
	}
	id := c.nextReq
	c.pending[id] = ch
	// The direct path when this is the only call and nothing else
	// reads, and no call overlapped another lately: callers sharing
	// the Client pipeline better through the reader goroutine, and
	// would find it idle now and then between their calls.
	if len(c.pending) > 1 {
		c.shared = sharedCalls
	} else if c.shared > 0 {
		c.shared--
	}
	direct := c.direct != nil && len(c.pending) == 1 && len(c.watches) == 0 && c.shared == 0 &&
		(!c.reading || c.yielding && !c.stolen)
	if direct {
		if c.reading {
			c.stolen = true // the yielding reader goroutine goes idle
		}
		c.reading = true
	}
	m := wire.Msg{Type: t, ReqID: id, TxID: tx, Payload: payload}
	var err error
	// Batching: the yielding reader writes this request together with
	// the others made meanwhile.
	queued := !direct && c.direct != nil && c.yielding && !c.stolen &&
		len(c.obuf)+wire.HeaderSize+len(payload) <= maxQueued
	if queued {
		c.obuf, err = m.AppendBinary(c.obuf)
	}
	c.mu.Unlock()

	if !queued {
		err = c.send(&m, direct)
	}
	if errno, ok := kernelRefusal(err, c.kslot != nil); ok {
		// The kernel refused the whole frame (a WATCH the daemon
		// refused, for one): the call's answer; no reply follows.
		c.forget(id)
		c.kfree()
		return nil, errno
	}
	if err != nil {
		// A failed write may have left part of a frame on the stream,
		// which is then unusable: end the connection like a lost one.
		c.forget(id)
		if direct {
			c.mu.Lock()
			c.reading = false // closeConn stops the Client itself
			c.mu.Unlock()
		}
		c.closeConn()
		return nil, fmt.Errorf("sending %s: %w (%w)", t, c.err, err)
	}
	if direct {
		if m, ok := c.readDirect(ch); ok {
			c.chans.Put(ch)
			return reply(t, m)
		}
	} else {
		// Wake the reader if it is idle. (A call no longer pending has
		// had its reply routed already, by a reader that has gone idle
		// since.)
		c.mu.Lock()
		if _, waiting := c.pending[id]; waiting && !c.reading && c.err == nil {
			c.reading = true
			c.kick <- struct{}{} // the idle reader has drained kick: never blocks
		}
		c.mu.Unlock()
	}
	select {
	case m := <-ch:
		c.chans.Put(ch) // empty again, and nobody else sends on it
		return reply(t, m)
	case <-ctx.Done():
		c.forget(id)
		return nil, ctx.Err()
	case <-c.done:
		return nil, c.err
	}
}

// send writes m, header and payload in one write(2), so that concurrent
// writers never interleave frames; with direct, as a direct syscall.
func (c *Client) send(m *wire.Msg, direct bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var err error
	c.wbuf, err = m.AppendBinary(c.wbuf[:0])
	if err == nil {
		if direct {
			_, err = c.direct.directWrite(c.wbuf)
		} else {
			_, err = c.rwc.Write(c.wbuf)
		}
	}
	if cap(c.wbuf) > 2*(wire.HeaderSize+wire.PayloadMax) {
		c.wbuf = nil
	}
	return err
}

// kernelRefusal reports the errno of a write the xenbus device refused.
// (A function of its own so that the errno escapes to the heap only
// there, not on every call.)
func kernelRefusal(err error, kernel bool) (syscall.Errno, bool) {
	if err == nil || !kernel {
		return 0, false
	}
	var errno syscall.Errno
	ok := errors.As(err, &errno)
	return errno, ok
}

// sharedCalls is how many calls after one that overlapped another, or
// whose direct read timed out, keep off the direct path.
const sharedCalls = 64

// reply turns m, the reply to a t request, into its payload; an XS_ERROR
// reply becomes its syscall.Errno.
func reply(t wire.Type, m *wire.Msg) ([]byte, error) {
	if m.Type == wire.Error {
		name, _ := wire.CString(m.Payload)
		if errno, ok := wire.Errno(name); ok {
			return nil, errno
		}
		return nil, fmt.Errorf("%w: unknown error %q", ErrProtocol, name)
	}
	if m.Type != t {
		return nil, fmt.Errorf("%w: %s reply to %s request", ErrProtocol, m.Type, t)
	}
	return m.Payload, nil
}

// kfree frees the xenbus device's request slot, if taken.
func (c *Client) kfree() {
	select {
	case <-c.kslot:
	default:
	}
}

func (c *Client) forget(id uint32) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// callOK is call for requests whose success reply is "OK\0".
func (c *Client) callOK(ctx context.Context, t wire.Type, tx uint32, payload []byte) error {
	_, err := c.call(ctx, t, tx, payload)
	return err
}

func pathPayload(path string, extra ...string) ([]byte, error) {
	if err := wire.CheckPath(path); err != nil {
		return nil, err
	}
	return wire.Strings(append([]string{path}, extra...)...), nil
}

func (c *Client) read(ctx context.Context, tx uint32, path string) ([]byte, error) {
	p, err := pathPayload(path)
	if err != nil {
		return nil, newOpError(OpRead, path, err)
	}
	v, err := c.call(ctx, wire.Read, tx, p)
	return v, newOpError(OpRead, path, err)
}

func (c *Client) write(ctx context.Context, tx uint32, path string, value []byte) error {
	if err := wire.CheckPath(path); err != nil {
		return newOpError(OpWrite, path, err)
	}
	p := make([]byte, 0, len(path)+1+len(value))
	p = append(p, path...)
	p = append(p, 0)
	p = append(p, value...)
	return newOpError(OpWrite, path, c.callOK(ctx, wire.Write, tx, p))
}

func (c *Client) pathOp(ctx context.Context, op string, t wire.Type, tx uint32, path string) error {
	p, err := pathPayload(path)
	if err != nil {
		return newOpError(op, path, err)
	}
	return newOpError(op, path, c.callOK(ctx, t, tx, p))
}

func (c *Client) list(ctx context.Context, tx uint32, path string) ([]string, error) {
	p, err := pathPayload(path)
	if err != nil {
		return nil, newOpError(OpList, path, err)
	}
	v, err := c.call(ctx, wire.Directory, tx, p)
	if errors.Is(err, syscall.E2BIG) {
		names, err := c.listParts(ctx, tx, path)
		return names, newOpError(OpList, path, err)
	}
	if err != nil {
		return nil, newOpError(OpList, path, err)
	}
	return wire.SplitStrings(v), nil
}

// listParts reads a directory with DIRECTORY_PART, as libxenstore does
// after E2BIG: each reply is "<generation>\0" then children from the byte
// offset asked for; the last chunk ends with an extra "\0". A generation
// change means the directory changed underneath, and the listing restarts.
func (c *Client) listParts(ctx context.Context, tx uint32, path string) ([]string, error) {
	for restarts := 0; ; restarts++ {
		var (
			gen  string
			acc  []byte
			done bool
		)
		for !done {
			v, err := c.call(ctx, wire.DirectoryPart, tx, wire.Strings(path, strconv.Itoa(len(acc))))
			if err != nil {
				return nil, err
			}
			g, ok := wire.CString(v)
			if !ok {
				return nil, fmt.Errorf("%w: DIRECTORY_PART reply without generation", ErrProtocol)
			}
			if gen == "" {
				gen = g
			} else if g != gen {
				break
			}
			chunk := v[len(g)+1:]
			switch {
			case len(chunk) == 0 || (len(chunk) == 1 && chunk[0] == 0):
				done = true
			case len(chunk) >= 2 && chunk[len(chunk)-1] == 0 && chunk[len(chunk)-2] == 0:
				acc = append(acc, chunk[:len(chunk)-1]...)
				done = true
			default:
				acc = append(acc, chunk...)
			}
			if len(acc) > c.cfg.maxReply() {
				return nil, fmt.Errorf("%w: DIRECTORY_PART listing exceeds %d bytes", ErrProtocol, c.cfg.maxReply())
			}
		}
		if done {
			return wire.SplitStrings(acc), nil
		}
		if restarts > 100 {
			return nil, syscall.EAGAIN
		}
	}
}

func (c *Client) getPerms(ctx context.Context, tx uint32, path string) ([]Perm, error) {
	p, err := pathPayload(path)
	if err != nil {
		return nil, newOpError(OpGetPerms, path, err)
	}
	v, err := c.call(ctx, wire.GetPerms, tx, p)
	if err != nil {
		return nil, newOpError(OpGetPerms, path, err)
	}
	perms, err := parsePerms(v)
	return perms, newOpError(OpGetPerms, path, err)
}

func parsePerms(v []byte) ([]Perm, error) {
	fields := wire.SplitStrings(v)
	if len(fields) == 0 {
		return nil, fmt.Errorf("%w: empty permission list", ErrProtocol)
	}
	perms := make([]Perm, 0, len(fields))
	for _, f := range fields {
		p, err := ParsePerm(f)
		if err != nil {
			return nil, err
		}
		perms = append(perms, p)
	}
	return perms, nil
}

func (c *Client) setPerms(ctx context.Context, tx uint32, path string, perms []Perm) error {
	if len(perms) == 0 {
		return newOpError(OpSetPerms, path, syscall.EINVAL)
	}
	s := make([]string, len(perms))
	for i, p := range perms {
		switch p.Access {
		case AccessNone, AccessRead, AccessWrite, AccessBoth:
		default:
			return newOpError(OpSetPerms, path, syscall.EINVAL)
		}
		s[i] = p.String()
	}
	p, err := pathPayload(path, s...)
	if err != nil {
		return newOpError(OpSetPerms, path, err)
	}
	return newOpError(OpSetPerms, path, c.callOK(ctx, wire.SetPerms, tx, p))
}

// Read returns the value of the node at path (absolute, or relative to the
// connection's domain home).
func (c *Client) Read(ctx context.Context, path string) ([]byte, error) {
	return c.read(ctx, 0, path)
}

// Write sets the value of the node at path, creating it and any missing
// parents. len(path)+1+len(value) must not exceed 4096, or 4080 over
// /dev/xen/xenbus (E2BIG otherwise, checked before sending).
func (c *Client) Write(ctx context.Context, path string, value []byte) error {
	return c.write(ctx, 0, path, value)
}

// Mkdir creates the node at path with an empty value; an existing node is
// left alone.
func (c *Client) Mkdir(ctx context.Context, path string) error {
	return c.pathOp(ctx, OpMkdir, wire.Mkdir, 0, path)
}

// Remove deletes the node at path and its subtree. Removing a missing node
// whose parent exists succeeds.
func (c *Client) Remove(ctx context.Context, path string) error {
	return c.pathOp(ctx, OpRemove, wire.Rm, 0, path)
}

// List returns the names of path's children, falling back to
// DIRECTORY_PART when the listing exceeds one message.
func (c *Client) List(ctx context.Context, path string) ([]string, error) {
	return c.list(ctx, 0, path)
}

// GetPerms returns path's permission list; the first entry is the owner.
func (c *Client) GetPerms(ctx context.Context, path string) ([]Perm, error) {
	return c.getPerms(ctx, 0, path)
}

// SetPerms replaces path's permission list; perms[0] names the owner.
func (c *Client) SetPerms(ctx context.Context, path string, perms []Perm) error {
	return c.setPerms(ctx, 0, path, perms)
}

func domPayload(dom uint32, extra ...string) []byte {
	return wire.Strings(append([]string{strconv.FormatUint(uint64(dom), 10)}, extra...)...)
}

func domStr(dom uint32) string { return strconv.FormatUint(uint64(dom), 10) }

// GetDomainPath returns the home path of dom, "/local/domain/<dom>".
func (c *Client) GetDomainPath(ctx context.Context, dom uint32) (string, error) {
	v, err := c.call(ctx, wire.GetDomainPath, 0, domPayload(dom))
	if err != nil {
		return "", newOpError(OpGetDomainPath, domStr(dom), err)
	}
	s, _ := wire.CString(v)
	return s, nil
}

// Introduce tells xenstored about dom's ring page mfn and event channel
// port (XS_INTRODUCE); watchers of @introduceDomain are notified.
func (c *Client) Introduce(ctx context.Context, dom uint32, mfn uint64, port uint32) error {
	p := domPayload(dom, strconv.FormatUint(mfn, 10), strconv.FormatUint(uint64(port), 10))
	return newOpError(OpIntroduce, domStr(dom), c.callOK(ctx, wire.Introduce, 0, p))
}

// Release makes xenstored forget dom (XS_RELEASE); watchers of
// @releaseDomain are notified.
func (c *Client) Release(ctx context.Context, dom uint32) error {
	return newOpError(OpRelease, domStr(dom), c.callOK(ctx, wire.Release, 0, domPayload(dom)))
}

// IsDomainIntroduced reports whether xenstored knows dom.
func (c *Client) IsDomainIntroduced(ctx context.Context, dom uint32) (bool, error) {
	v, err := c.call(ctx, wire.IsDomainIntroduced, 0, domPayload(dom))
	if err != nil {
		return false, newOpError(OpIsDomainIntroduced, domStr(dom), err)
	}
	s, _ := wire.CString(v)
	switch s {
	case "T":
		return true, nil
	case "F":
		return false, nil
	}
	return false, newOpError(OpIsDomainIntroduced, domStr(dom), fmt.Errorf("%w: reply %q", ErrProtocol, s))
}

// Resume is XS_RESUME: it clears xenstored's shutdown flag for dom, so
// @releaseDomain fires again when dom next shuts down. Call it after a
// cancelled suspend.
func (c *Client) Resume(ctx context.Context, dom uint32) error {
	return newOpError(OpResume, domStr(dom), c.callOK(ctx, wire.Resume, 0, domPayload(dom)))
}

// SetTarget lets dom act with target's privileges (XS_SET_TARGET), as a
// device model stub domain does.
func (c *Client) SetTarget(ctx context.Context, dom, target uint32) error {
	p := domPayload(dom, strconv.FormatUint(uint64(target), 10))
	return newOpError(OpSetTarget, domStr(dom), c.callOK(ctx, wire.SetTarget, 0, p))
}

// ResetWatches removes every watch and open transaction of this
// connection on the daemon's side. Existing Watch values stop receiving
// events; close them to release their resources.
func (c *Client) ResetWatches(ctx context.Context) error {
	return newOpError(OpResetWatches, "", c.callOK(ctx, wire.ResetWatches, 0, nil))
}

// Control sends XS_CONTROL with args (e.g. "quota") and returns the raw
// reply. What each command does depends on the daemon: cxenstored
// implements many, oxenstored answers "OK".
func (c *Client) Control(ctx context.Context, args ...string) ([]byte, error) {
	v, err := c.call(ctx, wire.Control, 0, wire.Strings(args...))
	return v, newOpError(OpControl, "", err)
}
