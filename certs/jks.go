package certs

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	keystore "github.com/pavlo-v-chernykh/keystore-go/v4"
)

// JKS layout (sun.security.provider.JavaKeyStore, the format keystore-go
// reads): magic 0xFEEDFEED, version (1 or 2), entry count, the entries, and
// a SHA-1 digest of (password as UTF-16BE, "Mighty Aphrodite", every byte
// before the digest). An entry is tag (1 private key, 2 trusted certificate),
// alias (u16 length + modified UTF-8), creation time (u64 ms since the
// epoch), then for a private key the encrypted key (u32 length + bytes) and
// a chain (u32 count + certificates), for a trusted certificate one
// certificate. A certificate is, in version 2, its type (u16 + "X.509"),
// then u32 length + DER; version 1 has no type.
const (
	jksMagic        = 0xFEEDFEED
	jksTagKey       = 1
	jksTagTrusted   = 2
	jksDigestLen    = sha1.Size
	jksTrustedType  = "X.509"
	jksWhitener     = "Mighty Aphrodite"
	jksHeaderLength = 12
)

// keystorePasswords are the passwords tried on keystores, in order: the JDK's
// and Debian's "changeit", then the empty password (password-less stores).
var keystorePasswords = [...]string{"changeit", ""}

type jksCert struct{ off, n int }

type jksEntry struct {
	trusted    bool
	alias      string
	start, end int
	certs      []jksCert
}

type jksStore struct {
	version uint32
	entries []jksEntry
}

// jksReader reads big-endian fields with bounds checks.
type jksReader struct {
	b   []byte
	off int
	err error
}

func (r *jksReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = fmt.Errorf("truncated at offset %d", r.off)
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *jksReader) u16() int {
	if p := r.take(2); p != nil {
		return int(binary.BigEndian.Uint16(p))
	}
	return 0
}

