package vfs

import (
	"errors"
	"runtime"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// seccompFallback runs New and a few lookups on a thread whose seccomp
// filter makes openat2 fail: ENOSYS and EPERM select the fallback walker,
// any other error keeps openat2 and its lookups fail closed (no downgrade).
func seccompFallback(t *testing.T, opts []Option) {
	sb := newSandbox(t, "file etc/ssl/certs/ca-certificates.crt BUNDLE", "symlink etc/escape -> ../../../host/etc/shadow")
	for _, tc := range []struct {
		errno    syscall.Errno
		fallback bool
	}{{syscall.ENOSYS, true}, {syscall.EPERM, true}, {syscall.EACCES, false}} {
		errc := make(chan error)
		go func() {
			runtime.LockOSThread() // never unlocked: the filtered thread dies with us
			errc <- func() error {
				if err := denyOpenat2(tc.errno); err != nil {
					return err
				}
				if _, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH}); err != tc.errno {
					return errors.New("filter not active: " + errString(err))
				}
				fsys, err := New(t.Context(), bindSpec("/", sb.root, false), nil)
				if err != nil {
					return err
				}
				defer fsys.Close()
				if fsys.sys.openat2 == tc.fallback {
					return errors.New("wrong walker chosen for " + tc.errno.Error())
				}
				s, err := readStr(fsys, "/etc/ssl/certs/ca-certificates.crt")
				if tc.fallback && (err != nil || s != "BUNDLE") {
					return errors.New("fallback read: " + s + " " + errString(err))
				}
				if !tc.fallback && !errors.Is(err, tc.errno) {
					return errors.New("openat2 failure did not fail closed: " + errString(err))
				}
				if _, err := readStr(fsys, "/etc/escape"); err == nil {
					return errors.New("escape read succeeded")
				}
				return nil
			}()
		}()
		if err := <-errc; err != nil {
			t.Errorf("openat2 -> %v: %v", tc.errno, err)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// denyOpenat2 installs, on the calling thread only, a seccomp filter making
// openat2 fail with errno.
func denyOpenat2(errno syscall.Errno) error {
	const (
		bpfLdWAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		bpfJeqK   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		bpfRetK   = unix.BPF_RET | unix.BPF_K
	)
	prog := []unix.SockFilter{
		{Code: bpfLdWAbs, K: 0}, // seccomp_data.nr
		{Code: bpfJeqK, Jt: 0, Jf: 1, K: unix.SYS_OPENAT2},
		{Code: bpfRetK, K: unix.SECCOMP_RET_ERRNO | uint32(errno)},
		{Code: bpfRetK, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	return unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0)
}
