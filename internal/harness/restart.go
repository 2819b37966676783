package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Kill sends SIGKILL to the daemon process alone — a crash: nothing is
// unmounted, no container is stopped (runc's children and the containers'
// processes outlive it, as they would), the root stays. It waits for the
// process to exit. Start a new daemon on the same root with StartDaemonOn;
// Stop still cleans everything up.
func (d *Daemon) Kill() error {
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing the daemon: %w", err)
	}
	<-d.exited
	return nil
}

// StartDaemonOn starts a daemon like StartDaemon, on an existing root (a
// daemon's Root after Kill, or a directory the caller made, such as a small
// tmpfs): the config is rewritten there, the state directory is reused.
// Stop (on the last daemon started on the root only) removes the root, so
// put it under a mount point rather than on one.
func StartDaemonOn(ctx context.Context, cfg DaemonConfig, root string) (*Daemon, error) {
	if cfg.Binary == "" {
		return nil, errors.New("starting daemon: no binary")
	}
	if !cfg.Upstream && cfg.CADir == "" {
		return nil, errors.New("starting daemon: no CA directory (use an empty one for none)")
	}
	conf := filepath.Join(root, "buildkitd.toml")
	if err := os.WriteFile(conf, []byte(cfg.TOML), 0o644); err != nil {
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
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.exited
		return nil, err
	}
	return d, nil
}

// ExitErr is the daemon process's exit error once it has exited (nil while
// it runs or when it exited cleanly).
func (d *Daemon) ExitErr() error {
	select {
	case <-d.exited:
		return d.err
	default:
		return nil
	}
}
