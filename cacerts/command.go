package cacerts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/moby/buildkit/util/bklog"
	"github.com/sirupsen/logrus"

	"github.com/buildkit-cacerts/buildkit-cacerts/distro"
)

// Snapshot limits for the command path.
const (
	maxWatchEntries = 20000
	maxWatchDepth   = 4
	maxWatchData    = 64 << 20
)

// applyCommand writes our anchors (one per CA, or the combined one) into
// the layout's anchor directory and runs the update tool through the
// Runner. Everything the tool may rewrite (the generated directories, the
// hash directory, the bundles, the Java stores, the anchor directory) is
// snapshotted before and after, so revert restores it without the tool.
func (p *Plan) applyCommand(ctx context.Context, fsys FS, j *Journal) error {
	l := p.d.Layout
	watch := []string{l.AnchorDir}
	watch = append(watch, l.Generated...)
	if l.HashDir != "" {
		watch = append(watch, l.HashDir)
	}
	for _, b := range l.Bundles {
		watch = append(watch, path.Dir(b.Path), b.Path)
	}
	for _, s := range l.Java {
		watch = append(watch, path.Dir(s), s)
	}
	roots := watchRoots(fsys, watch, maxWatchDepth, true)
	if l.Family == distro.FamilyDebian {
		for _, ts := range debianToolState {
			for _, r := range watchRoots(fsys, []string{ts.path}, ts.depth, false) {
				r.optional = ts.optional
				roots = append(roots, r)
			}
		}
	}
	before, err := snapshot(fsys, roots, true)
	if err != nil {
		return err
	}
	if l.Family == distro.FamilyDebian {
		j.watchPackageDir(fsys, l.AnchorDir, dpkgInstalled)
	}
	if err := j.mkdirAll(fsys, l.AnchorDir); err != nil {
		return err
	}
	for _, f := range p.anchorFiles() {
		anchor := path.Join(l.AnchorDir, f.name+l.AnchorExt)
		if _, err := j.writeFile(fsys, anchor, f.data(), 0o644, f.blocks()); err != nil {
			return err
		}
		j.markOurs(anchor, f.name+".pem")
	}
	out, runErr := runTool(ctx, fsys, p.x.Runner, p.argv)
	// Journal the tool's changes whether it succeeded or not: a failed tool
	// may have written half, and the rollback must undo that too.
	after, err := snapshot(fsys, roots, false)
	if err != nil {
		return errors.Join(runErr, err)
	}
	j.adoptChanges(fsys, diffSnapshots(before, after, p.ourPEMs()), before, after)
	if l.HashDir != "" {
		j.scanForLinks(l.HashDir)
	}
	if runErr != nil {
		return &ToolError{Argv: p.argv, Output: out, Err: runErr}
	}
	bklog.G(ctx).WithFields(logrus.Fields{"argv": strings.Join(p.argv, " ")}).Debugf("update tool output: %s", tailOf(out, 4096))
	return nil
}

// ToolError is the error of the command path's update tool: it could not
// run, timed out or exited non-zero (Err). Output is what it printed
// (capped by the Runner); the error's text ends with its last 4 KiB.
type ToolError struct {
	Argv   []string
	Output []byte
	Err    error
}

// Error names the command, the failure and the tail of its output.
func (e *ToolError) Error() string {
	return fmt.Sprintf("running %s: %v; output:\n%s", strings.Join(e.Argv, " "), e.Err, tailOf(e.Output, 4096))
}

// Unwrap returns Err.
func (e *ToolError) Unwrap() error { return e.Err }

// runTool runs argv through r and, since the tool changed the tree behind
// fsys's back, makes fsys forget what it remembers of directories: the one
// place that runs a tool also invalidates what it changed.
func runTool(ctx context.Context, fsys FS, r Runner, argv []string) ([]byte, error) {
	out, err := r.Run(ctx, argv)
	fsys.Invalidate()
	return out, err
}

// tailOf returns at most n trailing bytes of out as text.
func tailOf(out []byte, n int) string {
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return string(out)
}

// watchRoot is a path whose entries a snapshot records, down to depth.
type watchRoot struct {
	path  string
	depth int
	// optional roots are skipped, not an error, when they hold more than
	// maxOptionalEntries entries.
	optional bool
}

// maxOptionalEntries caps an optional watch root (a busy /tmp).
const maxOptionalEntries = 1000

