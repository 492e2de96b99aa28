package xenstoretest

import (
	"strings"

	"github.com/xenckpt/xenckpt/xenstore"
)

// node is one xenstore node. Children keep insertion order, as in
// cxenstored.
type node struct {
	name     string
	value    []byte
	perms    []xenstore.Perm // as GET_PERMS lists them
	live     []xenstore.Perm // perms without ignored entries; nil: all count
	children []*node
	gen      uint64 // changes whenever the children list changes
}

// access returns the permission entries that count in access checks.
// cxenstored (4.17) marks a non-owner entry XS_PERM_IGNORE, for good,
// when SET_PERMS names a domain that does not exist, and when the domain
// it names goes away (XS_RELEASE, or destroyed), so that a later domain
// with the same id inherits nothing; GET_PERMS still lists such entries.
func (n *node) access() []xenstore.Perm {
	if n.live != nil {
		return n.live
	}
	return n.perms
}

// ignore marks the non-owner entries naming a domain for which gone
// reports true as ignored.
func (n *node) ignore(gone func(dom uint32) bool) {
	cur := n.access()
	var kept []xenstore.Perm
	for i, p := range cur {
		if i > 0 && gone(p.Dom) {
			if kept == nil {
				kept = append(make([]xenstore.Perm, 0, len(cur)), cur[:i]...)
			}
			continue
		}
		if kept != nil {
			kept = append(kept, p)
		}
	}
	if kept != nil {
		n.live = kept
	}
}

// inherit returns the permissions of a new child of n: n's, ignored
// entries included, owned by owner when set.
func (n *node) inherit(owner *uint32) (perms, live []xenstore.Perm) {
	perms = append([]xenstore.Perm(nil), n.perms...)
	if n.live != nil {
		live = append([]xenstore.Perm(nil), n.live...)
	}
	if owner != nil {
		perms[0].Dom = *owner
		if live != nil {
			live[0].Dom = *owner
		}
	}
	return perms, live
}

func (n *node) child(name string) *node {
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (n *node) removeChild(name string) {
	for i, c := range n.children {
		if c.name == name {
			n.children = append(n.children[:i:i], n.children[i+1:]...)
			return
		}
	}
}

func (n *node) clone() *node {
	c := &node{
		name:  n.name,
		value: n.value,
		perms: n.perms,
		live:  n.live,
		gen:   n.gen,
	}
	if len(n.children) > 0 {
		c.children = make([]*node, len(n.children))
		for i, ch := range n.children {
			c.children[i] = ch.clone()
		}
	}
	return c
}

// walk calls fn for n and every descendant, with their paths.
func (n *node) walk(path string, fn func(path string, n *node)) {
	fn(path, n)
	for _, c := range n.children {
		c.walk(joinPath(path, c.name), fn)
	}
}

func joinPath(parent, name string) string {
	if parent == "/" {
		return "/" + name
	}
	return parent + "/" + name
}

// splitPath turns "/a/b" into ["a", "b"]; "/" into nil.
func splitPath(p string) []string {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func parentPath(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// lookup returns the node at the absolute path p, or nil.
func lookup(root *node, p string) *node {
	n := root
	for _, name := range splitPath(p) {
		if n = n.child(name); n == nil {
			return nil
		}
	}
	return n
}

// nearest returns the deepest existing node on the way to p.
func nearest(root *node, p string) *node {
	n := root
	for _, name := range splitPath(p) {
		c := n.child(name)
		if c == nil {
			return n
		}
		n = c
	}
	return n
}

// isAncestorOrSelf reports whether p is a or lies below a.
func isAncestorOrSelf(a, p string) bool {
	if a == p || a == "/" {
		return true
	}
	return strings.HasPrefix(p, a) && len(p) > len(a) && p[len(a)] == '/'
}
