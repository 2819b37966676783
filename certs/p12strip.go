package certs

import (
	"bytes"
	"crypto/x509"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// p12EncoderFor picks the go-pkcs12 encoder matching how the store was
// protected: password-less stays password-less; otherwise the same cipher
// family and MAC as the original.
func p12EncoderFor(st *p12Store) *pkcs12.Encoder {
	var enc *pkcs12.Encoder
	switch {
	case !st.hasMAC && st.encrypted == 0:
		return pkcs12.Passwordless
	case st.macAlg.Equal(oidPBMAC1):
		enc = pkcs12.Modern2026
	case st.encAlg.Equal(oidPBEWithRC2_40):
		enc = pkcs12.LegacyRC2
	case st.encAlg.Equal(oidPBEWith3DES), st.macAlg.Equal(oidSHA1) && st.encrypted == 0:
		enc = pkcs12.LegacyDES
	default:
		enc = pkcs12.Modern2023
	}
	// Keep the work factor the store had (Java writes 10000).
	if st.macIter > 1 && st.macIter <= maxIterations {
		enc = enc.WithIterations(st.macIter)
	}
	return enc
}

// stripPKCS12 removes our certificates from a PKCS#12 trust store and
// re-encodes it with go-pkcs12 with the same password (or password-less),
// keeping every other certificate, in order, with its alias.
func (s *Set) stripPKCS12(data []byte, st *p12Store) ([]byte, int, error) {
	type entry struct {
		cert  []byte
		alias string
	}
	var all []entry
	var pw string
	if st.encrypted == 0 {
		for _, b := range st.bags {
			ours := b.isCert && s.lookup(b.cert) >= 0
			switch {
			case ours && b.keyLinked:
				return nil, 0, cannot(FormatPKCS12, b.alias, "our certificate is the certificate of a private key in this store")
			case ours, b.isCert && b.trusted:
				all = append(all, entry{cert: b.cert, alias: b.alias})
			default:
				// A key, a secret, or a certificate without Java's trust
				// attribute: go-pkcs12 cannot re-encode it unchanged.
				all = append(all, entry{})
			}
		}
	} else {
		entries, p, trust, aliases, err := p12Decrypted(data, st)
		if err != nil {
			// Nothing of ours is visible: Find sees no hit either.
			return data, 0, nil
		}
		pw = p
		for _, e := range entries {
			if s.lookup(e.cert) >= 0 && (e.keyLinked || !trust) {
				return nil, 0, cannot(FormatPKCS12, e.alias, "the store holds a private key; go-pkcs12 cannot re-encode it unchanged")
			}
			all = append(all, entry{cert: e.cert, alias: e.alias})
		}
		found := false
		for _, e := range entries {
			found = found || s.lookup(e.cert) >= 0
		}
		if found && !aliases {
			return nil, 0, cannot(FormatPKCS12, "", "its certificates are encrypted with %s, which we cannot decrypt to read the aliases back (we read PBES2-AES and PBE-SHA1-3DES), so re-encoding would rename the other entries", cipherName(st.encAlg))
		}
	}
	removed := 0
	var kept []pkcs12.TrustStoreEntry
	var keptDER [][]byte
	unsupported := false
	var parseErr error
	for _, e := range all {
		if e.cert == nil {
			unsupported = true
			continue
		}
		if s.lookup(e.cert) >= 0 {
			removed++
			continue
		}
		c, err := x509.ParseCertificate(e.cert)
		if err != nil && parseErr == nil {
			parseErr = cannot(FormatPKCS12, e.alias, "another certificate does not parse, so the store cannot be re-encoded: %v", err)
		}
		kept = append(kept, pkcs12.TrustStoreEntry{Cert: c, FriendlyName: e.alias})
		keptDER = append(keptDER, e.cert)
	}
	if removed == 0 {
		return data, 0, nil
	}
	if parseErr != nil {
		return nil, 0, parseErr
	}
	if unsupported {
		return nil, 0, cannot(FormatPKCS12, "", "the store holds bags other than Java trusted certificates (keys, secrets, untrusted certificates); go-pkcs12 can only re-encode a trust store")
	}
	if st.hasMAC && st.encrypted == 0 {
		// Plain safes with a MAC (openssl -certpbe NONE): find the password.
		_, p, _, _, err := p12Decrypted(data, st)
		if err != nil {
			return nil, 0, cannot(FormatPKCS12, "", "%v", err)
		}
		pw = p
	}
	out, err := p12EncoderFor(st).EncodeTrustStoreEntries(kept, pw)
	if err != nil {
		return nil, 0, cannot(FormatPKCS12, "", "re-encoding: %v", err)
	}
	// The library must read back exactly the certificates we kept.
	back, err := pkcs12.DecodeTrustStore(out, pw)
	if err != nil || len(back) != len(keptDER) {
		return nil, 0, cannot(FormatPKCS12, "", "the re-encoded store does not read back: %v", err)
	}
	for i, c := range back {
		if !bytes.Equal(c.Raw, keptDER[i]) {
			return nil, 0, cannot(FormatPKCS12, "", "the re-encoded store reads back a different certificate %d", i)
		}
	}
	return out, removed, nil
}
