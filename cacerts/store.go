package cacerts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/moby/buildkit/util/bklog"
	"github.com/sirupsen/logrus"
)

// DefaultDir is where the engine's CA certificates are read from unless
// StoreOpt.Dir says otherwise.
const DefaultDir = "/usr/local/share/ca-certificates"

// OrbStackName is the file name of OrbStack's local root CA. It is a desktop
// tool's interception CA that should not spread into images, so it is ignored
// unless StoreOpt.IncludeOrbStack is set.
const OrbStackName = "orbstack-root.crt"

// maxCAFile caps the size of one engine-side CA file.
const maxCAFile = 1 << 20

// Cert is one CA certificate of the engine's set. It is immutable.
type Cert struct {
	// Name is the anchor's base name without extension, unique in its Set and
	// made only of [A-Za-z0-9._-] ("buildkit-<source>[-<n>]"), so it needs no
	// escaping in any tool's naming rules.
	Name string
	// Source is the file name in the CA directory the certificate came from.
	Source string
	// Cert is the parsed certificate.
	Cert *x509.Certificate
	// PEM is the canonical PEM encoding of the certificate, ending in "\n":
	// what every anchor and bundle entry we write holds.
	PEM []byte
	// SHA256 is the SHA-256 of the DER encoding; it identifies the certificate.
	SHA256 [32]byte
	// SubjectHash is OpenSSL's X509_NAME_hash of the subject ([SubjectHash]).
	SubjectHash uint32
}

// Set is an immutable, deduplicated set of CA certificates, in the order of
// their source file names and of the blocks within each file.
type Set struct {
	// Certs are the certificates, never nil entries.
	Certs []*Cert
}

// Len returns the number of certificates; a nil Set has none.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.Certs)
}

// StoreOpt configures a Store and LoadDir.
type StoreOpt struct {
	// Dir is the engine-side directory holding the CA files; DefaultDir if
	// empty. Every regular file in it (not recursively; symlinks followed,
	// dot-files ignored) is read.
	Dir string
	// AllowNonCA installs certificates that are not CAs (no basicConstraints
	// CA:TRUE and not a self-signed v1 certificate) instead of skipping them.
	AllowNonCA bool
	// IncludeOrbStack installs OrbStack's orbstack-root.crt instead of ignoring it.
	IncludeOrbStack bool
	// Now returns the current time for expiry warnings; time.Now if nil.
	Now func() time.Time
}

func (o StoreOpt) dir() string {
	if o.Dir == "" {
		return DefaultDir
	}
	return o.Dir
}

func (o StoreOpt) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

// fileSig is what "a file changed" means: its size and mtime.
type fileSig struct {
	size  int64
	mtime int64
}

// dirSig maps the directory's names to their signatures.
type dirSig map[string]fileSig

func (a dirSig) equal(b dirSig) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Store holds the engine's CA set and re-reads the directory only when its
// names, sizes or mtimes change. It is safe for concurrent use; Load never
// holds a lock while reading files.
type Store struct {
	opt StoreOpt

	mu     sync.Mutex
	sig    dirSig
	set    *Set
	logged map[string]fileSig // file -> signature whose problems were logged
}

// NewStore returns a Store reading opt.Dir. Nothing is read until Load.
func NewStore(opt StoreOpt) *Store {
	return &Store{opt: opt, logged: map[string]fileSig{}}
}

// Load returns the current CA set, re-reading the directory when it changed
// since the last call. Refused files are logged through bklog.G(ctx), once per
// change of each file. A missing directory is an empty set, not an error; an
// unreadable one is an error.
func (s *Store) Load(ctx context.Context) (*Set, error) {
	sig, err := readSig(s.opt.dir())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.set != nil && s.sig.equal(sig) {
		set := s.set
		s.mu.Unlock()
		return set, nil
	}
	s.mu.Unlock()

	set := loadDir(ctx, s.opt, sig, s.shouldLog)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.sig, s.set = sig, set
	return set, nil
}

