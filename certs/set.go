package certs

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
)

// Set is an immutable set of CA certificates, deduplicated by the SHA-256 of
// their DER encoding. A nil *Set is an empty set. Its methods are safe for
// concurrent use.
type Set struct {
	certs  []*x509.Certificate
	byHash map[[sha256.Size]byte]int
	// byPrefix indexes every certificate by its length and first prefixLen
	// bytes: the DER scan compares a candidate with the few certificates
	// that share both before it compares all bytes (see scanDER).
	byPrefix map[prefixKey][]int
	// lengths holds every certificate's DER length (the cheap first filter).
	lengths map[int]struct{}
}

// prefixLen is how many leading DER bytes key a certificate in byPrefix.
const prefixLen = 48

type prefixKey struct {
	n int
	p [prefixLen]byte
}

func keyOf(der []byte) prefixKey {
	k := prefixKey{n: len(der)}
	copy(k.p[:], der)
	return k
}

// NewSet returns the set of cs without duplicates (same DER) and without nil
// entries, in the order of their first occurrence.
func NewSet(cs []*x509.Certificate) *Set {
	s := &Set{
		byHash:   make(map[[sha256.Size]byte]int),
		byPrefix: make(map[prefixKey][]int),
		lengths:  make(map[int]struct{}),
	}
	for _, c := range cs {
		if c == nil || len(c.Raw) == 0 {
			continue
		}
		h := sha256.Sum256(c.Raw)
		if _, ok := s.byHash[h]; ok {
			continue
		}
		i := len(s.certs)
		s.certs = append(s.certs, c)
		s.byHash[h] = i
		k := keyOf(c.Raw)
		s.byPrefix[k] = append(s.byPrefix[k], i)
		s.lengths[len(c.Raw)] = struct{}{}
	}
	return s
}

// Len returns the number of certificates in s.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.certs)
}

// Certs returns the certificates of s in order; Hit.Index indexes it. The
// slice is a copy; the certificates are shared and must not be modified.
func (s *Set) Certs() []*x509.Certificate {
	if s == nil {
		return nil
	}
	return slices.Clone(s.certs)
}

// lookup returns the index of the certificate whose DER is der, or -1.
func (s *Set) lookup(der []byte) int {
	if s.Len() == 0 {
		return -1
	}
	if _, ok := s.lengths[len(der)]; !ok {
		return -1
	}
	if i, ok := s.byHash[sha256.Sum256(der)]; ok {
		return i
	}
	return -1
}

// Format says in which encoding a certificate was found.
type Format int

const (
	// FormatPEM is a PEM block (CERTIFICATE, TRUSTED CERTIFICATE, or our
	// certificate's DER inside the decoded bytes of any other block type).
	FormatPEM Format = iota + 1
	// FormatDER is the raw DER encoding, anywhere in the data.
	FormatDER
	// FormatJKS is a certificate of a Java KeyStore entry.
	FormatJKS
	// FormatPKCS12 is a certificate bag of a PKCS#12 store.
	FormatPKCS12
)

func (f Format) String() string {
	switch f {
	case FormatPEM:
		return "PEM"
	case FormatDER:
		return "DER"
	case FormatJKS:
		return "JKS"
	case FormatPKCS12:
		return "PKCS#12"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Hit is one occurrence of a certificate of a Set in some data.
type Hit struct {
	// Index is the certificate's index into Set.Certs().
	Index int
	// Format is the encoding the certificate was found in.
	Format Format
	// Alias is the keystore alias (JKS alias, PKCS#12 friendlyName) of the
	// entry holding the certificate, if any.
	Alias string
	// Offset is where the encoding starts in the data (the "-----BEGIN"
	// of a PEM block, the first DER byte otherwise), or -1 for a
	// certificate inside an encrypted PKCS#12 container.
	Offset int
	// Chain is true when the certificate is in a private-key entry's
	// certificate chain (JKS) or in a PKCS#12 bag tied to a key: it cannot
	// be removed without changing that entry.
	Chain bool
}

// ErrCannotStrip is wrapped by Strip's error when data holds a certificate of
// the set that Strip cannot remove exactly. Match it with errors.Is; the
// *StripError says which format and why.
var ErrCannotStrip = errors.New("certificate cannot be removed exactly")

// StripError says why Strip could not remove a certificate. It wraps
// ErrCannotStrip.
type StripError struct {
	Format Format
	Alias  string // the keystore entry, if any
	Reason string
}

func (e *StripError) Error() string {
	where := e.Format.String()
	if e.Alias != "" {
		where += fmt.Sprintf(" entry %q", e.Alias)
	}
	return fmt.Sprintf("%s: %s: %s", where, ErrCannotStrip, e.Reason)
}

func (e *StripError) Unwrap() error { return ErrCannotStrip }

func cannot(f Format, alias, format string, args ...any) error {
	return &StripError{Format: f, Alias: alias, Reason: fmt.Sprintf(format, args...)}
}
