package certs

import (
	"bytes"
	"cmp"
	"slices"
)

// hit is a Hit with what Strip needs to know about it.
type hit struct {
	Hit
	end       int  // offset just past the encoding (PEM: past the END line's line break)
	removable bool // Strip can remove it exactly
}

// Find reports every occurrence of a certificate of s in data, in order of
// offset (hits inside encrypted PKCS#12 safes, at offset -1, last).
//
// It sees: PEM blocks (CERTIFICATE, TRUSTED CERTIFICATE, X509 CERTIFICATE;
// any line width, LF or CRLF, RFC 1421 headers) whose certificate is ours,
// and our DER inside the decoded bytes of any other PEM block (PKCS7, ...);
// our raw DER anywhere in data (a .der file, a tar, a JKS store, a
// password-less PKCS#12, any binary); the entries of a JKS store or a
// PKCS#12 store that starts data, with their aliases; and the certificates of
// a PKCS#12 store whose safes are encrypted with the password "changeit" or
// the empty password. See the package documentation for what it cannot see.
//
// The cost is O(len(data)) and does not grow with s.Len() (map lookups keyed
// by a certificate's SHA-256 or its length and first bytes), plus, for a
// PKCS#12 store with encrypted safes, at most two password tries of at most
// maxIterations key-derivation rounds each. It never panics and allocates
// about the size of the largest PEM block, or, for a keystore at the start
// of data, about the size of data.
func (s *Set) Find(data []byte) []Hit {
	hs := s.find(data)
	if len(hs) == 0 {
		return nil
	}
	out := make([]Hit, len(hs))
	for i, h := range hs {
		out[i] = h.Hit
	}
	return out
}

func (s *Set) find(data []byte) []hit {
	if s.Len() == 0 {
		return nil
	}
	var hits []hit
	var sc pemScratch
	for i := 0; ; {
		b, ok := nextPEM(data, i)
		if !ok {
			break
		}
		i = b.end
		der, ok := sc.decodeBody(b.body)
		if !ok {
			continue
		}
		if certLabel(b.label) {
			if idx := s.lookup(firstTLV(der)); idx >= 0 {
				hits = append(hits, hit{Hit: Hit{Index: idx, Format: FormatPEM, Offset: b.start}, end: b.end, removable: true})
				continue
			}
		}
		s.scanDER(der, func(_, idx int) {
			hits = append(hits, hit{Hit: Hit{Index: idx, Format: FormatPEM, Offset: b.start}, end: b.end})
		})
	}
	s.scanDER(data, func(off, idx int) {
		hits = append(hits, hit{Hit: Hit{Index: idx, Format: FormatDER, Offset: off}, end: off + len(s.certs[idx].Raw)})
	})
	switch KeystoreKindOf(data) {
	case KeystoreJKS:
		if st, err := parseJKS(data); err == nil {
			s.annotateJKS(st, hits)
		}
	case KeystorePKCS12:
		if st, err := parsePKCS12(data); err == nil {
			hits = s.findPKCS12(data, st, hits)
		}
	}
	slices.SortStableFunc(hits, func(a, b hit) int {
		if (a.Offset < 0) != (b.Offset < 0) {
			return cmp.Compare(b.Offset, a.Offset) // -1 last
		}
		return cmp.Compare(a.Offset, b.Offset)
	})
	return hits
}

// annotateJKS turns DER hits that are the certificates of JKS entries into
// JKS hits with the entry's alias.
func (s *Set) annotateJKS(st *jksStore, hits []hit) {
	type where struct {
		alias   string
		trusted bool
	}
	at := make(map[int]where)
	for _, e := range st.entries {
		for _, c := range e.certs {
			at[c.off] = where{e.alias, e.trusted}
		}
	}
	for i := range hits {
		if w, ok := at[hits[i].Offset]; ok && hits[i].Format == FormatDER {
			hits[i].Format = FormatJKS
			hits[i].Alias = w.alias
			hits[i].Chain = !w.trusted
			hits[i].removable = w.trusted
		}
	}
}

