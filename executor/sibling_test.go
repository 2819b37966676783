package executor

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bkexecutor "github.com/moby/buildkit/executor"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/bklog"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

// TestSiblingKeepsExecBounds: the sibling runs under the exec's cgroup
// parent, resource limits and ulimits, in sandbox mode even for an insecure
// exec, as uid 0, with none of the exec's devices, hosts or proxy.
func TestSiblingKeepsExecBounds(t *testing.T) {
	h := newHarness(t)
	w := Wrap(h.inner, Options{CAs: oneCA, Installer: h.inst})
	res := &pb.LinuxResources{Memory: 1 << 30, CpuQuota: 50000}
	ul := []*pb.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "nproc", Soft: 64, Hard: 64}}
	meta := bkexecutor.Meta{
		Args: []string{"user"}, User: "1000:1000", CgroupParent: "/build/step", LinuxResources: res, Ulimit: ul,
		SecurityMode: pb.SecurityMode_INSECURE, CDIDevices: []*pb.CDIDevice{{Name: "vendor.com/gpu=0"}},
		ExtraHosts: []bkexecutor.HostIP{{Host: "x"}}, ReadonlyRootFS: false, ValidExitCodes: []int{0, 1},
	}
	if _, err := w.Run(context.Background(), "", h.root, h.mnts, bkexecutor.ProcessInfo{Meta: meta}, nil); err != nil {
		t.Fatal(err)
	}
	sib := h.inner.metas[0].Meta
	if sib.CgroupParent != "/build/step" || sib.LinuxResources != res || !slices.Equal(sib.Ulimit, ul) {
		t.Errorf("sibling cgroup parent %q, resources %v, ulimits %v: want the exec's", sib.CgroupParent, sib.LinuxResources, sib.Ulimit)
	}
	if sib.SecurityMode != pb.SecurityMode_SANDBOX {
		t.Errorf("sibling security mode %v, want sandbox whatever the exec's", sib.SecurityMode)
	}
	if sib.User != "0:0" || sib.CDIDevices != nil || sib.ExtraHosts != nil || sib.Proxy != nil || sib.ValidExitCodes != nil {
		t.Errorf("sibling meta %+v: want uid 0 and no devices, hosts, proxy or extra exit codes", sib)
	}
	if got := h.inner.metas[1].Meta; got.SecurityMode != pb.SecurityMode_INSECURE || got.User != "1000:1000" {
		t.Error("the user process's meta must be untouched")
	}
}

