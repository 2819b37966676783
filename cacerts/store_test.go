package cacerts

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/buildkit/util/bklog"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
)

// logCtx returns a context whose bklog entry records every line.
func logCtx(t testing.TB) (context.Context, *test.Hook) {
	l, hook := test.NewNullLogger()
	l.SetLevel(logrus.DebugLevel)
	return bklog.WithLogger(context.Background(), logrus.NewEntry(l)), hook
}

func writeFiles(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// refusedFiles returns file -> reason of every "refused" or "warning" line.
func refusedFiles(hook *test.Hook) map[string]string {
	out := map[string]string{}
	for _, e := range hook.AllEntries() {
		if f, ok := e.Data["file"].(string); ok && e.Level <= logrus.WarnLevel {
			out[f] = e.Data["reason"].(string)
		}
	}
	return out
}

func TestLoadDirRefusals(t *testing.T) {
	good := newCA(t, caOpt{cn: "Good CA"})
	other := newCA(t, caOpt{cn: "Other CA"})
	leaf := newCA(t, caOpt{cn: "leaf.example", notCA: true})
	v1 := newCA(t, caOpt{cn: "V1 CA", v1: true})
	expired := newCA(t, caOpt{cn: "Old CA", notAfter: time.Now().Add(-24 * time.Hour)})
	keyed := newCA(t, caOpt{cn: "Keyed CA"})
	keyPEM := keyed.keyPEM(t)

	tests := []struct {
		name     string
		files    map[string][]byte
		opt      StoreOpt
		want     []string // anchor names installed
		refused  []string // files logged
		contains string   // substring of the first refusal's reason
	}{
		{name: "good", files: map[string][]byte{"corp.crt": good.pem}, want: []string{"buildkit-corp"}},
		{name: "two in one file", files: map[string][]byte{"corp.pem": append(append([]byte("# comment\n"), good.pem...), other.pem...)}, want: []string{"buildkit-corp-1", "buildkit-corp-2"}},
		{name: "private key after cert", files: map[string][]byte{"k.crt": append(append([]byte(nil), keyed.pem...), keyPEM...)}, refused: []string{"k.crt"}, contains: "private key"},
		{name: "private key before cert", files: map[string][]byte{"k.crt": append(append([]byte(nil), keyPEM...), keyed.pem...)}, refused: []string{"k.crt"}, contains: "private key"},
		{name: "pkcs8 key", files: map[string][]byte{"k.pem": []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")}, refused: []string{"k.pem"}, contains: "private key"},
		{name: "der", files: map[string][]byte{"der.crt": good.cert.Raw}, refused: []string{"der.crt"}, contains: "no PEM"},
		{name: "junk", files: map[string][]byte{"junk.crt": []byte("hello world\n")}, refused: []string{"junk.crt"}, contains: "no PEM"},
		{name: "empty", files: map[string][]byte{"empty.crt": nil}, refused: []string{"empty.crt"}, contains: "empty"},
		{name: "whitespace", files: map[string][]byte{"ws.crt": []byte(" \n\t\n")}, refused: []string{"ws.crt"}, contains: "empty"},
		{name: "bad base64", files: map[string][]byte{"b.crt": []byte("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")}, refused: []string{"b.crt"}, contains: "no PEM"},
		{name: "bad der in pem", files: map[string][]byte{"b.crt": []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}, refused: []string{"b.crt#1"}, contains: "parsing"},
		{name: "not a certificate block", files: map[string][]byte{"csr.pem": []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")}, refused: []string{"csr.pem#1"}, contains: "not a CERTIFICATE"},
		{name: "leaf skipped", files: map[string][]byte{"leaf.crt": leaf.pem}, refused: []string{"leaf.crt#1"}, contains: "not a CA"},
		{name: "leaf allowed", files: map[string][]byte{"leaf.crt": leaf.pem}, opt: StoreOpt{AllowNonCA: true}, want: []string{"buildkit-leaf"}, refused: []string{"leaf.crt#1"}},
		{name: "v3 without basicConstraints", files: map[string][]byte{"v1.crt": v1.pem}, refused: []string{"v1.crt#1"}, contains: "not a CA"},
		{name: "expired warned and installed", files: map[string][]byte{"old.crt": expired.pem}, want: []string{"buildkit-old"}, refused: []string{"old.crt#1"}, contains: "expired"},
		{name: "duplicates", files: map[string][]byte{"a.crt": good.pem, "b.crt": good.pem}, want: []string{"buildkit-a"}},
		{name: "orbstack ignored", files: map[string][]byte{OrbStackName: good.pem}, refused: []string{OrbStackName}, contains: "OrbStack"},
		{name: "orbstack configured", files: map[string][]byte{OrbStackName: good.pem}, opt: StoreOpt{IncludeOrbStack: true}, want: []string{"buildkit-orbstack-root"}},
		{name: "newline in name", files: map[string][]byte{"a\nb.crt": good.pem}, refused: []string{`"a\nb.crt"`}, contains: "control"},
		{name: "invalid utf8 name", files: map[string][]byte{"a\xffb.crt": good.pem}, refused: []string{`"a\xffb.crt"`}, contains: "UTF-8"},
		{name: "dotdot in name", files: map[string][]byte{"..data": good.pem}, refused: []string{`"..data"`}, contains: ".."},
		{name: "hidden ignored", files: map[string][]byte{".swp": good.pem}},
		{name: "odd chars sanitized", files: map[string][]byte{"My Corp (root), v2.crt": good.pem}, want: []string{"buildkit-My_Corp__root___v2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			ctx, hook := logCtx(t)
			tc.opt.Dir = dir
			set, err := LoadDir(ctx, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range set.Certs {
				got = append(got, c.Name)
				if bytes.Contains(c.PEM, []byte("PRIVATE")) {
					t.Errorf("%s: PEM holds a private key", c.Name)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("installed %v, want %v", got, tc.want)
			}
			refused := refusedFiles(hook)
			for _, f := range tc.refused {
				if _, ok := refused[f]; !ok {
					t.Errorf("no log line for %s; got %v", f, refused)
				}
			}
			if len(refused) != len(tc.refused) {
				t.Errorf("logged %v, want %v", refused, tc.refused)
			}
			if tc.contains != "" && len(tc.refused) > 0 && !strings.Contains(refused[tc.refused[0]], tc.contains) {
				t.Errorf("reason %q does not say %q", refused[tc.refused[0]], tc.contains)
			}
		})
	}
}

func TestLoadDirMissing(t *testing.T) {
	set, err := LoadDir(context.Background(), StoreOpt{Dir: filepath.Join(t.TempDir(), "nope")})
	if err != nil || set.Len() != 0 {
		t.Fatalf("missing dir: %v, %d certs", err, set.Len())
	}
}

func TestStoreReloadsOnChangeOnly(t *testing.T) {
	dir := t.TempDir()
	a := newCA(t, caOpt{cn: "A"})
	writeFiles(t, dir, map[string][]byte{"a.crt": a.pem, "junk.crt": []byte("junk")})
	ctx, hook := logCtx(t)
	s := NewStore(StoreOpt{Dir: dir})
	s1, err := s.Load(ctx)
	if err != nil || s1.Len() != 1 {
		t.Fatalf("first load: %v %d", err, s1.Len())
	}
	s2, _ := s.Load(ctx)
	if s1 != s2 {
		t.Error("unchanged dir re-read")
	}
	if n := len(hook.AllEntries()); n != 1 {
		t.Errorf("%d log lines after two loads, want 1 (once per change)", n)
	}
	b := newCA(t, caOpt{cn: "B"})
	writeFiles(t, dir, map[string][]byte{"b.crt": b.pem})
	s3, _ := s.Load(ctx)
	if s3 == s2 || s3.Len() != 2 {
		t.Errorf("new file not picked up: %d certs", s3.Len())
	}
	if n := len(hook.AllEntries()); n != 1 {
		t.Errorf("junk.crt logged again though unchanged: %d lines", n)
	}
	// Same size, new mtime: re-read and logged again.
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "junk.crt"), future, future); err != nil {
		t.Fatal(err)
	}
	s4, _ := s.Load(ctx)
	if s4 == s3 {
		t.Error("mtime change not noticed")
	}
	if n := len(hook.AllEntries()); n != 2 {
		t.Errorf("changed junk.crt not logged again: %d lines", n)
	}
}

func TestStoreConcurrent(t *testing.T) {
	dir := t.TempDir()
	for i := range 5 {
		c := newCA(t, caOpt{})
		writeFiles(t, dir, map[string][]byte{string(rune('a'+i)) + ".crt": c.pem})
	}
	s := NewStore(StoreOpt{Dir: dir})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 20 {
				set, err := s.Load(context.Background())
				if err != nil || set.Len() != 5 {
					t.Errorf("load: %v %d", err, set.Len())
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkStoreLoadUnchanged(b *testing.B) {
	dir := b.TempDir()
	for i := range 10 {
		c := newCA(b, caOpt{})
		writeFiles(b, dir, map[string][]byte{string(rune('a'+i)) + ".crt": c.pem})
	}
	s := NewStore(StoreOpt{Dir: dir})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Load(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
