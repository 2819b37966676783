package distro

import (
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

type mapFile = fstest.MapFile

func mapFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for name, data := range files {
		m[name] = &mapFile{Data: []byte(data), Mode: 0o644}
	}
	return m
}

// detectWithin runs Detect and fails the test if it takes longer than a few
// seconds (a FIFO opened for reading would block forever).
func detectWithin(t *testing.T, fsys fs.FS) *Distro {
	t.Helper()
	type result struct {
		d   *Distro
		err error
	}
	ch := make(chan result, 1)
	go func() {
		d, err := Detect(fsys)
		ch <- result{d, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.d
	case <-time.After(10 * time.Second):
		t.Fatal("Detect hung")
		return nil
	}
}

func hasProblem(d *Distro, target error) bool {
	for _, p := range d.Problems {
		if errors.Is(p, target) {
			return true
		}
	}
	return false
}

// TestDetectHostile feeds Detect the image layouts of shared/HOSTILE.md that
// reach it: junk, huge and non-regular os-release files, loops and links out
// of the root. Each must end in a known family (mostly unknown) with the
// reason in Problems — never a panic, a hang or a host file.
func TestDetectHostile(t *testing.T) {
	junk := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range junk {
		junk[i] = byte(rng.Uint32())
	}
	tests := []struct {
		name    string
		specs   []string
		setup   func(t *testing.T, dir string) // after the specs are built
		family  Family
		problem error // a Problems entry must match (errors.Is), if set
	}{
		{
			name:   "binary junk",
			specs:  []string{fileSpec("etc/os-release", string(junk))},
			family: FamilyUnknown,
		},
		{
			name:    "100 MB sparse os-release",
			specs:   []string{"file etc/os-release \"\""},
			setup:   func(t *testing.T, dir string) { truncate(t, filepath.Join(dir, "etc/os-release"), 100<<20) },
			family:  FamilyUnknown,
			problem: ErrTooLarge,
		},
		{
			name:    "100 MB os-release, usr/lib fallback",
			specs:   []string{"file etc/os-release \"\"", fileSpec("usr/lib/os-release", alpineText)},
			setup:   func(t *testing.T, dir string) { truncate(t, filepath.Join(dir, "etc/os-release"), 100<<20) },
			family:  FamilyAlpine,
			problem: ErrTooLarge,
		},
		{
			name:    "os-release one byte over the cap",
			specs:   []string{fileSpec("etc/os-release", "ID=debian\n#"+string(make([]byte, MaxOSReleaseSize-10)))},
			family:  FamilyUnknown,
			problem: ErrTooLarge,
		},
		{
			name:   "os-release exactly at the cap",
			specs:  []string{fileSpec("etc/os-release", "ID=debian\n#"+string(make([]byte, MaxOSReleaseSize-11)))},
			family: FamilyDebian,
		},
		{
			name:    "FIFO os-release",
			specs:   []string{"fifo etc/os-release"},
			family:  FamilyUnknown,
			problem: ErrNotRegular,
		},
		{
			name:    "FIFO os-release and FIFO usr/lib os-release",
			specs:   []string{"fifo etc/os-release", "fifo usr/lib/os-release"},
			family:  FamilyUnknown,
			problem: ErrNotRegular,
		},
		{
			name:   "FIFO markers are not markers",
			specs:  []string{"fifo etc/alpine-release", "fifo etc/redhat-release", "fifo etc/debian_version", "fifo bin/busybox"},
			family: FamilyUnknown,
		},
		{
			name:    "os-release is a directory",
			specs:   []string{"dir etc/os-release"},
			family:  FamilyUnknown,
			problem: ErrNotRegular,
		},
		{
			name:   "redhat-release is a directory",
			specs:  []string{"dir etc/redhat-release/x"},
			family: FamilyUnknown,
		},
		{
			name:   "symlink to itself",
			specs:  []string{"symlink etc/os-release -> os-release"},
			family: FamilyUnknown,
		},
		{
			name:   "symlink loop a->b->a, usr/lib fallback",
			specs:  []string{"symlink etc/os-release -> os-release2", "symlink etc/os-release2 -> os-release", fileSpec("usr/lib/os-release", alpineText)},
			family: FamilyAlpine,
		},
		{
			name:   "absolute symlink to itself",
			specs:  []string{"symlink etc/os-release -> /etc/os-release"},
			family: FamilyUnknown,
		},
		{
			name:   "directory loop d -> .",
			specs:  []string{"symlink etc/d -> .", "symlink etc/os-release -> d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/os-release"},
			family: FamilyUnknown,
		},
		{
			name:   "absolute symlink to /etc/hostname",
			specs:  []string{"symlink etc/os-release -> /etc/hostname", "file etc/hostname ID=debian"},
			family: FamilyUnknown, // os.Root refuses absolute links; the vfs resolves it in the root
		},
		{
			// The host running this test has an /etc/os-release (Debian
			// here); reading it would give FamilyDebian.
			name:   "relative link climbing out of the root",
			specs:  []string{"symlink etc/os-release -> ../../../../../../../../../../etc/os-release"},
			family: FamilyUnknown,
		},
		{
			name:   "absolute link to the host's os-release path, absent in the image",
			specs:  []string{"symlink etc/os-release -> /usr/lib/os-release"},
			family: FamilyUnknown,
		},
		{
			name:   "marker link climbing out of the root",
			specs:  []string{"symlink etc/debian_version -> ../../../../../../../etc/debian_version", "symlink bin/busybox -> /bin/busybox"},
			family: FamilyUnknown,
		},
		{
			name:    "huge redhat-release still marks the family",
			specs:   []string{"file etc/redhat-release \"\""},
			setup:   func(t *testing.T, dir string) { truncate(t, filepath.Join(dir, "etc/redhat-release"), 100<<20) },
			family:  FamilyRHEL,
			problem: ErrTooLarge,
		},
		{
			name:   "status.d is a file",
			specs:  []string{"file var/lib/dpkg/status.d x"},
			family: FamilyUnknown,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			treespec.Build(t, dir, tt.specs...)
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			canary := treespec.NewCanary(t, dir)
			r, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			d := detectWithin(t, r.FS())
			if d.Family != tt.family || d.Layout.Family != tt.family {
				t.Errorf("family %s (layout %s), want %s; problems %v", d.Family, d.Layout.Family, tt.family, d.Problems)
			}
			if tt.problem != nil && !hasProblem(d, tt.problem) {
				t.Errorf("problems %v, want one matching %v", d.Problems, tt.problem)
			}
			for _, p := range d.Problems {
				var pe *fs.PathError
				if !errors.As(p, &pe) {
					t.Errorf("problem %v carries no *fs.PathError", p)
				}
				if errors.Is(p, fs.ErrNotExist) {
					t.Errorf("a missing file is not a problem: %v", p)
				}
			}
			t.Logf("problems: %v", d.Problems)
			canary.Check(t) // Detect only reads
		})
	}
}

