package cacerts

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"path"

	"github.com/buildkit-cacerts/buildkit-cacerts/certs"
	"github.com/buildkit-cacerts/buildkit-cacerts/distro"
)

// What the image already trusts, found at install time (docs/design.md,
// "The sweep": a CA the image's bundle or own anchors already hold is not
// installed again, so the sweep never takes the image's copy for ours).

// setInstalled records the CAs the install put into the root and the
// image's anchor directories, for Sweep.
func (j *Journal) setInstalled(set *Set, l distro.Layout) {
	j.installedCerts = set.Certs
	xs := make([]*x509.Certificate, 0, set.Len())
	for _, c := range set.Certs {
		xs = append(xs, c.Cert)
	}
	j.installed = certs.NewSet(xs)
	if l.AnchorDir != "" {
		j.anchorDirs = append(j.anchorDirs, l.AnchorDir)
	}
	j.anchorDirs = append(j.anchorDirs, l.SystemAnchorDirs...)
}

// pemHeader starts every certificate block trustedAlready looks at.
var (
	pemHeader = []byte("-----BEGIN CERTIFICATE-----")
	pemFooter = []byte("-----END CERTIFICATE-----")
)

// trustedAlready returns the SHA-256s of the certificates of set that the
// image's primary bundle (the first of the layout's bundles that exists)
// already holds. It compares the first 40 base64 characters of each block
// with ours and decodes only the blocks that match, so a 220 KB bundle
// costs a scan for the block headers, not a decode of every block.
func trustedAlready(fsys FS, l distro.Layout, set *Set) (map[[32]byte]bool, bundleRead) {
	const prefix = 40
	want := map[string][]*Cert{}
	for _, c := range set.Certs {
		b64 := pemBody(c.PEM)
		if len(b64) < prefix {
			continue
		}
		want[string(b64[:prefix])] = append(want[string(b64[:prefix])], c)
	}
	var data []byte
	var read bundleRead
	for _, b := range l.Bundles {
		d, err := fsys.ReadFileLimit(b.Path, maxBundle)
		if err == nil {
			data = d
			read = bundleRead{path: b.Path, data: d}
			break
		}
	}
	held := pemHolds(data, want)
	// The image's own anchors count too: a Dockerfile that COPYs the CA
	// into the anchor directory and runs the update tool in a later RUN
	// trusts it, though the bundle does not hold it yet.
	if l.AnchorDir != "" {
		if ents, err := fsys.ReadDir(l.AnchorDir); err == nil && len(ents) <= maxOwnAnchors {
			var total int64
			for _, de := range ents {
				if !de.Type().IsRegular() {
					continue
				}
				fi, err := de.Info()
				if err != nil || fi.Size() > maxCAFile {
					continue // not a CA file an engine would install
				}
				if total += fi.Size(); total > maxOwnAnchorBytes {
					break // an image's own anchors are a few KB: not read past this
				}
				d, err := fsys.ReadFileLimit(path.Join(l.AnchorDir, de.Name()), maxCAFile)
				if err != nil {
					continue
				}
				for k := range pemHolds(d, want) {
					if held == nil {
						held = map[[32]byte]bool{}
					}
					held[k] = true
				}
			}
		}
	}
	return held, read
}

// bundleRead is the image's primary bundle as trustedAlready read it, so
// the fast path does not read it again.
type bundleRead struct {
	path string
	data []byte
}

// maxOwnAnchors caps the image's anchor files trustedAlready reads, and
// maxOwnAnchorBytes their total size, per exec.
const (
	maxOwnAnchors     = 64
	maxOwnAnchorBytes = 1 << 20
)

// pemHolds returns the SHA-256s of the certificates of want (keyed by the
// first 40 base64 characters of their PEM) that data holds as PEM blocks.
func pemHolds(data []byte, want map[string][]*Cert) map[[32]byte]bool {
	const prefix = 40
	var held map[[32]byte]bool
	for rest := data; ; {
		i := bytes.Index(rest, pemHeader)
		if i < 0 {
			break
		}
		rest = rest[i+len(pemHeader):]
		body := bytes.TrimLeft(rest, "\r\n")
		if len(body) < prefix {
			break
		}
		cs, ok := want[string(body[:prefix])]
		if !ok {
			continue
		}
		end := bytes.Index(rest, pemFooter)
		if end < 0 {
			break
		}
		blk, _ := pem.Decode(append(append([]byte(nil), pemHeader...), rest[:end+len(pemFooter)]...))
		if blk == nil {
			continue
		}
		sum := sha256.Sum256(blk.Bytes)
		for _, c := range cs {
			if c.SHA256 == sum {
				if held == nil {
					held = map[[32]byte]bool{}
				}
				held[sum] = true
			}
		}
	}
	return held
}

// pemBody returns the base64 text of a canonical PEM block (after the
// header line, newlines included).
func pemBody(p []byte) []byte {
	if i := bytes.IndexByte(p, '\n'); i >= 0 {
		return p[i+1:]
	}
	return nil
}
