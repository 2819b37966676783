package cacerts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moby/buildkit/util/bklog"
	"github.com/sirupsen/logrus"

	"github.com/buildkit-cacerts/buildkit-cacerts/distro"
)

// Method is how the CAs are installed into one container root: what the
// operator asks for (Options.Method, the daemon's [cacerts] mode) and what an
// install did (Plan.Method, Journal.Method).
type Method int

const (
	// MethodAuto lets NewPlan choose: fast, else command, else generic.
	MethodAuto Method = iota
	// MethodNone installs nothing: asked for, it is the mode "off" (an
	// executor passes every exec through); as a result, the CA set was
	// empty or the image already trusts every CA.
	MethodNone
	// MethodFast reproduces Debian's update-ca-certificates in Go. Asked
	// for, it never runs a tool: a layout the fast path does not model gets
	// the generic path.
	MethodFast
	// MethodCommand runs the distribution's update tool through a Runner.
	// Asked for, a root without a usable tool is an install failure.
	MethodCommand
	// MethodGeneric writes bundles where TLS libraries look.
	MethodGeneric
)

// String returns the method's name for logs.
func (m Method) String() string {
	switch m {
	case MethodAuto:
		return "auto"
	case MethodNone:
		return "none"
	case MethodFast:
		return "fast"
	case MethodCommand:
		return "command"
	case MethodGeneric:
		return "generic"
	}
	return fmt.Sprintf("method(%d)", int(m))
}

