package distro

import (
	"bytes"
	"strings"
)

// ParseOSRelease parses the text of an os-release file as os-release(5)
// describes it: one KEY=value assignment per line; values in double quotes
// (where a backslash escapes $, ", \ and the backtick), in single quotes (no
// escapes) or unquoted (a backslash escapes any character); adjacent quoted
// and unquoted pieces are joined as a shell would; lines starting with `#`
// (or `;`, as systemd accepts) are comments; blank lines are ignored.
//
// It never fails: invalid lines — a key that is not [A-Za-z_][A-Za-z0-9_]*,
// no `=`, an unterminated quote, a trailing lone backslash, a quoted value
// spanning lines — are skipped, as the specification asks of readers. A key
// given twice keeps its last value. Blanks at the start of a line, and
// unescaped blanks at its end outside quotes, are dropped. Values are returned as
// they are, without UTF-8 validation: they are image-controlled text.
func ParseOSRelease(data []byte) map[string]string {
	fields := make(map[string]string)
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		key, val, ok := parseLine(line)
		if ok {
			fields[key] = val
		}
	}
	return fields
}

// parseLine parses one line; ok is false for blank, comment and invalid lines.
func parseLine(line []byte) (key, val string, ok bool) {
	line = bytes.TrimLeftFunc(line, isBlank)
	if len(line) == 0 || line[0] == '#' || line[0] == ';' {
		return "", "", false
	}
	k, v, found := bytes.Cut(line, []byte{'='})
	if !found || !validKey(k) {
		return "", "", false
	}
	val, ok = parseValue(v)
	if !ok {
		return "", "", false
	}
	return string(k), val, true
}

// isBlank reports the characters dropped at the start and (unquoted) end of
// a line; CR is one, for files written with CRLF line ends.
func isBlank(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\v' || r == '\f' }

// validKey reports whether k is a shell variable name.
func validKey(k []byte) bool {
	if len(k) == 0 {
		return false
	}
	for i, c := range k {
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case i > 0 && '0' <= c && c <= '9':
		default:
			return false
		}
	}
	return true
}

// parseValue decodes the right-hand side of an assignment. Trailing
// unquoted blanks are dropped (systemd's parser does the same); blanks
// inside quotes are kept.
func parseValue(v []byte) (string, bool) {
	var b strings.Builder
	b.Grow(len(v))
	keep := 0 // length of b up to the last character that must be kept
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch c {
		case '"':
			i++
			for ; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' && i+1 < len(v) && strings.IndexByte("$\"\\`", v[i+1]) >= 0 {
					i++
				}
				b.WriteByte(v[i])
			}
			if i >= len(v) {
				return "", false // unterminated
			}
			keep = b.Len()
		case '\'':
			j := bytes.IndexByte(v[i+1:], '\'')
			if j < 0 {
				return "", false // unterminated
			}
			b.Write(v[i+1 : i+1+j])
			i += 1 + j
			keep = b.Len()
		case '\\':
			if i+1 >= len(v) {
				return "", false // line continuation: not supported
			}
			i++
			b.WriteByte(v[i])
			keep = b.Len()
		default:
			b.WriteByte(c)
			if !isBlank(rune(c)) {
				keep = b.Len()
			}
		}
	}
	return b.String()[:keep], true
}

// idList splits an ID_LIKE value into lowercased IDs.
func idList(v string) []string {
	f := strings.Fields(strings.ToLower(v))
	if len(f) == 0 {
		return nil
	}
	return f
}
