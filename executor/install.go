package executor

import (
	"context"
	"fmt"
)

// newDefaultInstaller is the Installer Wrap uses when Options.Installer is
// nil.
func newDefaultInstaller(o Options) Installer {
	return &defaultInstaller{cas: o.CAs, mode: o.Mode}
}

// defaultInstaller installs o.CAs with the vfs, distro and cacerts packages.
type defaultInstaller struct {
	cas  CASource
	mode Mode
}

// Install implements Installer.
func (d *defaultInstaller) Install(ctx context.Context, c *Container) (Revert, error) {
	if d.cas == nil {
		return nil, nil
	}
	set, err := d.cas.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the engine's CA certificates: %w", err)
	}
	if set.Len() == 0 {
		return nil, nil
	}
	// TODO: the vfs + distro + cacerts install lands with cacerts' apply.
	return nil, nil
}
