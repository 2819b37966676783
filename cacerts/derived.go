package cacerts

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"path"
	"strings"

	"github.com/moby/buildkit/util/bklog"
)

// Derived facts (docs/design.md, "The sweep: derived facts"): what a
// process can write about the files we installed without copying a CA —
// the names of our files (a glob of the store, "Adding debian:<name>.pem"
// in a maintainer script's output, an index) and digests of what we wrote
// or of our CAs (sha256sum of the bundle, md5sum of an anchor, keytool's or
// openssl's fingerprints). The sweep edits them out of text files the exec
// wrote, a line at a time: a line naming one of our files, or a digest of
// a file we created or of one of our CAs, is dropped (the run without us
// had no such line); a digest of a file we changed (the bundle) becomes the
// digest of that file as the image had it. Binary files are not edited (a
// name in a binary cannot be told from a coincidence); neither are
// OpenSSL's hash names, which are not distinctive.

// maxDigestAll caps the size of a file we write whose MD5 and SHA-1 are
// taken when we write it (anchors and hash files). A larger one (a bundle)
// is kept as written and digested by the sweep only when a text file of
// the exec's changes holds a token of that length: most execs never pay
// for them.
const maxDigestAll = 64 << 10

// ourPrefix starts the name of every file we create (anchorName,
// CombinedName): what a derived name is looked for by.
var ourPrefix = []byte("buildkit-")

// wroteDigest is a digest of content we wrote: the algorithm, and the
// journaled file, whose base gives the digest the run without us had.
type wroteDigest struct {
	algo string // "md5", "sha1", "sha256"
	e    *entry
}

func newDigest(algo string) hash.Hash {
	switch algo {
	case "md5":
		return md5.New()
	case "sha1":
		return sha1.New()
	}
	return sha256.New()
}

// noteWrote records data, which we wrote to e's path: by SHA-256, so the
// sweep recognises a copy of it wherever the process put it, and as
// digests a process may derive from it.
func (j *Journal) noteWrote(e *entry, data []byte) {
	sum := sha256.Sum256(data)
	if j.oursSums == nil {
		j.oursSums = map[[32]byte]*entry{}
		j.wroteDigests = map[string]wroteDigest{}
	}
	j.oursSums[sum] = e
	j.wroteDigests[hex.EncodeToString(sum[:])] = wroteDigest{"sha256", e}
	if len(data) > maxDigestAll && j.wroteLargeBytes+len(data) <= maxWroteLarge {
		j.wroteLarge = append(j.wroteLarge, wroteBlob{e, data})
		j.wroteLargeBytes += len(data)
		return
	}
	j.noteDigests(e, data)
}

// maxWroteLarge caps what an exec keeps of the large files we wrote until
// its sweep (an image chooses how many certifi bundles we append to):
// past it, their MD5 and SHA-1 are taken as they are written.
const maxWroteLarge = 16 << 20

// noteDigests records data's MD5 and SHA-1.
func (j *Journal) noteDigests(e *entry, data []byte) {
	m, s := md5.Sum(data), sha1.Sum(data)
	j.wroteDigests[hex.EncodeToString(m[:])] = wroteDigest{"md5", e}
	j.wroteDigests[hex.EncodeToString(s[:])] = wroteDigest{"sha1", e}
}

// wroteBlob is a large file we wrote, kept until the sweep.
type wroteBlob struct {
	e    *entry
	data []byte
}

// derivedFacts are the facts the sweep looks for in text files, built once
// per sweep from the journal.
type derivedFacts struct {
	// names are the base names of files we created.
	names map[string]bool
	// digests maps a lower-case hex digest to what replaces it: "" drops
	// the line holding it. Digests of files we wrote are in wrote until one
	// is found (its replacement hashes the base file).
	digests map[string]string
	j       *Journal
}

// lookup returns what replaces the digest norm and whether it is ours.
func (d *derivedFacts) lookup(norm []byte) (string, bool) {
	if repl, ok := d.digests[string(norm)]; ok {
		return repl, true
	}
	w, ok := d.j.wroteDigests[string(norm)]
	if !ok && len(norm) < 64 && len(d.j.wroteLarge) > 0 {
		d.j.digestLarge()
		w, ok = d.j.wroteDigests[string(norm)]
	}
	if !ok {
		return "", false
	}
	repl := w.replacement()
	d.digests[string(norm)] = repl
	return repl, true
}

