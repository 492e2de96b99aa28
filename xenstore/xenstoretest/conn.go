package xenstoretest

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"net"

	"github.com/xenckpt/xenckpt/xenstore"
	"github.com/xenckpt/xenckpt/xenstore/internal/wire"
)

type conn struct {
	s    *Server
	rwc  net.Conn
	dom  uint32
	priv bool

	// Guarded by s.mu.
	txs     map[uint32]*tx
	watches []*watch

	omu      sync.Mutex
	out      [][]byte
	wake     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
}

type watch struct {
	path  string // as the client gave it
	token string
	abs   string // canonical path, or the special path
	rel   bool
}

type tx struct {
	id       uint32
	root     *node
	start    uint64
	accessed map[string]struct{}
	ops      []*wire.Msg // successful changes, replayed at commit
}

// view is the tree a request works on: the live tree, or a transaction's
// private copy.
type view struct {
	s    *Server
	root *node
	tx   *tx
}

func (v *view) access(p string) {
	if v.tx != nil {
		v.tx.accessed[p] = struct{}{}
	}
}

func (v *view) modified(p string) {
	if v.tx != nil {
		v.tx.accessed[p] = struct{}{}
		return
	}
	v.s.gen++
	if v.s.openTx > 0 {
		v.s.modGen[p] = v.s.gen
	}
}

func (v *view) fire(p string, recursive bool, perms []xenstore.Perm) {
	if v.tx == nil {
		v.s.fire(p, recursive, perms)
	}
}

func (c *conn) close() {
	c.stopOnce.Do(func() {
		close(c.stop)
		c.rwc.Close()
	})
}

func (c *conn) send(m *wire.Msg) {
	b, _ := m.MarshalBinary()
	c.omu.Lock()
	c.out = append(c.out, b)
	c.omu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *conn) writeLoop() {
	defer c.s.wg.Done()
	for {
		c.omu.Lock()
		out := c.out
		c.out = nil
		c.omu.Unlock()
		for _, b := range out {
			if _, err := c.rwc.Write(b); err != nil {
				c.close()
				return
			}
		}
		select {
		case <-c.wake:
		case <-c.stop:
			return
		}
	}
}

func (c *conn) readLoop() {
	defer c.s.wg.Done()
	defer func() {
		c.close()
		s := c.s
		s.mu.Lock()
		delete(s.conns, c)
		for range c.txs {
			s.endTx()
		}
		c.txs = nil
		c.watches = nil
		s.mu.Unlock()
	}()
	for {
		// cxenstored drops a connection that sends an oversized frame.
		m, err := wire.ReadMsg(c.rwc, wire.PayloadMax)
		if err != nil {
			return
		}
		c.s.mu.Lock()
		drop := c.handle(m)
		c.s.mu.Unlock()
		for _, d := range drop {
			d.close()
		}
	}
}

func (c *conn) reply(m *wire.Msg, payload []byte, err error) {
	if err != nil {
		errno, ok := err.(syscall.Errno)
		if !ok {
			errno = syscall.EINVAL
		}
		c.send(&wire.Msg{Type: wire.Error, ReqID: m.ReqID, TxID: m.TxID, Payload: wire.Strings(wire.ErrnoName(errno))})
		return
	}
	c.send(&wire.Msg{Type: m.Type, ReqID: m.ReqID, TxID: m.TxID, Payload: payload})
}

var ok = []byte("OK\x00")

// args splits a request payload into its NUL-terminated strings; the
// payload must end in NUL.
func args(p []byte) ([]string, bool) {
	if len(p) == 0 || p[len(p)-1] != 0 {
		return nil, false
	}
	return strings.Split(string(p[:len(p)-1]), "\x00"), true
}

func parseDom(s string) (uint32, error) {
	d, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, syscall.EINVAL
	}
	return uint32(d), nil
}

