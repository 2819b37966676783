// Package treespec builds file trees for tests from compact one-line specs,
// in the style of filepath-securejoin's pathrs-lite test trees, and hashes
// trees so a test can prove a directory was left unchanged.
//
// It is a normal package (not a _test file) so the tests of every package
// (vfs, distro, cacerts) can share it. It is test tooling: it trusts the
// specs it is given and creates entries with ordinary host path calls, so
// never point it at a tree an untrusted party controls.
//
// # Spec lines
//
// One entry per line, fields separated by blanks; parents are created as
// 0755 directories when missing:
//
//	dir a/b                      directory
//	file a/b/c some content      regular file; the rest of the line is the
//	                             content ("" for empty, a Go-quoted string
//	                             for escapes: file x "a\nb\n")
//	symlink e -> /b/c/d/e        symbolic link ("symlink e /b/c/d/e" also works)
//	hardlink h -> a/b/c          hard link to an entry created earlier
//	fifo f                       named pipe
//	sock s                       unix socket
//	char g 0 0                   character device (0 0 is an overlay whiteout)
//	block k 7 0                  block device
//	whiteout w                   same as "char w 0 0"
//	xwhiteout w                  empty file with overlay.whiteout set (the
//	                             xattr whiteout format; its parent needs
//	                             "opaque dir x")
//	opaque d                     directory with trusted.overlay.opaque=y
//	opaque d x                   ... with the value "x" (holds xattr whiteouts)
//
// Trailing options, any order, after the fields above:
//
//	mode=0640                    permission bits (octal) set after creation
//	owner=1000:1000              lchown
//	mtime=1700000000.123456789   lutimes, seconds.nanoseconds (also atime);
//	                             applied after all lines so that creating
//	                             children does not change a directory's mtime
//	xattr=user.k=v               lsetxattr (repeatable)
//	user                         opaque/xwhiteout use user.overlay.* instead
//	                             of trusted.overlay.* (userxattr, rootless)
//
// Creating devices, setting owners and trusted.* xattrs needs root; callers
// skip such specs with testenv.RequiresRoot.
package treespec

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Build creates the entries described by specs under root (created if
// missing) and fails t on any error.
func Build(t testing.TB, root string, specs ...string) {
	t.Helper()
	if err := Apply(root, specs...); err != nil {
		t.Fatal(err)
	}
}

// Layers builds one directory per layer under base (named l0, l1, ...) and
// returns their paths, layers[0] first. Callers pass them to overlay's
// lowerdir in the order they want (overlay lists the topmost first).
func Layers(t testing.TB, base string, layers ...[]string) []string {
	t.Helper()
	var dirs []string
	for i, specs := range layers {
		d := filepath.Join(base, "l"+strconv.Itoa(i))
		Build(t, d, specs...)
		dirs = append(dirs, d)
	}
	return dirs
}

type pendingTime struct {
	path string
	ts   []unix.Timespec
}

// Apply creates the entries described by specs under root (created if
// missing). It stops at the first bad spec or failed call.
func Apply(root string, specs ...string) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	var times []pendingTime
	for _, spec := range specs {
		pt, err := applyOne(root, spec)
		if err != nil {
			return fmt.Errorf("spec %q: %w", spec, err)
		}
		if pt != nil {
			times = append(times, *pt)
		}
	}
	// Deepest first, so a parent's time is set after its children.
	sort.SliceStable(times, func(i, j int) bool {
		return strings.Count(times[i].path, "/") > strings.Count(times[j].path, "/")
	})
	for _, pt := range times {
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, pt.path, pt.ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("mtime %s: %w", pt.path, err)
		}
	}
	return nil
}

type options struct {
	mode   *uint32
	uid    int
	gid    int
	owner  bool
	mtime  *unix.Timespec
	xattrs [][2]string
	user   bool
}

// splitOptions peels known trailing options off fields.
func splitOptions(fields []string) ([]string, options, error) {
	var o options
	for len(fields) > 0 {
		f := fields[len(fields)-1]
		k, v, _ := strings.Cut(f, "=")
		switch {
		case f == "user":
			o.user = true
		case k == "mode":
			m, err := strconv.ParseUint(v, 8, 32)
			if err != nil {
				return nil, o, fmt.Errorf("mode %q: %w", v, err)
			}
			mm := uint32(m)
			o.mode = &mm
		case k == "owner":
			u, g, ok := strings.Cut(v, ":")
			if !ok {
				return nil, o, fmt.Errorf("owner %q: want uid:gid", v)
			}
			var err1, err2 error
			o.uid, err1 = strconv.Atoi(u)
			o.gid, err2 = strconv.Atoi(g)
			if err := errors.Join(err1, err2); err != nil {
				return nil, o, fmt.Errorf("owner %q: %w", v, err)
			}
			o.owner = true
		case k == "mtime":
			ts, err := parseTime(v)
			if err != nil {
				return nil, o, err
			}
			o.mtime = &ts
		case k == "xattr":
			name, val, ok := strings.Cut(v, "=")
			if !ok {
				return nil, o, fmt.Errorf("xattr %q: want name=value", v)
			}
			o.xattrs = append(o.xattrs, [2]string{name, val})
		default:
			return fields, o, nil
		}
		fields = fields[:len(fields)-1]
	}
	return fields, o, nil
}

