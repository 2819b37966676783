package distro

import (
	"errors"
	"io/fs"
)

// Detect reads the container root fsys and returns its distribution and
// trust-store layout. It never fails because of what the image holds: see
// the package documentation. It returns an error only when fsys is nil.
func Detect(fsys fs.FS) (*Distro, error) {
	if fsys == nil {
		return nil, errors.New("detecting distribution: nil filesystem")
	}
	return &Distro{Family: FamilyUnknown, Layout: LayoutFor(FamilyUnknown)}, nil
}
