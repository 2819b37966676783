package certs

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// KeystoreKind is the kind of a Java keystore file.
type KeystoreKind int

const (
	// KeystoreNone is anything else.
	KeystoreNone KeystoreKind = iota
	// KeystoreJKS is a JKS store (magic 0xFEEDFEED).
	KeystoreJKS
	// KeystorePKCS12 is a PKCS#12 (PFX) store: one DER SEQUENCE starting
	// with version 3 and a ContentInfo.
	KeystorePKCS12
)

func (k KeystoreKind) String() string {
	switch k {
	case KeystoreJKS:
		return "JKS"
	case KeystorePKCS12:
		return "PKCS#12"
	}
	return "none"
}

// KeystoreKindOf tells a keystore from its first bytes: the JKS magic, or
// the PKCS#12 structure (checked without decrypting anything). It does not
// say the store is well-formed.
func KeystoreKindOf(data []byte) KeystoreKind {
	switch {
	case len(data) >= 4 && binary.BigEndian.Uint32(data) == jksMagic:
		return KeystoreJKS
	case isPKCS12(data):
		return KeystorePKCS12
	}
	return KeystoreNone
}

// Entry is one entry of a keystore.
type Entry struct {
	Alias string
	// Trusted is true for a trusted-certificate entry, false for a private
	// key entry (JKS) or a bag tied to a key (PKCS#12).
	Trusted bool
	// Certs is the entry's certificate (trusted) or chain (private key), DER.
	Certs [][]byte
}

// Entries returns the entries of a JKS store (no password needed) or of a
// PKCS#12 store (plain, or encrypted with "changeit" or the empty password;
// encrypted stores list their aliases only when this package can decrypt
// them, see Strip).
func Entries(data []byte) ([]Entry, error) {
	switch KeystoreKindOf(data) {
	case KeystoreJKS:
		st, err := parseJKS(data)
		if err != nil {
			return nil, fmt.Errorf("reading JKS store: %w", err)
		}
		var out []Entry
		for _, e := range st.entries {
			en := Entry{Alias: e.alias, Trusted: e.trusted}
			for _, c := range e.certs {
				en.Certs = append(en.Certs, data[c.off:c.off+c.n])
			}
			out = append(out, en)
		}
		return out, nil
	case KeystorePKCS12:
		st, err := parsePKCS12(data)
		if err != nil {
			return nil, fmt.Errorf("reading PKCS#12 store: %w", err)
		}
		var out []Entry
		if st.encrypted == 0 {
			for _, b := range st.bags {
				if b.isCert {
					out = append(out, Entry{Alias: b.alias, Trusted: b.trusted && !b.keyLinked, Certs: [][]byte{b.cert}})
				}
			}
			return out, nil
		}
		entries, _, trust, _, err := p12Decrypted(data, st)
		if err != nil {
			return nil, fmt.Errorf("reading PKCS#12 store: %w", err)
		}
		for _, e := range entries {
			out = append(out, Entry{Alias: e.alias, Trusted: trust, Certs: [][]byte{e.cert}})
		}
		return out, nil
	}
	return nil, errors.New("not a JKS or PKCS#12 store")
}

// aliasFor is the alias AddTrusted gives c: aliasPrefix and the first 8
// bytes of the SHA-256 of its DER in hex, lower-cased as Java stores them.
func aliasFor(aliasPrefix string, c *x509.Certificate) string {
	h := sha256.Sum256(c.Raw)
	return strings.ToLower(aliasPrefix + hex.EncodeToString(h[:8]))
}

// AddTrusted adds a trusted-certificate entry for each of certs that the
// store does not trust yet, named aliasPrefix + 16 hex digits of its SHA-256
// (lower case) and created at now, and returns the new store, signed with the
// store's password ("changeit" or empty; a password-less PKCS#12 stays
// password-less). A JKS store keeps every other byte of its entries; a
// PKCS#12 store must be a trust store (only Java trusted certificates) and
// is re-encoded by go-pkcs12 (PKCS#12 has no creation times).
func AddTrusted(data []byte, certs []*x509.Certificate, aliasPrefix string, now time.Time) ([]byte, error) {
	for _, c := range certs {
		if c == nil || len(c.Raw) == 0 {
			return nil, errors.New("adding trusted certificates: nil certificate")
		}
	}
	switch KeystoreKindOf(data) {
	case KeystoreJKS:
		out, err := addJKS(data, certs, aliasPrefix, now)
		if err != nil {
			return nil, fmt.Errorf("adding to JKS store: %w", err)
		}
		return out, nil
	case KeystorePKCS12:
		out, err := addPKCS12(data, certs, aliasPrefix)
		if err != nil {
			return nil, fmt.Errorf("adding to PKCS#12 store: %w", err)
		}
		return out, nil
	}
	return nil, errors.New("adding trusted certificates: not a JKS or PKCS#12 store")
}

func addPKCS12(data []byte, certs []*x509.Certificate, aliasPrefix string) ([]byte, error) {
	st, err := parsePKCS12(data)
	if err != nil {
		return nil, err
	}
	var entries []pkcs12.TrustStoreEntry
	pw := ""
	if st.encrypted == 0 {
		for _, b := range st.bags {
			if !b.isCert || !b.trusted || b.keyLinked {
				return nil, errors.New("the store holds more than Java trusted certificates; go-pkcs12 can only re-encode a trust store")
			}
			c, err := x509.ParseCertificate(b.cert)
			if err != nil {
				return nil, fmt.Errorf("certificate %q: %w", b.alias, err)
			}
			entries = append(entries, pkcs12.TrustStoreEntry{Cert: c, FriendlyName: b.alias})
		}
		if st.hasMAC {
			if _, pw, _, _, err = p12Decrypted(data, st); err != nil {
				return nil, err
			}
		}
	} else {
		es, p, trust, aliases, err := p12Decrypted(data, st)
		if err != nil {
			return nil, err
		}
		if !trust || !aliases {
			return nil, errors.New("the store is not a trust store whose aliases we can read")
		}
		pw = p
		for _, e := range es {
			c, err := x509.ParseCertificate(e.cert)
			if err != nil {
				return nil, fmt.Errorf("certificate %q: %w", e.alias, err)
			}
			entries = append(entries, pkcs12.TrustStoreEntry{Cert: c, FriendlyName: e.alias})
		}
	}
	have := make(map[string]bool)
	taken := make(map[string]bool)
	for _, e := range entries {
		have[string(e.Cert.Raw)] = true
		taken[strings.ToLower(e.FriendlyName)] = true
	}
	for _, c := range certs {
		if have[string(c.Raw)] {
			continue
		}
		have[string(c.Raw)] = true
		alias := aliasFor(aliasPrefix, c)
		if taken[alias] {
			return nil, fmt.Errorf("alias %q is already taken by another entry", alias)
		}
		taken[alias] = true
		entries = append(entries, pkcs12.TrustStoreEntry{Cert: c, FriendlyName: alias})
	}
	return p12EncoderFor(st).EncodeTrustStoreEntries(entries, pw)
}