// Strip returns data without any certificate of s, and how many it removed.
//
//   - Text: every PEM block holding one of our certificates (CERTIFICATE,
//     TRUSTED CERTIFICATE, ...) is cut out together with the line break after
//     its END line; every other byte is kept exactly.
//   - A JKS store: the trusted-certificate entries holding ours are removed;
//     every other entry is kept byte for byte and in order (alias, creation
//     time, certificate), and the store is signed again with its password
//     ("changeit" or empty) and checked by loading it with keystore-go.
//   - A PKCS#12 trust store: re-encoded by go-pkcs12 without our
//     certificates, every other one kept in order with its alias, with the
//     same password and cipher family, or password-less when it had no MAC;
//     checked by decoding it back.
//   - Data that is exactly one of our certificates' DER (and whitespace)
//     becomes empty.
//
// When data holds one of our certificates that cannot be removed exactly —
// raw DER inside other binary data, our DER inside another kind of PEM block,
// a keystore whose password is not one we try, our certificate in a private
// key's chain, a PKCS#12 store holding keys — it returns an error wrapping
// ErrCannotStrip (a *StripError) and no data. With err == nil, Find(out) is
// empty. When nothing was removed, out is data itself.
func (s *Set) Strip(data []byte) ([]byte, int, error) {
	if s.Len() == 0 {
		return data, 0, nil
	}
	var out []byte
	var removed int
	var err error
	switch kind, jks, p12 := s.keystoreOf(data); kind {
	case KeystoreJKS:
		out, removed, err = s.stripJKS(data, jks)
	case KeystorePKCS12:
		out, removed, err = s.stripPKCS12(data, p12)
	default:
		out, removed, err = s.stripText(data)
	}
	if err != nil {
		return nil, 0, err
	}
	if hs := s.find(out); len(hs) > 0 {
		h := hs[0]
		return nil, 0, cannot(h.Format, h.Alias, "one of our certificates is still there after the edit (offset %d)", h.Offset)
	}
	return out, removed, nil
}

// keystoreOf returns the parsed keystore at the start of data, if data is a
// well-formed one.
func (s *Set) keystoreOf(data []byte) (KeystoreKind, *jksStore, *p12Store) {
	switch KeystoreKindOf(data) {
	case KeystoreJKS:
		if st, err := parseJKS(data); err == nil {
			return KeystoreJKS, st, nil
		}
	case KeystorePKCS12:
		if st, err := parsePKCS12(data); err == nil {
			return KeystorePKCS12, nil, st
		}
	}
	return KeystoreNone, nil, nil
}

// maxTextRounds bounds how often stripText cuts again: cutting a block can
// join the text around it into a new block (only crafted data does that).
const maxTextRounds = 4

// stripText cuts our PEM blocks out of data; see Strip.
func (s *Set) stripText(data []byte) ([]byte, int, error) {
	out, removed := data, 0
	for range maxTextRounds {
		hits := s.find(out)
		if len(hits) == 0 {
			return out, removed, nil
		}
		if len(hits) == 1 && hits[0].Format == FormatDER && isSpace(out[:hits[0].Offset]) && isSpace(out[hits[0].end:]) {
			return []byte{}, removed + 1, nil
		}
		var next []byte
		cur := 0
		for _, h := range hits {
			if !h.removable || h.Format != FormatPEM {
				return nil, 0, s.whyNot(out, h)
			}
			if h.Offset < cur {
				continue // cannot happen: PEM blocks do not overlap
			}
			next = append(next, out[cur:h.Offset]...)
			cur = h.end
			removed++
		}
		out = append(next, out[cur:]...)
	}
	return nil, 0, cannot(FormatPEM, "", "cutting our PEM blocks keeps forming new ones (crafted text)")
}

// whyNot explains why hit h cannot be removed from data.
func (s *Set) whyNot(data []byte, h hit) error {
	switch h.Format {
	case FormatPEM:
		b, _ := nextPEM(data, h.Offset)
		return cannot(FormatPEM, "", "our certificate is inside a PEM block of type %q at offset %d; cutting the block would lose its other content", b.label, h.Offset)
	case FormatDER:
		return cannot(FormatDER, "", "our certificate's raw DER is at offset %d inside data of a format we cannot edit (a damaged keystore, an archive, a binary); remove or rebuild the file", h.Offset)
	}
	return cannot(h.Format, h.Alias, "cannot be removed")
}

// isSpace reports whether b is only ASCII whitespace.
func isSpace(b []byte) bool {
	return len(bytes.TrimLeft(b, " \t\r\n\v\f")) == 0
}