// handle processes one request with s.mu held and returns connections to
// close after unlocking.
func (c *conn) handle(m *wire.Msg) []*conn {
	s := c.s
	switch m.Type {
	case wire.Read, wire.Write, wire.Mkdir, wire.Rm, wire.Directory, wire.DirectoryPart, wire.GetPerms, wire.SetPerms:
		v := &view{s: s, root: s.root}
		if m.TxID != 0 {
			t := c.txs[m.TxID]
			if t == nil {
				c.reply(m, nil, syscall.ENOENT)
				return nil
			}
			v.root, v.tx = t.root, t
		}
		p, err := c.treeOp(v, m.Type, m.Payload)
		if err == nil && v.tx != nil {
			switch m.Type {
			case wire.Write, wire.Mkdir, wire.Rm, wire.SetPerms:
				v.tx.ops = append(v.tx.ops, m)
			}
		}
		c.reply(m, p, err)
	case wire.Watch:
		c.doWatch(m)
	case wire.Unwatch:
		c.reply(m, ok, c.doUnwatch(m.Payload))
	case wire.TransactionStart:
		p, err := c.startTx(m)
		c.reply(m, p, err)
	case wire.TransactionEnd:
		c.reply(m, ok, c.endTx(m))
	case wire.GetDomainPath:
		a, good := args(m.Payload)
		if !good {
			c.reply(m, nil, syscall.EINVAL)
			break
		}
		d, err := parseDom(a[0])
		c.reply(m, wire.Strings("/local/domain/"+strconv.FormatUint(uint64(d), 10)), err)
	case wire.IsDomainIntroduced:
		a, good := args(m.Payload)
		if !good {
			c.reply(m, nil, syscall.EINVAL)
			break
		}
		d, err := parseDom(a[0])
		_, known := s.domains[d]
		ans := "F"
		if d == 0 || known {
			ans = "T"
		}
		c.reply(m, wire.Strings(ans), err)
	case wire.Introduce, wire.Release, wire.Resume, wire.SetTarget:
		drop, err := c.domainOp(m)
		c.reply(m, ok, err)
		return drop
	case wire.ResetWatches:
		c.watches = nil
		for range c.txs {
			s.endTx()
		}
		c.txs = map[uint32]*tx{}
		c.reply(m, ok, nil)
	case wire.Control:
		p, err := c.control(m.Payload)
		c.reply(m, p, err)
	default:
		c.reply(m, nil, syscall.ENOSYS)
	}
	return nil
}

// canon validates p and makes it absolute.
func (c *conn) canon(p string) (string, error) {
	if err := wire.CheckPath(p); err != nil {
		return "", err
	}
	if p[0] != '/' {
		p = "/local/domain/" + strconv.FormatUint(uint64(c.dom), 10) + "/" + p
		if len(p) > wire.AbsPathMax {
			return "", syscall.EINVAL
		}
	}
	return p, nil
}

// perm is cxenstored's perm_for_conn: privileged connections and the
// owner (or the owner's controller via SET_TARGET) have full access;
// otherwise an entry naming the domain applies, else the default.
func (c *conn) perm(perms []xenstore.Perm) xenstore.Access {
	if c.priv || len(perms) == 0 {
		return xenstore.AccessBoth
	}
	d := c.s.domains[c.dom]
	isMe := func(id uint32) bool { return id == c.dom || d != nil && d.hasTgt && id == d.target }
	if isMe(perms[0].Dom) {
		return xenstore.AccessBoth
	}
	for _, p := range perms[1:] {
		if isMe(p.Dom) {
			return p.Access
		}
	}
	return perms[0].Access
}

// missing returns ENOENT, or EACCES when the caller may not even read the
// nearest existing ancestor.
func (c *conn) missing(v *view, p string) error {
	if !c.perm(nearest(v.root, p).access()).CanRead() {
		return syscall.EACCES
	}
	return syscall.ENOENT
}

func (c *conn) ownedEntries(root *node) int {
	n := 0
	root.walk("/", func(_ string, x *node) {
		if len(x.perms) > 0 && x.perms[0].Dom == c.dom {
			n++
		}
	})
	return n
}

