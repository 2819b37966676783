package vfs

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/moby/sys/mountinfo"
)

// ErrNoUpper is the error ChangesOf returns when the root's writes are not
// kept in an overlay upper directory it can find (a plain bind of a
// snapshot directory, a native snapshotter): the caller falls back to
// another way of finding what an exec wrote.
var ErrNoUpper = errors.New("root is not an overlay with an upper directory")

// Changes locates what an exec wrote to its root: the overlay's upper
// directory (every entry the exec created or changed, and its whiteouts)
// and the layers below it (the root as it was before the exec). Both are
// specs for New, read-only: an upper directory must never be written while
// its overlay is mounted (writes go through the root).
type Changes struct {
	// Upper is a read-only bind of the upper directory.
	Upper Spec
	// Base is a read-only, lowerdir-only overlay of the layers under the
	// upper directory (New reads it layer by layer), or a zero Spec when
	// the overlay has no lower layer.
	Base Spec
	// UserXattr is set when the overlay uses user.overlay.* xattrs.
	UserXattr bool
}

// ChangesOf finds the upper directory of root, the container's root spec:
// the upperdir option of a raw overlay spec, or, for a bind of a mounted
// overlay (BuildKit's pooled root reaches executors as a bind of its mount
// pool entry), the super options of that mount in /proc/self/mountinfo.
// The spec's sources are the engine's, trusted; the image can neither name
// nor move them. Anything else gives an error matching ErrNoUpper.
func ChangesOf(root Spec) (Changes, error) {
	if len(root.Mounts) != 1 || root.Selector != "" {
		return Changes{}, fmt.Errorf("%w: %d mounts in the root spec", ErrNoUpper, len(root.Mounts))
	}
	m := root.Mounts[0]
	var opts []string
	switch m.Type {
	case "overlay":
		opts = m.Options
	case "bind", "rbind":
		src, err := filepath.EvalSymlinks(m.Source)
		if err != nil {
			return Changes{}, fmt.Errorf("%w: %w", ErrNoUpper, err)
		}
		infos, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(src))
		if err != nil {
			return Changes{}, fmt.Errorf("reading the mount table: %w", err)
		}
		if len(infos) == 0 {
			return Changes{}, fmt.Errorf("%w: %s is not a mount point", ErrNoUpper, src)
		}
		top := infos[len(infos)-1] // the last mounted is the one seen
		if top.FSType != "overlay" {
			return Changes{}, fmt.Errorf("%w: %s is a %s mount", ErrNoUpper, src, top.FSType)
		}
		opts = splitSuperOptions(top.VFSOptions)
	default:
		return Changes{}, fmt.Errorf("%w: a %s mount", ErrNoUpper, m.Type)
	}
	return changesFromOptions(opts)
}

// changesFromOptions builds Changes from overlay mount options.
func changesFromOptions(opts []string) (Changes, error) {
	var c Changes
	var upper string
	var lowers []string
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "upperdir":
			upper = v
		case "lowerdir":
			lowers = append(lowers, splitLowerdir(v)...)
		case "lowerdir+":
			lowers = append(lowers, v)
		case "userxattr":
			c.UserXattr = true
		}
	}
	if upper == "" || !filepath.IsAbs(upper) {
		return Changes{}, fmt.Errorf("%w: no upperdir option", ErrNoUpper)
	}
	c.Upper = Spec{Dest: "/", Readonly: true, Mounts: []mount.Mount{{Type: "bind", Source: upper, Options: []string{"rbind", "ro"}}}}
	if len(lowers) > 0 {
		esc := make([]string, len(lowers))
		for i, l := range lowers {
			esc[i] = strings.ReplaceAll(strings.ReplaceAll(l, `\`, `\\`), ":", `\:`)
		}
		o := []string{"lowerdir=" + strings.Join(esc, ":")}
		if c.UserXattr {
			o = append(o, "userxattr")
		}
		c.Base = Spec{Dest: "/", Readonly: true, Mounts: []mount.Mount{{Type: "overlay", Source: "overlay", Options: o}}}
	}
	return c, nil
}

// splitSuperOptions splits the super options field of a mountinfo line
// on commas that are not escaped (overlay escapes a comma in a path as
// "\,").
func splitSuperOptions(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == ',':
			cur.WriteByte(',')
			i++
		case s[i] == ',':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(out, cur.String())
}