// debianToolState are the paths outside the trust store that one run of
// Debian's update-ca-certificates changes: its mktemp files come and go in
// /tmp; ca-certificates-java's jks-keystore hook appends to
// /var/lib/ca-certificates-java/pending, activates a dpkg trigger and runs
// `dpkg --triggers-only --pending`, which rewrites dpkg's status (keeping
// status-old), touches its locks and trigger files and logs to
// /var/log/dpkg.log. Revert puts back exactly what was there — it never
// writes anything new there — and keeps whatever the process changed. This
// extends docs/design.md invariant 6 to the update tool's own bookkeeping.
var debianToolState = []struct {
	path     string
	depth    int
	optional bool
}{
	{"/tmp", 1, true}, // mktemp files; a JVM run by a hook leaves /tmp/hsperfdata_root
	{"/var/lib", 0, false},
	{"/var/lib/ca-certificates-java", 1, false},
	{"/var/lib/dpkg", 0, false},
	{"/var/lib/dpkg/status", 0, false},
	{"/var/lib/dpkg/status-old", 0, false},
	{"/var/lib/dpkg/lock", 0, false},
	{"/var/lib/dpkg/lock-frontend", 0, false},
	{"/var/lib/dpkg/triggers", 1, false},
	{"/var/lib/dpkg/updates", 1, false},
	{"/var/log", 0, false},
	{"/var/log/dpkg.log", 0, false},
}

// watchRoots resolves the watched paths inside the root, keeping those in
// the writable root mount (and, with trustOnly, under trust-store paths),
// deduplicated with nested ones dropped.
func watchRoots(fsys FS, paths []string, depth int, trustOnly bool) []watchRoot {
	set := map[string]bool{}
	for _, p := range paths {
		rp, m, err := fsys.EvalSymlinks(p)
		if err != nil {
			// Absent: watch it lexically (the tool may create it) when its
			// parent resolves to itself.
			if rd, _, err := fsys.EvalSymlinks(path.Dir(p)); err == nil && rd == path.Dir(p) {
				rp, m = p, nil
			} else {
				continue
			}
		} else if !writableRoot(m) {
			continue
		}
		if !trustOnly {
			if rp == p {
				set[rp] = true
			}
			continue
		}
		if IsTrustStorePath(rp) {
			set[rp] = true
		}
		if rp != p && IsTrustStorePath(p) {
			set[p] = true // the link itself
		}
	}
	var out []string
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	var roots []watchRoot
	for _, p := range out {
		if depth > 0 && len(roots) > 0 && strings.HasPrefix(p, roots[len(roots)-1].path+"/") {
			continue
		}
		roots = append(roots, watchRoot{path: p, depth: depth})
	}
	return roots
}

// snapshot records the state of every entry under roots (not following
// links), the parents of the roots, with content for regular files when keep.
func snapshot(fsys FS, roots []watchRoot, keep bool) (map[string]state, error) {
	out := map[string]state{}
	total := int64(0)
	var walk func(p string, d int) error
	walk = func(p string, d int) error {
		if len(out) >= maxWatchEntries {
			return fmt.Errorf("snapshot of %s: more than %d entries", p, maxWatchEntries)
		}
		s, err := lstat(fsys, p, false)
		if err != nil {
			return fmt.Errorf("snapshot of %s: %w", p, err)
		}
		if keep && s.isReg() && s.size <= maxBundle && total+s.size <= maxWatchData {
			if s.data, err = fsys.ReadFileLimit(p, maxBundle); err != nil {
				return fmt.Errorf("snapshot of %s: %w", p, err)
			}
			s.kept = true
			total += int64(len(s.data))
		}
		out[p] = s
		if !s.isDir() || d <= 0 {
			return nil
		}
		ents, err := fsys.ReadDir(p)
		if err != nil {
			return fmt.Errorf("snapshot of %s: %w", p, err)
		}
		for _, e := range ents {
			if err := walk(path.Join(p, e.Name()), d-1); err != nil {
				return err
			}
		}
		return nil
	}
	for _, root := range roots {
		r := root.path
		if _, seen := out[r]; seen {
			continue
		}
		if root.optional {
			if ents, err := fsys.ReadDir(r); err == nil && len(ents) > maxOptionalEntries {
				continue
			}
		}
		if err := walk(r, root.depth); err != nil {
			return nil, err
		}
		if par := path.Dir(r); IsTrustStorePath(par) {
			if _, ok := out[par]; !ok {
				s, err := lstat(fsys, par, false)
				if err != nil && !errors.Is(err, fs.ErrNotExist) {
					return nil, err
				}
				out[par] = s
			}
		}
	}
	return out, nil
}

// diffSnapshots turns two snapshots into journal entries for every path that
// changed. Text files get our PEM blocks as their contribution (a tool may
// have put them anywhere in a bundle).
func diffSnapshots(before, after map[string]state, ours [][]byte) []*entry {
	var paths []string
	for p := range before {
		paths = append(paths, p)
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	var out []*entry
	for _, p := range paths {
		b, a := before[p], after[p]
		if b.same(a) {
			continue
		}
		a.data, a.kept = nil, false
		out = append(out, &entry{path: p, base: b, ours: a, blocks: ours})
	}
	return out
}