func (c *conn) treeOp(v *view, t wire.Type, payload []byte) ([]byte, error) {
	var a []string
	if t == wire.Write {
		i := bytes.IndexByte(payload, 0)
		if i < 0 {
			return nil, syscall.EINVAL
		}
		a = []string{string(payload[:i])}
	} else {
		var good bool
		if a, good = args(payload); !good {
			return nil, syscall.EINVAL
		}
	}
	if strings.HasPrefix(a[0], "@") && (t == wire.GetPerms || t == wire.SetPerms) {
		return c.specialPerms(t, a)
	}
	p, err := c.canon(a[0])
	if err != nil {
		return nil, err
	}
	n := lookup(v.root, p)
	v.access(p)
	switch t {
	case wire.Read:
		if n == nil {
			return nil, c.missing(v, p)
		}
		if !c.perm(n.access()).CanRead() {
			return nil, syscall.EACCES
		}
		return bytes.Clone(n.value), nil
	case wire.Write:
		value := bytes.Clone(payload[len(a[0])+1:])
		if !c.priv && len(value) > limit(c.s.cfg.Quota.MaxValueSize, 2048) {
			return nil, syscall.ENOSPC
		}
		if n == nil {
			return ok, c.create(v, p, value)
		}
		if !c.perm(n.access()).CanWrite() {
			return nil, syscall.EACCES
		}
		n.value = value
		v.modified(p)
		v.fire(p, false, n.access())
		return ok, nil
	case wire.Mkdir:
		if n == nil {
			return ok, c.create(v, p, nil)
		}
		if !c.perm(n.access()).CanWrite() {
			return nil, syscall.EACCES
		}
		return ok, nil
	case wire.Rm:
		return ok, c.remove(v, p, n)
	case wire.Directory, wire.DirectoryPart:
		if n == nil {
			return nil, c.missing(v, p)
		}
		if !c.perm(n.access()).CanRead() {
			return nil, syscall.EACCES
		}
		var names []string
		for _, ch := range n.children {
			names = append(names, ch.name)
		}
		list := wire.Strings(names...)
		if t == wire.Directory {
			if len(list) > wire.PayloadMax {
				return nil, syscall.E2BIG
			}
			return list, nil
		}
		if len(a) < 2 {
			return nil, syscall.EINVAL
		}
		off, err := strconv.Atoi(a[1])
		if err != nil || off < 0 || off > len(list) {
			return nil, syscall.EINVAL
		}
		return directoryPart(n.gen, list, off), nil
	case wire.GetPerms:
		if n == nil {
			return nil, c.missing(v, p)
		}
		if !c.perm(n.access()).CanRead() {
			return nil, syscall.EACCES
		}
		return encodePerms(n.perms), nil
	case wire.SetPerms:
		perms, err := parsePerms(a[1:])
		if err != nil {
			return nil, err
		}
		if n == nil {
			return nil, c.missing(v, p)
		}
		if !c.priv && (!c.perm(n.access()).CanWrite() || c.perm(n.access()) != xenstore.AccessBoth || !c.owns(n.perms)) {
			return nil, syscall.EACCES
		}
		if !c.priv && perms[0].Dom != n.perms[0].Dom {
			return nil, syscall.EPERM
		}
		if err := c.s.setPerms(n, perms); err != nil {
			return nil, err
		}
		v.modified(p)
		v.fire(p, false, n.access())
		return ok, nil
	}
	return nil, syscall.ENOSYS
}

func (c *conn) owns(perms []xenstore.Perm) bool {
	d := c.s.domains[c.dom]
	return perms[0].Dom == c.dom || d != nil && d.hasTgt && perms[0].Dom == d.target
}

// directoryPart builds cxenstored's DIRECTORY_PART reply: the generation,
// then whole children names from byte offset off that fit in one
// payload, then an extra NUL when the list is complete.
func directoryPart(gen uint64, list []byte, off int) []byte {
	out := wire.Strings(strconv.FormatUint(gen, 10))
	i := off
	for i < len(list) {
		j := bytes.IndexByte(list[i:], 0) + i + 1
		if len(out)+(j-off)+1 > wire.PayloadMax {
			break
		}
		i = j
	}
	out = append(out, list[off:i]...)
	if i == len(list) {
		out = append(out, 0)
	}
	return out
}

func encodePerms(perms []xenstore.Perm) []byte {
	s := make([]string, len(perms))
	for i, p := range perms {
		s[i] = p.String()
	}
	return wire.Strings(s...)
}

func parsePerms(a []string) ([]xenstore.Perm, error) {
	if len(a) == 0 {
		return nil, syscall.EINVAL
	}
	perms := make([]xenstore.Perm, len(a))
	for i, s := range a {
		p, err := xenstore.ParsePerm(s)
		if err != nil {
			return nil, syscall.EINVAL
		}
		perms[i] = p
	}
	return perms, nil
}

func (c *conn) specialPerms(t wire.Type, a []string) ([]byte, error) {
	n, known := c.s.special[a[0]]
	if !known {
		return nil, syscall.ENOENT
	}
	if t == wire.GetPerms {
		return nil, syscall.EINVAL // cxenstored 4.17 has no node by that name
	}
	if !c.priv {
		return nil, syscall.EACCES
	}
	np, err := parsePerms(a[1:])
	if err != nil {
		return nil, err
	}
	if err := c.s.setPerms(n, np); err != nil {
		return nil, err
	}
	return ok, nil
}

// setPerms gives n perms as SET_PERMS does, once the caller may: ENOENT
// when the owner names no domain (cxenstored), and entries naming no
// domain are listed but ignored. Called with s.mu held.
func (s *Server) setPerms(n *node, perms []xenstore.Perm) error {
	if !s.domainExists(perms[0].Dom) {
		return syscall.ENOENT
	}
	n.perms, n.live = perms, nil
	n.ignore(func(dom uint32) bool { return !s.domainExists(dom) })
	return nil
}

