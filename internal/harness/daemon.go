package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/buildkit/client"
	"golang.org/x/sys/unix"
)

// DaemonConfig says how to start one daemon.
type DaemonConfig struct {
	// Binary is buildkitd-cacerts, or upstream's buildkitd with Upstream set.
	Binary string
	// Upstream marks upstream's buildkitd: no --cacerts-* flags are passed.
	Upstream bool
	// CADir is the engine's CA directory (--cacerts-dir). Required for
	// buildkitd-cacerts: an empty directory means nothing to install.
	CADir string
	// Mode is the [cacerts] mode (--cacerts-mode): auto, command, fast, off;
	// empty leaves the daemon's default.
	Mode string
	// TOML is the buildkitd.toml text (e.g. Registry.TOML()).
	TOML string
	// DebugAddr, when set, is passed as --debugaddr (pprof on /debug/pprof).
	DebugAddr string
	// Debug passes --debug (debug-level logs).
	Debug bool
	// Args are extra command-line arguments.
	Args []string
	// Log receives the daemon's output as well as the in-memory tail
	// (Daemon.Log).
	Log io.Writer
	// StartTimeout bounds the wait for the daemon to answer; default 60s.
	StartTimeout time.Duration
}

// Daemon is one running daemon on a private temporary root.
type Daemon struct {
	Addr string // unix:///…/buildkitd.sock
	Root string // temporary directory holding the state, config and socket

	cmd    *exec.Cmd
	log    *tailBuffer
	exited chan struct{}
	err    error // Wait's error, valid after exited is closed

	stopOnce sync.Once
	stopErr  error
}

// StartDaemon starts a daemon on a new temporary root, with host networking
// and a state directory of its own, and waits until it lists a worker. The
// caller must call Stop. It needs root.
func StartDaemon(ctx context.Context, cfg DaemonConfig) (*Daemon, error) {
	if cfg.Binary == "" {
		return nil, errors.New("starting daemon: no binary")
	}
	if !cfg.Upstream && cfg.CADir == "" {
		return nil, errors.New("starting daemon: no CA directory (use an empty one for none)")
	}
	root, err := os.MkdirTemp("", "harness-buildkitd-")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(root, "buildkitd.toml")
	if err := os.WriteFile(conf, []byte(cfg.TOML), 0o644); err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	d := &Daemon{
		Addr:   "unix://" + filepath.Join(root, "buildkitd.sock"),
		Root:   root,
		log:    &tailBuffer{max: 4 << 20},
		exited: make(chan struct{}),
	}
	args := []string{
		"--config", conf,
		"--root", filepath.Join(root, "state"),
		"--addr", d.Addr,
		"--oci-worker-net", "host",
	}
	if cfg.Debug {
		args = append(args, "--debug")
	}
	if cfg.DebugAddr != "" {
		args = append(args, "--debugaddr", cfg.DebugAddr)
	}
	if !cfg.Upstream {
		args = append(args, "--cacerts-dir", cfg.CADir)
		if cfg.Mode != "" {
			args = append(args, "--cacerts-mode", cfg.Mode)
		}
	}
	args = append(args, cfg.Args...)
	d.cmd = exec.Command(cfg.Binary, args...)
	var out io.Writer = d.log
	if cfg.Log != nil {
		out = io.MultiWriter(d.log, cfg.Log)
	}
	d.cmd.Stdout, d.cmd.Stderr = out, out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		os.RemoveAll(root)
		return nil, fmt.Errorf("starting %s: %w", cfg.Binary, err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	timeout := cfg.StartTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	if err := d.waitReady(ctx, timeout); err != nil {
		serr := d.Stop(context.WithoutCancel(ctx))
		return nil, errors.Join(err, serr)
	}
	return d, nil
}

func (d *Daemon) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-d.exited:
			return fmt.Errorf("daemon exited while starting: %v\n%s", d.err, d.Log())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		ws, err := d.Workers(ctx)
		if err == nil && len(ws) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("daemon not answering after %s: %v\n%s", timeout, err, d.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// PID is the daemon's process id.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// Log returns the tail (up to 4 MiB) of the daemon's output.
func (d *Daemon) Log() string { return d.log.String() }

// Client connects a BuildKit client to the daemon; the caller closes it.
func (d *Daemon) Client(ctx context.Context) (*client.Client, error) {
	return client.New(ctx, d.Addr)
}

// Workers lists the daemon's workers (a quick liveness check).
func (d *Daemon) Workers(ctx context.Context) ([]*client.WorkerInfo, error) {
	c, err := d.Client(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return c.ListWorkers(ctx)
}

// PeakRSS returns the daemon process's peak resident set size in bytes.
func (d *Daemon) PeakRSS() (int64, error) { return PeakRSS(d.PID()) }

// CPU returns the CPU time the daemon used itself and that of its reaped
// children (runc, containers); see ProcCPU.
func (d *Daemon) CPU() (self, children time.Duration, err error) { return ProcCPU(d.PID()) }

// Exited is closed when the daemon process has exited.
func (d *Daemon) Exited() <-chan struct{} { return d.exited }

// Stop sends SIGTERM to the daemon's process group, waits (until ctx is done
// or 20s) and then sends SIGKILL, lazily unmounts every mount left under the
// daemon's root and removes the root. It is safe to call more than once.
func (d *Daemon) Stop(ctx context.Context) error {
	d.stopOnce.Do(func() { d.stopErr = d.stop(ctx) })
	return d.stopErr
}

func (d *Daemon) stop(ctx context.Context) error {
	pgid := d.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(20 * time.Second)
	defer t.Stop()
	select {
	case <-d.exited:
	case <-t.C:
	case <-ctx.Done():
	}
	// Whatever is left of the group (runc, a stuck container) goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-d.exited
	errs := []error{UnmountUnder(d.Root)}
	if err := os.RemoveAll(d.Root); err != nil {
		errs = append(errs, fmt.Errorf("removing daemon root: %w", err))
	}
	return errors.Join(errs...)
}

// UnmountUnder lazily unmounts every mount point strictly under dir, deepest
// first, as listed in /proc/self/mountinfo.
func UnmountUnder(dir string) error {
	dir = filepath.Clean(dir)
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var points []string
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) > 4 {
			p := unescapeMountinfo(f[4])
			if strings.HasPrefix(p, dir+"/") {
				points = append(points, p)
			}
		}
	}
	var errs []error
	for i := len(points) - 1; i >= 0; i-- {
		if err := unix.Unmount(points[i], unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", points[i], err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// tailBuffer keeps (at least) the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 2*t.max { // trim rarely: amortized O(1) per byte
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.b) > t.max {
		return string(t.b[len(t.b)-t.max:])
	}
	return string(t.b)
}