// shouldLog reports whether problems of file with signature sig are to be
// logged: only the first time this version of the file is seen.
func (s *Store) shouldLog(file string, sig fileSig) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.logged[file]; ok && prev == sig {
		return false
	}
	s.logged[file] = sig
	return true
}

// LoadDir reads the CA set from opt.Dir once, logging every refused file
// through bklog.G(ctx). Use a Store to re-read only on change.
func LoadDir(ctx context.Context, opt StoreOpt) (*Set, error) {
	sig, err := readSig(opt.dir())
	if err != nil {
		return nil, err
	}
	return loadDir(ctx, opt, sig, func(string, fileSig) bool { return true }), nil
}

func readSig(dir string) (dirSig, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return dirSig{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading CA directory %s: %w", dir, err)
	}
	sig := make(dirSig, len(ents))
	for _, e := range ents {
		name := e.Name()
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			sig[name] = fileSig{size: -1}
			continue
		}
		if !st.Mode().IsRegular() {
			sig[name] = fileSig{size: -2}
			continue
		}
		sig[name] = fileSig{size: st.Size(), mtime: st.ModTime().UnixNano()}
	}
	return sig, nil
}

// refusal is one reason a file or block is not installed.
type refusal struct {
	file   string
	reason string
	warn   bool // still installed (expired) or skipped by policy, not an error
}

func loadDir(ctx context.Context, opt StoreOpt, sig dirSig, shouldLog func(string, fileSig) bool) *Set {
	log := bklog.G(ctx).WithField("dir", opt.dir())
	names := make([]string, 0, len(sig))
	for n := range sig {
		names = append(names, n)
	}
	sort.Strings(names)

	set := &Set{}
	seen := map[[32]byte]string{}
	used := map[string]bool{}
	for _, name := range names {
		fsig := sig[name]
		certs, probs := readCAFile(opt, name, fsig)
		if len(probs) > 0 && shouldLog(name, fsig) {
			for _, p := range probs {
				e := log.WithFields(logrus.Fields{"file": p.file, "reason": p.reason})
				if p.warn {
					e.Warn("CA certificate warning")
				} else {
					e.Warn("CA file refused")
				}
			}
		}
		for i, c := range certs {
			if prev, dup := seen[c.SHA256]; dup {
				log.WithFields(logrus.Fields{"file": name, "duplicate_of": prev}).Debug("duplicate CA certificate skipped")
				continue
			}
			seen[c.SHA256] = name
			c.Name = uniqueName(anchorName(name, i, len(certs)), c.SHA256, used)
			set.Certs = append(set.Certs, c)
		}
	}
	return set
}

// validSourceName refuses names that could be a path or confuse a log or a
// tool: with '/', "..", control characters, or invalid UTF-8.
func validSourceName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case !utf8.ValidString(name):
		return errors.New("name is not valid UTF-8")
	case strings.Contains(name, "/"):
		return errors.New("name contains '/'")
	case strings.Contains(name, ".."):
		return errors.New("name contains '..'")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return errors.New("name contains a control character")
		}
	}
	return nil
}

// readCAFile reads and parses one engine-side file. It returns the
// certificates to install and the problems to log.
func readCAFile(opt StoreOpt, name string, sig fileSig) ([]*Cert, []refusal) {
	quoted := fmt.Sprintf("%q", name)
	if err := validSourceName(name); err != nil {
		return nil, []refusal{{file: quoted, reason: "bad file name: " + err.Error()}}
	}
	if strings.HasPrefix(name, ".") {
		return nil, nil // editor and configmap bookkeeping
	}
	switch sig.size {
	case -1:
		return nil, []refusal{{file: name, reason: "cannot stat the file"}}
	case -2:
		return nil, nil // directories, sockets: not CA files
	}
	if name == OrbStackName && !opt.IncludeOrbStack {
		return nil, []refusal{{file: name, reason: "OrbStack's local CA is not installed unless configured", warn: true}}
	}
	data, err := readCapped(filepath.Join(opt.dir(), name), maxCAFile)
	if err != nil {
		return nil, []refusal{{file: name, reason: err.Error()}}
	}
	return parseCAFile(opt, name, data)
}

