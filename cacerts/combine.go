package cacerts

import (
	"github.com/buildkit-cacerts/buildkit-cacerts/distro"
)

// DefaultCombineAbove is the number of CAs above which a set is installed as
// one combined anchor when Options.CombineAbove is zero. Up to it, each CA
// gets its own anchor, .pem link and subject-hash link, as an administrator
// dropping the files in would get; above it, the three new entries per CA an
// exec creates and removes cost more than the exec itself (0.3–1 ms per new
// inode on an unjournaled ext4).
const DefaultCombineAbove = 16

// CombinedName is the base name, without the layout's anchor extension, of
// the one anchor file that holds every CA of a combined set.
const CombinedName = "buildkit-cacerts-combined"

// combineAbove returns the effective threshold: DefaultCombineAbove for
// zero, a negative value for never.
func (o Options) combineAbove() int {
	if o.CombineAbove == 0 {
		return DefaultCombineAbove
	}
	return o.CombineAbove
}

// combines reports whether a set of n CAs is installed as one combined
// anchor. A single CA is always its own anchor: a file of one certificate is
// what a per-CA anchor is, and would get a subject-hash link.
func (o Options) combines(n int) bool {
	t := o.combineAbove()
	return t >= 0 && n > t && n > 1
}

// anchorFile is one file the fast and command paths add to the layout's
// anchor directory: a CA of its own, or the combined anchor.
type anchorFile struct {
	// name is the base name without the anchor extension; the update tools
	// name the .pem link after it.
	name string
	// certs are the certificates it holds, in order.
	certs []*Cert
}

// data is the file's content: every certificate's PEM (each ends in "\n").
func (a anchorFile) data() []byte {
	if len(a.certs) == 1 {
		return a.certs[0].PEM
	}
	n := 0
	for _, c := range a.certs {
		n += len(c.PEM)
	}
	out := make([]byte, 0, n)
	for _, c := range a.certs {
		out = append(out, c.PEM...)
	}
	return out
}

// blocks are the PEM blocks of data, one per certificate: what revert takes
// out of a bundle a tool rebuilt from this file.
func (a anchorFile) blocks() [][]byte {
	out := make([][]byte, 0, len(a.certs))
	for _, c := range a.certs {
		out = append(out, c.PEM)
	}
	return out
}

// anchorFiles lists the anchors the plan writes: one per CA, or, when the
// plan combines, one file named CombinedName holding the whole set in its
// order.
func (p *Plan) anchorFiles() []anchorFile {
	if p.combined {
		return []anchorFile{{name: CombinedName, certs: p.set.Certs}}
	}
	out := make([]anchorFile, 0, p.set.Len())
	for _, c := range p.set.Certs {
		out = append(out, anchorFile{name: c.Name, certs: []*Cert{c}})
	}
	return out
}

// perFileHooks reports whether layout l's update tool passes each added
// anchor to a hook that would run in fsys: Debian's update-ca-certificates
// (Debian and Gentoo) pipes the list of added .pem files to every hook of
// HOOKSDIR, and ca-certificates-java's jks-keystore hook imports one
// certificate per listed file (UpdateCertificates.createCertificate calls
// CertificateFactory.generateCertificate, which reads the first
// certificate only). A combined anchor would put only the set's first CA in
// the Java keystore, so the command path keeps one anchor per CA there.
// Alpine's tool runs its hooks with no list of files, and SUSE's hooks
// extract from p11-kit's whole store: neither is checked.
func perFileHooks(fsys FS, l distro.Layout) string {
	if l.Family != distro.FamilyDebian && l.Family != distro.FamilyGentoo {
		return ""
	}
	for _, d := range l.HookDirs {
		if h := hooks(fsys, d); h != "" {
			return h
		}
	}
	return ""
}
