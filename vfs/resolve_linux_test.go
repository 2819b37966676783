package vfs

import (
	"errors"
	"io/fs"
	"strings"
	"syscall"
	"testing"
)

var resolveTree = []string{
	"dir a",
	"dir b/c/d/e/f",
	"file b/c/file hello",
	"symlink e -> /b/c/d/e",
	"symlink b-file -> b/c/file",
	"symlink a-fake1 -> a/fake",
	"symlink a-fake3 -> a/fake/../../b",
	"dir target",
	"dir link1",
	"symlink link1/target_abs -> /target",
	"symlink link1/target_rel -> ../target",
	"dir link2",
	"symlink link2/link1_abs -> /link1",
	"symlink link2/link1_rel -> ../link1",
	"dir link3",
	"symlink link3/target_abs -> /link2/link1_rel/target_rel",
	"symlink link3/target_rel -> ../link2/link1_rel/target_rel",
	"dir usr/lib/ssl/certs",
	"dir etc/pki/tls",
	"symlink etc/ssl -> /usr/lib/ssl",
	"symlink etc/os-release -> /etc/hostname",
	"file etc/hostname container",
	"symlink escape -> ../../../../../../host/etc/shadow",
	"symlink escape-abs -> /../../../host/outside",
	"symlink proc-root -> /proc/self/root/etc",
	"symlink loop/a -> a",
	"symlink loop/abs -> /loop/abs",
	"symlink loop/x -> y",
	"symlink loop/y -> x",
	"symlink dot -> .",
	"symlink dotdot -> ..",
	"symlink empty-ish -> /",
}

func TestEvalSymlinks(t *testing.T) {
	modes(t, func(t *testing.T, opts []Option) {
		sb := newSandbox(t, resolveTree...)
		fsys := mustNew(t, bindSpec("/", sb.root, false), nil, opts...)
		for _, tc := range []struct {
			in, want string
			err      error
		}{
			{in: "/", want: "/"},
			{in: "", want: "/"},
			{in: ".", want: "/"},
			{in: "/..", want: "/"},
			{in: "/../../..", want: "/"},
			{in: strings.Repeat("../", 20) + "b", want: "/b"},
			{in: "///./b//c/./", want: "/b/c"},
			{in: "e", want: "/b/c/d/e"},
			{in: "e/f", want: "/b/c/d/e/f"},
			{in: "e/..", want: "/b/c/d"},
			{in: "b-file", want: "/b/c/file"},
			{in: "b-file/", err: syscall.ENOTDIR},
			{in: "b-file/.", err: syscall.ENOTDIR},
			{in: "b-file/..", err: syscall.ENOTDIR},
			{in: "a-fake1", err: fs.ErrNotExist},
			{in: "a-fake3", err: fs.ErrNotExist},
			{in: "/nonexistent/../../../../outside", err: fs.ErrNotExist},
			{in: "link3/target_abs", want: "/target"},
			{in: "link3/target_rel", want: "/target"},
			{in: "etc/ssl/../pki", want: "/usr/lib/pki", err: fs.ErrNotExist},
			{in: "etc/ssl/../ssl/certs", want: "/usr/lib/ssl/certs"},
			{in: "etc/os-release", want: "/etc/hostname"},
			{in: "escape", err: fs.ErrNotExist},
			{in: "escape-abs", err: fs.ErrNotExist},
			{in: "proc-root", err: fs.ErrNotExist},
			{in: "loop/a", err: syscall.ELOOP},
			{in: "loop/abs", err: syscall.ELOOP},
			{in: "loop/x", err: syscall.ELOOP},
			{in: "dot/dot/dot/dot/b", want: "/b"},
			{in: "dotdot/dotdot/b", want: "/b"},
			{in: "empty-ish/b/c", want: "/b/c"},
			{in: strings.Repeat("x", 256), err: syscall.ENAMETOOLONG},
			{in: strings.Repeat("a/", 2100), err: syscall.ENAMETOOLONG},
		} {
			got, m, err := fsys.EvalSymlinks(tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Errorf("EvalSymlinks(%.40q) = %q, %v; want error %v", tc.in, got, err, tc.err)
				}
				continue
			}
			if err != nil || got != tc.want || !m.IsRoot() {
				t.Errorf("EvalSymlinks(%.40q) = %q, %+v, %v; want %q", tc.in, got, m, err, tc.want)
			}
		}
		b, err := fsys.ReadFileLimit("/etc/os-release", 100)
		if err != nil || string(b) != "container" {
			t.Errorf("absolute link as last component: %q, %v", b, err)
		}
		var pe *fs.PathError
		if _, err := fsys.ReadFileLimit("escape", 100); !errors.As(err, &pe) || strings.Contains(pe.Path, sb.dir) {
			t.Errorf("error path leaks host: %v", err)
		}
	})
}

func TestLoop41(t *testing.T) {
	modes(t, func(t *testing.T, opts []Option) {
		var specs []string
		for i := 0; i < 41; i++ {
			specs = append(specs, "symlink l"+itoa(i)+" -> /l"+itoa(i+1))
		}
		specs = append(specs, "file l41 end")
		sb := newSandbox(t, specs...)
		fsys := mustNew(t, bindSpec("/", sb.root, false), nil, opts...)
		if _, _, err := fsys.EvalSymlinks("l1"); err != nil {
			t.Errorf("40 links: %v", err)
		}
		if _, _, err := fsys.EvalSymlinks("l0"); !errors.Is(err, syscall.ELOOP) {
			t.Errorf("41 links: %v, want ELOOP", err)
		}
		if err := fsys.WriteFile("l0", []byte("x"), 0o644); !errors.Is(err, syscall.ELOOP) {
			t.Errorf("write through 41 links: %v, want ELOOP", err)
		}
	})
}

func itoa(i int) string {
	const d = "0123456789"
	if i < 10 {
		return d[i : i+1]
	}
	return itoa(i/10) + d[i%10:i%10+1]
}
