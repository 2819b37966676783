package main

import (
	"os"
	"strings"
	"testing"
)

func TestDescribeFS(t *testing.T) {
	got := describeFS(os.TempDir())
	if got == "unknown" || !strings.Contains(got, " on /") {
		t.Fatalf("describeFS(%q) = %q", os.TempDir(), got)
	}
	if strings.HasPrefix(got, "ext4 ") && !strings.Contains(got, "journal") {
		t.Errorf("ext4 without the journal fact: %q", got)
	}
	t.Log(got)
	if d := describeFS("/proc/self"); !strings.HasPrefix(d, "proc on /proc") {
		t.Errorf("describeFS(/proc/self) = %q", d)
	}
}