// create makes p and its missing parents, each inheriting its parent's
// permissions, owned by the caller when it is unprivileged.
func (c *conn) create(v *view, p string, value []byte) error {
	parent := nearest(v.root, p)
	if !c.perm(parent.access()).CanWrite() {
		return syscall.EACCES
	}
	names := splitPath(p)
	depth := 0
	for n := v.root; depth < len(names); depth++ {
		if n = n.child(names[depth]); n == nil {
			break
		}
	}
	if !c.priv && c.ownedEntries(v.root)+len(names)-depth > limit(c.s.cfg.Quota.MaxEntries, 1000) {
		return syscall.ENOSPC
	}
	cur := "/"
	n := v.root
	for i, name := range names {
		child := n.child(name)
		path := joinPath(cur, name)
		if child == nil {
			var owner *uint32
			if !c.priv {
				owner = &c.dom
			}
			perms, live := n.inherit(owner)
			child = &node{name: name, perms: perms, live: live, gen: v.s.gen}
			if i == len(names)-1 {
				child.value = value
			}
			n.children = append(n.children, child)
			n.gen++
			v.modified(cur)
			v.modified(path)
		}
		n, cur = child, path
	}
	v.fire(p, false, n.access())
	return nil
}

func (c *conn) remove(v *view, p string, n *node) error {
	if p == "/" {
		return syscall.EINVAL
	}
	parent := lookup(v.root, parentPath(p))
	if n == nil {
		if parent != nil {
			return nil
		}
		return c.missing(v, p)
	}
	if !c.perm(n.access()).CanWrite() {
		return syscall.EACCES
	}
	v.unlink(p, parent, n)
	return nil
}

// unlink removes n, at p below parent, with its subtree, and fires the
// watches on them.
func (v *view) unlink(p string, parent, n *node) {
	n.walk(p, func(q string, _ *node) { v.modified(q) })
	parent.removeChild(n.name)
	parent.gen++
	v.modified(parentPath(p))
	v.fire(p, true, n.access())
}

func (c *conn) startTx(m *wire.Msg) ([]byte, error) {
	s := c.s
	if m.TxID != 0 {
		return nil, syscall.EBUSY
	}
	if !c.priv && len(c.txs) >= limit(s.cfg.Quota.MaxTransactions, 10) {
		return nil, syscall.ENOSPC
	}
	s.nextTx++
	if s.nextTx == 0 {
		s.nextTx++
	}
	t := &tx{id: s.nextTx, root: s.root.clone(), start: s.gen, accessed: map[string]struct{}{}}
	c.txs[t.id] = t
	s.openTx++
	return wire.Strings(strconv.FormatUint(uint64(t.id), 10)), nil
}

// endTx accounts for one transaction ending; with none open, change
// generations need not be kept.
func (s *Server) endTx() {
	s.openTx--
	if s.openTx == 0 {
		clear(s.modGen)
	}
}

func (c *conn) endTx(m *wire.Msg) error {
	s := c.s
	a, good := args(m.Payload)
	if !good || a[0] != "T" && a[0] != "F" {
		return syscall.EINVAL
	}
	t := c.txs[m.TxID]
	if t == nil {
		return syscall.ENOENT
	}
	delete(c.txs, m.TxID)
	defer s.endTx()
	if a[0] == "F" {
		return nil
	}
	for p := range t.accessed {
		if s.modGen[p] > t.start {
			return syscall.EAGAIN
		}
	}
	live := &view{s: s, root: s.root}
	for _, op := range t.ops {
		_, _ = c.treeOp(live, op.Type, op.Payload)
	}
	return nil
}

func (c *conn) doWatch(m *wire.Msg) {
	a, good := args(m.Payload)
	if !good || len(a) < 2 {
		c.reply(m, nil, syscall.EINVAL)
		return
	}
	w := &watch{path: a[0], token: a[1]}
	if err := wire.CheckWatchPath(w.path); err != nil {
		c.reply(m, nil, err)
		return
	}
	if strings.HasPrefix(w.path, "@") {
		w.abs = w.path
	} else {
		abs, err := c.canon(w.path)
		if err != nil {
			c.reply(m, nil, err)
			return
		}
		w.abs, w.rel = abs, w.path[0] != '/'
	}
	for _, x := range c.watches {
		if x.path == w.path && x.token == w.token {
			c.reply(m, nil, syscall.EEXIST)
			return
		}
	}
	if !c.priv && len(c.watches) >= limit(c.s.cfg.Quota.MaxWatches, 128) {
		c.reply(m, nil, syscall.E2BIG)
		return
	}
	c.watches = append(c.watches, w)
	c.reply(m, ok, nil)
	c.event(w.path, w.token)
}

