package layerdiff

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"software.sslmate.com/src/go-pkcs12"
)

// Needle is a certificate a scan looks for in image layers: a CA the engine
// injects, which no committed layer may hold (DESIGN.md invariant 1), in
// whatever form a process derived from the trust store may have kept it.
type Needle struct {
	Name string            // for reports, e.g. "test CA"
	Cert *x509.Certificate // Cert.Raw is searched for
	// SubjectHash is OpenSSL's subject hash of the certificate (as
	// `openssl x509 -hash` prints it, 8 hex digits): an entry named
	// SubjectHash.N is the certificate's hash link.
	SubjectHash string
}

// Finding is one place a needle occurs in a layer.
type Finding struct {
	Layer  int    // from the bottom of the image, as CompareImages counts
	Path   string // cleaned, as in Layer
	How    string // "PEM block", "DER bytes", "PKCS#12 (password "changeit")", "hash link -> TARGET", "hash file"
	Needle string // Needle.Name
}

func (f Finding) String() string {
	return fmt.Sprintf("layer %d: %s: %s in %s", f.Layer, f.Path, f.Needle, f.How)
}

// key identifies a finding regardless of its layer index.
func (f Finding) key() string { return f.Path + "\x00" + f.How + "\x00" + f.Needle }

// Scan limits: every regular file is searched for the needles' DER bytes in
// a stream (any size); files up to wholeFileMax are also read whole to
// decode PEM blocks and PKCS#12 stores.
const (
	scanChunk    = 1 << 20
	wholeFileMax = 16 << 20
)

// pkcs12Passwords are the passwords a PKCS#12 store is opened with: Java's
// default store password, and none.
var pkcs12Passwords = []string{"changeit", ""}

// ScanLayer reads an uncompressed layer tar and lists where the needles
// occur: in a PEM block of any file (every block of every file holding
// "-----BEGIN" is decoded: bundles, copies, TRUSTED CERTIFICATE blocks), as
// raw DER bytes anywhere (which finds JKS stores and unencrypted PKCS#12),
// in a PKCS#12 store opened with "changeit" or no password, and as an entry
// named after a needle's subject hash (SubjectHash.N: an OpenSSL hash link
// or file). Findings carry layer index 0; ScanImages sets it.
func ScanLayer(r io.Reader, needles []Needle) ([]Finding, error) {
	var out []Finding
	add := func(name, how string, n Needle) {
		out = append(out, Finding{Path: name, How: how, Needle: n.Name})
	}
	maxDER := 0
	for _, n := range needles {
		maxDER = max(maxDER, len(n.Cert.Raw))
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading layer tar: %w", err)
		}
		name := cleanName(h.Name)
		base := path.Base(name)
		for _, n := range needles {
			if n.SubjectHash != "" && isHashName(base, n.SubjectHash) {
				switch h.Typeflag {
				case tar.TypeSymlink:
					add(name, "hash link -> "+h.Linkname, n)
				case tar.TypeLink:
					add(name, "hash link (hard) -> "+h.Linkname, n)
				default:
					add(name, "hash file", n)
				}
			}
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Size <= wholeFileMax {
			data, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", name, err)
			}
			for _, f := range scanData(data, needles) {
				add(name, f.how, f.needle)
			}
			continue
		}
		found, err := streamContains(tr, needles, maxDER)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		for _, n := range found {
			add(name, "DER bytes", n)
		}
	}
	return out, nil
}

