package certs

import (
	"bytes"
	"encoding/base64"
	"slices"
)

var (
	pemBegin = []byte("-----BEGIN ")
	pemEnd   = []byte("-----END ")
	pemDash  = []byte("-----")
)

// maxLabel bounds a PEM label ("CERTIFICATE", "TRUSTED CERTIFICATE", ...).
const maxLabel = 64

// pemBlock is one well-formed PEM block in some data.
type pemBlock struct {
	// start is the offset of "-----BEGIN"; end is just past the END line's
	// line break (or the end of the data when the END line has none).
	start, end int
	label      []byte
	body       []byte // the bytes between the BEGIN line and the END line
}

// nextPEM returns the first well-formed PEM block at or after offset i.
//
// It never looks at a byte twice (apart from a bounded label look-ahead), so
// scanning all of data costs O(len(data)) whatever it holds: a BEGIN line is
// matched only with the very next "-----" after it, which must open the END
// line with the same label; otherwise scanning resumes at that "-----". (Go's
// encoding/pem searches the END line from every BEGIN, which is quadratic on
// data made of BEGIN lines.)
//
// A block is: "-----BEGIN <label>-----", optional spaces or tabs, a line break
// (LF or CRLF), a body, "-----END <label>-----", optional spaces or tabs, then
// a line break or the end of data.
func nextPEM(data []byte, i int) (pemBlock, bool) {
	for i < len(data) {
		k := bytes.Index(data[i:], pemBegin)
		if k < 0 {
			return pemBlock{}, false
		}
		start := i + k
		p := start + len(pemBegin)
		e := bytes.Index(data[p:min(len(data), p+maxLabel+len(pemDash))], pemDash)
		if e < 0 || bytes.ContainsAny(data[p:p+e], "\r\n") {
			i = p
			continue
		}
		label := data[p : p+e]
		bodyStart, ok := lineEnd(data, p+e+len(pemDash), false)
		if !ok {
			i = p
			continue
		}
		m := bytes.Index(data[bodyStart:], pemDash)
		if m < 0 {
			return pemBlock{}, false // no END line can follow
		}
		t := bodyStart + m
		rest := data[t:]
		if !bytes.HasPrefix(rest, pemEnd) || !bytes.HasPrefix(rest[len(pemEnd):], label) ||
			!bytes.HasPrefix(rest[len(pemEnd)+len(label):], pemDash) {
			i = t
			continue
		}
		end, ok := lineEnd(data, t+len(pemEnd)+len(label)+len(pemDash), true)
		if !ok {
			i = t + len(pemDash)
			continue
		}
		return pemBlock{start: start, end: end, label: label, body: data[bodyStart:t]}, true
	}
	return pemBlock{}, false
}

// lineEnd skips spaces and tabs from i and then one LF or CRLF, returning
// the offset after it. At the end of data it succeeds only if eofOK.
func lineEnd(data []byte, i int, eofOK bool) (int, bool) {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
		i++
	}
	switch {
	case i == len(data):
		return i, eofOK
	case data[i] == '\n':
		return i + 1, true
	case data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n':
		return i + 2, true
	}
	return i, false
}

// certLabel reports whether a PEM label holds one certificate whose DER is
// the first element of the decoded bytes: CERTIFICATE, OpenSSL's TRUSTED
// CERTIFICATE (the DER followed by X509_CERT_AUX), and the old X509 /
// X.509 CERTIFICATE labels OpenSSL still reads.
func certLabel(label []byte) bool {
	switch string(label) {
	case "CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE", "X.509 CERTIFICATE":
		return true
	}
	return false
}

// pemScratch holds the buffers decodeBody reuses across the blocks of one
// scan, so memory stays at about the size of the largest block.
type pemScratch struct{ text, der []byte }

// decodeBody decodes a PEM body: RFC 1421 headers ("Name: value" lines up to
// an empty line) are skipped, whitespace is ignored, and the rest must be
// standard base64. The result is valid until the next call.
func (sc *pemScratch) decodeBody(body []byte) ([]byte, bool) {
	if bytes.IndexByte(body, ':') >= 0 {
		// Headers end at the first empty (or blank) line.
		rest := body
		found := false
		for len(rest) > 0 {
			line := rest
			n := bytes.IndexByte(rest, '\n')
			if n >= 0 {
				line, rest = rest[:n], rest[n+1:]
			} else {
				rest = nil
			}
			if len(bytes.TrimSpace(line)) == 0 {
				found = true
				break
			}
		}
		if !found {
			return nil, false
		}
		body = rest
	}
	sc.text = sc.text[:0]
	for _, c := range body {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		sc.text = append(sc.text, c)
	}
	sc.der = slices.Grow(sc.der[:0], base64.StdEncoding.DecodedLen(len(sc.text)))
	m, err := base64.StdEncoding.Decode(sc.der[:cap(sc.der)], sc.text)
	if err != nil {
		return nil, false
	}
	return sc.der[:m], true
}