// ParseMethod parses the daemon's mode setting: "auto" (or empty), "fast",
// "command" or "off" (MethodNone). The generic path is not a mode: auto and
// fast fall back to it.
func ParseMethod(s string) (Method, error) {
	switch s {
	case "", "auto":
		return MethodAuto, nil
	case "fast":
		return MethodFast, nil
	case "command":
		return MethodCommand, nil
	case "off":
		return MethodNone, nil
	}
	return MethodAuto, fmt.Errorf("unknown cacerts mode %q (want auto, command, fast or off)", s)
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseMethod, so a
// configuration file's mode is parsed once, where it is read.
func (m *Method) UnmarshalText(b []byte) error {
	v, err := ParseMethod(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// MarshalText implements encoding.TextMarshaler: the mode's name ("off" for
// MethodNone), which ParseMethod reads back.
func (m Method) MarshalText() ([]byte, error) {
	if m == MethodNone {
		return []byte("off"), nil
	}
	return []byte(m.String()), nil
}

// Options is how the engine installs CAs, the same for every exec: the
// settings an executor passes through unchanged (executor.Options.Install).
// What differs per exec is in Exec.
type Options struct {
	// Method is the way asked for; MethodAuto (the zero value) chooses.
	Method Method
	// CombineAbove makes the fast and command paths install a set of more
	// CAs than this as one anchor file, CombinedName plus the layout's
	// anchor extension, holding every CA in the set's order, instead of one
	// anchor per CA: the entries an exec creates and removes then do not
	// grow with the set. Zero means DefaultCombineAbove; a negative value
	// never combines; a single CA is always its own anchor. The update tools
	// treat such a file as they treat any multi-certificate anchor:
	// Debian's update-ca-certificates appends it to the bundle whole and
	// links it as one .pem, and `openssl rehash` gives it no subject-hash
	// link, so the CAs are in the bundle (OpenSSL's CAfile, Go, GnuTLS) but
	// not found by a CApath-only lookup. The command path does not combine
	// where a hook reads one certificate per added file (see perFileHooks).
	// The generic, SSL_CERT_FILE and certifi bundles are unaffected.
	CombineAbove int
	// Limits caps what one install may read, write and match in the image
	// (see Limits); the zero value is the defaults.
	Limits Limits
}

// Exec is what one exec brings to its install.
type Exec struct {
	// Env is the process's environment ("KEY=value"); SSL_CERT_FILE and
	// SSL_CERT_DIR in it name extra places to install (untrusted values,
	// resolved inside the container).
	Env []string
	// Runner runs the update tool for the command path; nil disables it.
	Runner Runner
}

// Plan is what NewPlan decided for one container root. Apply it once.
type Plan struct {
	// Method is the way chosen.
	Method Method
	// Reason says why, for the log.
	Reason string

	d        *distro.Distro
	set      *Set
	x        Exec
	opt      Options
	argv     []string   // command path: the update command found
	existing []string   // fast path: the local anchors already there
	combined bool       // the anchors are one file, CombinedName
	skipped  int        // engine CAs not installed: the image already trusts them
	budget   *budget    // Apply: what this install may still read and write
	bundle   bundleRead // the primary bundle as the plan read it
}

// NewPlan chooses how to install set into the root fsys, whose distribution
// d was detected by distro.Detect. It reads the image (never writes). The
// fast path is chosen only for a layout it models exactly (see fastCheck);
// the command path needs x.Runner and an installed update tool that can
// run (its interpreter and the programs it calls exist); anything else gets
// the generic path. Asked for MethodFast, it never plans the command path.
func NewPlan(ctx context.Context, fsys FS, d *distro.Distro, set *Set, x Exec, opt Options) (*Plan, error) {
	if d == nil {
		return nil, errors.New("planning CA install: no distribution detected; call distro.Detect first")
	}
	p := &Plan{d: d, set: set, x: x, opt: opt}
	if set.Len() == 0 {
		p.Method, p.Reason = MethodNone, "no CA certificates configured"
		return p, nil
	}
	// A CA the image already trusts is not installed again: our copy would
	// take the image's own hash link (rehash keeps the first of two equal
	// certificates), and revert would leave the image without one.
	held, read := trustedAlready(fsys, d.Layout, set)
	p.bundle = read
	if len(held) > 0 {
		p.set = &Set{}
		for _, c := range set.Certs {
			if !held[c.SHA256] {
				p.set.Certs = append(p.set.Certs, c)
			}
		}
		p.skipped = len(held)
		set = p.set
		if set.Len() == 0 {
			p.Method, p.Reason = MethodNone, "the image already trusts every engine CA"
			return p, nil
		}
	}
	var fastErr, cmdErr error
	p.combined = opt.combines(set.Len())
	if opt.Method == MethodAuto || opt.Method == MethodFast {
		var names []string
		for _, a := range p.anchorFiles() {
			names = append(names, a.name)
		}
		p.existing, fastErr = fastCheck(fsys, d.Layout, names)
	}
	cmdCheck := func() error {
		switch {
		case x.Runner == nil:
			return errors.New("no runner for the update tool")
		case d.Layout.AnchorDir == "":
			return fmt.Errorf("%s has no anchor directory", d.Family)
		}
		var err error
		p.argv, err = d.Layout.FindUpdate(ioFS{fsys}) // distro reads io/fs names
		return err
	}
	if opt.Method == MethodCommand || (opt.Method == MethodAuto && fastErr != nil) {
		cmdErr = cmdCheck()
	}
	switch opt.Method {
	case MethodAuto:
		switch {
		case fastErr == nil:
			p.Method, p.Reason = MethodFast, "layout modelled exactly"
		case cmdErr == nil:
			p.Method, p.Reason = MethodCommand, "fast path not possible: "+fastErr.Error()
		default:
			p.Method, p.Reason = MethodGeneric, "fast path not possible: "+fastErr.Error()+"; command path not possible: "+cmdErr.Error()
		}
	case MethodFast:
		if fastErr != nil {
			p.Method, p.Reason = MethodGeneric, "fast path not possible: "+fastErr.Error()+"; mode fast runs no tool"
			break
		}
		p.Method, p.Reason = MethodFast, "forced"
	case MethodCommand:
		if cmdErr != nil {
			return nil, fmt.Errorf("planning CA install with the update tool: %w", cmdErr)
		}
		p.Method, p.Reason = MethodCommand, "forced"
	case MethodGeneric, MethodNone:
		p.Method, p.Reason = opt.Method, "forced"
	default:
		return nil, fmt.Errorf("planning CA install: unknown method %d", opt.Method)
	}
	switch {
	case p.Method != MethodFast && p.Method != MethodCommand:
		p.combined = false // no anchors written
	case p.combined && p.Method == MethodCommand:
		if h := perFileHooks(fsys, d.Layout); h != "" {
			p.combined = false
			p.Reason += "; one anchor per CA: hook " + h + " reads one certificate per added file"
		}
	}
	return p, nil
}

// Apply installs the CAs as planned and returns the journal to revert them.
// On error, whatever was done is rolled back first; the error says so, and
// names what may be left if the rollback failed too. The runner is used only
// by the command path, never by a rollback.
func (p *Plan) Apply(ctx context.Context, fsys FS) (*Journal, error) {
	j := newJournal(p.Method)
	if p.Method == MethodNone {
		return j, nil
	}
	// Every read and write of the install is counted against the exec's
	// limits (limits.go); finish and the rollback use fsys itself.
	p.budget = newBudget(p.opt.Limits)
	lfs := &limitFS{FS: fsys, b: p.budget}
	var err error
	switch p.Method {
	case MethodFast:
		err = p.applyFast(lfs, j)
	case MethodCommand:
		err = p.applyCommand(ctx, lfs, j)
	case MethodGeneric:
		err = p.applyGeneric(ctx, lfs, j)
	default:
		err = fmt.Errorf("unknown method %s", p.Method)
	}
	if err == nil {
		err = p.applyEnv(ctx, lfs, j)
	}
	if err == nil {
		err = p.applyCertifi(ctx, lfs, j)
	}
	if lerr := p.budget.err(); lerr != nil && !errors.Is(err, ErrLimit) {
		// A limit hit where the caller only skipped (a bundle left alone)
		// still fails the install.
		err = errors.Join(err, lerr)
	}
	ferr := j.finish(fsys)
	j.setInstalled(p.set, p.d.Layout)
	if err == nil && ferr == nil {
		return j, nil
	}
	ie := &InstallError{Method: p.Method, Err: errors.Join(err, ferr)}
	ie.Rollback = j.Revert(context.WithoutCancel(ctx), fsys)
	return nil, ie
}

// InstallError is the error of an Apply (or Install) that failed after the
// plan: Method is the way that failed, Err why. The partial install was
// rolled back, unless Rollback is set: then some of our changes may be left
// in the layer, and the error also matches ErrRollbackFailed.
type InstallError struct {
	Method   Method
	Err      error
	Rollback error
}

// Error says what failed and whether it was rolled back.
func (e *InstallError) Error() string {
	if e.Rollback != nil {
		return fmt.Sprintf("installing CA certificates (%s): %v; %v: %v", e.Method, e.Err, ErrRollbackFailed, e.Rollback)
	}
	return fmt.Sprintf("installing CA certificates (%s), rolled back: %v", e.Method, e.Err)
}

// Unwrap returns Err, and ErrRollbackFailed and Rollback when the rollback
// failed.
func (e *InstallError) Unwrap() []error {
	if e.Rollback != nil {
		return []error{e.Err, ErrRollbackFailed, e.Rollback}
	}
	return []error{e.Err}
}

// ErrRollbackFailed is wrapped by the error of an install that failed and
// whose rollback failed too: some of our changes may be left in the layer.
// The caller must fail the exec (docs/design.md invariant 4: no layer with
// our CA is ever committed), whatever its policy for other install failures.
var ErrRollbackFailed = errors.New("rolling back the partial install failed")

// Install plans and applies the CA install for one exec and returns the
// journal whose Revert the caller defers (and must check: a revert failure
// fails the exec). When the install fails, the partial install is rolled
// back and the error returned (wrapping ErrRollbackFailed when the rollback
// failed too, a *LimitError when a limit was hit): whether the exec runs
// without the CAs is the caller's decision. Install logs nothing above
// debug; its lines go through bklog.G(ctx), so they carry the caller's
// fields (the executor's "exec").
func Install(ctx context.Context, fsys FS, d *distro.Distro, set *Set, x Exec, opt Options) (*Journal, error) {
	start := time.Now()
	p, err := NewPlan(ctx, fsys, d, set, x, opt)
	if err != nil {
		return nil, err
	}
	j, err := p.Apply(ctx, fsys)
	if err != nil {
		return nil, err
	}
	if p.Method != MethodNone {
		f := logrus.Fields{"cas": set.Len(), "distro": d.Family.String(), "method": p.Method.String(), "reason": p.Reason,
			"paths": len(j.Paths()), "ms": time.Since(start).Milliseconds()}
		if p.budget != nil {
			u := p.budget.use()
			f["read_bytes"], f["written_bytes"], f["files"] = u.ReadBytes, u.WrittenBytes, u.Files
		}
		if p.combined {
			f["combined"] = set.Len() // CAs combined into one anchor, CombinedName
		}
		bklog.G(ctx).WithFields(f).Debug("CA certificates installed")
	}
	return j, nil
}
