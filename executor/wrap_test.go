package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
	"github.com/buildkit-cacerts/buildkit-cacerts/distro"
	"github.com/containerd/containerd/v2/core/mount"
	bkexecutor "github.com/moby/buildkit/executor"
	resourcestypes "github.com/moby/buildkit/executor/resources/types"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/sys/user"
)

// recorder is the ordered log of what the fakes saw.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// fakeInner is a recording inner executor. A process whose argv[0] is in
// fail exits with that error; "block" waits for its context.
type fakeInner struct {
	rec    *recorder
	fail   map[string]error
	hook   func(name string) // called for each process before it "exits"
	metas  []bkexecutor.ProcessInfo
	mounts [][]bkexecutor.Mount
	mu     sync.Mutex
}

func (f *fakeInner) Run(ctx context.Context, id string, root bkexecutor.Mount, mounts []bkexecutor.Mount, p bkexecutor.ProcessInfo, started chan<- struct{}) (resourcestypes.Recorder, error) {
	f.mu.Lock()
	f.metas = append(f.metas, p)
	f.mounts = append(f.mounts, mounts)
	f.mu.Unlock()
	name := p.Meta.Args[0]
	f.rec.add("run " + name)
	if started != nil {
		close(started)
	}
	if p.Stdout != nil {
		io.WriteString(p.Stdout, "output of "+name+"\n")
	}
	if f.hook != nil {
		f.hook(name)
	}
	if name == "block" {
		<-ctx.Done()
		return nil, context.Cause(ctx)
	}
	return nil, f.fail[name]
}

func (f *fakeInner) Exec(ctx context.Context, id string, p bkexecutor.ProcessInfo) error {
	f.rec.add("exec " + id)
	return nil
}

// fakeMountable hands out one bind mount (of src, else of a path that does
// not exist) and records mount and release.
type fakeMountable struct {
	rec  *recorder
	name string
	src  string
}

func (m *fakeMountable) Mount(ctx context.Context, readonly bool) (bkexecutor.MountableRef, error) {
	return &fakeRef{m: m}, nil
}

type fakeRef struct{ m *fakeMountable }

func (r *fakeRef) Mount() ([]mount.Mount, func() error, error) {
	r.m.rec.add("mount " + r.m.name)
	src := r.m.src
	if src == "" {
		src = "/nonexistent/" + r.m.name
	}
	return []mount.Mount{{Type: "bind", Source: src, Options: []string{"rbind", "rw"}}},
		func() error { r.m.rec.add("release " + r.m.name); return nil }, nil
}

func (r *fakeRef) IdentityMapping() *user.IdentityMapping { return nil }

// fakeInstaller runs the tool in a sibling and returns a recording revert.
type fakeInstaller struct {
	rec        *recorder
	installErr error
	revertErr  error
	seen       *Container
}

func (f *fakeInstaller) Install(ctx context.Context, c *Container) (Revert, error) {
	f.seen = c
	f.rec.add("install")
	if _, err := c.Runner.Run(ctx, []string{"update-ca-certificates"}); err != nil {
		return nil, err
	}
	if f.installErr != nil {
		return nil, f.installErr
	}
	return func(ctx context.Context) error {
		if ctx.Err() != nil {
			f.rec.add("revert with a done context")
		} else {
			f.rec.add("revert")
		}
		return f.revertErr
	}, nil
}

type harness struct {
	rec   *recorder
	inner *fakeInner
	inst  *fakeInstaller
	root  bkexecutor.Mount
	mnts  []bkexecutor.Mount
}

func newHarness(t testing.TB) *harness {
	rec := &recorder{}
	return &harness{
		rec:   rec,
		inner: &fakeInner{rec: rec, fail: map[string]error{}},
		inst:  &fakeInstaller{rec: rec},
		root:  bkexecutor.Mount{Src: &fakeMountable{rec: rec, name: "root", src: t.TempDir()}, Dest: "/"},
		mnts:  []bkexecutor.Mount{{Src: &fakeMountable{rec: rec, name: "cache"}, Dest: "/cache"}},
	}
}

// Errors the fakes return, matched with errors.Is through Wrap's wrapping.
var (
	errExit1     = errors.New("exit code 1")
	errCancelled = errors.New("cancelled by test")
	errLeft      = errors.New("left /etc/ssl/certs/x.pem")
	errNoBundle  = errors.New("no bundle")
	errBadDir    = errors.New("bad dir")
)