func (r *jksReader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

// parseJKS walks a whole JKS store, checking every length against the data,
// so that keystore-go (which allocates what the lengths say) only ever sees
// stores whose lengths fit. It does not check the digest.
func parseJKS(data []byte) (*jksStore, error) {
	r := &jksReader{b: data}
	if r.u32() != jksMagic {
		return nil, errors.New("not a JKS store (magic)")
	}
	st := &jksStore{version: r.u32()}
	if r.err == nil && st.version != 1 && st.version != 2 {
		return nil, fmt.Errorf("JKS version %d is not 1 or 2", st.version)
	}
	count := r.u32()
	readCert := func() jksCert {
		if st.version == 2 {
			r.take(r.u16())
		}
		n := int(r.u32())
		off := r.off
		r.take(n)
		return jksCert{off: off, n: n}
	}
	for i := uint32(0); i < count && r.err == nil; i++ {
		e := jksEntry{start: r.off}
		tag := r.u32()
		e.alias = string(r.take(r.u16()))
		r.take(8) // creation time
		switch tag {
		case jksTagKey:
			r.take(int(r.u32()))
			for n := r.u32(); n > 0 && r.err == nil; n-- {
				e.certs = append(e.certs, readCert())
			}
		case jksTagTrusted:
			e.trusted = true
			e.certs = append(e.certs, readCert())
		default:
			if r.err == nil {
				return nil, fmt.Errorf("JKS entry %d has unknown tag %d", i, tag)
			}
		}
		e.end = r.off
		st.entries = append(st.entries, e)
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(data)-r.off != jksDigestLen {
		return nil, fmt.Errorf("JKS store has %d bytes after its entries, want a %d-byte digest", len(data)-r.off, jksDigestLen)
	}
	return st, nil
}

// jksDigest is the store's integrity digest over body with password.
func jksDigest(password string, body []byte) []byte {
	h := sha1.New()
	for _, c := range []byte(password) {
		h.Write([]byte{0, c})
	}
	h.Write([]byte(jksWhitener))
	h.Write(body)
	return h.Sum(nil)
}

// jksLoad loads data (already checked by parseJKS) with keystore-go, trying
// keystorePasswords; it returns the password that verifies the digest.
func jksLoad(data []byte) (keystore.KeyStore, string, error) {
	for _, pw := range keystorePasswords {
		ks := keystore.New(keystore.WithCaseExactAliases())
		if err := ks.Load(bytes.NewReader(data), []byte(pw)); err == nil {
			return ks, pw, nil
		}
	}
	return keystore.KeyStore{}, "", errors.New("the store's password is not one we try (changeit, empty)")
}

// jksAssemble returns a JKS store of version with the given entries (raw
// bytes, concatenated), signed with password.
func jksAssemble(version uint32, count int, entries []byte, password string) []byte {
	out := make([]byte, 0, jksHeaderLength+len(entries)+jksDigestLen)
	out = binary.BigEndian.AppendUint32(out, jksMagic)
	out = binary.BigEndian.AppendUint32(out, version)
	out = binary.BigEndian.AppendUint32(out, uint32(count))
	out = append(out, entries...)
	return append(out, jksDigest(password, out)...)
}

// stripJKS removes the trusted-certificate entries holding certificates of s
// from a JKS store, keeping every other entry's bytes (and their order)
// exactly, and re-signs the store with its password.
func (s *Set) stripJKS(data []byte, st *jksStore) ([]byte, int, error) {
	drop := make([]bool, len(st.entries))
	removed := 0
	for i, e := range st.entries {
		for _, c := range e.certs {
			if s.lookup(data[c.off:c.off+c.n]) < 0 {
				continue
			}
			if !e.trusted {
				return nil, 0, cannot(FormatJKS, e.alias, "our certificate is in the chain of a private-key entry; removing it would change that key's chain (remove the entry with keytool -delete, or rebuild the chain)")
			}
			drop[i] = true
		}
		if drop[i] {
			removed++
		}
	}
	if removed == 0 {
		return data, 0, nil
	}
	_, pw, err := jksLoad(data)
	if err != nil {
		return nil, 0, cannot(FormatJKS, "", "%v; the store cannot be re-signed after the edit", err)
	}
	var kept []byte
	var keptAliases []string
	for i, e := range st.entries {
		if !drop[i] {
			kept = append(kept, data[e.start:e.end]...)
			keptAliases = append(keptAliases, e.alias)
		}
	}
	out := jksAssemble(st.version, len(st.entries)-removed, kept, pw)
	if err := jksVerify(out, pw, keptAliases); err != nil {
		return nil, 0, cannot(FormatJKS, "", "the edited store does not verify: %v", err)
	}
	return out, removed, nil
}

// jksVerify loads out with keystore-go and checks it holds exactly aliases.
func jksVerify(out []byte, pw string, aliases []string) error {
	ks := keystore.New(keystore.WithCaseExactAliases())
	if err := ks.Load(bytes.NewReader(out), []byte(pw)); err != nil {
		return err
	}
	want := make(map[string]bool)
	for _, a := range aliases {
		want[a] = true
	}
	got := ks.Aliases()
	if len(got) != len(want) {
		return fmt.Errorf("%d aliases, want %d", len(got), len(want))
	}
	for _, a := range got {
		if !want[a] {
			return fmt.Errorf("unexpected alias %q", a)
		}
	}
	return nil
}

// addJKS appends a trusted-certificate entry for every certificate of cs the
// store does not already trust, keeping the other entries' bytes exactly.
func addJKS(data []byte, cs []*x509.Certificate, aliasPrefix string, now time.Time) ([]byte, error) {
	st, err := parseJKS(data)
	if err != nil {
		return nil, err
	}
	_, pw, err := jksLoad(data)
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool)    // DER of trusted entries
	aliases := make(map[string]bool) // lower-cased, as Java compares them
	var all []string
	for _, e := range st.entries {
		aliases[strings.ToLower(e.alias)] = true
		all = append(all, e.alias)
		if e.trusted {
			c := e.certs[0]
			have[string(data[c.off:c.off+c.n])] = true
		}
	}
	entries := append([]byte(nil), data[jksHeaderLength:len(data)-jksDigestLen]...)
	count := len(st.entries)
	for _, c := range cs {
		if have[string(c.Raw)] {
			continue
		}
		have[string(c.Raw)] = true
		alias := strings.ToLower(aliasFor(aliasPrefix, c))
		if aliases[alias] {
			return nil, fmt.Errorf("alias %q is already taken by another entry", alias)
		}
		if len(alias) > 0xffff || len(c.Raw) > 0x7fffffff {
			return nil, fmt.Errorf("alias or certificate too long for JKS")
		}
		aliases[alias] = true
		all = append(all, alias)
		entries = binary.BigEndian.AppendUint32(entries, jksTagTrusted)
		entries = binary.BigEndian.AppendUint16(entries, uint16(len(alias)))
		entries = append(entries, alias...)
		entries = binary.BigEndian.AppendUint64(entries, uint64(now.UnixMilli()))
		if st.version == 2 {
			entries = binary.BigEndian.AppendUint16(entries, uint16(len(jksTrustedType)))
			entries = append(entries, jksTrustedType...)
		}
		entries = binary.BigEndian.AppendUint32(entries, uint32(len(c.Raw)))
		entries = append(entries, c.Raw...)
		count++
	}
	out := jksAssemble(st.version, count, entries, pw)
	if err := jksVerify(out, pw, all); err != nil {
		return nil, fmt.Errorf("the edited store does not verify: %w", err)
	}
	return out, nil
}
