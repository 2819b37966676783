package treespec

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Snapshot describes every entry under root (root included, as ".") by its
// type, permission bits, owner, size, rdev, mtime in nanoseconds, xattrs,
// link target and a SHA-256 of regular files' content. It never follows a
// symlink and never opens anything but regular files and directories.
// The map is keyed by slash-separated paths relative to root.
func Snapshot(root string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		desc, err := Describe(p)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = desc
		return nil
	})
	return out, err
}

// Describe returns the one-line description Snapshot uses for one entry.
// Directory mtimes are included, so adding or removing a child shows.
func Describe(p string) (string, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "type=%o perm=%o owner=%d:%d mtime=%d.%09d",
		st.Mode&unix.S_IFMT, st.Mode&0o7777, st.Uid, st.Gid, st.Mtim.Sec, st.Mtim.Nsec)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		sum, err := fileSum(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, " size=%d sha256=%s nlink=%d", st.Size, sum, st.Nlink)
	case unix.S_IFLNK:
		target, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, " target=%q", target)
	case unix.S_IFCHR, unix.S_IFBLK:
		fmt.Fprintf(&b, " rdev=%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	xs, err := xattrs(p)
	if err != nil {
		return "", err
	}
	for _, x := range xs {
		b.WriteString(" xattr=")
		b.WriteString(x)
	}
	return b.String(), nil
}

func fileSum(p string) (string, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func xattrs(p string) ([]string, error) {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err == unix.ENOTSUP || err == unix.EOPNOTSUPP {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listxattr %s: %w", p, err)
	}
	var out []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			return nil, fmt.Errorf("getxattr %s %s: %w", p, name, err)
		}
		out = append(out, fmt.Sprintf("%s=%q", name, v[:m]))
	}
	sort.Strings(out)
	return out, nil
}

// Diff lists the differences between two snapshots, one line per path.
func Diff(before, after map[string]string) []string {
	var out []string
	for k, v := range before {
		w, ok := after[k]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("removed %s (%s)", k, v))
		case v != w:
			out = append(out, fmt.Sprintf("changed %s: %s -> %s", k, v, w))
		}
	}
	for k, w := range after {
		if _, ok := before[k]; !ok {
			out = append(out, fmt.Sprintf("added %s (%s)", k, w))
		}
	}
	sort.Strings(out)
	return out
}

// Canary is a snapshot of a tree taken when it was made; Check fails the
// test when the tree changed since.
type Canary struct {
	Root   string
	before map[string]string
}

// NewCanary snapshots root (which must exist) for a later Check.
func NewCanary(t testing.TB, root string) *Canary {
	t.Helper()
	s, err := Snapshot(root)
	if err != nil {
		t.Fatalf("canary snapshot: %v", err)
	}
	return &Canary{Root: root, before: s}
}

// Check fails t, listing the differences, when the tree changed.
func (c *Canary) Check(t testing.TB) {
	t.Helper()
	after, err := Snapshot(c.Root)
	if err != nil {
		t.Fatalf("canary snapshot: %v", err)
	}
	if d := Diff(c.before, after); len(d) > 0 {
		t.Errorf("canary tree %s changed:\n%s", c.Root, strings.Join(d, "\n"))
	}
}
