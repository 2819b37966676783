package distro

import (
	"errors"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// ErrNotInstalled is returned (wrapped) by Command.Find and Layout.FindUpdate
// when the program, its interpreter or a program it requires is missing.
var ErrNotInstalled = errors.New("not installed")

// Find reports whether c can run in the container root fsys: one of c.Paths
// is an executable regular file (after following symlinks inside the root),
// c.Interpreter is one too, and every entry of c.Requires is found in
// DefaultPath. It returns a copy of c.Argv with Argv[0] set to the path found.
// It only stats; it never reads or runs anything. The answer is about the
// image as it is now: a hostile image can still make the program fail.
func (c Command) Find(fsys fs.FS) ([]string, error) {
	if len(c.Argv) == 0 {
		return nil, errors.New("finding update command: empty argv")
	}
	found := ""
	for _, p := range c.Paths {
		if isExecutable(fsys, p) {
			found = p
			break
		}
	}
	if found == "" {
		return nil, &fs.PathError{Op: "find", Path: c.Argv[0], Err: ErrNotInstalled}
	}
	if c.Interpreter != "" && !isExecutable(fsys, c.Interpreter) {
		return nil, &fs.PathError{Op: "find interpreter", Path: c.Interpreter, Err: ErrNotInstalled}
	}
	for _, name := range c.Requires {
		if lookPath(fsys, name) == "" {
			return nil, &fs.PathError{Op: "find required program", Path: name, Err: ErrNotInstalled}
		}
	}
	argv := slices.Clone(c.Argv)
	argv[0] = found
	return argv, nil
}

// FindUpdate returns the argv of the first command of l.Update that
// Command.Find reports installed in fsys. When none is, it returns an error
// wrapping ErrNotInstalled (and every command's reason); when the layout has
// no update command at all, the error says so and also wraps ErrNotInstalled.
func (l Layout) FindUpdate(fsys fs.FS) ([]string, error) {
	if len(l.Update) == 0 {
		return nil, &fs.PathError{Op: "find update command", Path: string(l.Family), Err: ErrNotInstalled}
	}
	var errs []error
	for _, c := range l.Update {
		argv, err := c.Find(fsys)
		if err == nil {
			return argv, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// lookPath returns the first DefaultPath entry holding an executable name, or "".
func lookPath(fsys fs.FS, name string) string {
	for _, dir := range strings.Split(DefaultPath, ":") {
		p := path.Join(dir, name)
		if isExecutable(fsys, p) {
			return p
		}
	}
	return ""
}

// isExecutable reports whether the container path p is a regular file with
// an execute bit, following symlinks as fsys does. It is the project's one
// test of "installed": a directory, FIFO or device never counts.
func isExecutable(fsys fs.FS, p string) bool {
	name := Name(p)
	if !fs.ValidPath(name) {
		return false
	}
	fi, err := fs.Stat(fsys, name)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
