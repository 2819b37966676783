//go:build !linux

package vfs

import "io/fs"

// StatOf reports no Stat off Linux, where this package has no views.
func StatOf(fi fs.FileInfo) (Stat, bool) { return Stat{}, false }