func readCapped(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if st.Size() > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return data, nil
}

// parseCAFile parses PEM CERTIFICATE blocks. Any PRIVATE KEY block refuses
// the whole file; a file without PEM (DER, junk) or empty is refused.
func parseCAFile(opt StoreOpt, name string, data []byte) ([]*Cert, []refusal) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, []refusal{{file: name, reason: "empty file"}}
	}
	var blocks []*pem.Block
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if strings.Contains(b.Type, "PRIVATE KEY") {
			return nil, []refusal{{file: name, reason: "file holds a private key (" + b.Type + "); remove the key from the CA directory"}}
		}
		blocks = append(blocks, b)
	}
	if len(blocks) == 0 {
		return nil, []refusal{{file: name, reason: "no PEM data (DER or junk); convert it with openssl x509 -inform der -out " + name + ".crt"}}
	}
	var certs []*Cert
	var probs []refusal
	now := opt.now()
	for i, b := range blocks {
		where := fmt.Sprintf("%s#%d", name, i+1)
		if b.Type != "CERTIFICATE" {
			probs = append(probs, refusal{file: where, reason: "PEM block " + b.Type + " is not a CERTIFICATE"})
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			probs = append(probs, refusal{file: where, reason: "parsing certificate: " + err.Error()})
			continue
		}
		if !isCA(c) {
			if !opt.AllowNonCA {
				probs = append(probs, refusal{file: where, reason: "not a CA certificate (" + c.Subject.String() + "); skipped unless non-CA certificates are allowed", warn: true})
				continue
			}
			probs = append(probs, refusal{file: where, reason: "not a CA certificate (" + c.Subject.String() + "); installed as configured", warn: true})
		}
		if now.After(c.NotAfter) {
			probs = append(probs, refusal{file: where, reason: "certificate expired " + c.NotAfter.UTC().Format(time.RFC3339), warn: true})
		} else if now.Before(c.NotBefore) {
			probs = append(probs, refusal{file: where, reason: "certificate not valid before " + c.NotBefore.UTC().Format(time.RFC3339), warn: true})
		}
		h, err := SubjectHash(c.RawSubject)
		if err != nil {
			probs = append(probs, refusal{file: where, reason: "subject hash: " + err.Error()})
			continue
		}
		certs = append(certs, &Cert{
			Source:      name,
			Cert:        c,
			PEM:         pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}),
			SHA256:      sha256.Sum256(c.Raw),
			SubjectHash: h,
		})
	}
	return certs, probs
}

// isCA reports whether c may act as a trust anchor: basicConstraints CA:TRUE,
// or a self-signed v1 certificate (OpenSSL treats those as CAs).
func isCA(c *x509.Certificate) bool {
	if c.BasicConstraintsValid {
		return c.IsCA
	}
	return c.Version == 1 && bytes.Equal(c.RawSubject, c.RawIssuer)
}

// anchorName derives "buildkit-<source>[-<n>]" from a source file name,
// keeping only [A-Za-z0-9._-].
func anchorName(source string, i, n int) string {
	base := source
	for _, ext := range []string{".crt", ".pem", ".cer"} {
		if strings.HasSuffix(strings.ToLower(base), ext) {
			base = base[:len(base)-len(ext)]
			break
		}
	}
	var b strings.Builder
	b.WriteString("buildkit-")
	for _, r := range base {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 80 {
			break
		}
	}
	if n > 1 {
		fmt.Fprintf(&b, "-%d", i+1)
	}
	return b.String()
}

func uniqueName(name string, sum [32]byte, used map[string]bool) string {
	if used[name] {
		name += "-" + hex.EncodeToString(sum[:6])
	}
	used[name] = true
	return name
}