// isHashName reports whether base is hash.N (N decimal), or hash.rN (a CRL
// link), case-insensitively for the hex digits.
func isHashName(base, hash string) bool {
	if len(base) < len(hash)+2 || !strings.EqualFold(base[:len(hash)], hash) || base[len(hash)] != '.' {
		return false
	}
	suf := strings.TrimPrefix(base[len(hash)+1:], "r")
	if suf == "" {
		return false
	}
	for _, c := range suf {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

type hit struct {
	how    string
	needle Needle
}

// scanData finds the needles in one whole file's content.
func scanData(data []byte, needles []Needle) []hit {
	var hits []hit
	for _, n := range needles {
		if bytes.Contains(data, n.Cert.Raw) {
			hits = append(hits, hit{"DER bytes", n})
		}
	}
	if bytes.Contains(data, []byte("-----BEGIN")) {
		seen := map[string]bool{}
		rest := data
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			for _, n := range needles {
				// TRUSTED CERTIFICATE blocks append OpenSSL's
				// trust settings to the DER.
				if !seen[n.Name] && bytes.HasPrefix(b.Bytes, n.Cert.Raw) {
					seen[n.Name] = true
					hits = append(hits, hit{"PEM block (" + b.Type + ")", n})
				}
			}
		}
	}
	if len(data) > 0 && data[0] == 0x30 {
		for _, pw := range pkcs12Passwords {
			certs := pkcs12Certs(data, pw)
			if certs == nil {
				continue
			}
			for _, n := range needles {
				for _, c := range certs {
					if bytes.Equal(c, n.Cert.Raw) {
						hits = append(hits, hit{fmt.Sprintf("PKCS#12 (password %q)", pw), n})
						break
					}
				}
			}
			break
		}
	}
	return hits
}

// pkcs12Certs returns the DER of every certificate in a PKCS#12 store that
// opens with password, nil when data is not one or the password is wrong.
func pkcs12Certs(data []byte, password string) [][]byte {
	var out [][]byte
	if certs, err := pkcs12.DecodeTrustStore(data, password); err == nil {
		for _, c := range certs {
			out = append(out, c.Raw)
		}
	}
	if _, leaf, cas, err := pkcs12.DecodeChain(data, password); err == nil {
		if leaf != nil {
			out = append(out, leaf.Raw)
		}
		for _, c := range cas {
			out = append(out, c.Raw)
		}
	}
	if out != nil {
		return out
	}
	blocks, err := pkcs12.ToPEM(data, password)
	if err != nil {
		return nil
	}
	out = [][]byte{}
	for _, b := range blocks {
		if b.Type == "CERTIFICATE" {
			out = append(out, b.Bytes)
		}
	}
	return out
}

// streamContains reports which needles' DER occurs in r, read in chunks
// (for files too large to read whole).
func streamContains(r io.Reader, needles []Needle, maxDER int) ([]Needle, error) {
	found := make([]bool, len(needles))
	keep := max(maxDER-1, 0)
	buf := make([]byte, 0, keep+scanChunk)
	chunk := make([]byte, scanChunk)
	for {
		n, err := io.ReadFull(r, chunk)
		buf = append(buf, chunk[:n]...)
		for i, nd := range needles {
			if !found[i] && bytes.Contains(buf, nd.Cert.Raw) {
				found[i] = true
			}
		}
		if len(buf) > keep {
			buf = append(buf[:0], buf[len(buf)-keep:]...)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	var out []Needle
	for i, f := range found {
		if f {
			out = append(out, needles[i])
		}
	}
	return out, nil
}

// ScanImages lists where the needles occur in got (built with injection)
// and not at the same place of the same layer of want (built without): a
// Dockerfile may hold the CA itself (COPY of the same certificate), which
// is not ours. Layers with the digest of want's layer at the same index
// hold the same findings and are not read; got's layers beyond want's are
// scanned whole. Sorted by layer, then path.
func ScanImages(want, got v1.Image, needles []Needle) ([]Finding, error) {
	wl, err := want.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing layers without injection: %w", err)
	}
	gl, err := got.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing layers with injection: %w", err)
	}
	scan := func(l v1.Layer) ([]Finding, error) {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return ScanLayer(rc, needles)
	}
	var out []Finding
	for i, g := range gl {
		var base map[string]bool
		if i < len(wl) {
			wd, err := wl[i].Digest()
			if err != nil {
				return nil, err
			}
			gd, err := g.Digest()
			if err != nil {
				return nil, err
			}
			if wd == gd {
				continue
			}
			wf, err := scan(wl[i])
			if err != nil {
				return nil, fmt.Errorf("scanning layer %d without injection: %w", i, err)
			}
			base = map[string]bool{}
			for _, f := range wf {
				base[f.key()] = true
			}
		}
		gf, err := scan(g)
		if err != nil {
			return nil, fmt.Errorf("scanning layer %d with injection: %w", i, err)
		}
		for _, f := range gf {
			if !base[f.key()] {
				f.Layer = i
				out = append(out, f)
			}
		}
	}
	sort.SliceStable(out, func(a, b int) bool {
		if out[a].Layer != out[b].Layer {
			return out[a].Layer < out[b].Layer
		}
		return out[a].Path < out[b].Path
	})
	return out, nil
}
