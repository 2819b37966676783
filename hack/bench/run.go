package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// results is everything a run measured.
type results struct {
	Start, End  time.Time
	Machine     machine
	Overhead    grid
	Scaling     grid
	Concurrency []*concPoint
	Memory      []memPoint
	Micro       string
	Profiles    []profileResult
	ProfileDir  string
	Loads       map[string]string // section → load average when it started and ended
	Images      map[string]*image
	Installs    map[string]map[string]*installStats // daemon → image → what its log said
	Params      params
	Notes       string // hand-written findings (-notes), rendered after the targets
	Commit      string // the tree measured: git HEAD, and whether it had uncommitted changes
}

func run(ctx context.Context, o *options) (err error) {
	if o.replot != "" {
		return replot(o)
	}
	r := &results{Start: time.Now().UTC(), Machine: describeMachine(), Loads: map[string]string{}, Params: o.params, Commit: gitCommit()}
	e, err := newEnv(ctx, o)
	defer func() {
		if cerr := e.close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up: %w", cerr))
		}
	}()
	if err != nil {
		return err
	}
	section := func(name string, f func() error) error {
		if !o.sections[name] {
			return nil
		}
		start, load := time.Now(), loadAvg()
		logf("section %s", name)
		err := f()
		if o.sections["memory"] && name != "micro" && name != "profile" {
			r.Memory = mergeMemory(r.Memory, name, e.memory())
		}
		r.Loads[name] = fmt.Sprintf("load %s at start, %s at end; %s", load, loadAvg(), time.Since(start).Round(time.Second))
		return err
	}
	if err := section("overhead", func() (err error) { r.Overhead, err = e.overhead(ctx); return }); err != nil {
		return err
	}
	if err := section("scaling", func() (err error) { r.Scaling, err = e.scaling(ctx); return }); err != nil {
		return err
	}
	if err := section("concurrency", func() (err error) { r.Concurrency, err = e.concurrency(ctx); return }); err != nil {
		return err
	}
	if err := section("profile", func() error { return e.profiles(ctx, r) }); err != nil {
		logf("profiling: %v", err)
	}
	r.Images = e.images
	r.Installs = e.installs.snapshot()
	if err := e.close(); err != nil {
		logf("stopping daemons: %v", err)
	}
	if err := section("micro", func() (err error) { r.Micro, err = microBenchmarks(ctx); return }); err != nil {
		logf("micro-benchmarks: %v", err)
	}
	r.End = time.Now().UTC()
	if err := writeJSON(o, r); err != nil {
		logf("writing JSON results: %v", err)
	}
	return render(o, r)
}

// render prints the report and writes it and the chart where asked.
func render(o *options, r *results) error {
	if b, err := os.ReadFile(o.notes); err == nil {
		r.Notes = string(b)
	}
	md := report(r)
	fmt.Println(md)
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
			return err
		}
		logf("wrote %s", o.out)
	}
	if o.svg != "" {
		if err := chart(r, o.svg); err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		logf("wrote %s", o.svg)
	}
	return nil
}

// writeJSON keeps the raw results (for -replot).
func writeJSON(o *options, r *results) error {
	path := o.jsonOut
	if path == "" {
		path = filepath.Join(os.TempDir(), "benchmarks-"+r.Start.Format("20060102-150405")+".json")
	}
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return err
	}
	logf("raw results in %s (re-render with -replot %s)", path, path)
	return nil
}

// replot renders the report and chart from a JSON results file.
func replot(o *options) error {
	b, err := os.ReadFile(o.replot)
	if err != nil {
		return err
	}
	var r results
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", o.replot, err)
	}
	return render(o, &r)
}

// microBenchmarks runs the vfs and cacerts Go benchmarks.
func microBenchmarks(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-run=^$", "-bench=.", "-benchmem", "-count=1", "./vfs/", "./cacerts/")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

func fetch(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// machine describes where the run happened.
type machine struct {
	CPU    string
	CPUs   int
	Memory string
	Kernel string
	Runc   string
	Go     string
	// StateFS is the filesystem of the temp dir, where the daemons keep
	// their state (snapshots): creating and removing entries there is most
	// of what an install and a revert cost.
	StateFS string
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command("free", "-h").Output(); err == nil {
		m.Memory = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("runc", "--version").Output(); err == nil {
		m.Runc = strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
	}
	m.StateFS = describeFS(os.TempDir())
	return m
}

// describeFS names the filesystem holding dir from /proc/self/mountinfo:
// its type, source and mount point, and for ext4 whether it has a journal
// (jbd2 lists the devices it journals). On ext4 without a journal every new
// inode scans the inodes deleted in the last seconds (recently_deleted),
// which makes creating entries 10–25× dearer under churn than with one.
func describeFS(dir string) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "unknown"
	}
	best, desc := "", "unknown"
	for _, l := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 2 {
			continue
		}
		mp := f[4]
		if !(dir == mp || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) || len(mp) < len(best) {
			continue
		}
		best = mp
		desc = fmt.Sprintf("%s on %s (%s)", g[0], mp, g[1])
		if g[0] == "ext4" {
			dev := filepath.Base(g[1])
			if _, err := os.Stat(filepath.Join("/proc/fs/jbd2", dev+"-8")); err == nil {
				desc += ", with a journal"
			} else {
				desc += ", without a journal"
			}
		}
	}
	return desc
}

// gitCommit names the tree being measured: HEAD's short hash, and
// "+ uncommitted changes in …" for tracked files changed in the work tree.
func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	s := strings.TrimSpace(string(out))
	st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output()
	if err == nil {
		var files []string
		for _, l := range strings.Split(string(st), "\n") { // "XY path": X may be a space
			if len(l) > 3 {
				files = append(files, l[3:])
			}
		}
		if len(files) > 0 {
			s += " + uncommitted changes in " + strings.Join(files, ", ")
		}
	}
	return s
}

// loadAvg is the 1-, 5- and 15-minute load average.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// mergeMemory records the readings taken after section into ms.
func mergeMemory(ms []memPoint, section string, now []memPoint) []memPoint {
	for _, n := range now {
		i := slices.IndexFunc(ms, func(m memPoint) bool { return m.Spec.Name == n.Spec.Name })
		if i < 0 {
			ms = append(ms, memPoint{Spec: n.Spec, After: map[string]int64{}})
			i = len(ms) - 1
		}
		ms[i].Peak, ms[i].Err = n.Peak, n.Err
		if n.Err == "" {
			ms[i].After[section] = n.Peak
		}
	}
	return ms
}
