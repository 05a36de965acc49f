package lint

import (
	"io/fs"
	"strings"

	"github.com/moatcloud/moat/internal/image/ldso"
)

// entry is what a layer says about one path.
type entry struct {
	mode    fs.FileMode
	link    string       // hardlink target as an absolute path, "" if not a hardlink
	symlink string       // symlink target, verbatim
	elf     *ldso.Object // what an ELF file holds for the loader
	data    []byte       // the content of a file named ld.so.cache
}

// node is one path in an image's merged file tree. Directories that no layer
// listed but whose children exist have a nil entry.
type node struct {
	entry *entry
	kids  map[string]*node
}

// components splits a clean absolute path into its names; "/" has none.
func components(p string) []string {
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

// lookup returns the node at the clean absolute path p, or nil.
func (n *node) lookup(p string) *node {
	for _, name := range components(p) {
		n = n.kids[name]
		if n == nil {
			return nil
		}
	}
	return n
}

// put records e at p, creating parents as needed. Like containerd and Docker
// when they apply a layer, anything but a directory replaces what was at p
// along with everything under it; a directory over a directory merges.
func (n *node) put(p string, e entry) {
	for _, name := range components(p) {
		if n.kids == nil {
			n.kids = make(map[string]*node)
		}
		next := n.kids[name]
		if next == nil {
			next = &node{}
			n.kids[name] = next
		}
		n = next
	}
	if !e.mode.IsDir() {
		n.kids = nil
	}
	n.entry = &e
}

// remove deletes p and everything under it.
func (n *node) remove(p string) {
	names := components(p)
	if len(names) == 0 {
		return
	}
	parent := n
	for _, name := range names[:len(names)-1] {
		parent = parent.kids[name]
		if parent == nil {
			return
		}
	}
	delete(parent.kids, names[len(names)-1])
}

// clear deletes everything under the directory p, keeping p itself.
func (n *node) clear(p string) {
	if d := n.lookup(p); d != nil {
		d.kids = nil
	}
}

// walk calls fn for every node below n that has an entry, with its path. It
// uses an explicit stack so that hostile, deeply nested paths cannot exhaust
// the goroutine stack.
func (n *node) walk(fn func(p string, e *entry)) {
	type item struct {
		path string
		node *node
	}
	stack := []item{{"", n}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if it.node.entry != nil && it.path != "" {
			fn(it.path, it.node.entry)
		}
		for name, kid := range it.node.kids {
			stack = append(stack, item{it.path + "/" + name, kid})
		}
	}
}

// maxLinkHops bounds how far mode follows chains of hardlinks.
const maxLinkHops = 16

// mode returns the mode of e as the running image sees it: a hardlink shares
// its target's inode and so its mode. If the target is gone from the tree,
// the hardlink's own header mode is all there is to go on.
func (n *node) mode(e *entry) fs.FileMode { return n.inode(e).mode }

// inode returns the entry that holds e's mode and content: e, or for a
// hardlink, its target's, as long as the target is in the tree.
func (n *node) inode(e *entry) *entry {
	for range maxLinkHops {
		if e.link == "" {
			return e
		}
		t := n.lookup(e.link)
		if t == nil || t.entry == nil {
			return e
		}
		e = t.entry
	}
	return e
}
