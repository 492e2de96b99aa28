package xenstoretest

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/xenckpt/xenckpt/xenstore"
)

// DomainStates tells the server about domains, as the hypervisor tells
// cxenstored through xc_domain_getinfo. The simulator implements it.
type DomainStates interface {
	// DomainState reports whether dom exists and whether it is shut down
	// (including suspended).
	DomainState(dom uint32) (exists, shutdown bool)
}

// Quota holds the per-domain limits that apply to unprivileged domains
// (dom0 is exempt, as in cxenstored). Zero fields mean cxenstored's
// defaults; a negative field means no limit.
type Quota struct {
	// MaxEntries is the number of nodes a domain may own. Zero means 1000.
	// Past it, writes fail with ENOSPC.
	MaxEntries int
	// MaxValueSize is the largest node value in bytes. Zero means 2048.
	// Past it, writes fail with ENOSPC.
	MaxValueSize int
	// MaxWatches is the number of watches per domain. Zero means 128.
	// Past it, WATCH fails with E2BIG.
	MaxWatches int
	// MaxTransactions is the number of open transactions per
	// connection. Zero means 10. Past it, TRANSACTION_START fails with
	// ENOSPC.
	MaxTransactions int
}

func limit(v, def int) int {
	switch {
	case v == 0:
		return def
	case v < 0:
		return int(^uint(0) >> 1)
	}
	return v
}

// Config configures a Server. A nil *Config means every default.
type Config struct {
	// Domains answers domain-state questions for DomainChanged, and, as
	// cxenstored under Xen does, makes INTRODUCE of a domain that does
	// not exist fail with EINVAL and SET_PERMS naming such an owner
	// with ENOENT; a non-owner entry naming such a domain is accepted
	// and listed but grants nothing, even once a domain of that id
	// exists (see Server). Nil means every domain exists and is running
	// (like the daemons under the project's LD_PRELOAD shim), except the
	// reserved ids from DOMID_FIRST_RESERVED (0x7ff0) on, which never do.
	Domains DomainStates
	// Quota limits unprivileged domains.
	Quota Quota
}

// ErrNotIntroduced is returned by Connect for a domU that was not
// introduced with XS_INTRODUCE.
var ErrNotIntroduced = errors.New("domain not introduced to xenstored")

// Server is an embedded xenstored. It speaks the xs_wire.h protocol to
// clients on a net.Listener (all of them privileged, like cxenstored's
// unix-socket clients) and to in-memory connections made by Connect as any
// introduced domain, with cxenstored's semantics: permissions, quotas,
// transactions with conflict detection at commit, watches and the special
// @introduceDomain/@releaseDomain events. Requests it does not implement
// fail with ENOSYS.
//
// When a domain goes away (XS_RELEASE, or gone at DomainChanged), the
// nodes it owns are removed with their subtrees, as cxenstored and
// oxenstored both do.
//
// Permission entries other than the owner's that name a domain that does
// not exist when SET_PERMS sets them, or a domain that later goes away
// (XS_RELEASE, or gone at DomainChanged), grant nothing from then on, as
// in cxenstored 4.17 (XS_PERM_IGNORE): a new domain reusing the id does
// not inherit the old one's access, and the connection gets the owner
// entry's default instead. GET_PERMS still lists such entries, as
// cxenstored does. The same holds for the permissions of
// @introduceDomain and @releaseDomain, except that a domain going away
// is removed from them (and an owner that goes away is replaced by
// dom0), as in cxenstored.
//
// A Server is safe for concurrent use; it serializes requests internally.
type Server struct {
	cfg Config

	mu        sync.Mutex
	root      *node
	gen       uint64
	modGen    map[string]uint64 // path → gen of last change, kept while transactions are open
	openTx    int
	nextTx    uint32
	conns     map[*conn]struct{}
	domains   map[uint32]*domain
	special   map[string]*node // @introduceDomain, @releaseDomain: their permissions
	listeners map[net.Listener]struct{}
	closed    bool

	wg sync.WaitGroup
}

