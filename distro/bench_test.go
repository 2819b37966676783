package distro

import (
	"io/fs"
	"testing"
	"testing/fstest"
)

// BenchmarkDetect measures one detection per exec: a Debian root with the
// usual /etc/os-release -> ../usr/lib/os-release link, in memory and on a
// real directory through os.OpenRoot, and a scratch root where every
// marker is looked up and missed.
func BenchmarkDetect(b *testing.B) {
	mem := mapFS(map[string]string{"usr/lib/os-release": debianText})
	mem["etc/os-release"] = &fstest.MapFile{Data: []byte("../usr/lib/os-release"), Mode: fs.ModeSymlink | 0o777}
	disk := rootFS(b, fileSpec("usr/lib/os-release", debianText), "symlink etc/os-release -> ../usr/lib/os-release")
	scratch := rootFS(b, "file app ELF mode=0755")
	run := func(name string, fsys fs.FS, want Family) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d, err := Detect(fsys)
				if err != nil || d.Family != want {
					b.Fatalf("got %v, %v", d, err)
				}
			}
		})
	}
	run("mapfs-debian", mem, FamilyDebian)
	run("openroot-debian", disk, FamilyDebian)
	run("openroot-scratch", scratch, FamilyUnknown)
}
