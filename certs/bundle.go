package certs

import (
	"bytes"
	"encoding/pem"
	"strings"
)

// Addition records what AppendPEM added to a bundle, so RemovePEM can take
// exactly that back out.
type Addition struct {
	// Sep is true when a newline was added first because the bundle did not
	// end with one.
	Sep bool
	// Blocks are the PEM blocks appended, in order, each ending in "\n".
	Blocks [][]byte
}

// suffix is the exact bytes the Addition appended.
func (a Addition) suffix() []byte {
	var b []byte
	if a.Sep {
		b = append(b, '\n')
	}
	for _, blk := range a.Blocks {
		b = append(b, blk...)
	}
	return b
}

// withNewline returns p ending in "\n", as `sed -e '$a\'` does.
func withNewline(p []byte) []byte {
	if len(p) == 0 || p[len(p)-1] == '\n' {
		return p
	}
	return append(append([]byte(nil), p...), '\n')
}

// AppendPEM returns bundle with the PEM blocks appended the way Debian's
// update-ca-certificates builds its bundle: each certificate file is added with
// `sed -e '$a\' "$CERT" >> "$TEMPBUNDLE"`, that is verbatim with a newline
// added when it lacks one. A bundle not ending in a newline gets one first, so
// the first block starts on its own line. The input is not modified.
func AppendPEM(bundle []byte, blocks [][]byte) ([]byte, Addition) {
	var add Addition
	add.Sep = len(bundle) > 0 && bundle[len(bundle)-1] != '\n'
	for _, b := range blocks {
		add.Blocks = append(add.Blocks, withNewline(b))
	}
	out := make([]byte, 0, len(bundle)+len(add.suffix()))
	out = append(out, bundle...)
	return append(out, add.suffix()...), add
}

// RemovePEM takes what add appended back out of bundle. When bundle still ends
// with exactly what was appended, the result is the bundle as it was before
// AppendPEM. Otherwise (the process edited the bundle, or a tool regenerated
// it) all of our blocks, in order and together, are removed where they start
// a line (the last such place): a tool that rebuilt the bundle copied a
// combined anchor there verbatim. Failing that, each of our blocks is removed
// once where it starts a line, the last occurrence first. Everything else is
// kept. It reports how many of our blocks were not found.
func RemovePEM(bundle []byte, add Addition) ([]byte, int) {
	if s := add.suffix(); len(s) > 0 && bytes.HasSuffix(bundle, s) {
		return append([]byte(nil), bundle[:len(bundle)-len(s)]...), 0
	}
	if len(add.Blocks) > 1 {
		// One search instead of one per block: 1000 blocks in the middle of
		// a bundle cost a quarter of a second one by one.
		run := bytes.Join(add.Blocks, nil)
		if at := lastLineStart(bundle, run); at >= 0 {
			out := make([]byte, 0, len(bundle)-len(run))
			out = append(out, bundle[:at]...)
			return append(out, bundle[at+len(run):]...), 0
		}
	}
	out := append([]byte(nil), bundle...)
	missing := 0
	for i := len(add.Blocks) - 1; i >= 0; i-- {
		blk := add.Blocks[i]
		at := lastLineStart(out, blk)
		if at < 0 {
			missing++
			continue
		}
		out = append(out[:at], out[at+len(blk):]...)
	}
	return out, missing
}

// lastLineStart returns the last index where sub occurs at the start of a line
// of b, or -1.
func lastLineStart(b, sub []byte) int {
	if len(sub) == 0 {
		return -1
	}
	end := len(b)
	for {
		i := bytes.LastIndex(b[:end], sub)
		if i < 0 {
			return -1
		}
		if i == 0 || b[i-1] == '\n' {
			return i
		}
		end = i + len(sub) - 1
	}
}

// IsPEMBundle reports whether data parses as a PEM certificate bundle: at
// least one CERTIFICATE block, no private key, and nothing but whitespace and
// text lines (comments) between blocks. The cacerts package writes an
// image's SSL_CERT_FILE only when it passes.
func IsPEMBundle(data []byte) bool {
	n := 0
	rest := data
	for {
		b, r := pem.Decode(rest)
		if b == nil {
			break
		}
		if strings.Contains(b.Type, "PRIVATE KEY") {
			return false
		}
		if b.Type == "CERTIFICATE" || b.Type == "TRUSTED CERTIFICATE" {
			n++
		}
		rest = r
	}
	return n > 0 && !bytes.Contains(rest, []byte{0})
}
