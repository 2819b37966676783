package cacerts

import "github.com/buildkit-cacerts/buildkit-cacerts/certs"

// SubjectHash returns OpenSSL's X509_NAME_hash (the "new" hash used by
// `openssl x509 -subject_hash` and `openssl rehash`) of a DER-encoded Name,
// such as x509.Certificate.RawSubject. It is certs.NameHash, which says
// which OpenSSL code it mirrors.
func SubjectHash(rawName []byte) (uint32, error) {
	return certs.NameHash(rawName)
}
