package certs

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"unicode/utf16"
	"unicode/utf8"
)

// ASN.1 universal tags used in names.
const (
	tagSequence        = 0x30
	tagSet             = 0x31
	tagOID             = 0x06
	tagUTF8String      = 0x0c
	tagPrintableString = 0x13
	tagT61String       = 0x14
	tagIA5String       = 0x16
	tagVisibleString   = 0x1a
	tagUniversalString = 0x1c
	tagBMPString       = 0x1e
)

// SubjectHash returns OpenSSL's X509_NAME_hash of c's subject: the "new"
// hash used by `openssl x509 -subject_hash` and the <hash>.N names of
// `openssl rehash`.
func SubjectHash(c *x509.Certificate) (uint32, error) {
	if c == nil {
		return 0, errors.New("subject hash of a nil certificate")
	}
	return NameHash(c.RawSubject)
}

// NameHash returns OpenSSL's X509_NAME_hash of a DER-encoded Name, such as
// x509.Certificate.RawSubject.
//
// It mirrors OpenSSL's crypto/x509/x_name.c: x509_name_canon builds the
// canonical encoding — for each RDN, the DER SET OF its attributes (sorted as
// DER requires) with every value of a string type (UTF8String, BMPString,
// UniversalString, PrintableString, T61String, IA5String, VisibleString)
// converted to UTF-8 by asn1_string_canon (leading and trailing ASCII
// whitespace dropped, inner runs collapsed to one space, ASCII lowercased,
// other bytes kept) and re-tagged UTF8String, other values kept as they are;
// the SETs are concatenated without the outer SEQUENCE. X509_NAME_hash_ex
// takes the SHA-1 of that and reads its first four bytes little-endian. An
// empty name hashes the empty string.
func NameHash(rawName []byte) (uint32, error) {
	canon, err := canonicalName(rawName)
	if err != nil {
		return 0, err
	}
	sum := sha1.Sum(canon)
	return binary.LittleEndian.Uint32(sum[:4]), nil
}

// tlv is one DER element: its tag byte, its full encoding and its content.
type tlv struct {
	tag     byte
	full    []byte
	content []byte
}

// readTLV reads one DER element with a single-byte tag from b.
func readTLV(b []byte) (tlv, []byte, error) {
	if len(b) < 2 {
		return tlv{}, nil, errors.New("truncated element")
	}
	tag := b[0]
	if tag&0x1f == 0x1f {
		return tlv{}, nil, errors.New("multi-byte tags are not supported")
	}
	n := int(b[1])
	hdr := 2
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 4 || len(b) < 2+k {
			return tlv{}, nil, errors.New("bad length")
		}
		n = 0
		for _, c := range b[2 : 2+k] {
			n = n<<8 | int(c)
		}
		hdr += k
	}
	if n < 0 || len(b)-hdr < n {
		return tlv{}, nil, errors.New("truncated element")
	}
	return tlv{tag: tag, full: b[:hdr+n], content: b[hdr : hdr+n]}, b[hdr+n:], nil
}

