package certs

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"unicode/utf16"
)

// go-pkcs12 decrypts a trust store's certificates but drops their
// friendlyName attributes, which are the entries' aliases. To re-encode a
// store with its aliases we decrypt the safes again here, after go-pkcs12 has
// verified the MAC with the same password, and read the bags ourselves; the
// certificates we read must equal go-pkcs12's, in order, or we do not use
// them. Only the ciphers Java and OpenSSL write today are handled: PBES2
// (PBKDF2 with HMAC-SHA-1/256/512, AES-CBC) and PBE-SHA1-3DES; RC2 (Java 8's
// legacy default) is not, and such stores are not re-encoded.

var (
	oidPBKDF2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHmacSHA1    = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHmacSHA256  = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHmacSHA512  = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC   = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC   = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC   = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	errUnsupported = errors.New("cipher not supported")
)

type pbes2Params struct {
	KDF pkix.AlgorithmIdentifier
	Enc pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt       []byte
	Iterations int
	KeyLength  int                      `asn1:"optional"`
	PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
}

type pbeParams struct {
	Salt       []byte
	Iterations int
}

// p12Decrypt decrypts one encrypted safe with password.
func p12Decrypt(alg pkix.AlgorithmIdentifier, ct []byte, password string) ([]byte, error) {
	var block cipher.Block
	var iv []byte
	switch {
	case alg.Algorithm.Equal(oidPBES2):
		var p pbes2Params
		if err := unmarshalAll(alg.Parameters.FullBytes, &p); err != nil {
			return nil, err
		}
		var kp pbkdf2Params
		if !p.KDF.Algorithm.Equal(oidPBKDF2) || unmarshalAll(p.KDF.Parameters.FullBytes, &kp) != nil {
			return nil, errUnsupported
		}
		if kp.Iterations < 1 || kp.Iterations > maxIterations {
			return nil, fmt.Errorf("%d PBKDF2 iterations", kp.Iterations)
		}
		var prf func() hash.Hash
		switch {
		case kp.PRF.Algorithm == nil, kp.PRF.Algorithm.Equal(oidHmacSHA1):
			prf = sha1.New
		case kp.PRF.Algorithm.Equal(oidHmacSHA256):
			prf = sha256.New
		case kp.PRF.Algorithm.Equal(oidHmacSHA512):
			prf = sha512.New
		default:
			return nil, errUnsupported
		}
		var keyLen int
		switch {
		case p.Enc.Algorithm.Equal(oidAES128CBC):
			keyLen = 16
		case p.Enc.Algorithm.Equal(oidAES192CBC):
			keyLen = 24
		case p.Enc.Algorithm.Equal(oidAES256CBC):
			keyLen = 32
		default:
			return nil, errUnsupported
		}
		if _, err := asn1.Unmarshal(p.Enc.Parameters.FullBytes, &iv); err != nil {
			return nil, err
		}
		key, err := pbkdf2.Key(prf, password, kp.Salt, kp.Iterations, keyLen)
		if err != nil {
			return nil, err
		}
		if block, err = aes.NewCipher(key); err != nil {
			return nil, err
		}
	case alg.Algorithm.Equal(oidPBEWith3DES):
		var p pbeParams
		if err := unmarshalAll(alg.Parameters.FullBytes, &p); err != nil {
			return nil, err
		}
		if p.Iterations < 1 || p.Iterations > maxIterations {
			return nil, fmt.Errorf("%d PBE iterations", p.Iterations)
		}
		pw := bmpZeroTerminated(password)
		var err error
		if block, err = des.NewTripleDESCipher(p12KDF(p.Salt, pw, p.Iterations, 1, 24)); err != nil {
			return nil, err
		}
		iv = p12KDF(p.Salt, pw, p.Iterations, 2, 8)
	default:
		return nil, errUnsupported
	}
	bs := block.BlockSize()
	if len(iv) != bs || len(ct) == 0 || len(ct)%bs != 0 {
		return nil, errors.New("bad IV or ciphertext length")
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
	n := int(pt[len(pt)-1])
	if n == 0 || n > bs {
		return nil, errors.New("bad padding")
	}
	for _, c := range pt[len(pt)-n:] {
		if int(c) != n {
			return nil, errors.New("bad padding")
		}
	}
	return pt[:len(pt)-n], nil
}

// bmpZeroTerminated is the PKCS#12 password encoding: UTF-16BE plus two zero
// bytes.
func bmpZeroTerminated(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u>>8), byte(u))
	}
	return append(b, 0, 0)
}

// p12KDF is RFC 7292 appendix B.2 with SHA-1 (u = 20, v = 64 bytes).
func p12KDF(salt, password []byte, iterations int, id byte, size int) []byte {
	const u, v = sha1.Size, 64
	fill := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		n := v * ((len(b) + v - 1) / v)
		out := make([]byte, n)
		for i := range out {
			out[i] = b[i%len(b)]
		}
		return out
	}
	d := make([]byte, v)
	for i := range d {
		d[i] = id
	}
	I := append(fill(salt), fill(password)...)
	var out []byte
	for len(out) < size {
		h := sha1.New()
		h.Write(d)
		h.Write(I)
		a := h.Sum(nil)
		for r := 1; r < iterations; r++ {
			s := sha1.Sum(a)
			a = s[:]
		}
		out = append(out, a...)
		if len(out) >= size {
			break
		}
		b := make([]byte, v)
		for i := range b {
			b[i] = a[i%u]
		}
		for j := 0; j < len(I); j += v {
			// I_j = (I_j + B + 1) mod 2^(8v), big-endian.
			carry := 1
			for k := v - 1; k >= 0; k-- {
				x := int(I[j+k]) + int(b[k]) + carry
				I[j+k] = byte(x)
				carry = x >> 8
			}
		}
	}
	return out[:size]
}
