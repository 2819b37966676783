// Command tlsget GETs the HTTPS URL given as its only argument and reports the
// result. It is the whole of the scratch-go test image (at /tlsget), where a
// container has no trust store at all: Go's crypto/x509 looks for the system
// roots in the usual bundle files and directories (and SSL_CERT_FILE /
// SSL_CERT_DIR), so it succeeds only when the CA certificates were installed.
//
// Exit status: 0 when a response arrived with a status below 400; 1 on any
// transport error (the TLS handshake failing verification, for example), with
// the error on stderr; 2 on bad usage; 3 when the server answered with a
// status of 400 or above. It connects directly (proxy variables are ignored).
package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: tlsget https://host[:port]/path")
		os.Exit(2)
	}
	u, err := url.Parse(os.Args[1])
	if err != nil || u.Scheme != "https" || u.Host == "" {
		fmt.Fprintf(os.Stderr, "tlsget: want an https URL, got %q\n", os.Args[1])
		os.Exit(2)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	resp, err := client.Get(u.String())
	if err != nil {
		fmt.Fprintf(os.Stderr, "tlsget: %v\n", err)
		os.Exit(1)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "tlsget: reading body: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("tlsget: GET %s: %s (%d bytes, %s)\n", u, resp.Status, n, tlsVersion(resp))
	if resp.StatusCode >= 400 {
		os.Exit(3)
	}
}

func tlsVersion(resp *http.Response) string {
	if resp.TLS == nil {
		return "no TLS"
	}
	return tls.VersionName(resp.TLS.Version)
}