// oneCA is a CA source with one (placeholder) certificate: enough for Wrap
// to call a fake installer.
var oneCA = staticCAs{set: &cacerts.Set{Certs: []*cacerts.Cert{{Name: "buildkit-x"}}}}

func (h *harness) run(ctx context.Context, opts Options, args ...string) error {
	opts.Installer = h.inst
	if opts.CAs == nil {
		opts.CAs = oneCA
	}
	w := Wrap(h.inner, opts)
	_, err := w.Run(ctx, "", h.root, h.mnts, bkexecutor.ProcessInfo{Meta: bkexecutor.Meta{Args: args, Env: []string{"PATH=/bin"}}}, nil)
	return err
}

var fullOrder = []string{
	"mount root", "mount cache",
	"install", "run update-ca-certificates",
	"run user",
	"revert",
	"release cache", "release root",
}

func TestWrapOrder(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(h *harness)
		args    string
		cancel  bool
		opts    Options
		want    []string
		wantErr error
	}{
		{name: "success", args: "user", want: fullOrder},
		{
			name:    "process fails, revert still runs",
			args:    "user",
			setup:   func(h *harness) { h.inner.fail["user"] = errExit1 },
			want:    fullOrder,
			wantErr: errExit1,
		},
		{
			name:    "cancelled, revert runs with a live context",
			args:    "block",
			cancel:  true,
			want:    []string{"mount root", "mount cache", "install", "run update-ca-certificates", "run block", "revert", "release cache", "release root"},
			wantErr: errCancelled,
		},
		{
			name:    "revert fails, exec fails",
			args:    "user",
			setup:   func(h *harness) { h.inst.revertErr = errLeft },
			want:    fullOrder,
			wantErr: errLeft,
		},
		{
			name:  "install fails, process runs without CAs",
			args:  "user",
			setup: func(h *harness) { h.inst.installErr = errors.New("no bundle") },
			want:  []string{"mount root", "mount cache", "install", "run update-ca-certificates", "run user", "release cache", "release root"},
		},
		{
			name:    "install fails in strict mode, process does not run",
			args:    "user",
			opts:    Options{Strict: true},
			setup:   func(h *harness) { h.inst.installErr = errNoBundle },
			want:    []string{"mount root", "mount cache", "install", "run update-ca-certificates", "release cache", "release root"},
			wantErr: errNoBundle,
		},
		{
			name: "install fails and its rollback fails: process does not run, even without strict",
			args: "user",
			setup: func(h *harness) {
				h.inst.installErr = fmt.Errorf("no bundle; %w: left x.pem", cacerts.ErrRollbackFailed)
			},
			want:    []string{"mount root", "mount cache", "install", "run update-ca-certificates", "release cache", "release root"},
			wantErr: cacerts.ErrRollbackFailed,
		},
		{
			name:  "sibling fails, process runs without CAs",
			args:  "user",
			setup: func(h *harness) { h.inner.fail["update-ca-certificates"] = errors.New("exit code 2") },
			want:  []string{"mount root", "mount cache", "install", "run update-ca-certificates", "run user", "release cache", "release root"},
		},
		{name: "mode off passes through", args: "user", opts: Options{Install: cacerts.Options{Method: cacerts.MethodNone}}, want: []string{"run user"}},
		{
			name:  "read-only root passes through",
			args:  "user",
			setup: func(h *harness) { h.root.Readonly = true },
			want:  []string{"run user"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.setup != nil {
				tc.setup(h)
			}
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			if tc.cancel {
				time.AfterFunc(20*time.Millisecond, func() { cancel(errCancelled) })
			}
			err := h.run(ctx, tc.opts, tc.args)
			if tc.wantErr == nil && err != nil {
				t.Fatalf("Run: %v", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Run error = %v, want one matching %v", err, tc.wantErr)
			}
			if got := h.rec.get(); !slices.Equal(got, tc.want) {
				t.Errorf("calls:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestStartedClosedOnEarlyFailure: a container that never starts (strict
// install failure) still closes started, as BuildKit's executors do.
func TestStartedClosedOnEarlyFailure(t *testing.T) {
	h := newHarness(t)
	h.inst.installErr = errors.New("no bundle")
	w := Wrap(h.inner, Options{CAs: oneCA, Installer: h.inst, Strict: true})
	started := make(chan struct{})
	_, err := w.Run(context.Background(), "ctr", h.root, nil, bkexecutor.ProcessInfo{Meta: bkexecutor.Meta{Args: []string{"user"}}}, started)
	if err == nil {
		t.Fatal("Run succeeded; want the strict install error")
	}
	select {
	case <-started:
	default:
		t.Error("started not closed")
	}
}

func TestWrapOptOut(t *testing.T) {
	for _, env := range [][]string{
		{OptOutEnv + "=off"},
		{OptOutEnv + "=on", OptOutEnv + "=OFF"},
	} {
		h := newHarness(t)
		w := Wrap(h.inner, Options{CAs: oneCA, Installer: h.inst})
		_, err := w.Run(context.Background(), "", h.root, nil, bkexecutor.ProcessInfo{Meta: bkexecutor.Meta{Args: []string{"user"}, Env: env}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := h.rec.get(); !slices.Equal(got, []string{"run user"}) {
			t.Errorf("env %q: calls %q, want only the user process", env, got)
		}
	}
	if optedOut([]string{OptOutEnv + "=off", OptOutEnv + "=on"}) {
		t.Error("the last assignment must win")
	}
}

// TestSiblingProcess checks what the sibling container gets: none of the
// user's environment, stdio, TTY or started channel.
func TestSiblingProcess(t *testing.T) {
	h := newHarness(t)
	w := Wrap(h.inner, Options{CAs: oneCA, Installer: h.inst})
	userOut := &cappedBuffer{max: 1 << 10}
	started := make(chan struct{})
	meta := bkexecutor.Meta{Args: []string{"user"}, Env: []string{"SECRET=1", "PATH=/x"}, Tty: true, User: "1000", Cwd: "/src", NetMode: pb.NetMode_HOST, Hostname: "h"}
	if _, err := w.Run(context.Background(), "ctr1", h.root, h.mnts, bkexecutor.ProcessInfo{Meta: meta, Stdout: userOut, Stderr: userOut, Stdin: io.NopCloser(strings.NewReader(""))}, started); err != nil {
		t.Fatal(err)
	}
	if len(h.inner.metas) != 2 {
		t.Fatalf("inner ran %d processes, want 2", len(h.inner.metas))
	}
	sib := h.inner.metas[0]
	if got, want := sib.Meta.Env, []string{"PATH=" + distro.DefaultPath}; !slices.Equal(got, want) {
		t.Errorf("sibling env %q, want %q", got, want)
	}
	if sib.Meta.User != "0:0" || sib.Meta.Cwd != "/" || sib.Meta.Tty || sib.Meta.NetMode != pb.NetMode_NONE || !sib.Meta.RemoveMountStubsRecursive {
		t.Errorf("sibling meta %+v: want uid 0:0, cwd /, no TTY, NetMode NONE, stubs removed recursively", sib.Meta)
	}
	if sib.Stdin != nil || sib.Stdout == userOut || sib.Stderr == userOut {
		t.Error("sibling must not share the user's stdio")
	}
	if h.inner.mounts[0][0].Dest != "/tmp" || h.inner.mounts[0][0].Readonly {
		t.Errorf("sibling's first mount %+v, want its own writable tmpfs at /tmp", h.inner.mounts[0][0])
	}
	for _, m := range h.inner.mounts[0][1:] {
		if !m.Readonly {
			t.Errorf("sibling's mount at %s is writable; want every mount but /tmp read-only", m.Dest)
		}
	}
	if h.inner.mounts[1][0].Readonly {
		t.Error("the user's mounts must be passed untouched")
	}
	if strings.Contains(userOut.String(), "update-ca-certificates") {
		t.Errorf("sibling output reached the user's output: %q", userOut.String())
	}
	if h.inner.metas[1].Stdout != userOut || !h.inner.metas[1].Meta.Tty {
		t.Error("the user process must get its own stdio and meta untouched")
	}
	select {
	case <-started:
	default:
		t.Error("started was not passed to the user process")
	}
	if h.inst.seen.ID != "ctr1" || h.inst.seen.Root.Dest != "/" || len(h.inst.seen.Mounts) != 1 || h.inst.seen.Mounts[0].Dest != "/cache" {
		t.Errorf("installer saw %+v", h.inst.seen)
	}
}

func TestSiblingTimeout(t *testing.T) {
	rec := &recorder{}
	s := &sibling{inner: &fakeInner{rec: rec}, timeout: 30 * time.Millisecond, log: testLog()}
	_, err := s.Run(context.Background(), []string{"block"})
	if !errors.Is(err, ErrSiblingTimeout) {
		t.Fatalf("Run = %v, want ErrSiblingTimeout", err)
	}
}

func TestExecPassesThrough(t *testing.T) {
	h := newHarness(t)
	w := Wrap(h.inner, Options{CAs: oneCA, Installer: h.inst})
	if err := w.Exec(context.Background(), "ctr1", bkexecutor.ProcessInfo{}); err != nil {
		t.Fatal(err)
	}
	if got := h.rec.get(); !slices.Equal(got, []string{"exec ctr1"}) {
		t.Errorf("calls %q", got)
	}
}

// TestRunsDoNotWaitOnEachOther: an exec whose install is slow does not hold
// up another exec (docs/design.md invariant 5).
func TestRunsDoNotWaitOnEachOther(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	inst := InstallerFunc(func(ctx context.Context, c *Container) (Revert, error) {
		if c.ID == "slow" {
			<-release
		}
		return func(context.Context) error { return nil }, nil
	})
	w := Wrap(h.inner, Options{CAs: oneCA, Installer: inst})
	p := bkexecutor.ProcessInfo{Meta: bkexecutor.Meta{Args: []string{"user"}}}
	slowDone := make(chan error, 1)
	go func() {
		_, err := w.Run(context.Background(), "slow", h.root, nil, p, nil)
		slowDone <- err
	}()
	fastDone := make(chan error, 1)
	go func() {
		_, err := w.Run(context.Background(), "fast", h.root, nil, p, nil)
		fastDone <- err
	}()
	select {
	case err := <-fastDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("an exec waited for another exec's install")
	}
	close(release)
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
}

// staticCAs is a CASource returning a fixed set or error, counting loads.
type staticCAs struct {
	set   *cacerts.Set
	err   error
	loads *int
}

func (s staticCAs) Load(ctx context.Context) (*cacerts.Set, error) {
	if s.loads != nil {
		*s.loads++
	}
	return s.set, s.err
}

// TestEmptyCASetPassesThrough: with the default installer and no
// certificates to install (no source, an empty set), Run neither mounts nor
// releases the container's specs: it calls the inner executor directly. A
// non-empty set does mount them, and a failing source fails a strict exec
// before anything is mounted.
func TestEmptyCASetPassesThrough(t *testing.T) {
	nonEmpty := &cacerts.Set{Certs: []*cacerts.Cert{{Name: "buildkit-x"}}}
	tests := []struct {
		name    string
		opts    Options
		want    []string
		wantErr error
		loads   int
	}{
		{name: "no CA source", opts: Options{}, want: []string{"run user"}},
		{name: "nil set", opts: Options{CAs: staticCAs{}}, want: []string{"run user"}, loads: 1},
		{name: "empty set", opts: Options{CAs: staticCAs{set: &cacerts.Set{}}}, want: []string{"run user"}, loads: 1},
		{name: "empty set, strict", opts: Options{CAs: staticCAs{set: &cacerts.Set{}}, Strict: true}, want: []string{"run user"}, loads: 1},
		{
			name:  "source fails: process runs without CAs",
			opts:  Options{CAs: staticCAs{err: errBadDir}},
			want:  []string{"run user"},
			loads: 1,
		},
		{
			name:    "source fails in strict mode: process does not run",
			opts:    Options{CAs: staticCAs{err: errBadDir}, Strict: true},
			want:    nil,
			wantErr: errBadDir,
			loads:   1,
		},
		{
			// The fake mounts are not real directories: the view fails
			// and the process runs without CAs, but only after mounting.
			name:  "non-empty set mounts the specs",
			opts:  Options{CAs: staticCAs{set: nonEmpty}},
			want:  []string{"mount root", "mount cache", "run user", "release cache", "release root"},
			loads: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			loads := 0
			if s, ok := tc.opts.CAs.(staticCAs); ok {
				s.loads = &loads
				tc.opts.CAs = s
			}
			w := Wrap(h.inner, tc.opts)
			started := make(chan struct{})
			_, err := w.Run(context.Background(), "", h.root, h.mnts, bkexecutor.ProcessInfo{Meta: bkexecutor.Meta{Args: []string{"user"}}}, started)
			if tc.wantErr == nil && err != nil {
				t.Fatalf("Run: %v", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Run error = %v, want one matching %v", err, tc.wantErr)
			}
			if got := h.rec.get(); !slices.Equal(got, tc.want) {
				t.Errorf("calls:\n got %q\nwant %q", got, tc.want)
			}
			if loads != tc.loads {
				t.Errorf("CA set loaded %d times, want %d", loads, tc.loads)
			}
			select {
			case <-started:
			default:
				t.Error("started not closed")
			}
		})
	}
}
