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
	perms    []xenstore.Perm
	children []*node
	gen      uint64 // changes whenever the children list changes
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
