package vfs

import (
	"strings"
	"sync"
)

// maxCachedDirs bounds the directory handles an FS keeps between calls.
const maxCachedDirs = 256

// dirCache keeps, for directories walks have reached, the chain of frames
// from the container's root to them, keyed by the directory's canonical
// container path. A walk from the root whose leading components are plain
// names starts from the longest cached prefix instead of opening every
// component again: the etc/ssl/certs of every journal call is walked once
// per FS.
//
// A chain is canonical (each frame is a real directory entry, never a
// symlink), so a lexical prefix of a path that names a cached key resolves
// to that chain as long as the tree has not changed. The FS's own writes
// keep it true: creations add names, WriteFile replaces regular files only,
// and Remove forgets a removed directory and everything under it. Changes
// made by something else (a container run on the tree) need Invalidate.
//
// The handles stay confined whatever happens to the tree: each was opened
// by a confined walk, and a walk from one looks up a single name under it
// as any walk does. A stale handle can at worst name a directory that moved
// elsewhere in the container, or was removed.
type dirCache struct {
	mu     sync.Mutex
	stacks map[string][]frame
	held   []*node // handles the cache took over from walkers; closed by FS.Close
}

func newDirCache() *dirCache { return &dirCache{stacks: map[string][]frame{}} }

// put keeps the walker's stack for its top frame, a directory. Handles the
// walker owned pass to the cache (the walker no longer closes them).
func (c *dirCache) put(stack []frame) {
	top := stack[len(stack)-1]
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.stacks[top.path]; ok {
		return
	}
	owned := 0
	for _, f := range stack {
		if f.n == nil {
			return // a directory on the way to a mount, not there yet
		}
		if f.n.owned {
			owned++
		}
	}
	if len(c.held)+owned > maxCachedDirs {
		return
	}
	for _, f := range stack {
		if f.n.owned {
			f.n.owned = false
			c.held = append(c.held, f.n)
		}
	}
	c.stacks[top.path] = append([]frame(nil), stack...)
}

// seed gives the cached stack of the longest prefix of comps (all of them,
// or all but the last with keepLast) made only of plain names, and the
// components left to walk; ok is false when nothing is cached for them.
func (c *dirCache) seed(comps []string, keepLast bool) (stack []frame, rest []string, ok bool) {
	limit := len(comps)
	if keepLast {
		limit--
	}
	k := 0
	for k < limit && comps[k] != "." && comps[k] != ".." {
		k++
	}
	if k == 0 {
		return nil, comps, false
	}
	key := "/" + strings.Join(comps[:k], "/")
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.stacks) == 0 {
		return nil, comps, false
	}
	for ; k > 0; k-- {
		if st, ok := c.stacks[key]; ok {
			return st, comps[k:], true
		}
		key = key[:len(key)-len(comps[k-1])-1]
	}
	return nil, comps, false
}

// forget drops the chains of p and of every directory under it. Their
// handles stay open until Close: a concurrent walk may be using them.
func (c *dirCache) forget(p string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	prefix := childPath(p, "")
	for k := range c.stacks {
		if k == p || strings.HasPrefix(k, prefix) {
			delete(c.stacks, k)
		}
	}
}

// forgetAll drops every chain.
func (c *dirCache) forgetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.stacks)
}

// close releases every handle the cache holds.
func (c *dirCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.held {
		n.owned = true
		n.close()
	}
	c.held = nil
	clear(c.stacks)
}

// Invalidate forgets the directory handles the FS keeps between calls, so
// the next calls walk the tree as it is now. Call it after something other
// than this FS changed the tree's directories or symlinks (a container ran
// on it); the FS's own writes need no call.
func (fsys *FS) Invalidate() {
	if fsys.cache != nil {
		fsys.cache.forgetAll()
	}
}
