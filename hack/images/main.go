// Command images builds and caches the project's test images (see README.md).
//
//	go run ./hack/images [-cache DIR] [-j N] [-prune=false] [-list] [names...]
//
// With no names it builds every image and the ca-certificates .debs. It
// prints one line per artifact: name, state (cached or built), and paths.
// It needs root to build; a warm run (everything cached) does not.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages/factory"
)

func main() {
	cache := flag.String("cache", factory.DefaultCacheDir(), "cache directory (default $"+factory.CacheEnv+" or /var/cache/buildkit-cacerts/images)")
	jobs := flag.Int("j", 0, "builds at once (default: number of CPUs)")
	prune := flag.Bool("prune", true, "remove cache entries of these names built from older recipes")
	list := flag.Bool("list", false, "list the names and their recipe hashes, build nothing")
	quiet := flag.Bool("q", false, "no progress messages on stderr")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: go run ./hack/images [flags] [names...]\nnames: %s\n", strings.Join(factory.Names(), " "))
		flag.PrintDefaults()
	}
	flag.Parse()

	logf := func(format string, args ...any) {
		if !*quiet {
			fmt.Fprintf(os.Stderr, "hack/images: "+format+"\n", args...)
		}
	}
	b := factory.New(factory.Options{CacheDir: *cache, Jobs: *jobs, Logf: logf})
	names := flag.Args()
	if len(names) == 0 {
		names = factory.Names()
	}
	if *list {
		for _, n := range names {
			_, h, err := b.Key(n)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			fmt.Printf("%s\t%s\n", n, h[:16])
		}
		return
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	start := time.Now()
	results, err := b.Ensure(ctx, names...)
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	for _, r := range results {
		if r.Name == "" {
			continue
		}
		state := "cached"
		if !r.Cached {
			state = "built in " + r.Duration.Round(100*time.Millisecond).String()
		}
		where := "layout=" + r.Layout + " rootfs=" + r.RootfsTar
		if r.Layout == "" {
			where = "debs=" + strings.Join(r.Debs, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, state, humanSize(factory.DiskUsage(r.Dir)), where)
	}
	tw.Flush()
	if err != nil {
		fmt.Fprintf(os.Stderr, "hack/images: %v\n", err)
		os.Exit(1)
	}
	if *prune {
		removed, err := b.Prune(names...)
		for _, r := range removed {
			logf("pruned %s", r)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "hack/images: prune: %v\n", err)
			os.Exit(1)
		}
	}
	logf("%d artifacts ready in %s (%s)", len(results), time.Since(start).Round(10*time.Millisecond), b.CacheDir())
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0fM", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.0fK", float64(n)/(1<<10))
	}
}
