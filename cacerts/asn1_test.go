package cacerts

// ASN.1 universal tags the tests use to build names (the encoder is
// certs.NameHash's business; these only make test inputs).
const (
	tagSequence        = 0x30
	tagSet             = 0x31
	tagOID             = 0x06
	tagUTF8String      = 0x0c
	tagPrintableString = 0x13
	tagT61String       = 0x14
	tagIA5String       = 0x16
	tagUniversalString = 0x1c
	tagBMPString       = 0x1e
)

// appendTLV appends one DER element with a single-byte tag.
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
