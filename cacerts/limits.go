package cacerts

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/buildkit-cacerts/buildkit-cacerts/vfs"
)

// Default per-exec limits (Limits). A real image stays far below them: a
// Debian or Fedora install reads well under 2 MiB, writes a few dozen
// entries, finds at most a few certifi bundles and SSL_CERT_DIR lists one or
// two directories.
const (
	DefaultMaxReadBytes      = 64 << 20
	DefaultMaxFiles          = 4096
	DefaultMaxCertifiBundles = 64
	DefaultMaxCertDirs       = 16
)

// Limits caps what one exec's install may do in an image, whatever the
// image holds: every amount an image can multiply (certifi matches, hard
// links, SSL_CERT_DIR entries, file sizes) stops at a limit. Zero means the
// default; a negative value is treated as the default too (there is no
// "unlimited"). Hitting a limit is an install failure: the partial install
// is rolled back and Install returns a *LimitError naming the limit, the path
// and the [cacerts] knob (the executor then runs the exec without the CAs,
// or fails it in strict mode).
type Limits struct {
	// MaxReadBytes caps the bytes read from the container per exec: bundles,
	// anchors, certifi and SSL_CERT_FILE bundles, hash-link targets and the
	// command path's snapshot. What the journal keeps to restore is a part
	// of what was read, so this caps it too. [cacerts] max_read_mib.
	MaxReadBytes int64
	// MaxFiles caps the entries one install creates, rewrites, links or
	// removes (each a journal entry, with at most one more for its
	// directory). [cacerts] max_files.
	MaxFiles int
	// MaxCertifiBundles caps the certifi bundles matched by the layout's
	// patterns (all patterns together, names before hard links are merged).
	// [cacerts] max_certifi_bundles.
	MaxCertifiBundles int
	// MaxCertDirs caps the distinct directories of the process's
	// SSL_CERT_DIR. [cacerts] max_cert_dirs.
	MaxCertDirs int
}

// WithDefaults returns l with every unset (zero or negative) limit at its
// default.
func (l Limits) WithDefaults() Limits {
	if l.MaxReadBytes <= 0 {
		l.MaxReadBytes = DefaultMaxReadBytes
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	if l.MaxCertifiBundles <= 0 {
		l.MaxCertifiBundles = DefaultMaxCertifiBundles
	}
	if l.MaxCertDirs <= 0 {
		l.MaxCertDirs = DefaultMaxCertDirs
	}
	return l
}

// ErrLimit is matched (errors.Is) by the error of an install that stopped at
// one of its Limits; errors.As gives the *LimitError.
var ErrLimit = errors.New("per-exec CA install limit reached")

// LimitError says which limit an install hit, where, and what to raise.
type LimitError struct {
	// Knob is the [cacerts] key of buildkitd.toml that raises the limit.
	Knob string
	// Max is the limit in force, in the knob's unit.
	Max int64
	// Path is the container path being processed when the limit was hit.
	Path string
	// What says what was counted.
	What string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: %s reached %d at %s; the image is unusually large here — if it is legitimate, raise [cacerts] %s in buildkitd.toml",
		ErrLimit, e.What, e.Max, e.Path, e.Knob)
}

// Is makes errors.Is(err, ErrLimit) true.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// budget counts one exec's reads and writes against its Limits. The first
// limit hit is kept: an error a caller logs and skips (a bundle left alone)
// still fails the install (Plan.Apply checks err).
type budget struct {
	lim         Limits // with defaults
	read, wrote int64
	files       int
	certifi     int
	first       *LimitError
}

func newBudget(l Limits) *budget { return &budget{lim: l.WithDefaults()} }

func (b *budget) hit(e *LimitError) error {
	if b.first == nil {
		b.first = e
	}
	return e
}

// err returns the first limit hit, or nil.
func (b *budget) err() error {
	if b == nil || b.first == nil {
		return nil
	}
	return b.first
}

// budgetUse is what one install consumed of its Limits.
type budgetUse struct {
	ReadBytes, WrittenBytes int64
	Files                   int
}

func (b *budget) use() budgetUse {
	return budgetUse{ReadBytes: b.read, WrittenBytes: b.wrote, Files: b.files}
}

