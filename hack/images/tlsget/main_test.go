package main

import (
	"bytes"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The test binary doubles as tlsget: with TLSGET_RUN_MAIN=1 it runs main.
func TestMain(m *testing.M) {
	if os.Getenv("TLSGET_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func tlsget(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "TLSGET_RUN_MAIN=1"), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

func TestTLSGet(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("hello"))
	}))
	defer srv.Close()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	os.WriteFile(empty, nil, 0o644)
	trusted := filepath.Join(dir, "ca.pem")
	os.WriteFile(trusted, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	noStore := []string{"SSL_CERT_FILE=" + empty, "SSL_CERT_DIR=" + filepath.Join(dir, "none")}
	withCA := []string{"SSL_CERT_FILE=" + trusted, "SSL_CERT_DIR=" + filepath.Join(dir, "none")}

	for _, tc := range []struct {
		name string
		env  []string
		args []string
		code int
		out  string // in stdout (code 0, 3) or stderr
	}{
		{"usage", nil, nil, 2, "usage"},
		{"not https", nil, []string{"http://127.0.0.1/"}, 2, "want an https URL"},
		{"untrusted", noStore, []string{srv.URL}, 1, "certificate"},
		{"trusted", withCA, []string{srv.URL}, 0, "200 OK (5 bytes, TLS 1.3)"},
		{"status", withCA, []string{srv.URL + "/missing"}, 3, "404 Not Found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := tlsget(t, tc.env, tc.args...)
			if code != tc.code || !strings.Contains(stdout+stderr, tc.out) {
				t.Errorf("exit %d, want %d; stdout %q stderr %q, want %q", code, tc.code, stdout, stderr, tc.out)
			}
		})
	}
}
