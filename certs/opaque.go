package certs

import (
	"bytes"
	"errors"
	"fmt"
)

// ErrOpaque is wrapped by Opaque's error: data is in a format whose content
// Find cannot see, so "no hit" does not mean "none of ours".
var ErrOpaque = errors.New("content not visible to Find")

// opaqueMagic lists container formats Find cannot look into, by their first
// bytes.
var opaqueMagic = []struct {
	magic []byte
	name  string
}{
	{[]byte{0x1f, 0x8b}, "gzip"},
	{[]byte{0xfd, '7', 'z', 'X', 'Z', 0x00}, "xz"},
	{[]byte{0x28, 0xb5, 0x2f, 0xfd}, "zstd"},
	{[]byte("BZh"), "bzip2"},
	{[]byte{0x04, 0x22, 0x4d, 0x18}, "lz4"},
	{[]byte("PK\x03\x04"), "zip (jar, war, apk)"},
	{[]byte("7z\xbc\xaf\x27\x1c"), "7-zip"},
	{[]byte{0xce, 0xce, 0xce, 0xce}, "JCEKS keystore (secret-key entries are encrypted)"},
	{[]byte("hsqs"), "squashfs"},
}

// Opaque reports, by looking at data's structure only (no set needed),
// whether data is in a format whose content Find cannot see: a compressed or
// archive container, or a PKCS#12 store with encrypted safes that neither
// "changeit" nor the empty password opens (or that asks for too many
// key-derivation iterations). It returns nil when Find sees all the
// certificate encodings it knows in data. It is advice for a caller that
// wants to fail closed on files it cannot inspect; it never reads beyond
// data's first bytes except for a PKCS#12 store (two password tries).
func Opaque(data []byte) error {
	for _, m := range opaqueMagic {
		if bytes.HasPrefix(data, m.magic) {
			return fmt.Errorf("%s data: %w", m.name, ErrOpaque)
		}
	}
	if KeystoreKindOf(data) != KeystorePKCS12 {
		return nil
	}
	st, err := parsePKCS12(data)
	if err != nil {
		return fmt.Errorf("PKCS#12 store that does not parse (%v): %w", err, ErrOpaque)
	}
	if st.encrypted == 0 {
		return nil
	}
	if _, _, _, _, err := p12Decrypted(data, st); err != nil {
		return fmt.Errorf("PKCS#12 store with encrypted certificates: %v: %w", err, ErrOpaque)
	}
	return nil
}
