// Command bench measures what CA injection costs per RUN step, end to end:
// the real daemon (cmd/buildkitd-cacerts) and upstream BuildKit's buildkitd,
// Dockerfile builds through the BuildKit client with the cache disabled, the
// configurations interleaved run by run (A B C D, B C D A, …) so machine
// drift hits all alike. It needs root (BuildKit's runc worker).
//
//	go -C hack/bench run . [-quick] [-rounds N] [-sections overhead,scaling,concurrency,profile,memory,micro]
//
// It is a module of its own (hack/bench/go.mod, the repository's module
// replaced by ../..), so its plotting library stays out of the daemon's
// go.mod. It works from the repository's root whatever directory it is
// started in: relative paths in its flags are taken from there.
//
// Sections:
//   - overhead: 30 near-empty RUN steps on debian-bookworm-tls,
//     debian-bookworm-min, busybox and scratch-go, with an empty CA dir
//     (plain), mode auto with 1 CA (fast), mode command with 1 CA, and
//     upstream's buildkitd. Seconds per step, ratio to plain.
//   - scaling: 1, 10, 100, 1000 CAs; images of 1, 10, 60 layers; a bundle of
//     ~150 and 5,000 certificates. Per-step overhead at each point.
//   - concurrency: 1, 4, 8 builds at once; RUN steps per second vs plain.
//   - profile: CPU profiles (pprof over --debugaddr) of the fast path at
//     the costly points (1 and 1000 CAs, 60 layers, a 5,000-certificate
//     bundle) and of plain, each while it builds back to back.
//   - memory: every daemon's peak RSS (VmHWM) over the whole run.
//   - micro: the vfs and cacerts Go benchmarks (go test -bench).
//
// It writes docs/benchmarks.md and docs/benchmarks.svg (not with -quick,
// unless -out is given) and prints the report.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages/factory"
)

// params are what a run measured with; they go into the report (and the
// JSON results, from which -replot renders it again).
type params struct {
	Command      string // as typed
	Rounds       int
	ConcRounds   int
	Steps        int
	SlowSteps    int // steps per build where a step takes seconds: mode=command
	ScalingSteps int
	ConcSteps    int
	Images       []string
	CACounts     []int
	LayerCounts  []int
	BundleSizes  []int // 0: the image's own bundle
	Concurrency  []int
}

// options are the command line.
type options struct {
	params
	quick       bool
	sections    map[string]bool
	out, svg    string
	jsonOut     string
	notes       string
	replot      string
	profileDir  string
	profileSecs int
	debug       bool
	keepLogs    string
}

var allSections = []string{"overhead", "scaling", "concurrency", "profile", "memory", "micro"}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	o := &options{}
	fs.BoolVar(&o.quick, "quick", false, "smoke run (~2 min): 1 round, 10 steps, fewer points, no micro-benchmarks; writes no docs unless -out is given")
	fs.IntVar(&o.Rounds, "rounds", 5, "rounds of the overhead and scaling sections (each round runs every configuration once)")
	fs.IntVar(&o.ConcRounds, "conc-rounds", 3, "rounds of the concurrency section")
	fs.IntVar(&o.Steps, "steps", 20, "RUN steps per build")
	fs.IntVar(&o.SlowSteps, "slow-steps", 5, "RUN steps per build where a step takes seconds: mode=command (two runs of the distro tool per step)")
	fs.IntVar(&o.ScalingSteps, "scaling-steps", 12, "RUN steps per build in the scaling section")
	fs.IntVar(&o.ConcSteps, "conc-steps", 10, "RUN steps per build in the concurrency section")
	sections := fs.String("sections", strings.Join(allSections, ","), "sections to run: "+strings.Join(allSections, ","))
	fs.StringVar(&o.out, "out", "", "markdown report path (default docs/benchmarks.md; none with -quick)")
	fs.StringVar(&o.svg, "svg", "", "chart path (default: the report's path with .svg)")
	fs.StringVar(&o.jsonOut, "json", "", "also write the raw results as JSON here (default: a file in the temp dir)")
	fs.StringVar(&o.notes, "notes", "hack/bench/findings.md", "Markdown inserted after the targets (what the profiles show, named fixes); none if missing")
	fs.StringVar(&o.replot, "replot", "", "render the report and chart again from a JSON results file, measure nothing")
	fs.StringVar(&o.profileDir, "profile-dir", "", "where the profile section keeps its CPU profiles (default: a new directory in the temp dir)")
	fs.IntVar(&o.profileSecs, "profile-seconds", 12, "length of each CPU profile")
	fs.BoolVar(&o.debug, "debug", false, "run the daemons with --debug")
	fs.StringVar(&o.keepLogs, "logs", "", "directory to write each daemon's log to when it stops")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	o.Command = "go -C hack/bench run . " + strings.Join(args, " ")
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o.sections = map[string]bool{}
	for _, s := range strings.Split(*sections, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !contains(allSections, s) {
			return nil, fmt.Errorf("unknown section %q (want %s)", s, strings.Join(allSections, ","))
		}
		o.sections[s] = true
	}
	o.Images = []string{"debian-bookworm-tls", "debian-bookworm-min", "busybox", "scratch-go"}
	o.CACounts = []int{1, 10, 100, 1000}
	o.LayerCounts = []int{1, 10, 60}
	o.BundleSizes = []int{0, 5000} // 0: the image's own bundle
	o.Concurrency = []int{1, 4, 8}
	if o.quick {
		if !set["rounds"] {
			o.Rounds = 1
		}
		if !set["conc-rounds"] {
			o.ConcRounds = 1
		}
		if !set["steps"] {
			o.Steps = 5
		}
		if !set["slow-steps"] {
			o.SlowSteps = 3
		}
		if !set["scaling-steps"] {
			o.ScalingSteps = 5
		}
		if !set["conc-steps"] {
			o.ConcSteps = 5
		}
		if !set["sections"] {
			delete(o.sections, "micro")
			delete(o.sections, "profile")
		}
		o.CACounts = []int{1, 100}
		o.LayerCounts = []int{1, 10}
		o.Concurrency = []int{1, 4}
	} else if o.out == "" {
		o.out = "docs/benchmarks.md"
	}
	if o.out != "" && o.svg == "" {
		o.svg = strings.TrimSuffix(o.out, ".md") + ".svg"
	}
	if o.Rounds < 1 || o.ConcRounds < 1 || o.Steps < 1 || o.SlowSteps < 1 || o.ScalingSteps < 1 || o.ConcSteps < 1 {
		return nil, fmt.Errorf("rounds and steps must be at least 1")
	}
	return o, nil
}

func contains[T comparable](xs []T, x T) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func main() {
	// The defaults (docs/, hack/bench/findings.md) and the micro section's
	// `go test ./vfs/ ./cacerts/` are relative to the repository's root.
	root, err := factory.FindRepoRoot()
	if err == nil {
		err = os.Chdir(root)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: needs root (BuildKit's runc worker)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
