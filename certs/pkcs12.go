package certs

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"unicode/utf16"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// PKCS#12 (RFC 7292) as Java and OpenSSL write it, in DER:
//
//	PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, macData MacData OPTIONAL }
//	ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT ANY OPTIONAL }
//	AuthenticatedSafe ::= SEQUENCE OF ContentInfo -- data (plain) or encryptedData
//	SafeContents ::= SEQUENCE OF SafeBag
//	SafeBag ::= SEQUENCE { bagId OID, bagValue [0] EXPLICIT ANY, bagAttributes SET OF Attribute OPTIONAL }
//	CertBag ::= SEQUENCE { certId OID, certValue [0] EXPLICIT OCTET STRING }
//
// A Java trust store entry is a CertBag with the friendlyName attribute (the
// alias) and Oracle's trusted-key-usage attribute; JDK 18+ ships its cacerts
// with plain (unencrypted) safe contents and no MAC.
var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEncryptedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidCertBag       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}
	oidX509Cert      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}
	oidFriendlyName  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 20}
	oidLocalKeyID    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 21}
	oidJavaTrusted   = asn1.ObjectIdentifier{2, 16, 840, 1, 113894, 746875, 1, 1}

	oidSHA1          = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidPBMAC1        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}
	oidPBES2         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBEWith3DES   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}
	oidPBEWithRC2_40 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 6}
)

// maxIterations caps the key-derivation iterations a PKCS#12 file may ask
// for before we try passwords on it: each try costs that many hash rounds,
// and the file is untrusted (BenchmarkPKCS12AtCap). Java writes 10000,
// OpenSSL and go-pkcs12 2048.
const maxIterations = 20_000

type p12PFX struct {
	Version  int
	AuthSafe p12ContentInfo
	MacData  asn1.RawValue `asn1:"optional"`
}

type p12ContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
}

type p12MacData struct {
	Mac struct {
		Algorithm pkix.AlgorithmIdentifier
		Digest    []byte
	}
	Salt       []byte
	Iterations int `asn1:"optional,default:1"`
}

type p12EncryptedData struct {
	Version int
	Info    struct {
		ContentType asn1.ObjectIdentifier
		Algorithm   pkix.AlgorithmIdentifier
		Content     asn1.RawValue `asn1:"tag:0,optional"`
	}
}

type p12SafeBag struct {
	ID         asn1.ObjectIdentifier
	Value      asn1.RawValue  `asn1:"tag:0,explicit"`
	Attributes []p12Attribute `asn1:"set,optional"`
}