func truncate(t *testing.T, p string, size int64) {
	t.Helper()
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
}

// endless is a file that claims to be small but never ends, as an fs.FS
// that misreports sizes (or a file growing while read) would.
type endless struct{}

func (endless) Stat() (fs.FileInfo, error) { return endlessInfo{}, nil }
func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'A'
	}
	return len(p), nil
}
func (endless) Close() error { return nil }

type endlessInfo struct{}

func (endlessInfo) Name() string       { return "os-release" }
func (endlessInfo) Size() int64        { return 10 }
func (endlessInfo) Mode() fs.FileMode  { return 0o644 }
func (endlessInfo) ModTime() time.Time { return time.Time{} }
func (endlessInfo) IsDir() bool        { return false }
func (endlessInfo) Sys() any           { return nil }

type endlessFS struct{}

func (endlessFS) Open(name string) (fs.File, error) {
	if name == "etc/os-release" {
		return endless{}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// TestReadCappedEndless proves the read is bounded even when the size
// reported by Stat is a lie.
func TestReadCappedEndless(t *testing.T) {
	d := detectWithin(t, endlessFS{})
	if d.Family != FamilyUnknown || !hasProblem(d, ErrTooLarge) {
		t.Errorf("family %s, problems %v; want unknown and ErrTooLarge", d.Family, d.Problems)
	}
}

// limitedFS records how Detect reads: through ReadFileLimit, never Open.
type limitedFS struct {
	fstest.MapFS
	t     *testing.T
	calls map[string]int64
}

func (l *limitedFS) Open(name string) (fs.File, error) {
	if name == "etc/os-release" || name == "usr/lib/os-release" {
		l.t.Errorf("Open(%q) called although ReadFileLimit exists", name)
	}
	return l.MapFS.Open(name)
}

func (l *limitedFS) ReadFileLimit(name string, max int64) ([]byte, error) {
	l.calls[name] = max
	fi, err := fs.Stat(l.MapFS, name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: ErrNotRegular}
	}
	f, err := l.MapFS.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max+1))
}

var _ LimitedReadFS = (*limitedFS)(nil)

func TestDetectUsesReadFileLimit(t *testing.T) {
	l := &limitedFS{MapFS: mapFS(map[string]string{
		"usr/lib/os-release": debianText,
		"etc/os-release":     "ID=x\n" + string(make([]byte, MaxOSReleaseSize)), // over the cap
	}), t: t, calls: map[string]int64{}}
	d := detectWithin(t, l)
	if d.Family != FamilyDebian || d.Source != "/usr/lib/os-release" {
		t.Errorf("got %s from %q, want debian from /usr/lib/os-release", d.Family, d.Source)
	}
	if !hasProblem(d, ErrTooLarge) {
		t.Errorf("problems %v, want ErrTooLarge for the oversized /etc/os-release", d.Problems)
	}
	if l.calls["etc/os-release"] != MaxOSReleaseSize || l.calls["usr/lib/os-release"] != MaxOSReleaseSize {
		t.Errorf("ReadFileLimit calls %v, want both os-release files capped at %d", l.calls, MaxOSReleaseSize)
	}
}

func TestDetectNil(t *testing.T) {
	if _, err := Detect(nil); err == nil {
		t.Error("Detect(nil) succeeded")
	}
}