// appendTLV appends a DER element with tag and content.
func appendTLV(dst []byte, tag byte, content []byte) []byte {
	dst = append(dst, tag)
	n := len(content)
	switch {
	case n < 0x80:
		dst = append(dst, byte(n))
	case n < 0x100:
		dst = append(dst, 0x81, byte(n))
	case n < 0x10000:
		dst = append(dst, 0x82, byte(n>>8), byte(n))
	case n < 0x1000000:
		dst = append(dst, 0x83, byte(n>>16), byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, content...)
}

// canonicalName returns the canonical encoding x509_name_canon computes.
func canonicalName(raw []byte) ([]byte, error) {
	name, rest, err := readTLV(raw)
	if err != nil {
		return nil, fmt.Errorf("name: %w", err)
	}
	if name.tag != tagSequence || len(rest) != 0 {
		return nil, errors.New("name is not one SEQUENCE")
	}
	var out []byte
	rdns := name.content
	for len(rdns) > 0 {
		var rdn tlv
		rdn, rdns, err = readTLV(rdns)
		if err != nil {
			return nil, fmt.Errorf("RDN: %w", err)
		}
		if rdn.tag != tagSet {
			return nil, errors.New("RDN is not a SET")
		}
		var atvs [][]byte
		for b := rdn.content; len(b) > 0; {
			var atv tlv
			atv, b, err = readTLV(b)
			if err != nil {
				return nil, fmt.Errorf("attribute: %w", err)
			}
			enc, err := canonicalATV(atv)
			if err != nil {
				return nil, err
			}
			atvs = append(atvs, enc)
		}
		if len(atvs) == 0 {
			// OpenSSL's decoder refuses an empty RDN.
			return nil, errors.New("empty RDN")
		}
		// DER SET OF: elements sorted by encoding (OpenSSL's der_cmp: memcmp of
		// the common prefix, then the shorter first).
		sort.SliceStable(atvs, func(i, j int) bool {
			a, b := atvs[i], atvs[j]
			n := min(len(a), len(b))
			if c := bytes.Compare(a[:n], b[:n]); c != 0 {
				return c < 0
			}
			return len(a) < len(b)
		})
		out = appendTLV(out, tagSet, bytes.Join(atvs, nil))
	}
	return out, nil
}

// canonicalATV re-encodes one AttributeTypeAndValue with its value canonical.
func canonicalATV(atv tlv) ([]byte, error) {
	if atv.tag != tagSequence {
		return nil, errors.New("attribute is not a SEQUENCE")
	}
	oid, rest, err := readTLV(atv.content)
	if err != nil || oid.tag != tagOID {
		return nil, errors.New("attribute type is not an OID")
	}
	val, rest, err := readTLV(rest)
	if err != nil {
		return nil, fmt.Errorf("attribute value: %w", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("trailing data in attribute")
	}
	var v []byte
	switch val.tag {
	case tagUTF8String, tagPrintableString, tagT61String, tagIA5String, tagVisibleString, tagUniversalString, tagBMPString:
		u, err := toUTF8(val.tag, val.content)
		if err != nil {
			return nil, err
		}
		v = appendTLV(nil, tagUTF8String, canonString(u))
	default:
		v = val.full
	}
	return appendTLV(nil, tagSequence, append(append([]byte(nil), oid.full...), v...)), nil
}

// toUTF8 converts a string value as ASN1_STRING_to_UTF8 does: one-byte types
// as Latin-1, BMPString as UCS-2, UniversalString as UCS-4, UTF8String checked.
func toUTF8(tag byte, b []byte) ([]byte, error) {
	switch tag {
	case tagUTF8String:
		if !utf8.Valid(b) {
			return nil, errors.New("invalid UTF8String")
		}
		return b, nil
	case tagBMPString:
		if len(b)%2 != 0 {
			return nil, errors.New("odd-length BMPString")
		}
		var out []byte
		for i := 0; i < len(b); i += 2 {
			r := rune(b[i])<<8 | rune(b[i+1])
			if utf16.IsSurrogate(r) {
				return nil, errors.New("surrogate in BMPString")
			}
			out = utf8.AppendRune(out, r)
		}
		return out, nil
	case tagUniversalString:
		if len(b)%4 != 0 {
			return nil, errors.New("bad UniversalString length")
		}
		var out []byte
		for i := 0; i < len(b); i += 4 {
			r := rune(binary.BigEndian.Uint32(b[i:]))
			if r > utf8.MaxRune || utf16.IsSurrogate(r) {
				return nil, errors.New("bad character in UniversalString")
			}
			out = utf8.AppendRune(out, r)
		}
		return out, nil
	default: // PrintableString, T61String, IA5String, VisibleString: bytes as Latin-1
		out := make([]byte, 0, len(b))
		for _, c := range b {
			out = utf8.AppendRune(out, rune(c))
		}
		return out, nil
	}
}

// isOpenSSLSpace is OpenSSL's ossl_isspace: ASCII space, \t, \n, \v, \f, \r.
func isOpenSSLSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

// canonString is asn1_string_canon's text rule: trim ASCII whitespace, collapse
// inner runs to one space, lowercase ASCII, keep every non-ASCII byte.
func canonString(s []byte) []byte {
	for len(s) > 0 && isOpenSSLSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isOpenSSLSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c >= 0x80:
			out = append(out, c)
			i++
		case isOpenSSLSpace(c):
			out = append(out, ' ')
			for i < len(s) && isOpenSSLSpace(s[i]) {
				i++
			}
		default:
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			out = append(out, c)
			i++
		}
	}
	return out
}