// TestSiblingMounts: the sibling gets only the exec's mounts at, under or
// above trust-store paths, read-only, and never a secret or SSH socket;
// one of those among the trust store's paths refuses the run.
func TestSiblingMounts(t *testing.T) {
	dir := t.TempDir()
	secretDir := filepath.Join(dir, "buildkit-secrets123")
	must(t, os.Mkdir(secretDir, 0o711))
	secret := filepath.Join(secretDir, "abc")
	must(t, os.WriteFile(secret, []byte("token"), 0o600))
	sockDir := filepath.Join(dir, "s")
	must(t, os.Mkdir(sockDir, 0o711))
	l, err := net.Listen("unix", filepath.Join(sockDir, "agent"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ca := t.TempDir()

	h := newHarness(t)
	mnt := func(name, src, dest string) bkexecutor.Mount {
		return bkexecutor.Mount{Src: &fakeMountable{rec: h.rec, name: name, src: src}, Dest: dest}
	}
	h.mnts = []bkexecutor.Mount{
		mnt("cache", t.TempDir(), "/root/.cache"),
		mnt("secret", secret, "/run/secrets/token"),
		mnt("ssh", filepath.Join(sockDir, "agent"), "/run/buildkit/ssh_agent.0"),
		mnt("cas", ca, "/usr/local/share/ca-certificates"),
		mnt("usr", t.TempDir(), "/usr"),
		mnt("tmp", t.TempDir(), "/tmp"),
		mnt("ctx", t.TempDir(), "/src"),
	}
	if err := h.run(context.Background(), Options{}, "user"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range h.inner.mounts[0] {
		got = append(got, m.Dest)
		if m.Dest != "/tmp" && !m.Readonly {
			t.Errorf("sibling mount %s is writable", m.Dest)
		}
	}
	if want := []string{"/tmp", "/usr/local/share/ca-certificates", "/usr"}; !slices.Equal(got, want) {
		t.Errorf("sibling mounts %q, want %q", got, want)
	}
	if _, ok := h.inner.mounts[0][0].Src.(tmpfs); !ok {
		t.Error("the sibling's /tmp is not its own tmpfs")
	}
	if len(h.inner.mounts[1]) != len(h.mnts) {
		t.Error("the user process must get all its mounts")
	}

	t.Run("secret in the trust store", func(t *testing.T) {
		h := newHarness(t)
		h.mnts = []bkexecutor.Mount{{Src: &fakeMountable{rec: h.rec, name: "secret", src: secret}, Dest: "/etc/ssl/private/key.pem"}}
		err := h.run(context.Background(), Options{Strict: true}, "user")
		if sme := (*SessionMountError)(nil); !errors.As(err, &sme) || sme.Dest != "/etc/ssl/private/key.pem" {
			t.Fatalf("Run = %v, want the sibling refused", err)
		}
		for _, e := range h.rec.get() {
			if strings.HasPrefix(e, "run ") {
				t.Errorf("%s: nothing may run", e)
			}
		}
	})
	t.Run("SSH socket above the trust store", func(t *testing.T) {
		h := newHarness(t)
		h.mnts = []bkexecutor.Mount{{Src: &fakeMountable{rec: h.rec, name: "ssh", src: filepath.Join(sockDir, "agent")}, Dest: "/etc"}}
		if err := h.run(context.Background(), Options{Strict: true}, "user"); err == nil {
			t.Fatal("the sibling ran with an SSH socket at /etc")
		}
	})
}

// TestSiblingWritesOutside: what the tool changes in the root's writable
// layer outside its paths fails the run with an error that fails the exec
// even without strict (it matches cacerts.ErrRollbackFailed); what it may
// change passes.
func TestSiblingWritesOutside(t *testing.T) {
	base := []string{
		"file etc/passwd root:x:0:0",
		"dir etc/ssl/certs",
		"file var/lib/dpkg/status x",
		"dir usr/share/doc",
	}
	tests := []struct {
		name  string
		write func(root string)
		bad   string
	}{
		{name: "nothing"},
		{name: "trust store and dpkg bookkeeping", write: func(root string) {
			must(t, os.WriteFile(filepath.Join(root, "etc/ssl/certs/x.pem"), []byte("x"), 0o644))
			must(t, os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), []byte("y"), 0o644))
			must(t, os.MkdirAll(filepath.Join(root, "etc/pki/ca-trust/extracted"), 0o755))
		}},
		{name: "runtime stubs", write: func(root string) { must(t, os.Mkdir(filepath.Join(root, "proc"), 0o555)) }},
		{name: "a new file at the root", write: func(root string) {
			must(t, os.WriteFile(filepath.Join(root, "leak"), []byte("secret"), 0o644))
		}, bad: "/leak"},
		{name: "a file rewritten", write: func(root string) {
			must(t, os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("evil"), 0o644))
		}, bad: "/etc/passwd"},
		{name: "a file removed", write: func(root string) { must(t, os.Remove(filepath.Join(root, "etc/passwd"))) }, bad: "/etc/passwd"},
		{name: "a directory made", write: func(root string) { must(t, os.Mkdir(filepath.Join(root, "usr/share/doc/x"), 0o755)) }, bad: "/usr/share/doc/x"},
		{name: "chmod", write: func(root string) { must(t, os.Chmod(filepath.Join(root, "usr/share/doc"), 0o777)) }, bad: "/usr/share/doc"},
		{name: "dpkg info is not bookkeeping", write: func(root string) {
			must(t, os.MkdirAll(filepath.Join(root, "var/lib/dpkg/info"), 0o755))
			must(t, os.WriteFile(filepath.Join(root, "var/lib/dpkg/info/x.list"), []byte("x"), 0o644))
		}, bad: "/var/lib/dpkg/info"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			root := h.root.Src.(*fakeMountable).src
			treespec.Build(t, root, base...)
			h.inner.hook = func(name string) {
				if name == "update-ca-certificates" && tc.write != nil {
					tc.write(root)
				}
			}
			err := h.run(context.Background(), Options{}, "user")
			ran := slices.Contains(h.rec.get(), "run user")
			if tc.bad == "" {
				if err != nil || !ran {
					t.Fatalf("Run = %v (user ran: %v), want success", err, ran)
				}
				return
			}
			if !errors.Is(err, ErrSiblingWroteOutside) || !errors.Is(err, cacerts.ErrRollbackFailed) {
				t.Fatalf("Run = %v, want ErrSiblingWroteOutside and ErrRollbackFailed", err)
			}
			if swe := (*siblingWriteError)(nil); !errors.As(err, &swe) || !slices.Contains(swe.paths, tc.bad) {
				t.Errorf("error does not name %s: %v", tc.bad, err)
			}
			if ran {
				t.Error("the user process ran (and its layer would be committed) after the tool wrote outside")
			}
		})
	}
}

// TestSiblingWritesOutsideRollsBack: through the default installer's
// command path, a tool that writes outside the trust store fails the exec
// (not strict) and the journaled part of the install is rolled back.
func TestSiblingWritesOutsideRollsBack(t *testing.T) {
	h := newHarness(t)
	root := h.root.Src.(*fakeMountable).src
	treespec.Build(t, root, debianToolTree("")...)
	before, err := treespec.Snapshot(root)
	if err != nil {
		t.Fatal(err)
	}
	h.inner.hook = func(name string) {
		if name == "/usr/sbin/update-ca-certificates" {
			must(t, os.WriteFile(filepath.Join(root, "etc/ssl/certs/new.pem"), []byte("x"), 0o644))
			must(t, os.WriteFile(filepath.Join(root, "opt-leak"), []byte("secret"), 0o644))
		}
	}
	h.mnts = nil
	w := Wrap(h.inner, Options{CAs: staticCAs{set: caSet(t, 1)}, Install: cacerts.Options{Method: cacerts.MethodCommand}})
	ctx := bklog.WithLogger(context.Background(), testLog())
	_, err = w.Run(ctx, "", h.root, nil, bkexecutor.ProcessInfo{Meta: bkexecutor.Meta{Args: []string{"user"}}}, nil)
	if !errors.Is(err, ErrSiblingWroteOutside) {
		t.Fatalf("Run = %v, want ErrSiblingWroteOutside", err)
	}
	if slices.Contains(h.rec.get(), "run user") {
		t.Error("the user process ran")
	}
	after, err := treespec.Snapshot(root)
	if err != nil {
		t.Fatal(err)
	}
	d := treespec.Diff(before, after)
	// Only the stray write is left (the step fails, so nothing is
	// committed); the anchor and the trust-store write are rolled back.
	if len(d) != 2 || !strings.Contains(strings.Join(d, "\n"), "opt-leak") {
		t.Errorf("tree after the failed install:\n%s", strings.Join(d, "\n"))
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
