package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// ms formats a duration as milliseconds with one decimal.
func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

// signedMS formats an overhead in milliseconds with its sign.
func signedMS(d time.Duration) string {
	return fmt.Sprintf("%+.1f", float64(d)/float64(time.Millisecond))
}

func fmtRatio(x float64) string {
	if math.IsNaN(x) {
		return "–"
	}
	return fmt.Sprintf("%.3f", x)
}

// stepCell formats a cell's per-step median and round range, or its error.
func stepCell(c *cell) (median, rng string) {
	if c == nil {
		return "–", "–"
	}
	if c.Sample.N() == 0 {
		return "failed", errLine(c.Err)
	}
	lo, hi := c.Sample.RoundRange()
	return ms(c.Sample.Median()), ms(lo) + "–" + ms(hi)
}

func errLine(err string) string {
	s := strings.SplitN(err, "\n", 2)[0]
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// target is one of the targets and what was measured for it.
type target struct {
	What     string
	Measured string
	Met      string // "yes", "no", "not measured"
}

func verdict(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// cmp is a cell against its plain cell, paired by round.
type cmp struct {
	ok       bool
	med      time.Duration // the cell's pooled median
	base     time.Duration // plain's pooled median
	ratio    float64       // median of the per-round ratios
	lo, hi   float64       // their range
	overhead time.Duration // median of the per-round differences
}

func compare(c, plain *cell) cmp {
	if c == nil || plain == nil || c.Sample.N() == 0 || plain.Sample.N() == 0 {
		return cmp{}
	}
	rs, ds := paired(&c.Sample, &plain.Sample)
	if len(rs) == 0 {
		return cmp{}
	}
	lo, hi := rs.Range()
	return cmp{ok: true, med: c.Sample.Median(), base: plain.Sample.Median(), ratio: rs.Median(), lo: lo, hi: hi, overhead: median(ds)}
}

func (c cmp) ratioText() string {
	if !c.ok {
		return "–"
	}
	return fmt.Sprintf("%.3f (%.2f–%.2f)", c.ratio, c.lo, c.hi)
}

func (c cmp) overheadText() string {
	if !c.ok {
		return "–"
	}
	return signedMS(c.overhead)
}

func targets(r *results) []target {
	var ts []target
	const tls = "debian-bookworm-tls"
	fast := compare(r.Overhead[tls]["fast"], r.Overhead[tls]["plain"])
	cmd := compare(r.Overhead[tls]["command"], r.Overhead[tls]["plain"])
	t := target{What: "fast path, 1 CA, debian-bookworm-tls: ratio ≤ 1.05", Met: "not measured"}
	if fast.ok {
		t.Measured = fmt.Sprintf("%s vs %s ms per step; paired ratio %s", ms(fast.med), ms(fast.base), fast.ratioText())
		t.Met = verdict(fast.ratio <= 1.05)
	}
	ts = append(ts, t)

	t = target{What: "fast path, 1000 CAs: ratio ≤ 1.25", Met: "not measured"}
	if c := compare(r.Scaling[tls]["cas-1000"], r.Scaling[tls]["plain"]); c.ok {
		t.Measured = fmt.Sprintf("%s vs %s ms per step; paired ratio %s", ms(c.med), ms(c.base), c.ratioText())
		t.Met = verdict(c.ratio <= 1.25)
	}
	ts = append(ts, t)

	t = target{What: "fast-path overhead ≥ 50× smaller than the command path's", Met: "not measured"}
	if fast.ok && cmd.ok {
		x := overheadFactor(0, fast.overhead, cmd.overhead)
		t.Measured = fmt.Sprintf("per-step overhead over plain: command %s ms, fast %s ms: ×%s", signedMS(cmd.overhead), signedMS(fast.overhead), fmtFactor(x))
		t.Met = verdict(x >= 50)
	}
	ts = append(ts, t)

	t = target{What: "8 concurrent builds keep ≥ 95 % of plain's steps/s", Met: "not measured"}
	var p8, f8 *concPoint
	for _, p := range r.Concurrency {
		if p.Builds == 8 && p.Spec.Name == "plain" {
			p8 = p
		}
		if p.Builds == 8 && p.Spec.Name == "fast" {
			f8 = p
		}
	}
	if p8 != nil && f8 != nil && len(p8.StepsPerS) > 0 && len(f8.StepsPerS) > 0 {
		x := f8.StepsPerS.Median() / p8.StepsPerS.Median()
		t.Measured = fmt.Sprintf("%.2f / %.2f steps/s = %.1f %%", f8.StepsPerS.Median(), p8.StepsPerS.Median(), 100*x)
		t.Met = verdict(x >= 0.95)
	}
	ts = append(ts, t)

	t = target{What: "daemon peak RSS ≤ 110 % of plain's", Met: "not measured"}
	var mp, mf int64
	for _, m := range r.Memory {
		if m.Err == "" && m.Spec.Name == "plain" {
			mp = m.Peak
		}
		if m.Err == "" && m.Spec.Name == "fast" {
			mf = m.Peak
		}
	}
	if mp > 0 && mf > 0 {
		x := float64(mf) / float64(mp)
		t.Measured = fmt.Sprintf("%s / %s MiB = %.1f %%", mib(mf), mib(mp), 100*x)
		t.Met = verdict(x <= 1.10)
	}
	ts = append(ts, t)
	return ts
}

func fmtFactor(x float64) string {
	if math.IsInf(x, 1) {
		return "∞ (fast-path overhead not above the noise)"
	}
	return fmt.Sprintf("%.0f", x)
}

func mib(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

// report renders the Markdown report.
func report(r *results) string {
	p := r.Params
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Benchmarks\n\n")
	w("What CA injection costs per RUN step, measured end to end: the real daemon and upstream BuildKit's\n")
	w("`buildkitd` (%s, built from the module go.mod pins), Dockerfile builds through the BuildKit client\n", "v0.34.2")
	w("with the cache disabled (`no-cache`), images served by an in-process registry on loopback. The\n")
	w("configurations are interleaved run by run (each round runs every configuration once, the order\n")
	w("rotated each round), after one warm-up build each (image pulled and unpacked).\n\n")
	w("A step's time is its vertex's start-to-completion as the client reports it (snapshot, mounts, the\n")
	w("executor's Run with our install and revert, commit). **Median** is over every RUN step of every round\n")
	w("(pooled); **min–max** is the range of the per-round medians. A configuration and plain ran back to\n")
	w("back in every round, so they are compared **paired by round**: **ratio** is the median of the\n")
	w("per-round ratios (their range in brackets) and **overhead** the median of the per-round differences,\n")
	w("which cancels the machine's drift between rounds. The targets use these.\n\n")
	w("- Date: %s – %s (UTC)\n", r.Start.Format("2006-01-02 15:04"), r.End.Format("15:04"))
	w("- Command: `%s` (as root)\n", strings.TrimSpace(p.Command))
	if r.Commit != "" {
		w("- Tree: %s\n", r.Commit)
	}
	w("- Rounds: %d (overhead, scaling), %d (concurrency). RUN steps per build: %d (overhead), %d (scaling), %d (concurrency), %d where a step takes seconds (mode=command)\n", p.Rounds, p.ConcRounds, p.Steps, p.ScalingSteps, p.ConcSteps, p.SlowSteps)
	w("- Machine: %s, %d CPUs; kernel %s; %s; %s\n", r.Machine.CPU, r.Machine.CPUs, r.Machine.Kernel, r.Machine.Runc, r.Machine.Go)
	if r.Machine.StateFS != "" {
		w("- Daemon state (the temp dir, `TMPDIR`): %s\n", r.Machine.StateFS)
	}
	w("- Memory (`free -h`):\n\n```\n%s\n```\n\n", r.Machine.Memory)
	w("- Load (the 2 cores are shared with other work; `/proc/loadavg`):\n")
	for _, s := range allSections {
		if l, ok := r.Loads[s]; ok {
			w("  - %s: %s\n", s, l)
		}
	}
	w("\nChart: [benchmarks.svg](benchmarks.svg).\n\n")

	w("## Targets\n\n| target | measured | met |\n|---|---|---|\n")
	for _, t := range targets(r) {
		w("| %s | %s | %s |\n", t.What, t.Measured, t.Met)
	}
	w("\n")
	if r.Notes != "" {
		w("%s\n\n", strings.TrimSpace(r.Notes))
	}

	if r.Overhead != nil {
		w("## 1. Per-exec overhead\n\n")
		w("Configurations: **plain** = %s; **fast** = %s (auto picks the fast path where the layout is\n", specPlain.Describe(), specFast.Describe())
		w("modelled exactly, the generic bundle on roots without a tool); **command** = %s (the distro's\n", specCommand.Describe())
		w("tool before and after, in sibling containers); **upstream** = %s.\n\n", specUpstream.Describe())
		w("**install** is what the daemon's log says about each install on that image (`CA certificates\n")
		w("installed`: the method, and the install's own time, median ms; the revert is not in it).\n\n")
		w("**daemon CPU** is the daemon process's own CPU time per step (user + system, `/proc/PID/stat`,\n")
		w("median over builds; 10 ms ticks over a whole build) and, after the slash, that of its reaped\n")
		w("children (runc and the containers). It is far less sensitive to the machine's load than wall time.\n\n")
		w("| image | config | steps × rounds | ms/step (median) | min–max | ratio to plain | overhead ms/step | daemon CPU ms/step | install |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, key := range p.Images {
			row := r.Overhead[key]
			plain := row["plain"]
			for _, name := range []string{"plain", "fast", "command", "upstream"} {
				c := row[name]
				if c == nil {
					continue
				}
				m, rng := stepCell(c)
				cm := compare(c, plain)
				rt, ov := cm.ratioText(), cm.overheadText()
				w("| %s | %s | %d × %d | %s | %s | %s | %s | %s | %s |\n", key, name, c.Steps, len(c.Sample.Rounds), m, rng, rt, ov, cpuCol(c), installCol(r, name, key))
			}
		}
		w("\n")
	}
	if r.Scaling != nil {
		scalingReport(&b, r)
	}
	if r.Concurrency != nil {
		w("## 3. Concurrency\n\n")
		w("k builds of %d RUN steps started at once on one daemon (debian-bookworm-tls); throughput = RUN steps\n", p.ConcSteps)
		w("completed ÷ the batch's wall time. Median over rounds, min–max.\n\n")
		w("| builds at once | config | steps/s (median) | min–max | ms/step (median) | vs plain |\n|---|---|---|---|---|---|\n")
		plain := map[int]float64{}
		for _, p := range r.Concurrency {
			if p.Spec.Name == "plain" && len(p.StepsPerS) > 0 {
				plain[p.Builds] = p.StepsPerS.Median()
			}
		}
		for _, p := range r.Concurrency {
			if len(p.StepsPerS) == 0 {
				w("| %d | %s | failed | %s | | |\n", p.Builds, p.Spec.Name, errLine(p.Err))
				continue
			}
			lo, hi := p.StepsPerS.Range()
			vs := "–"
			if pl, ok := plain[p.Builds]; ok && pl > 0 {
				vs = fmt.Sprintf("%.1f %%", 100*p.StepsPerS.Median()/pl)
			}
			w("| %d | %s | %.2f | %.2f–%.2f | %s | %s |\n", p.Builds, p.Spec.Name, p.StepsPerS.Median(), lo, hi, ms(p.Sample.Median()), vs)
		}
		w("\n")
	}
	if r.Memory != nil {
		w("## 4. Memory\n\n")
		w("Peak resident set size of each daemon process (`VmHWM`, the daemon alone, not runc or the\n")
		w("containers), read when each section ended (a running peak: it includes the sections before).\n")
		w("**plain** and **fast** ran exactly the same builds in every section (the profile section, which\n")
		w("does not, comes after the last reading); the other daemons ran only their own builds.\n\n")
		w("| daemon | configuration | after overhead MiB | after scaling MiB | after concurrency MiB | last vs plain |\n|---|---|---|---|---|---|\n")
		var plain int64
		for _, m := range r.Memory {
			if m.Spec.Name == "plain" && m.Err == "" {
				plain = m.Peak
			}
		}
		for _, m := range r.Memory {
			if m.Err != "" {
				w("| %s | %s | %s | | | |\n", m.Spec.Name, m.Spec.Describe(), errLine(m.Err))
				continue
			}
			vs := "–"
			if plain > 0 {
				vs = fmt.Sprintf("%.1f %%", 100*float64(m.Peak)/float64(plain))
			}
			col := func(s string) string {
				if v, ok := m.After[s]; ok {
					return mib(v)
				}
				return "–"
			}
			w("| %s | %s | %s | %s | %s | %s |\n", m.Spec.Name, m.Spec.Describe(), col("overhead"), col("scaling"), col("concurrency"), vs)
		}
		w("\n")
	}
	if len(r.Profiles) > 0 {
		w("## Profiles\n\n")
		w("CPU profiles (pprof over `--debugaddr`, %s) of one daemon building one image back to back\n", r.ProfileDir)
		w("(other work on the machine is not in them). Flat: where the CPU went; cumulative: the project's\n")
		w("own call tree.\n\n")
		for _, pr := range r.Profiles {
			w("<details><summary>%s (%d builds)</summary>\n\n```\n%s\n```\n\n```\n%s\n```\n\n</details>\n\n", pr.Label, pr.Builds, pr.Flat, pr.Cum)
		}
	}
	if r.Micro != "" {
		w("## Go micro-benchmarks\n\n`go test -run=^$ -bench=. -benchmem -count=1 ./vfs/ ./cacerts/`:\n\n```\n%s\n```\n", r.Micro)
	}
	return b.String()
}

// installCol summarizes the daemon's install log lines on an image:
// "fast ×93, 3 ms".
func installCol(r *results, daemon, imageKey string) string {
	st := r.Installs[daemon][imageKey]
	if st == nil || len(st.Methods) == 0 {
		return "–"
	}
	names := make([]string, 0, len(st.Methods))
	for m := range st.Methods {
		names = append(names, m)
	}
	sort.Strings(names)
	var parts []string
	for _, m := range names {
		parts = append(parts, fmt.Sprintf("%s ×%d", m, st.Methods[m]))
	}
	s := strings.Join(parts, ", ")
	if len(st.MS) > 0 {
		s += fmt.Sprintf(", %.0f ms", Floats(st.MS).Median())
	}
	return s
}

// cpuCol is "self / children" daemon CPU ms per step.
func cpuCol(c *cell) string {
	if c == nil || len(c.CPUSelf) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f / %.1f", c.CPUSelf.Median(), c.CPUChildren.Median())
}