// derived returns the journal's derived facts, or nil when it has none.
func (j *Journal) derived() *derivedFacts {
	d := &derivedFacts{names: map[string]bool{}, digests: map[string]string{}, j: j}
	for _, e := range j.entries {
		if n := path.Base(e.path); !e.base.exists && bytes.HasPrefix([]byte(n), ourPrefix) {
			d.names[n] = true
		}
	}
	for _, c := range j.installedCerts {
		raw := c.Cert.Raw
		m, s := md5.Sum(raw), sha1.Sum(raw)
		for _, h := range [][]byte{c.SHA256[:], m[:], s[:]} {
			d.digests[hex.EncodeToString(h)] = ""
		}
	}
	if len(d.names) == 0 && len(d.digests) == 0 && len(j.wroteDigests) == 0 && len(j.wroteLarge) == 0 {
		return nil
	}
	return d
}

// digestLarge takes the MD5 and SHA-1 of the large files we wrote, once:
// a token as long as one of those was seen.
func (j *Journal) digestLarge() {
	for _, b := range j.wroteLarge {
		j.noteDigests(b.e, b.data)
	}
	j.wroteLarge, j.wroteLargeBytes = nil, 0
}

// replacement is the digest of w's file as the image had it, or "" when
// the image had no such file (the line goes).
func (w wroteDigest) replacement() string {
	b := w.e.base
	if !b.exists || !b.isReg() || !b.kept {
		return ""
	}
	h := newDigest(w.algo)
	h.Write(b.data)
	return hex.EncodeToString(h.Sum(nil))
}

// in reports whether text holds a derived fact.
func (d *derivedFacts) in(text []byte) bool {
	found := false
	d.tokens(text, func(int, int, string, bool) bool {
		found = true
		return false
	})
	return found
}

// edit returns text with our facts edited out, line by line, and how many
// lines it changed. Lines in keep (the base file's, at the same path) are
// the image's and stay.
func (d *derivedFacts) edit(text []byte, keep map[string]bool) ([]byte, int) {
	var out bytes.Buffer
	out.Grow(len(text))
	changed := 0
	for len(text) > 0 {
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line = text[:i+1]
		}
		text = text[len(line):]
		if keep[string(line)] {
			out.Write(line)
			continue
		}
		drop := false
		var edited []byte
		last := 0
		d.tokens(line, func(i, j int, repl string, isDrop bool) bool {
			if isDrop {
				drop = true
				return false
			}
			if repl != "" {
				tok := line[i:j]
				edited = append(edited, line[last:i]...)
				edited = append(edited, formatLike(tok, repl)...)
				last = j
			}
			return true
		})
		switch {
		case drop:
			changed++
		case edited != nil:
			edited = append(edited, line[last:]...)
			out.Write(edited)
			changed++
		default:
			out.Write(line)
		}
	}
	return out.Bytes(), changed
}

// formatLike writes the lower-case hex digest h the way tok (the digest it
// replaces) is written: upper or lower case, with or without colons.
func formatLike(tok []byte, h string) []byte {
	upper := bytes.ContainsAny(tok, "ABCDEF")
	if upper {
		h = strings.ToUpper(h)
	}
	if bytes.IndexByte(tok, ':') < 0 {
		return []byte(h)
	}
	out := make([]byte, 0, len(h)*3/2)
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, h[i:i+2]...)
	}
	return out
}

