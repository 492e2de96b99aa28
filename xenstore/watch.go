package xenstore

import (
	"context"
	"strconv"
	"sync"

	"github.com/xenckpt/xenckpt/xenstore/internal/wire"
)

// Event is one XS_WATCH_EVENT: Path is the node that changed (relative
// when the watch path was relative; the special path itself for
// @introduceDomain and @releaseDomain), Token the watch's token.
type Event struct {
	Path  string
	Token string
}

// Watch is a registered xenstore watch. Events arrive on Events() in the
// order the daemon sent them, starting with the initial event every daemon
// fires on registration. Events are queued without bound, so a slow reader
// never stalls the Client. The channel is closed after Close, after the
// ctx passed to Client.Watch is done, or after Client.Close (events still
// queued are dropped), or when the connection is lost (after the queued
// events); Err then says why. After a lost connection, read the channel
// to its end or Close the Watch, or its goroutine stays.
type Watch struct {
	c     *Client
	path  string
	token string

	ch     chan Event
	notify chan struct{}
	stop   chan struct{} // closed when delivery ends for any reason
	quit   chan struct{} // closed by Close: drop what is queued
	qonce  sync.Once

	mu     sync.Mutex
	queue  []Event
	err    error
	closed bool

	closeOnce sync.Once
	closeErr  error
}

// Path returns the path the watch was registered on.
func (w *Watch) Path() string { return w.path }

// Token returns the watch's token, unique within its Client.
func (w *Watch) Token() string { return w.token }

// Events returns the channel of events.
func (w *Watch) Events() <-chan Event { return w.ch }

// Err returns why the event channel was closed, or nil while it is open
// or after a plain Close.
func (w *Watch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Watch registers a watch on path: a node (absolute or relative) and its
// subtree, or a special path such as "@releaseDomain". The watch lasts
// until Close or until ctx is done; either sends XS_UNWATCH.
func (c *Client) Watch(ctx context.Context, path string) (*Watch, error) {
	if err := wire.CheckWatchPath(path); err != nil {
		return nil, newOpError(OpWatch, path, err)
	}
	c.mu.Lock()
	c.nextToken++
	token := "xenckpt-" + strconv.FormatUint(c.nextToken, 10)
	w := &Watch{
		c: c, path: path, token: token,
		ch:     make(chan Event),
		notify: make(chan struct{}, 1),
		stop:   make(chan struct{}),
		quit:   make(chan struct{}),
	}
	if c.err == nil {
		// Register before sending, so the initial event, which follows
		// the reply, can never be missed.
		c.watches[token] = w
	}
	c.mu.Unlock()
	go w.forward()
	if err := c.callOK(ctx, wire.Watch, 0, wire.Strings(path, token)); err != nil {
		c.mu.Lock()
		delete(c.watches, token)
		c.mu.Unlock()
		w.shutdown(nil)
		w.drop()
		return nil, newOpError(OpWatch, path, err)
	}
	if ctx.Done() != nil {
		go func() {
			select {
			case <-ctx.Done():
				w.Close()
			case <-w.stop:
			}
		}()
	}
	return w, nil
}

// Close sends XS_UNWATCH and closes the event channel. It returns the
// daemon's error, if any; closing twice returns the first result.
func (w *Watch) Close() error {
	w.closeOnce.Do(func() {
		w.c.mu.Lock()
		_, live := w.c.watches[w.token]
		delete(w.c.watches, w.token)
		w.c.mu.Unlock()
		if live {
			err := w.c.callOK(context.Background(), wire.Unwatch, 0, wire.Strings(w.path, w.token))
			w.closeErr = newOpError(OpUnwatch, w.path, err)
		}
		w.shutdown(nil)
		w.drop()
	})
	return w.closeErr
}

// drop makes the forwarder discard queued events and close the channel.
func (w *Watch) drop() { w.qonce.Do(func() { close(w.quit) }) }

func (w *Watch) deliver(e Event) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.queue = append(w.queue, e)
	w.mu.Unlock()
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// shutdown stops delivery; err (may be nil) becomes Err. Events already
// queued are still delivered unless Close is called.
func (w *Watch) shutdown(err error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.err = err
	w.mu.Unlock()
	close(w.stop)
}

func (w *Watch) forward() {
	defer close(w.ch)
	for {
		w.mu.Lock()
		var (
			e  Event
			ok bool
		)
		if len(w.queue) > 0 {
			e, ok = w.queue[0], true
			w.queue[0] = Event{}
			w.queue = w.queue[1:]
		}
		w.mu.Unlock()
		if !ok {
			select {
			case <-w.notify:
				continue
			case <-w.stop:
				w.mu.Lock()
				more := len(w.queue) > 0
				w.mu.Unlock()
				if more {
					continue
				}
				return
			}
		}
		select {
		case w.ch <- e:
		case <-w.quit:
			return
		}
	}
}