func parseTime(v string) (unix.Timespec, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return unix.NsecToTimespec(t.UnixNano()), nil
	}
	s, ns, _ := strings.Cut(v, ".")
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return unix.Timespec{}, fmt.Errorf("mtime %q: %w", v, err)
	}
	var nsec int64
	if ns != "" {
		ns = (ns + "000000000")[:9]
		if nsec, err = strconv.ParseInt(ns, 10, 64); err != nil {
			return unix.Timespec{}, fmt.Errorf("mtime %q: %w", v, err)
		}
	}
	return unix.Timespec{Sec: sec, Nsec: nsec}, nil
}

func overlayXattr(user bool, name string) string {
	if user {
		return "user.overlay." + name
	}
	return "trusted.overlay." + name
}

func applyOne(root, spec string) (*pendingTime, error) {
	kind, rest, _ := strings.Cut(strings.TrimSpace(spec), " ")
	rest = strings.TrimSpace(rest)
	var content string
	var fields []string
	if kind == "file" {
		// file PATH CONTENT... [options]; content may be Go-quoted.
		name, after, _ := strings.Cut(rest, " ")
		after = strings.TrimSpace(after)
		if strings.HasPrefix(after, `"`) {
			q, err := strconv.QuotedPrefix(after)
			if err != nil {
				return nil, fmt.Errorf("content: %w", err)
			}
			if content, err = strconv.Unquote(q); err != nil {
				return nil, fmt.Errorf("content: %w", err)
			}
			after = strings.TrimSpace(after[len(q):])
			f, o, err := splitOptions(strings.Fields(after))
			if err != nil {
				return nil, err
			}
			if len(f) != 0 {
				return nil, fmt.Errorf("text after quoted content: %q", f)
			}
			return create(root, kind, name, nil, content, o)
		}
		f, o, err := splitOptions(strings.Fields(after))
		if err != nil {
			return nil, err
		}
		// Keep the original spacing of the content up to the options.
		content = after
		if n := len(f); n > 0 {
			idx := 0
			for i := 0; i < n; i++ {
				j := strings.Index(after[idx:], f[i])
				idx += j + len(f[i])
			}
			content = after[:idx]
		} else {
			content = ""
		}
		return create(root, kind, name, nil, content, o)
	}
	fields = strings.Fields(rest)
	fields, o, err := splitOptions(fields)
	if err != nil {
		return nil, err
	}
	if len(fields) == 0 {
		return nil, errors.New("missing path")
	}
	return create(root, kind, fields[0], fields[1:], "", o)
}

func create(root, kind, name string, args []string, content string, o options) (*pendingTime, error) {
	if name == "" {
		return nil, errors.New("missing path")
	}
	p := filepath.Join(root, filepath.Clean("/"+name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, err
	}
	var err error
	switch kind {
	case "dir":
		err = os.MkdirAll(p, 0o755)
	case "opaque":
		if err = os.MkdirAll(p, 0o755); err == nil {
			val := "y"
			if len(args) > 0 {
				val = args[0]
			}
			err = unix.Lsetxattr(p, overlayXattr(o.user, "opaque"), []byte(val), 0)
		}
	case "file":
		err = os.WriteFile(p, []byte(content), 0o644)
	case "xwhiteout":
		if err = os.WriteFile(p, nil, 0o644); err == nil {
			err = unix.Lsetxattr(p, overlayXattr(o.user, "whiteout"), []byte("y"), 0)
		}
	case "symlink", "hardlink":
		if len(args) > 0 && args[0] == "->" {
			args = args[1:]
		}
		if len(args) != 1 {
			return nil, fmt.Errorf("%s wants one target", kind)
		}
		if kind == "symlink" {
			err = os.Symlink(args[0], p)
		} else {
			err = os.Link(filepath.Join(root, filepath.Clean("/"+args[0])), p)
		}
	case "fifo":
		err = unix.Mkfifo(p, 0o644)
	case "sock":
		var l *net.UnixListener
		l, err = net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
		if err == nil {
			l.SetUnlinkOnClose(false)
			err = l.Close()
		}
	case "char", "block", "whiteout":
		maj, min := uint64(0), uint64(0)
		if kind != "whiteout" {
			if len(args) != 2 {
				return nil, fmt.Errorf("%s wants major minor", kind)
			}
			var e1, e2 error
			maj, e1 = strconv.ParseUint(args[0], 10, 32)
			min, e2 = strconv.ParseUint(args[1], 10, 32)
			if err := errors.Join(e1, e2); err != nil {
				return nil, err
			}
		}
		typ := uint32(unix.S_IFCHR)
		if kind == "block" {
			typ = unix.S_IFBLK
		}
		err = unix.Mknod(p, typ|0o644, int(unix.Mkdev(uint32(maj), uint32(min))))
	default:
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	if err != nil {
		return nil, err
	}
	if o.mode != nil {
		if err := unix.Fchmodat(unix.AT_FDCWD, p, *o.mode, 0); err != nil && kind != "symlink" {
			return nil, err
		}
	}
	for _, x := range o.xattrs {
		if err := unix.Lsetxattr(p, x[0], []byte(x[1]), 0); err != nil {
			return nil, fmt.Errorf("xattr %s: %w", x[0], err)
		}
	}
	if o.owner {
		if err := os.Lchown(p, o.uid, o.gid); err != nil {
			return nil, err
		}
	}
	if o.mtime != nil {
		return &pendingTime{path: p, ts: []unix.Timespec{*o.mtime, *o.mtime}}, nil
	}
	return nil, nil
}