func (b *budget) readLimit(p string) *LimitError {
	return &LimitError{Knob: "max_read_mib", Max: b.lim.MaxReadBytes >> 20, Path: p, What: "MiB read from the image"}
}

// room fails when one more entry would pass MaxFiles.
func (b *budget) room(p string) error {
	if b.files >= b.lim.MaxFiles {
		return b.hit(&LimitError{Knob: "max_files", Max: int64(b.lim.MaxFiles), Path: p, What: "entries written"})
	}
	return nil
}

// wrote1 counts one entry written and n bytes.
func (b *budget) wrote1(p string, n int) error {
	if err := b.room(p); err != nil {
		return err
	}
	b.files++
	b.wrote += int64(n)
	return nil
}

// limitFS is the FS Plan.Apply installs through: every read and write is
// counted against the exec's budget, in this one place. Revert never uses it
// (undoing must not stop at a limit).
type limitFS struct {
	FS
	b *budget
}

// ReadFileLimit reads at most what is left of the read budget: a file larger
// than that (stat first) is not read at all.
func (l *limitFS) ReadFileLimit(p string, max int64) ([]byte, error) {
	left := l.b.lim.MaxReadBytes - l.b.read
	if left < max {
		if fi, err := l.FS.Stat(path.Clean("/" + p)); err == nil && fi.Mode().IsRegular() && fi.Size() > left {
			return nil, l.b.hit(l.b.readLimit(p))
		}
		if left <= 0 {
			return nil, l.b.hit(l.b.readLimit(p))
		}
		max = left
	}
	data, err := l.FS.ReadFileLimit(p, max)
	l.b.read += int64(len(data))
	return data, err
}

func (l *limitFS) WriteFile(p string, data []byte, perm fs.FileMode) error {
	if err := l.b.wrote1(p, len(data)); err != nil {
		return err
	}
	return l.FS.WriteFile(p, data, perm)
}

// Overwrite counts the entry unless the view declines to write in place
// (the caller then uses WriteFile, which counts it).
func (l *limitFS) Overwrite(p string, data []byte) error {
	if err := l.b.room(p); err != nil {
		return err
	}
	err := l.FS.Overwrite(p, data)
	if !errors.Is(err, vfs.ErrNotInPlace) {
		l.b.files++
		l.b.wrote += int64(len(data))
	}
	return err
}

func (l *limitFS) MkdirAll(p string, perm fs.FileMode) (string, error) {
	if err := l.b.wrote1(p, 0); err != nil {
		return "", err
	}
	return l.FS.MkdirAll(p, perm)
}

func (l *limitFS) Remove(p string) error {
	if err := l.b.wrote1(p, 0); err != nil {
		return err
	}
	return l.FS.Remove(p)
}

func (l *limitFS) Symlink(oldname, newname string) error {
	if err := l.b.wrote1(newname, len(oldname)); err != nil {
		return err
	}
	return l.FS.Symlink(oldname, newname)
}

// inode identifies a file for hard-link merging.
type inode struct{ dev, ino uint64 }

