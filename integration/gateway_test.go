package integration

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/solver/pb"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/harness"
)

// nopWriteCloser collects a process's output.
type nopWriteCloser struct{ strings.Builder }

func (*nopWriteCloser) Close() error { return nil }

// TestGatewayContainer covers the other shape of Run: a gateway container
// (an id, a started channel, a long-lived first process) and Exec into it.
// The CAs are installed when the container starts, seen by an Exec'd
// process, and reverted when the container ends, so the root ref is
// unchanged afterwards.
func TestGatewayContainer(t *testing.T) {
	e := newSmokeEnv(t)
	d := startDaemon(t, harness.DaemonConfig{TOML: e.toml, CADir: caDir(t, e.ca)})
	c := daemonClient(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var execOut, afterOut nopWriteCloser
	_, err := c.Build(ctx, client.SolveOpt{}, "cacerts-test", func(ctx context.Context, gw gateway.Client) (*gateway.Result, error) {
		def, err := llb.Image(e.image).Marshal(ctx)
		if err != nil {
			return nil, err
		}
		res, err := gw.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB()})
		if err != nil {
			return nil, err
		}
		ref, err := res.SingleRef()
		if err != nil {
			return nil, err
		}
		run := func(initEnv []string, args ...string) (*nopWriteCloser, error) {
			ctr, err := gw.NewContainer(ctx, gateway.NewContainerRequest{
				Mounts: []gateway.Mount{{Dest: "/", Ref: ref, MountType: pb.MountType_BIND}},
			})
			if err != nil {
				return nil, err
			}
			defer ctr.Release(context.WithoutCancel(ctx))
			// The first process makes the container (executor Run with an
			// id); the second joins it (Exec).
			init, err := ctr.Start(ctx, gateway.StartRequest{Args: []string{"sleep", "30"}, Env: initEnv, Stdout: &nopWriteCloser{}, Stderr: &nopWriteCloser{}})
			if err != nil {
				return nil, err
			}
			out := &nopWriteCloser{}
			p, err := ctr.Start(ctx, gateway.StartRequest{Args: args, Stdout: out, Stderr: out})
			if err != nil {
				return nil, err
			}
			werr := p.Wait()
			init.Signal(ctx, 9)
			init.Wait()
			if werr != nil {
				return out, fmt.Errorf("%v: %w: %s", args, werr, out.String())
			}
			return out, nil
		}
		path := "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
		got, err := run([]string{path}, "curl", "-fsS", e.url)
		if err != nil {
			return nil, err
		}
		execOut = *got
		// A fresh container on the same ref, opted out: our anchor must
		// not be there.
		after, err := run([]string{path, "BUILDKIT_CACERTS=off"}, "sh", "-c", "ls /usr/local/share/ca-certificates; grep -c 'BEGIN CERT' /etc/ssl/certs/ca-certificates.crt; echo done")
		if err != nil {
			return nil, err
		}
		afterOut = *after
		return gateway.NewResult(), nil
	}, nil)
	if err != nil {
		t.Fatalf("gateway build: %v", err)
	}
	if execOut.String() != smokeBody {
		t.Errorf("curl in an Exec'd process printed %q, want %q", execOut.String(), smokeBody)
	}
	if strings.Contains(afterOut.String(), "buildkit-") {
		t.Errorf("the base ref holds our anchor after the container ended:\n%s", afterOut.String())
	}
	t.Logf("second container: %s", strings.ReplaceAll(afterOut.String(), "\n", " | "))
}

var _ io.WriteCloser = (*nopWriteCloser)(nil)
