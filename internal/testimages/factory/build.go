// Package factory builds and caches the project's test images: Debian root
// filesystems made with mmdebstrap from the machine's own apt sources, a
// busybox root, a scratch root holding one static Go binary, and the
// ca-certificates .deb of each suite. See hack/images/README.md.
//
// Each artifact lives in <cache>/<name>-<hash16>, where the hash covers its
// recipe (see Hash); it is built in <cache>/.tmp and renamed into place, under
// a per-name file lock, so concurrent builders and interrupted builds never
// leave a half-made entry. An image directory holds:
//
//	rootfs.tar   the root filesystem (pax tar, numeric owners, xattrs, devices)
//	oci/         an OCI image layout of it (one layer), tagged "latest"
//	digest       the image manifest's digest (sha256:...)
//	recipe.json  the recipe, its hash and build facts
//	build.log    the build's output
//
// A .deb artifact holds the downloaded .deb files instead of rootfs.tar and oci/.
package factory

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// CacheEnv names the environment variable that moves the cache.
const CacheEnv = "CACERTS_IMAGE_CACHE"

// DefaultCacheDir returns $CACERTS_IMAGE_CACHE or /var/cache/buildkit-cacerts/images.
func DefaultCacheDir() string {
	if d := os.Getenv(CacheEnv); d != "" {
		return d
	}
	return "/var/cache/buildkit-cacerts/images"
}

// Options configure a Builder. The zero value works.
type Options struct {
	CacheDir string                           // default DefaultCacheDir()
	Jobs     int                              // builds at once; default runtime.NumCPU()
	Logf     func(format string, args ...any) // progress; default discards
	RepoRoot string                           // module root (for Go sources); default found
	AptRoot  string                           // where to read etc/apt from; default "/"
}

// Result describes one cached artifact.
type Result struct {
	Name      string
	Hash      string
	Dir       string
	Cached    bool          // found in the cache, not built now
	Duration  time.Duration // build time (zero when cached)
	Layout    string        // OCI image layout directory (images)
	RootfsTar string        // root filesystem tarball (images)
	Digest    string        // image manifest digest (images)
	Debs      []string      // .deb files (deb artifacts)
}

// Builder builds artifacts into a cache directory.
type Builder struct {
	opts Options

	prepOnce sync.Once
	prepErr  error
	mirrors  Mirrors

	aptMu     sync.Mutex
	apt       map[string]*aptIndex
	aptActive int // Ensure calls running

	goOnce sync.Once
	goBin  string
	goVer  string
	goErr  error
}

