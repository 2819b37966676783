package layerdiff

import (
	"archive/tar"
	"bytes"
	"reflect"
	"testing"
	"time"
)

type tarEntry struct {
	h    tar.Header
	body string
}

func buildTar(t *testing.T, entries ...tarEntry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.h
		h.Size = int64(len(e.body))
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func TestCompare(t *testing.T) {
	mt := time.Unix(1700000000, 123456789)
	base := []tarEntry{
		{h: tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt}},
		{h: tar.Header{Name: "etc/ssl/certs/ca-certificates.crt", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: mt}, body: "bundle"},
		{h: tar.Header{Name: "etc/ssl/cert.pem", Typeflag: tar.TypeSymlink, Linkname: "certs/ca-certificates.crt", ModTime: mt}},
	}
	want, err := ReadLayer(buildTar(t, base...))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		got  []tarEntry
		opts Options
		diff []string
	}{
		{name: "equal", got: base},
		{
			name: "extra file and changed content",
			got: []tarEntry{
				base[0],
				{h: tar.Header{Name: "etc/ssl/certs/ca-certificates.crt", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: mt}, body: "bundle+ours"},
				base[2],
				{h: tar.Header{Name: "usr/local/share/ca-certificates/x.crt", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: mt}, body: "x"},
			},
			diff: []string{
				"etc/ssl/certs/ca-certificates.crt: content 6 bytes without, 11 bytes with injection",
				"usr/local/share/ca-certificates/x.crt: only with injection (file, 1 bytes)",
			},
		},
		{
			name: "mtime nanoseconds count",
			got: []tarEntry{
				{h: tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt.Add(1)}},
				base[1], base[2],
			},
			diff: []string{"etc: mtime 2023-11-14T22:13:20.123456789Z without, 2023-11-14T22:13:20.12345679Z with injection"},
		},
		{
			name: "mtime ignored where the process wrote",
			got: []tarEntry{
				{h: tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt.Add(1)}},
				base[1], base[2],
			},
			opts: Options{IgnoreMtime: []string{"etc"}},
		},
		{
			name: "link target and missing entry",
			got: []tarEntry{
				base[0],
				{h: tar.Header{Name: "etc/ssl/cert.pem", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow", ModTime: mt}},
			},
			diff: []string{
				"etc/ssl/cert.pem: link target certs/ca-certificates.crt without, /etc/shadow with injection",
				"etc/ssl/certs/ca-certificates.crt: only without injection (file, 6 bytes)",
			},
		},
		{
			name: "xattrs",
			got: []tarEntry{
				{h: tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt, PAXRecords: map[string]string{"SCHILY.xattr.user.a": "1"}}},
				base[1], base[2],
			},
			diff: []string{`etc: xattrs [] without, [user.a="1"] with injection`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadLayer(buildTar(t, tc.got...))
			if err != nil {
				t.Fatal(err)
			}
			d := Compare(want, got, tc.opts)
			if !reflect.DeepEqual(d, tc.diff) {
				t.Errorf("Compare:\n got  %q\n want %q", d, tc.diff)
			}
		})
	}
}