func (c *conn) doUnwatch(payload []byte) error {
	a, good := args(payload)
	if !good || len(a) < 2 {
		return syscall.EINVAL
	}
	for i, x := range c.watches {
		if x.path == a[0] && x.token == a[1] {
			c.watches = append(c.watches[:i:i], c.watches[i+1:]...)
			return nil
		}
	}
	return syscall.ENOENT
}

func (c *conn) event(path, token string) {
	c.send(&wire.Msg{Type: wire.WatchEvent, Payload: wire.Strings(path, token)})
}

// fire sends watch events for a change of p; recursive (for RM) also
// fires watches below p, with their own paths. Unprivileged watchers only
// hear of nodes they may read.
func (s *Server) fire(p string, recursive bool, perms []xenstore.Perm) {
	for c := range s.conns {
		if !c.perm(perms).CanRead() {
			continue
		}
		for _, w := range c.watches {
			if w.abs[0] == '@' {
				continue
			}
			switch {
			case isAncestorOrSelf(w.abs, p):
				ep := p
				if w.rel {
					home := "/local/domain/" + strconv.FormatUint(uint64(c.dom), 10) + "/"
					ep = strings.TrimPrefix(p, home)
				}
				c.event(ep, w.token)
			case recursive && isAncestorOrSelf(p, w.abs):
				c.event(w.path, w.token)
			}
		}
	}
}

func (s *Server) fireSpecial(name string) {
	for c := range s.conns {
		if !c.perm(s.special[name].access()).CanRead() {
			continue
		}
		for _, w := range c.watches {
			if w.abs == name {
				c.event(name, w.token)
			}
		}
	}
}

func (c *conn) domainOp(m *wire.Msg) ([]*conn, error) {
	s := c.s
	if !c.priv {
		return nil, syscall.EACCES
	}
	a, good := args(m.Payload)
	if !good {
		return nil, syscall.EINVAL
	}
	dom, err := parseDom(a[0])
	if err != nil {
		return nil, err
	}
	d := s.domains[dom]
	switch m.Type {
	case wire.Introduce:
		if len(a) < 3 {
			return nil, syscall.EINVAL
		}
		mfn, err1 := strconv.ParseUint(a[1], 10, 64)
		port, err2 := strconv.ParseUint(a[2], 10, 32)
		if err1 != nil || err2 != nil {
			return nil, syscall.EINVAL
		}
		if dom == 0 || d != nil {
			return nil, nil
		}
		if !s.domainExists(dom) {
			return nil, syscall.EINVAL // cxenstored under Xen
		}
		s.domains[dom] = &domain{id: dom, mfn: mfn, port: uint32(port)}
		s.fireSpecial("@introduceDomain")
		return nil, nil
	case wire.Release:
		if dom == 0 {
			return nil, syscall.EINVAL
		}
		if d == nil {
			return nil, syscall.ENOENT
		}
		drop := s.forgetDomain(dom)
		s.fireSpecial("@releaseDomain")
		return drop, nil
	case wire.Resume:
		if d == nil {
			return nil, syscall.ENOENT
		}
		d.shutdown = false
		return nil, nil
	case wire.SetTarget:
		if len(a) < 2 {
			return nil, syscall.EINVAL
		}
		target, err := parseDom(a[1])
		if err != nil {
			return nil, err
		}
		if d == nil {
			return nil, syscall.ENOENT
		}
		if _, known := s.domains[target]; !known && target != 0 {
			return nil, syscall.ENOENT
		}
		d.target, d.hasTgt = target, true
		return nil, nil
	}
	return nil, syscall.ENOSYS
}

func (c *conn) control(payload []byte) ([]byte, error) {
	if !c.priv {
		return nil, syscall.EACCES
	}
	a, good := args(payload)
	if !good {
		return nil, syscall.EINVAL
	}
	q := c.s.cfg.Quota
	switch a[0] {
	case "check":
		return ok, nil
	case "help":
		return wire.Strings("check\nhelp\nquota\n"), nil
	case "quota":
		return wire.Strings(
			"transaction-per-domain: " + strconv.Itoa(limit(q.MaxTransactions, 10)) + "\n" +
				"nodes-per-domain: " + strconv.Itoa(limit(q.MaxEntries, 1000)) + "\n" +
				"node-size: " + strconv.Itoa(limit(q.MaxValueSize, 2048)) + "\n" +
				"watches-per-domain: " + strconv.Itoa(limit(q.MaxWatches, 128)) + "\n"), nil
	}
	return nil, syscall.EINVAL
}