// tokens calls f for each derived fact in b: its span, the digest that
// replaces it ("" when none) and whether its line is dropped; f returns
// false to stop. Names come first, then digests in order. A digest is at
// least 32 bytes of [0-9A-Fa-f:], so only every 32nd byte is looked at
// until one of those is found (most text has no such run).
func (d *derivedFacts) tokens(b []byte, f func(i, j int, repl string, drop bool) bool) {
	if len(d.names) > 0 {
		for off := 0; off < len(b); {
			k := bytes.Index(b[off:], ourPrefix)
			if k < 0 {
				break
			}
			i := off + k
			j := i + len(ourPrefix)
			if i == 0 || !isNameByte(b[i-1]) {
				for j < len(b) && isNameByte(b[j]) {
					j++
				}
				if d.names[string(bytes.TrimRight(b[i:j], "."))] && !f(i, j, "", true) {
					return
				}
			}
			off = j
		}
	}
	var scratch [64]byte
	for p := 31; p < len(b); p += 32 {
		if !isHexOrColon(b[p]) {
			continue
		}
		l, r := p, p+1
		for l > 0 && isHexOrColon(b[l-1]) {
			l--
		}
		for r < len(b) && isHexOrColon(b[r]) {
			r++
		}
		span := b[:r]
		for i := l; i < r; {
			if !isHexByte(span[i]) || i > l && isHexByte(span[i-1]) {
				i++
				continue
			}
			j, norm := hexToken(span, i, scratch[:0])
			if norm != nil {
				if repl, ok := d.lookup(norm); ok && !f(i, j, repl, repl == "") {
					return
				}
			}
			i = j
		}
		p = r // the next run that long ends at r+32 or later
	}
}

// hexToken reads the hex token at b[i]: a run of hex digits, or pairs
// joined by colons (AB:CD:…, read whole), and returns its end and, when it
// is as long as an MD5, SHA-1 or SHA-256 digest, its lower-case digits
// (appended to buf).
func hexToken(b []byte, i int, buf []byte) (int, []byte) {
	j := i
	for j < len(b) && isHexByte(b[j]) {
		j++
	}
	if j-i == 2 && j < len(b) && b[j] == ':' {
		// Colon pairs: keytool -list, openssl x509 -fingerprint.
		digits := buf
		k := i
		for k+2 <= len(b) && isHexByte(b[k]) && isHexByte(b[k+1]) && (k+2 == len(b) || !isHexByte(b[k+2])) {
			digits = append(digits, lower(b[k]), lower(b[k+1]))
			k += 2
			if k+2 < len(b) && b[k] == ':' && isHexByte(b[k+1]) {
				k++
				continue
			}
			break
		}
		if n := len(digits); n == 32 || n == 40 || n == 64 {
			return k, digits
		}
		return k, nil
	}
	if n := j - i; n == 32 || n == 40 || n == 64 {
		for _, c := range b[i:j] {
			buf = append(buf, lower(c))
		}
		return j, buf
	}
	return j, nil
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'F' {
		return c + 'a' - 'A'
	}
	return c
}

// class holds, per byte, whether it is a hex digit, a colon or a name
// byte ([A-Za-z0-9._-]): the derived-facts search asks this of every byte
// it looks at.
var class = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		if b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F' {
			t[c] |= classHex
		}
		if b == ':' {
			t[c] |= classColon
		}
		if b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-' {
			t[c] |= className
		}
	}
	return t
}()

const (
	classHex = 1 << iota
	classColon
	className
)

func isHexOrColon(c byte) bool { return class[c]&(classHex|classColon) != 0 }

func isHexByte(c byte) bool { return class[c]&classHex != 0 }

func isNameByte(c byte) bool { return class[c]&className != 0 }

// cleanFacts edits the derived facts out of the text files holding them
// (derived.go), keeping each line the base file at that path has. A file
// too large to edit is logged and kept: a name or a digest is not a CA.
func (s *sweeper) cleanFacts(ctx context.Context) error {
	for _, p := range s.factFiles {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("removing facts derived from engine CAs: %w", err)
		}
		now, err := lstat(s.fsys, p, false)
		if err != nil || !now.isReg() {
			continue
		}
		if now.size > maxSweepEdit {
			bklog.G(ctx).WithField("path", p).Warn("cacerts: a file the exec wrote names one of our files or digests, and is too large to edit")
			continue
		}
		data, err := s.fsys.ReadFileLimit(p, maxSweepEdit)
		if err != nil || bytes.IndexByte(data, 0) >= 0 {
			continue
		}
		keep := map[string]bool{}
		if base := s.base(); base != nil {
			if b, err := base.ReadFileLimit(p, maxSweepEdit); err == nil {
				for _, l := range bytes.SplitAfter(b, []byte("\n")) {
					keep[string(l)] = true
				}
			}
		}
		out, n := s.facts.edit(data, keep)
		if n == 0 {
			continue
		}
		if err := s.rewrite(p, now, out, "the facts derived from our files"); err != nil {
			return err
		}
	}
	return nil
}
