package integration

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Machines whose own capability bounding set lacks a capability the kernel
// knows (this CI machine runs without CAP_SYS_RESOURCE) cannot start a
// `docker run --privileged` container: Docker asks runc for every
// capability the kernel has, and runc fails with "unable to apply caps:
// operation not permitted". Docker ignores --cap-drop with --privileged.
// So on such a machine the test's dockerd gets a default runtime that
// drops, from each container's spec, the capabilities this process cannot
// hold, then runs runc: the containers are exactly as privileged as the
// machine allows, and the test still types `docker run --privileged`.

// missingCaps reports whether this process's bounding set lacks any
// capability up to the kernel's last one.
func missingCaps(t *testing.T) bool {
	t.Helper()
	last, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(last)))
	if err != nil {
		return false
	}
	bnd := capBnd()
	want := uint64(1)<<(n+1) - 1
	return bnd&want != want
}

func capBnd() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return ^uint64(0)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapBnd:"); ok {
			b, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err == nil {
				return b
			}
		}
	}
	return ^uint64(0)
}

const capFitSource = `package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

var names = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"}

func bnd() uint64 {
	f, _ := os.Open("/proc/self/status")
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapBnd:"); ok {
			b, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return b
		}
	}
	return ^uint64(0)
}

func main() {
	runc, err := exec.LookPath("runc")
	if err != nil {
		os.Stderr.WriteString("capfit: no runc in PATH\n")
		os.Exit(1)
	}
	args := os.Args[1:]
	for i, a := range args {
		if (a == "--bundle" || a == "-b") && i+1 < len(args) {
			fit(filepath.Join(args[i+1], "config.json"), true)
		} else if v, ok := strings.CutPrefix(a, "--bundle="); ok {
			fit(filepath.Join(v, "config.json"), true)
		} else if (a == "--process" || a == "-p") && i+1 < len(args) {
			fit(args[i+1], false) // runc exec: the process alone
		} else if v, ok := strings.CutPrefix(a, "--process="); ok {
			fit(v, false)
		}
	}
	syscall.Exec(runc, append([]string{"runc"}, args...), os.Environ())
	os.Exit(1)
}

func fit(path string, bundle bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var spec map[string]any
	if json.Unmarshal(b, &spec) != nil {
		return
	}
	have := bnd()
	ok := map[string]bool{}
	for i, n := range names {
		ok[n] = have&(1<<uint(i)) != 0
	}
	proc := spec
	if bundle {
		proc, _ = spec["process"].(map[string]any)
	}
	caps, _ := proc["capabilities"].(map[string]any)
	for k, v := range caps {
		list, _ := v.([]any)
		out := []any{}
		for _, c := range list {
			if s, _ := c.(string); ok[s] || !known(s) {
				out = append(out, c)
			}
		}
		caps[k] = out
	}
	if nb, err := json.Marshal(spec); err == nil {
		os.WriteFile(path, nb, 0o600)
	}
}

func known(s string) bool {
	for _, n := range names {
		if n == s {
			return true
		}
	}
	return false
}
`

// capFitRuntime builds the runtime wrapper into dir and returns its path.
func capFitRuntime(t *testing.T, dir string) string {
	t.Helper()
	src := filepath.Join(dir, "capfit-src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "main.go"), []byte(capFitSource), 0o644)
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module capfit\n\ngo 1.22\n"), 0o644)
	out := filepath.Join(dir, "capfit-runc")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the capfit runtime: %v\n%s", err, b)
	}
	return out
}
