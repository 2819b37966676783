package distro

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func TestParseOSRelease(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"empty", "", map[string]string{}},
		{"plain", "ID=debian\n", map[string]string{"ID": "debian"}},
		{"no final newline", "ID=debian", map[string]string{"ID": "debian"}},
		{"double quotes", `NAME="Debian GNU/Linux"`, map[string]string{"NAME": "Debian GNU/Linux"}},
		{"single quotes", `NAME='a "b" $c \d'`, map[string]string{"NAME": `a "b" $c \d`}},
		{"escapes in double quotes", `X="\$ \" \\ \` + "`" + `"`, map[string]string{"X": "$ \" \\ `"}},
		{"other escape kept", `X="a\nb\tc"`, map[string]string{"X": `a\nb\tc`}},
		{"unquoted escape", `X=a\ b\$c`, map[string]string{"X": "a b$c"}},
		{"concatenation", `X="a"'b'c"d"`, map[string]string{"X": "abcd"}},
		{"blanks kept in quotes", `X="  a  "`, map[string]string{"X": "  a  "}},
		{"trailing unquoted blanks dropped", "X=a b \t", map[string]string{"X": "a b"}},
		{"escaped trailing blank kept", `X=a\ `, map[string]string{"X": "a "}},
		{"leading blanks on line", "  \tX=1", map[string]string{"X": "1"}},
		{"comments", "# ID=no\n; ID=no\nID=yes # not a comment", map[string]string{"ID": "yes # not a comment"}},
		{"blank lines", "\n\n  \nID=a\n\n", map[string]string{"ID": "a"}},
		{"last wins", "ID=a\nID=b", map[string]string{"ID": "b"}},
		{"empty values", "A=\nB=\"\"\nC=''", map[string]string{"A": "", "B": "", "C": ""}},
		{"equals in value", "A=b=c", map[string]string{"A": "b=c"}},
		{"lower-case key", "id=x", map[string]string{"id": "x"}},
		{"crlf", "ID=a\r\nVERSION_ID=\"1\"\r\n", map[string]string{"ID": "a", "VERSION_ID": "1"}},
		{"invalid lines skipped", strings.Join([]string{
			"NOEQ", "=value", "1A=x", "A-B=x", "A B=x", "A =x", `U="open`, `V='open`,
			`W=trailing\`, `Q="a\"`, "ID=kept",
		}, "\n"), map[string]string{"ID": "kept"}},
		{"multi-line quote is not joined", "A=\"x\ny\"\nB=1", map[string]string{"B": "1"}},
		{"non-UTF-8 kept", "A=\xff\xfe", map[string]string{"A": "\xff\xfe"}},
		{"NUL kept", "A=a\x00b", map[string]string{"A": "a\x00b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseOSRelease([]byte(tt.in))
			if !maps.Equal(got, tt.want) {
				t.Errorf("ParseOSRelease(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// quoteValue writes v the way os-release(5) asks: double quotes, with $ " \
// and ` escaped.
func quoteValue(v string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if strings.IndexByte("$\"\\`", v[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
	return b.String()
}

// FuzzParseOSRelease checks that the parser never panics, returns only valid
// keys, and that every value it returns survives being written back in
// os-release's quoted form; and that Detect on that text yields a known
// family without panicking.
func FuzzParseOSRelease(f *testing.F) {
	files, _ := filepath.Glob("testdata/os-release/*")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`X="\`))
	f.Add([]byte("A='\nB=\"\\\"\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got := ParseOSRelease(data)
		for k, v := range got {
			if !validKey([]byte(k)) {
				t.Fatalf("invalid key %q from %q", k, data)
			}
			if strings.ContainsRune(v, '\n') {
				t.Fatalf("value of %s holds a newline: %q", k, v)
			}
			line := k + "=" + quoteValue(v)
			again := ParseOSRelease([]byte(line))
			if len(again) != 1 || again[k] != v {
				t.Fatalf("round trip of %s=%q via %q gave %q", k, v, line, again)
			}
		}
		d, err := Detect(fstest.MapFS{"etc/os-release": {Data: data, Mode: 0o644}})
		if err != nil {
			t.Fatal(err)
		}
		known := false
		for _, f := range Families() {
			known = known || d.Family == f
		}
		if !known || d.Layout.Family != d.Family {
			t.Fatalf("family %q, layout family %q", d.Family, d.Layout.Family)
		}
	})
}