type domain struct {
	id       uint32
	mfn      uint64
	port     uint32
	shutdown bool
	target   uint32
	hasTgt   bool
}

// NewServer returns a server holding cxenstored's initial tree: "/",
// "/tool" and "/tool/xenstored", owned by dom0.
func NewServer(cfg *Config) *Server {
	s := &Server{
		modGen:    map[string]uint64{},
		conns:     map[*conn]struct{}{},
		domains:   map[uint32]*domain{},
		listeners: map[net.Listener]struct{}{},
		special: map[string]*node{
			"@introduceDomain": {perms: []xenstore.Perm{{Dom: 0, Access: xenstore.AccessNone}}},
			"@releaseDomain":   {perms: []xenstore.Perm{{Dom: 0, Access: xenstore.AccessNone}}},
		},
	}
	if cfg != nil {
		s.cfg = *cfg
	}
	n0 := []xenstore.Perm{{Dom: 0, Access: xenstore.AccessNone}}
	s.root = &node{perms: n0}
	tool := &node{name: "tool", perms: n0}
	tool.children = []*node{{name: "xenstored", perms: n0}}
	s.root.children = []*node{tool}
	return s
}

// Serve accepts connections on l until l or the server is closed. Every
// connection is privileged dom0. It returns an error wrapping
// net.ErrClosed after Close.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("xenstoretest: serve: %w", net.ErrClosed)
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	for {
		rwc, err := l.Accept()
		if err != nil {
			return fmt.Errorf("xenstoretest: accept: %w", err)
		}
		if _, err := s.start(rwc, 0, true); err != nil {
			rwc.Close()
			return err
		}
	}
}

// Close stops every listener and connection and waits for the server's
// goroutines. The node tree is discarded.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	s.wg.Wait()
	return nil
}

// Connect returns an in-memory connection to the server as domain dom:
// dom0 is privileged; any other domain must have been introduced
// (XS_INTRODUCE), else the error wraps ErrNotIntroduced. The connection
// is closed when the domain is released or disappears.
func (s *Server) Connect(dom uint32) (net.Conn, error) {
	s.mu.Lock()
	_, ok := s.domains[dom]
	s.mu.Unlock()
	if dom != 0 && !ok {
		return nil, fmt.Errorf("xenstoretest: connect as domain %d: %w", dom, ErrNotIntroduced)
	}
	client, server := net.Pipe()
	if _, err := s.start(server, dom, dom == 0); err != nil {
		client.Close()
		server.Close()
		return nil, err
	}
	return client, nil
}

// Client returns a *xenstore.Client on a new Connect(dom) connection.
func (s *Server) Client(dom uint32) (*xenstore.Client, error) {
	c, err := s.Connect(dom)
	if err != nil {
		return nil, err
	}
	return xenstore.NewClient(c, nil), nil
}

// domidFirstReserved is DOMID_FIRST_RESERVED: ids from it on name no
// domain (DOMID_SELF, DOMID_IO, ...).
const domidFirstReserved = 0x7ff0

// domainExists reports whether dom exists, per Config.Domains; s.mu is
// held. Dom0 always does, a reserved id never.
func (s *Server) domainExists(dom uint32) bool {
	switch {
	case dom >= domidFirstReserved:
		return false
	case s.cfg.Domains == nil || dom == 0:
		return true
	}
	exists, _ := s.cfg.Domains.DomainState(dom)
	return exists
}

