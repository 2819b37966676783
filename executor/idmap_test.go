package executor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/containerd/v2/core/mount"
	bkexecutor "github.com/moby/buildkit/executor"
	"github.com/moby/buildkit/util/bklog"
	"github.com/moby/sys/user"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testenv"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

// remapped maps the container's ids 0-65535 to the host's 100000-165535, as
// BuildKit's userns remap (or a snapshotter with an idmap) does.
var remapped = &user.IdentityMapping{
	UIDMaps: []user.IDMap{{ID: 0, ParentID: 100000, Count: 65536}},
	GIDMaps: []user.IDMap{{ID: 0, ParentID: 200000, Count: 65536}},
}

// idmapMountable is a bind of src whose snapshot carries an identity
// mapping, as BuildKit's MountableRef reports it.
type idmapMountable struct {
	src   string
	idmap *user.IdentityMapping
}

func (m *idmapMountable) Mount(ctx context.Context, readonly bool) (bkexecutor.MountableRef, error) {
	return idmapRef{m}, nil
}

type idmapRef struct{ m *idmapMountable }

func (r idmapRef) Mount() ([]mount.Mount, func() error, error) {
	return []mount.Mount{{Type: "bind", Source: r.m.src, Options: []string{"rbind", "rw"}}}, nil, nil
}

func (r idmapRef) IdentityMapping() *user.IdentityMapping { return r.m.idmap }

func TestContainerRootOwner(t *testing.T) {
	for _, tc := range []struct {
		name    string
		idmap   *user.IdentityMapping
		options int
		err     bool
	}{
		{"no mapping", nil, 0, false},
		{"empty mapping", &user.IdentityMapping{}, 0, false},
		{"remapped", remapped, 1, false},
		{"no container root", &user.IdentityMapping{UIDMaps: []user.IDMap{{ID: 1000, ParentID: 100000, Count: 1}}}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := (&Container{IdentityMapping: tc.idmap}).RootOwner()
			if errors.Is(err, ErrUnmappedRoot) != tc.err || (err != nil) != tc.err || len(opts) != tc.options {
				t.Errorf("RootOwner = %d options, %v", len(opts), err)
			}
		})
	}
}

// TestWrapIdentityMapping runs Wrap on a root whose snapshot is remapped:
// every entry the install creates (anchors, links, bundles, directories) is
// owned by the mapped root while the process runs, and the revert still
// leaves the tree exactly as it was (owners, modes, times, contents).
func TestWrapIdentityMapping(t *testing.T) {
	testenv.RequiresRoot(t) // chown to 100000 needs CAP_CHOWN
	ctx := bklog.WithLogger(context.Background(), testLog())
	for _, tc := range []struct {
		name  string
		specs []string
		want  string // one path the install must create
	}{
		{
			name:  "fast path (debian)",
			specs: debianToolTree("# none\n"),
			want:  "usr/local/share/ca-certificates",
		},
		{
			name:  "generic path creates directories",
			specs: []string{"file etc/hostname x"},
			want:  "etc/ssl/certs/ca-certificates.crt",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			treespec.Build(t, root, tc.specs...)
			before, err := treespec.Snapshot(root)
			if err != nil {
				t.Fatal(err)
			}
			var created []string
			inner := &fakeInner{rec: &recorder{}, fail: map[string]error{}, hook: func(name string) {
				if name != "user" {
					return
				}
				err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
					if err != nil {
						return err
					}
					rel, _ := filepath.Rel(root, p)
					if _, ok := before[rel]; ok || rel == "." {
						return nil
					}
					created = append(created, rel)
					st := fi.Sys().(*syscall.Stat_t)
					if st.Uid != 100000 || st.Gid != 200000 {
						t.Errorf("%s created owned by %d:%d, want the mapped root 100000:200000", rel, st.Uid, st.Gid)
					}
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			}}
			w := Wrap(inner, Options{CAs: staticCAs{set: caSet(t, 2)}, Install: cacerts.Options{Method: cacerts.MethodFast}, Strict: true})
			rootMount := bkexecutor.Mount{Src: &idmapMountable{src: root, idmap: remapped}, Dest: "/"}
			proc := bkexecutor.ProcessInfo{Meta: bkexecutor.Meta{Args: []string{"user"}, Env: []string{"PATH=/bin"}}}
			if _, err := w.Run(ctx, "", rootMount, nil, proc, nil); err != nil {
				t.Fatal(err)
			}
			sort.Strings(created)
			found := false
			for _, p := range created {
				found = found || strings.HasPrefix(p, tc.want)
			}
			if !found {
				t.Errorf("created %q, nothing under %s: the install did not run", created, tc.want)
			}
			after, err := treespec.Snapshot(root)
			if err != nil {
				t.Fatal(err)
			}
			if d := treespec.Diff(before, after); len(d) > 0 {
				t.Errorf("tree after revert: %v", d)
			}
		})
	}
}

// TestWrapIdentityMappingWithoutRoot: a mapping that maps no container root
// fails the install (strict: the exec) before anything is written.
func TestWrapIdentityMappingWithoutRoot(t *testing.T) {
	ctx := bklog.WithLogger(context.Background(), testLog())
	root := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, root, "file etc/hostname x")
	before, err := treespec.Snapshot(root)
	if err != nil {
		t.Fatal(err)
	}
	inner := &fakeInner{rec: &recorder{}, fail: map[string]error{}}
	w := Wrap(inner, Options{CAs: staticCAs{set: caSet(t, 1)}, Install: cacerts.Options{Method: cacerts.MethodFast}, Strict: true})
	bad := &user.IdentityMapping{UIDMaps: []user.IDMap{{ID: 1000, ParentID: 100000, Count: 1}}}
	rootMount := bkexecutor.Mount{Src: &idmapMountable{src: root, idmap: bad}, Dest: "/"}
	proc := bkexecutor.ProcessInfo{Meta: bkexecutor.Meta{Args: []string{"user"}, Env: []string{"PATH=/bin"}}}
	_, err = w.Run(ctx, "", rootMount, nil, proc, nil)
	if !errors.Is(err, ErrUnmappedRoot) {
		t.Fatalf("Run = %v, want the identity mapping refused", err)
	}
	if ev := inner.rec.get(); len(ev) != 0 {
		t.Errorf("inner saw %q; a strict exec must not run", ev)
	}
	after, _ := treespec.Snapshot(root)
	if d := treespec.Diff(before, after); len(d) > 0 {
		t.Errorf("tree changed: %v", d)
	}
}

// debianToolTree is a Debian root the fast path models exactly (and whose
// update-ca-certificates the command path can run): the tool, the programs
// it requires, an empty bundle and conf as /etc/ca-certificates.conf.
func debianToolTree(conf string) []string {
	return []string{
		"file etc/os-release \"ID=debian\\n\"",
		"file bin/sh \"#!\" mode=0755",
		"file bin/run-parts x mode=0755",
		"file usr/bin/openssl x mode=0755",
		"file usr/sbin/update-ca-certificates \"#!/bin/sh -e\\n\" mode=0755",
		"dir usr/local/share/ca-certificates",
		"file etc/ca-certificates.conf " + strconv.Quote(conf),
		"file etc/ssl/certs/ca-certificates.crt \"\"",
	}
}
