package main

import "testing"

func TestUnescapeOctal(t *testing.T) {
	for in, want := range map[string]string{
		`/var/lib/buildkit/runc-overlayfs/executor/x/rootfs`: "/var/lib/buildkit/runc-overlayfs/executor/x/rootfs",
		`/a\040b/c`:   "/a b/c",
		`/tab\011end`: "/tab\tend",
		`/bad\09`:     `/bad\09`,
		`/trailing\`:  `/trailing\`,
	} {
		if got := unescapeOctal(in); got != want {
			t.Errorf("unescapeOctal(%q) = %q, want %q", in, got, want)
		}
	}
}