// DomainChanged re-checks every introduced domain against Config.Domains,
// as cxenstored does on VIRQ_DOM_EXC. A domain that became shut down since
// the last check (or since XS_RESUME) fires @releaseDomain once; a domain
// that no longer exists fires @releaseDomain and is forgotten.
func (s *Server) DomainChanged() {
	if s.cfg.Domains == nil {
		return
	}
	s.mu.Lock()
	var gone []uint32
	fire := false
	for id, d := range s.domains {
		exists, shutdown := s.cfg.Domains.DomainState(id)
		switch {
		case !exists:
			gone = append(gone, id)
			fire = true
		case shutdown && !d.shutdown:
			d.shutdown = true
			fire = true
		}
	}
	var drop []*conn
	for _, id := range gone {
		drop = append(drop, s.forgetDomain(id)...)
	}
	// Domains named in permissions but never introduced: cxenstored
	// forgets them too when they no longer exist.
	exists := map[uint32]bool{}
	missing := func(dom uint32) bool {
		e, seen := exists[dom]
		if !seen {
			e = s.domainExists(dom)
			exists[dom] = e
		}
		return !e
	}
	s.ignoreEntries(missing)
	s.removeOwned(missing)
	s.dropFromSpecial(missing)
	if fire {
		s.fireSpecial("@releaseDomain")
	}
	s.mu.Unlock()
	for _, c := range drop {
		c.close()
	}
}

// forgetDomain drops dom and returns its connections for closing outside
// the lock. Called with s.mu held.
func (s *Server) forgetDomain(dom uint32) []*conn {
	delete(s.domains, dom)
	s.ignoreEntries(func(d uint32) bool { return d == dom })
	s.removeOwned(func(d uint32) bool { return d == dom })
	s.dropFromSpecial(func(d uint32) bool { return d == dom })
	var cs []*conn
	for c := range s.conns {
		if c.dom == dom && !c.priv {
			cs = append(cs, c)
		}
	}
	return cs
}

// ignoreEntries marks the non-owner permission entries naming a domain
// for which gone reports true as ignored, in the tree and in the open
// transactions' copies of it. Called with s.mu held.
func (s *Server) ignoreEntries(gone func(dom uint32) bool) {
	mark := func(_ string, n *node) { n.ignore(gone) }
	s.root.walk("/", mark)
	for c := range s.conns {
		for _, t := range c.txs {
			t.root.walk("/", mark)
		}
	}
}

// removeOwned deletes the nodes owned by a domain for which gone reports
// true, with their subtrees, firing watches as RM does: cxenstored
// removes a domain's orphaned nodes when it forgets the domain
// (domain_tree_remove; its -K option, keeping them, is not modelled).
// Called with s.mu held.
func (s *Server) removeOwned(gone func(dom uint32) bool) {
	var orphans []string
	s.root.walk("/", func(p string, n *node) {
		if p == "/" || !gone(n.perms[0].Dom) {
			return
		}
		for _, o := range orphans {
			if isAncestorOrSelf(o, p) {
				return // removed with o
			}
		}
		orphans = append(orphans, p)
	})
	v := &view{s: s, root: s.root}
	for _, p := range orphans {
		v.unlink(p, lookup(s.root, parentPath(p)), lookup(s.root, p))
	}
}

// dropFromSpecial removes the entries naming a domain for which gone
// reports true from the special nodes' permissions, and gives a special
// node such a domain owned to dom0, as cxenstored does when it forgets a
// domain (remove_domid_from_perm). Called with s.mu held.
func (s *Server) dropFromSpecial(gone func(dom uint32) bool) {
	drop := func(perms []xenstore.Perm) []xenstore.Perm {
		if perms == nil {
			return nil
		}
		out := []xenstore.Perm{perms[0]}
		if gone(out[0].Dom) {
			out[0].Dom = 0
		}
		for _, p := range perms[1:] {
			if !gone(p.Dom) {
				out = append(out, p)
			}
		}
		return out
	}
	for _, n := range s.special {
		n.perms, n.live = drop(n.perms), drop(n.live)
	}
}

func (s *Server) start(rwc net.Conn, dom uint32, priv bool) (*conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("xenstoretest: %w", net.ErrClosed)
	}
	c := &conn{s: s, rwc: rwc, dom: dom, priv: priv, txs: map[uint32]*tx{}, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	s.conns[c] = struct{}{}
	s.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
	return c, nil
}