// certifiBundles returns the certifi bundles of the layout's patterns to
// edit: at most MaxCertifiBundles names in all (more is ErrLimit), and of
// the names that reach the same file (hard links, symlinks), only the first.
// Hard links of one file are thus edited once, under its first name; the
// image's other names of that file keep its content for the exec.
func (b *budget) certifiBundles(fsys FS, patterns []string) ([]string, error) {
	var out []string
	seen := map[inode]bool{}
	for _, pat := range patterns {
		left := b.lim.MaxCertifiBundles - b.certifi
		matches, err := globN(fsys, pat, left+1)
		if err != nil {
			continue
		}
		if len(matches) > left {
			return nil, b.hit(&LimitError{Knob: "max_certifi_bundles", Max: int64(b.lim.MaxCertifiBundles), Path: pat, What: "certifi bundles matched"})
		}
		b.certifi += len(matches)
		for _, m := range matches {
			if fi, err := fsys.Stat(m); err == nil {
				if st, ok := vfs.StatOf(fi); ok {
					k := inode{st.Dev, st.Ino}
					if seen[k] {
						continue
					}
					seen[k] = true
				}
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// certDirs returns the distinct entries of an SSL_CERT_DIR value, in order,
// failing with ErrLimit past MaxCertDirs.
func (b *budget) certDirs(v string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, d := range strings.Split(v, ":") {
		if !validEnvPath(d) {
			continue
		}
		d = path.Clean(d)
		if seen[d] {
			continue
		}
		if len(out) == b.lim.MaxCertDirs {
			return nil, b.hit(&LimitError{Knob: "max_cert_dirs", Max: int64(b.lim.MaxCertDirs), Path: d, What: "SSL_CERT_DIR directories"})
		}
		seen[d] = true
		out = append(out, d)
	}
	return out, nil
}

// anchorPiece is one local anchor as the bundle holds it: its file name and
// its content (newline-terminated), a slice of the bundle.
type anchorPiece struct {
	name string
	data []byte
}

// localAnchors checks that the bundle ends with the local anchors names (in
// dir, sorted) as update-ca-certificates appends them (each file verbatim,
// a newline added when missing) and returns them with the offset where they
// start in bundle. Nothing is held but the bundle: the sizes are checked
// first (anchors larger together than the bundle are not read at all), then
// the files are compared one at a time from the end, each read only when it
// fits what is left of the bundle, and a file already compared (another hard
// link to it) is not read again. The returned data are slices of bundle.
func localAnchors(fsys FS, dir, bundlePath string, names []string, bundle []byte) ([]anchorPiece, int, error) {
	mismatch := func() ([]anchorPiece, int, error) {
		return nil, 0, fmt.Errorf("%w: bundle %s does not end with the local anchors of %s: run update-ca-certificates in the image, or use the command path", ErrStaleBundle, bundlePath, dir)
	}
	type fileKey struct {
		inode
		size  int64
		mtime int64
	}
	keys := make([]fileKey, len(names))
	var total int64
	for i, n := range names {
		p := path.Join(dir, n)
		fi, err := fsys.Stat(p)
		if err != nil {
			return nil, 0, fmt.Errorf("reading local anchor %s: %w", p, err)
		}
		if !fi.Mode().IsRegular() {
			return nil, 0, fmt.Errorf("reading local anchor %s: not a regular file", p)
		}
		keys[i] = fileKey{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
		if st, ok := vfs.StatOf(fi); ok {
			keys[i].inode = inode{st.Dev, st.Ino}
		}
		if total += fi.Size(); total > int64(len(bundle)) {
			return mismatch()
		}
	}
	pieces := make([]anchorPiece, len(names))
	done := map[fileKey][]byte{} // a compared file -> its piece
	end := len(bundle)
	for i := len(names) - 1; i >= 0; i-- {
		k := keys[i]
		if int64(end) < k.size {
			return mismatch()
		}
		var piece []byte
		if prev, ok := done[k]; ok {
			if len(prev) > end || !bytes.Equal(bundle[end-len(prev):end], prev) {
				return mismatch()
			}
			piece = bundle[end-len(prev) : end]
		} else {
			p := path.Join(dir, names[i])
			data, err := fsys.ReadFileLimit(p, k.size)
			if err != nil {
				return nil, 0, fmt.Errorf("reading local anchor %s: %w", p, err)
			}
			n := len(data)
			nl := n > 0 && data[n-1] != '\n'
			if nl {
				n++
			}
			if n > end || !bytes.Equal(bundle[end-n:end-n+len(data)], data) || (nl && bundle[end-1] != '\n') {
				return mismatch()
			}
			piece = bundle[end-n : end]
			if k.inode != (inode{}) {
				done[k] = piece
			}
		}
		pieces[i] = anchorPiece{name: names[i], data: piece}
		end -= len(piece)
	}
	return pieces, end, nil
}

// budgetOrDefault is the plan's budget, or a fresh one with its limits for
// a caller that did not go through Apply.
func (p *Plan) budgetOrDefault() *budget {
	if p.budget == nil {
		p.budget = newBudget(p.opt.Limits)
	}
	return p.budget
}