type p12Attribute struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"set"`
}

type p12CertBag struct {
	ID   asn1.ObjectIdentifier
	Data asn1.RawValue `asn1:"tag:0,explicit"`
}

// p12Bag is one safe bag of a plain (unencrypted) SafeContents.
type p12Bag struct {
	isCert    bool
	cert      []byte // the DER certificate of a CertBag
	off       int    // offset of cert in the store, -1 if unknown
	alias     string // friendlyName
	keyLinked bool   // has a localKeyId: the certificate of a key
	trusted   bool   // has Java's trusted-key-usage attribute
}

// p12Safe is one SafeContents: plain with its bags, or encrypted.
type p12Safe struct {
	encrypted bool
	alg       pkix.AlgorithmIdentifier
	content   []byte // the ciphertext of an encrypted safe
	bags      []p12Bag
}

type p12Store struct {
	hasMAC    bool
	macAlg    asn1.ObjectIdentifier
	encAlg    asn1.ObjectIdentifier // of the (last) encrypted safe
	encrypted int                   // number of encrypted safes
	bags      []p12Bag              // bags of the plain safes, in order
	safes     []p12Safe             // every safe, in order
	maxIter   int64                 // largest INTEGER in the MAC and encryption parameters
	macIter   int                   // the MAC's iteration count (PKCS#12 KDF), 1 if absent
}

// unmarshalAll is asn1.Unmarshal refusing trailing bytes.
func unmarshalAll(b []byte, v any) error {
	rest, err := asn1.Unmarshal(b, v)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return errors.New("trailing data")
	}
	return nil
}

// isPKCS12 is the cheap structural test KeystoreKindOf uses: one DER
// SEQUENCE spanning data whose first element is INTEGER 3 and whose second
// is a ContentInfo.
func isPKCS12(data []byte) bool {
	if len(data) < 8 || data[0] != 0x30 {
		return false
	}
	var pfx struct {
		Version  int
		AuthSafe asn1.RawValue
		Rest     asn1.RawValue `asn1:"optional"`
	}
	if err := unmarshalAll(data, &pfx); err != nil || pfx.Version != 3 {
		return false
	}
	var ci p12ContentInfo
	return pfx.AuthSafe.Tag == asn1.TagSequence && unmarshalAll(pfx.AuthSafe.FullBytes, &ci) == nil
}

// offsetIn returns where sub starts inside data, or -1 if it does not alias
// data's backing array.
func offsetIn(data, sub []byte) int {
	if len(sub) == 0 || len(data) == 0 {
		return -1
	}
	off := cap(data) - cap(sub)
	if off < 0 || off+len(sub) > len(data) || &data[off] != &sub[0] {
		return -1
	}
	return off
}

// parsePKCS12 reads the structure of a PFX: the plain safes' bags and what
// the encrypted safes and the MAC use.
func parsePKCS12(data []byte) (*p12Store, error) {
	var pfx p12PFX
	if err := unmarshalAll(data, &pfx); err != nil {
		return nil, fmt.Errorf("PFX: %w", err)
	}
	if pfx.Version != 3 {
		return nil, fmt.Errorf("PFX version %d, want 3", pfx.Version)
	}
	authSafe, ok := octets(pfx.AuthSafe.Content)
	if !pfx.AuthSafe.ContentType.Equal(oidData) || !ok {
		return nil, errors.New("PFX authSafe is not data (public-key integrity mode is not supported)")
	}
	st := &p12Store{}
	if len(pfx.MacData.FullBytes) > 0 {
		var md p12MacData
		if err := unmarshalAll(pfx.MacData.FullBytes, &md); err != nil {
			return nil, fmt.Errorf("PFX MAC: %w", err)
		}
		st.hasMAC = true
		st.macAlg = md.Mac.Algorithm.Algorithm
		st.macIter = md.Iterations
		st.maxIter = max(int64(md.Iterations), maxInt(md.Mac.Algorithm.Parameters.FullBytes, 0))
	}
	var safes []p12ContentInfo
	if err := unmarshalAll(authSafe, &safes); err != nil {
		return nil, fmt.Errorf("PFX authenticated safe: %w", err)
	}
	for _, ci := range safes {
		switch {
		case ci.ContentType.Equal(oidData):
			content, ok := octets(ci.Content)
			if !ok {
				return nil, errors.New("PFX data safe is not an OCTET STRING")
			}
			var bags []p12SafeBag
			if err := unmarshalAll(content, &bags); err != nil {
				return nil, fmt.Errorf("PFX safe contents: %w", err)
			}
			safe := p12Safe{}
			for _, b := range bags {
				safe.bags = append(safe.bags, readBag(data, b))
			}
			st.bags = append(st.bags, safe.bags...)
			st.safes = append(st.safes, safe)
		case ci.ContentType.Equal(oidEncryptedData):
			var ed p12EncryptedData
			if err := unmarshalAll(ci.Content.Bytes, &ed); err != nil {
				return nil, fmt.Errorf("PFX encrypted safe: %w", err)
			}
			if ed.Version != 0 || !ed.Info.ContentType.Equal(oidData) || ed.Info.Content.Class != asn1.ClassContextSpecific {
				return nil, errors.New("PFX encrypted safe is not version 0 EncryptedData of data")
			}
			st.safes = append(st.safes, p12Safe{encrypted: true, alg: ed.Info.Algorithm, content: ed.Info.Content.Bytes})
			st.encrypted++
			st.encAlg = ed.Info.Algorithm.Algorithm
			st.maxIter = max(st.maxIter, maxInt(ed.Info.Algorithm.Parameters.FullBytes, 0))
		default:
			return nil, fmt.Errorf("PFX safe of content type %v is not supported", ci.ContentType)
		}
	}
	return st, nil
}

// octets returns the content of the OCTET STRING that an EXPLICIT [0]
// RawValue (as encoding/asn1 fills it: the [0] element itself) wraps.
func octets(explicit asn1.RawValue) ([]byte, bool) {
	var inner asn1.RawValue
	if unmarshalAll(explicit.Bytes, &inner) != nil || inner.Class != asn1.ClassUniversal ||
		inner.Tag != asn1.TagOctetString || inner.IsCompound {
		return nil, false
	}
	return inner.Bytes, true
}

// readBag reads one safe bag; anything it cannot read is a non-certificate bag.
func readBag(data []byte, b p12SafeBag) p12Bag {
	bag := p12Bag{off: -1}
	for _, a := range b.Attributes {
		switch {
		case a.ID.Equal(oidFriendlyName):
			var v asn1.RawValue
			if unmarshalAll(a.Value.Bytes, &v) == nil && v.Tag == asn1.TagBMPString {
				bag.alias = decodeBMP(v.Bytes)
			}
		case a.ID.Equal(oidLocalKeyID):
			bag.keyLinked = true
		case a.ID.Equal(oidJavaTrusted):
			bag.trusted = true
		}
	}
	if !b.ID.Equal(oidCertBag) {
		return bag
	}
	var cb p12CertBag
	if unmarshalAll(b.Value.Bytes, &cb) != nil || !cb.ID.Equal(oidX509Cert) {
		return bag
	}
	der, ok := octets(cb.Data)
	if !ok {
		return bag
	}
	bag.isCert = true
	bag.cert = der
	bag.off = offsetIn(data, der)
	return bag
}

// decodeBMP decodes a BMPString (UTF-16BE); odd trailing bytes are dropped.
func decodeBMP(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		u = append(u, uint16(b[i])<<8|uint16(b[i+1]))
	}
	return string(utf16.Decode(u))
}

// maxInt returns the largest INTEGER anywhere in a DER tree (0 if none; a
// huge or unparsable one counts as 1<<62), so that an iteration count we do
// not know how to find still bounds the work.
func maxInt(der []byte, depth int) int64 {
	if depth > 8 {
		return 1 << 62
	}
	var m int64
	for len(der) > 0 {
		e := firstTLV(der)
		if e == nil {
			return 1 << 62
		}
		hdr := len(e) - contentLen(e)
		content := e[hdr:]
		switch {
		case e[0] == 0x02:
			if len(content) > 7 {
				return 1 << 62
			}
			var v int64
			for _, c := range content {
				v = v<<8 | int64(c)
			}
			m = max(m, v)
		case e[0]&0x20 != 0:
			m = max(m, maxInt(content, depth+1))
		}
		der = der[len(e):]
	}
	return m
}

// contentLen returns the content length of a whole TLV from firstTLV.
func contentLen(e []byte) int {
	if e[1]&0x80 == 0 {
		return int(e[1])
	}
	return len(e) - 2 - int(e[1]&0x7f)
}

// findPKCS12 adds the hits of a PFX: DER hits inside plain certificate bags
// get the bag's alias; the certificates of encrypted safes are decoded with
// the candidate passwords.
func (s *Set) findPKCS12(data []byte, st *p12Store, hits []hit) []hit {
	byOff := make(map[int]*p12Bag)
	for i := range st.bags {
		if b := &st.bags[i]; b.isCert && b.off >= 0 {
			byOff[b.off] = b
		}
	}
	for i := range hits {
		if b, ok := byOff[hits[i].Offset]; ok && hits[i].Format == FormatDER {
			hits[i].Format = FormatPKCS12
			hits[i].Alias = b.alias
			hits[i].Chain = b.keyLinked
			hits[i].removable = !b.keyLinked
		}
	}
	if st.encrypted == 0 {
		return hits
	}
	entries, _, _, _, err := p12Decrypted(data, st)
	if err != nil {
		return hits
	}
	for _, e := range entries {
		if idx := s.lookup(e.cert); idx >= 0 {
			hits = append(hits, hit{Hit: Hit{Index: idx, Format: FormatPKCS12, Alias: e.alias, Offset: -1, Chain: e.keyLinked}, removable: !e.keyLinked})
		}
	}
	return hits
}

// p12Entry is one certificate of a PFX with encrypted safes.
type p12Entry struct {
	cert      []byte // DER
	alias     string
	keyLinked bool
}

// p12Decrypted opens a PFX with encrypted safes (or a MAC), trying
// keystorePasswords, and returns its certificates and the password that
// opened it. trust says it is a pure Java trust store (go-pkcs12's
// DecodeTrustStore read it); aliases says the entries carry their friendly
// names (always, except for ciphers p12Decrypt does not handle).
//
// go-pkcs12 verifies the password (the MAC) and decodes a trust store; a
// store with other bags (keys) is read by p12Bags instead, never by
// DecodeChain: that would decrypt the private key with whatever iteration
// count the file asks for.
func p12Decrypted(data []byte, st *p12Store) (entries []p12Entry, pw string, trust, aliases bool, err error) {
	if st.maxIter > maxIterations {
		return nil, "", false, false, fmt.Errorf("its key derivation asks for %d iterations, more than the %d we spend on an untrusted file", st.maxIter, maxIterations)
	}
	for _, pw := range keystorePasswords {
		if !st.hasMAC && pw != "" {
			continue // without a MAC, only the empty password is checked at all
		}
		certs, err := pkcs12.DecodeTrustStore(data, pw)
		if errors.Is(err, pkcs12.ErrIncorrectPassword) {
			continue
		}
		if err == nil {
			bags, ok := p12Bags(st, pw)
			if ok = ok && len(bags) == len(certs); ok {
				for i, b := range bags {
					ok = ok && b.isCert && bytes.Equal(b.cert, certs[i].Raw)
				}
			}
			for i, c := range certs {
				e := p12Entry{cert: c.Raw}
				if ok {
					e.alias = bags[i].alias
				}
				entries = append(entries, e)
			}
			return entries, pw, true, ok, nil
		}
		// The MAC verified (or there is none), but go-pkcs12 does not read
		// the store as a trust store: read its certificate bags ourselves.
		if bags, ok := p12Bags(st, pw); ok {
			for _, b := range bags {
				if b.isCert {
					entries = append(entries, p12Entry{cert: b.cert, alias: b.alias, keyLinked: b.keyLinked})
				}
			}
			return entries, pw, false, true, nil
		}
	}
	return nil, "", false, false, errors.New("the store's password is not one we try (changeit, empty), or its cipher is not supported")
}

// p12Bags returns the bags of every safe of a PFX, decrypting the encrypted
// ones with pw (checked by the caller).
func p12Bags(st *p12Store, pw string) ([]p12Bag, bool) {
	var out []p12Bag
	for _, safe := range st.safes {
		if !safe.encrypted {
			out = append(out, safe.bags...)
			continue
		}
		pt, err := p12Decrypt(safe.alg, safe.content, pw)
		if err != nil {
			return nil, false
		}
		var raw []p12SafeBag
		if unmarshalAll(pt, &raw) != nil {
			return nil, false
		}
		for _, b := range raw {
			out = append(out, readBag(pt, b))
		}
	}
	return out, true
}

// cipherName names a PKCS#12 encryption algorithm for error messages.
func cipherName(oid asn1.ObjectIdentifier) string {
	switch {
	case oid.Equal(oidPBES2):
		return "PBES2"
	case oid.Equal(oidPBEWith3DES):
		return "PBE-SHA1-3DES"
	case oid.Equal(oidPBEWithRC2_40):
		return "PBE-SHA1-RC2-40"
	}
	return oid.String()
}