// New returns a Builder.
func New(opts Options) *Builder {
	if opts.CacheDir == "" {
		opts.CacheDir = DefaultCacheDir()
	}
	if opts.Jobs <= 0 {
		opts.Jobs = runtime.NumCPU()
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.AptRoot == "" {
		opts.AptRoot = "/"
	}
	return &Builder{opts: opts, apt: map[string]*aptIndex{}}
}

// CacheDir returns the cache directory in use.
func (b *Builder) CacheDir() string { return b.opts.CacheDir }

// Key returns the recipe of name and its hash (with all extra inputs).
func (b *Builder) Key(name string) (Recipe, string, error) {
	r, ok := Recipes()[name]
	if !ok {
		return r, "", fmt.Errorf("unknown test image %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	var extra []string
	if r.Kind == KindGoStatic {
		in, err := b.goInputs(r)
		if err != nil {
			return r, "", err
		}
		extra = append(extra, in)
	}
	return r, Hash(r, extra...), nil
}

func (b *Builder) entryDir(name, hash string) string {
	return filepath.Join(b.opts.CacheDir, name+"-"+hash[:16])
}

// Lookup returns the cached artifact of name, if its current recipe was built.
func (b *Builder) Lookup(name string) (Result, bool, error) {
	_, hash, err := b.Key(name)
	if err != nil {
		return Result{}, false, err
	}
	res, err := b.load(name, hash)
	if errors.Is(err, os.ErrNotExist) {
		return Result{}, false, nil
	}
	return res, err == nil, err
}

func (b *Builder) load(name, hash string) (Result, error) {
	dir := b.entryDir(name, hash)
	var meta struct {
		Hash string   `json:"hash"`
		Debs []string `json:"debs"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "recipe.json"))
	if err != nil {
		return Result{}, err
	}
	if err := json.Unmarshal(raw, &meta); err != nil || meta.Hash != hash {
		return Result{}, fmt.Errorf("%s: bad recipe.json (remove the directory to rebuild)", dir)
	}
	res := Result{Name: name, Hash: hash, Dir: dir, Cached: true}
	if Recipes()[name].IsImage() {
		res.Layout = filepath.Join(dir, "oci")
		res.RootfsTar = filepath.Join(dir, "rootfs.tar")
		d, err := os.ReadFile(filepath.Join(dir, "digest"))
		if err != nil {
			return Result{}, err
		}
		res.Digest = strings.TrimSpace(string(d))
	}
	for _, d := range meta.Debs {
		res.Debs = append(res.Debs, filepath.Join(dir, d))
	}
	return res, nil
}

// Ensure returns the named artifacts, building those not cached, at most
// Options.Jobs at a time. With no names it ensures all of them. On error it
// still returns the results it has, in the order of names.
func (b *Builder) Ensure(ctx context.Context, names ...string) ([]Result, error) {
	if len(names) == 0 {
		names = Names()
	}
	b.aptMu.Lock()
	b.aptActive++
	b.aptMu.Unlock()
	defer func() {
		b.aptMu.Lock()
		defer b.aptMu.Unlock()
		if b.aptActive--; b.aptActive == 0 {
			b.dropAptIndexes()
		}
	}()
	results := make([]Result, len(names))
	errs := make([]error, len(names))
	var todo []int // indexes into names of what to build
	for i, name := range names {
		_, hash, err := b.Key(name)
		if err != nil {
			errs[i] = err
			continue
		}
		if res, err := b.load(name, hash); err == nil {
			b.link(name, hash)
			results[i] = res
			continue
		}
		todo = append(todo, i)
	}
	// Longest builds first, so the slowest one does not start last.
	sort.SliceStable(todo, func(x, y int) bool { return cost(names[todo[x]]) > cost(names[todo[y]]) })
	queue := make(chan int, len(todo))
	for _, i := range todo {
		queue <- i
	}
	close(queue)
	var wg sync.WaitGroup
	for w := 0; w < min(b.opts.Jobs, len(todo)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range queue {
				if err := ctx.Err(); err != nil {
					errs[i] = err
					continue
				}
				_, hash, _ := b.Key(names[i])
				results[i], errs[i] = b.buildLocked(ctx, names[i], hash)
			}
		}()
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

// buildLocked builds name under its file lock, unless another process built it meanwhile.
func (b *Builder) buildLocked(ctx context.Context, name, hash string) (Result, error) {
	unlock, err := b.lock(ctx, name)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	if res, err := b.load(name, hash); err == nil {
		b.link(name, hash)
		return res, nil
	}
	// Leftovers of interrupted builds of this name; nobody else builds it now.
	old, _ := filepath.Glob(filepath.Join(b.opts.CacheDir, ".tmp", name+"-*"))
	for _, o := range old {
		os.RemoveAll(o)
	}
	if err := b.prepare(ctx); err != nil {
		return Result{}, err
	}
	r, _, _ := b.Key(name)
	tmp := filepath.Join(b.opts.CacheDir, ".tmp", name+"-"+hash[:16]+"."+randSuffix())
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(tmp) // a no-op after the rename
	logf, err := os.Create(filepath.Join(tmp, "build.log"))
	if err != nil {
		return Result{}, err
	}
	defer logf.Close()
	start := time.Now()
	b.opts.Logf("%s: building (recipe %s)", name, hash[:16])
	meta, err := b.build(ctx, r, hash, tmp, logf)
	if err != nil {
		failed := filepath.Join(b.opts.CacheDir, ".tmp", name+".failed.log")
		msg := tail(filepath.Join(tmp, "build.log"))
		if os.Rename(filepath.Join(tmp, "build.log"), failed) == nil {
			msg += "\n(whole log: " + failed + ")"
		}
		b.opts.Logf("%s: FAILED after %s: %v", name, time.Since(start).Round(100*time.Millisecond), err)
		return Result{}, fmt.Errorf("building %s: %w%s", name, err, msg)
	}
	meta.Recipe, meta.Hash = r, hash
	meta.Built = time.Now().UTC().Format(time.RFC3339)
	meta.Seconds = time.Since(start).Seconds()
	raw, _ := json.MarshalIndent(meta, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, "recipe.json"), append(raw, '\n'), 0o644); err != nil {
		return Result{}, err
	}
	if err := syncDir(tmp); err != nil {
		return Result{}, err
	}
	dir := b.entryDir(name, hash)
	if err := os.Rename(tmp, dir); err != nil {
		return Result{}, err
	}
	b.link(name, hash)
	res, err := b.load(name, hash)
	res.Cached, res.Duration = false, time.Since(start)
	b.opts.Logf("%s: built in %s", name, res.Duration.Round(100*time.Millisecond))
	return res, err
}

// cost orders cold builds: a rough relative build time.
func cost(name string) int {
	r := Recipes()[name]
	switch {
	case name == DebianBookwormJava:
		return 4
	case r.Kind == KindGoStatic:
		return 3
	case r.Kind == KindMmdebstrap && len(r.Packages) > 0:
		return 2
	case r.Kind == KindDeb:
		return 0
	}
	return 1
}

type buildMeta struct {
	Recipe  Recipe   `json:"recipe"`
	Hash    string   `json:"hash"`
	Built   string   `json:"built"`
	Seconds float64  `json:"seconds"`
	Sources []string `json:"sources,omitempty"`
	Debs    []string `json:"debs,omitempty"`
	Digest  string   `json:"digest,omitempty"`
}

func (b *Builder) build(ctx context.Context, r Recipe, hash, tmp string, log io.Writer) (buildMeta, error) {
	var meta buildMeta
	work := filepath.Join(tmp, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		return meta, err
	}
	defer os.RemoveAll(work)
	rootfs := filepath.Join(tmp, "rootfs.tar")
	switch r.Kind {
	case KindMmdebstrap:
		meta.Sources = b.mirrors.Lines(r.Suite)
		if err := b.mmdebstrap(ctx, r, rootfs, log); err != nil {
			return meta, err
		}
	case KindBusybox:
		meta.Sources = b.mirrors.Lines(r.Suite)
		if err := b.busybox(ctx, r, work, rootfs, log); err != nil {
			return meta, err
		}
	case KindGoStatic:
		if err := b.goStatic(ctx, r, work, rootfs, log); err != nil {
			return meta, err
		}
	case KindDeb:
		meta.Sources = b.mirrors.Lines(r.Suite)
		debs, err := b.aptDownload(ctx, r.Suite, r.Packages, tmp, log)
		if err != nil {
			return meta, err
		}
		for _, d := range debs {
			meta.Debs = append(meta.Debs, filepath.Base(d))
		}
		return meta, nil
	default:
		return meta, fmt.Errorf("unknown recipe kind %q", r.Kind)
	}
	fmt.Fprintf(log, "writing OCI layout\n")
	digest, err := writeOCI(filepath.Join(tmp, "oci"), rootfs, r, hash)
	if err != nil {
		return meta, fmt.Errorf("writing OCI layout: %w", err)
	}
	meta.Digest = digest
	return meta, os.WriteFile(filepath.Join(tmp, "digest"), []byte(digest+"\n"), 0o644)
}

// prepare installs missing host tools and reads the machine's apt sources, once.
func (b *Builder) prepare(ctx context.Context) error {
	b.prepOnce.Do(func() {
		if os.Geteuid() != 0 {
			b.prepErr = errors.New("building test images needs root (mmdebstrap in root mode, chroot)")
			return
		}
		b.prepErr = b.ensureHostTools(ctx)
		if b.prepErr != nil {
			return
		}
		srcs, err := ReadSystemSources(b.opts.AptRoot)
		if err != nil {
			b.prepErr = fmt.Errorf("reading apt sources: %w", err)
			return
		}
		b.mirrors, b.prepErr = FindMirrors(srcs)
	})
	return b.prepErr
}

// ensureHostTools installs (with apt-get) what the builds need and is missing.
func (b *Builder) ensureHostTools(ctx context.Context) error {
	need := map[string]string{}
	for bin, pkg := range map[string]string{"mmdebstrap": "mmdebstrap", "dpkg-deb": "dpkg", "tar": "tar", "apt-get": "apt", "chroot": "coreutils"} {
		if _, err := exec.LookPath(bin); err != nil {
			need[pkg] = bin
		}
	}
	if _, err := os.Stat(DefaultKeyring); err != nil {
		need["debian-archive-keyring"] = DefaultKeyring
	}
	if len(need) == 0 {
		return nil
	}
	var pkgs []string
	for p := range need {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	b.opts.Logf("installing host packages: %s", strings.Join(pkgs, " "))
	var out bytes.Buffer
	for _, args := range [][]string{{"update"}, append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", args[0], err, out.Bytes())
		}
	}
	return nil
}

// run runs a command with its output in log; on cancel it sends SIGTERM
// (mmdebstrap then unmounts and removes its temporary root) before SIGKILL.
func run(ctx context.Context, log io.Writer, env []string, dir string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 60 * time.Second
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	fmt.Fprintf(log, "+ %s %s\n", name, strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (b *Builder) mmdebstrap(ctx context.Context, r Recipe, out string, log io.Writer) error {
	args := []string{
		"--mode=root", "--format=tar", "--variant=" + r.Variant, "--architectures=amd64",
		`--aptopt=Acquire::Languages "none"`,
	}
	if len(r.Packages) > 0 {
		args = append(args, "--include="+strings.Join(r.Packages, ","))
	}
	for _, o := range r.DpkgOpts {
		args = append(args, "--dpkgopt="+o)
	}
	for _, h := range r.EssentialHooks {
		args = append(args, "--essential-hook="+h)
	}
	for _, h := range r.Hooks {
		args = append(args, "--customize-hook="+h)
	}
	args = append(args, r.Suite, out)
	args = append(args, b.mirrors.Lines(r.Suite)...)
	return run(ctx, log, []string{fmt.Sprintf("SOURCE_DATE_EPOCH=%d", r.Epoch)}, "", "mmdebstrap", args...)
}

// lock takes the per-name file lock in the cache.
func (b *Builder) lock(ctx context.Context, name string) (func(), error) {
	dir := filepath.Join(b.opts.CacheDir, ".locks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, name+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for waited := false; ; {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if err != syscall.EWOULDBLOCK {
			f.Close()
			return nil, err
		}
		if !waited {
			waited = true
			b.opts.Logf("%s: waiting for another process building it", name)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// link points <cache>/<name> at the current entry (for people; code uses Result).
func (b *Builder) link(name, hash string) {
	l := filepath.Join(b.opts.CacheDir, name)
	target := filepath.Base(b.entryDir(name, hash))
	if cur, err := os.Readlink(l); err == nil && cur == target {
		return
	}
	tmp := l + ".link-" + randSuffix()
	if os.Symlink(target, tmp) == nil {
		if os.Rename(tmp, l) != nil {
			os.Remove(tmp)
		}
	}
}

// Prune removes cache entries of the given names (all when none) whose hash
// is not the current recipe's, and leftovers of interrupted builds.
func (b *Builder) Prune(names ...string) ([]string, error) {
	if len(names) == 0 {
		names = Names()
	}
	var removed []string
	for _, name := range names {
		_, hash, err := b.Key(name)
		if err != nil {
			return removed, err
		}
		unlock, err := b.lock(context.Background(), name)
		if err != nil {
			return removed, err
		}
		keep := filepath.Base(b.entryDir(name, hash))
		var cands []string
		for _, pat := range []string{filepath.Join(b.opts.CacheDir, name+"-*"), filepath.Join(b.opts.CacheDir, ".tmp", name+"-*")} {
			m, _ := filepath.Glob(pat)
			cands = append(cands, m...)
		}
		re := regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `-[0-9a-f]{16}(\.[0-9a-f]+)?$`)
		for _, c := range cands {
			if base := filepath.Base(c); base == keep || !re.MatchString(base) {
				continue
			}
			if err := os.RemoveAll(c); err != nil {
				unlock()
				return removed, err
			}
			removed = append(removed, c)
		}
		unlock()
	}
	return removed, nil
}

// goInputs hashes the Go sources of r.GoPackage and the Go version.
func (b *Builder) goInputs(r Recipe) (string, error) {
	root, err := b.repoRoot()
	if err != nil {
		return "", err
	}
	_, goVer, err := b.goTool()
	if err != nil {
		return "", err
	}
	tree, err := HashTree(filepath.Join(root, r.GoPackage))
	if err != nil {
		return "", err
	}
	return "go=" + goVer + " src=" + tree, nil
}

func (b *Builder) goTool() (string, string, error) {
	b.goOnce.Do(func() {
		b.goBin, b.goErr = exec.LookPath("go")
		if b.goErr != nil {
			if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
				b.goBin, b.goErr = p, nil
			} else {
				b.goErr = fmt.Errorf("no go tool found to build the scratch-go image: %w", b.goErr)
				return
			}
		}
		out, err := exec.Command(b.goBin, "env", "GOVERSION").Output()
		if err != nil {
			b.goErr = fmt.Errorf("go env GOVERSION: %w", err)
			return
		}
		b.goVer = strings.TrimSpace(string(out))
	})
	return b.goBin, b.goVer, b.goErr
}

func (b *Builder) repoRoot() (string, error) {
	if b.opts.RepoRoot != "" {
		return b.opts.RepoRoot, nil
	}
	return FindRepoRoot()
}

const modulePath = "github.com/buildkit-cacerts/buildkit-cacerts"

// FindRepoRoot finds the module's root: from this source file's location
// (go run, go test), else upwards from the working directory.
func FindRepoRoot() (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, d := range starts {
		for {
			if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && isModule(b) {
				return d, nil
			}
			p := filepath.Dir(d)
			if p == d {
				break
			}
			d = p
		}
	}
	return "", fmt.Errorf("cannot find the %s module root (run from inside the repository)", modulePath)
}

func isModule(gomod []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "module" && f[1] == modulePath {
			return true
		}
	}
	return false
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func randSuffix() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func syncDir(dir string) error {
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !(d.IsDir() || d.Type().IsRegular()) {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}

// tail returns the end of a build log for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 25 {
		lines = lines[len(lines)-25:]
	}
	return "\n--- end of " + path + " ---\n" + strings.Join(lines, "\n")
}

// DiskUsage returns the bytes allocated under dir (like du).
func DiskUsage(dir string) int64 {
	var n int64
	seen := map[[2]uint64]bool{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			k := [2]uint64{st.Dev, st.Ino}
			if !seen[k] {
				seen[k] = true
				n += st.Blocks * 512
			}
		}
		return nil
	})
	return n
}
