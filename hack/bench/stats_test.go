package main

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want time.Duration
	}{
		{"empty", nil, 0},
		{"one", []time.Duration{5}, 5},
		{"odd unsorted", []time.Duration{9, 1, 5}, 5},
		{"even: mean of the middle two", []time.Duration{4, 1, 3, 10}, 3}, // (3+4)/2 rounds down
		{"even", []time.Duration{2, 8, 4, 6}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.in)
			if got := median(tc.in); got != tc.want {
				t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
			}
			if !slices.Equal(in, tc.in) {
				t.Errorf("median reordered its input: %v", tc.in)
			}
		})
	}
}

func TestSample(t *testing.T) {
	var s Sample
	s.Add(nil) // an empty round is not a round
	s.Add([]time.Duration{10, 30, 20})
	s.Add([]time.Duration{100, 100})
	s.Add([]time.Duration{1})
	if got := len(s.Rounds); got != 3 {
		t.Fatalf("rounds = %d, want 3", got)
	}
	if got := s.N(); got != 6 {
		t.Errorf("N = %d, want 6", got)
	}
	// pooled: 1 10 20 30 100 100 → (20+30)/2
	if got := s.Median(); got != 25 {
		t.Errorf("pooled median = %v, want 25", got)
	}
	// per-round medians 20, 100, 1
	if lo, hi := s.RoundRange(); lo != 1 || hi != 100 {
		t.Errorf("round range = %v–%v, want 1–100", lo, hi)
	}
}

func TestFloats(t *testing.T) {
	if !math.IsNaN(Floats(nil).Median()) {
		t.Error("median of nothing is not NaN")
	}
	f := Floats{3, 1, 2, 10}
	if got := f.Median(); got != 2.5 {
		t.Errorf("median = %v, want 2.5", got)
	}
	if lo, hi := f.Range(); lo != 1 || hi != 10 {
		t.Errorf("range = %v–%v", lo, hi)
	}
}

func TestOverheadFactor(t *testing.T) {
	if got := overheadFactor(100, 102, 300); got != 100 {
		t.Errorf("factor = %v, want 100", got)
	}
	if got := overheadFactor(100, 99, 300); !math.IsInf(got, 1) {
		t.Errorf("fast faster than plain: factor = %v, want +Inf", got)
	}
	if !math.IsNaN(ratio(1, 0)) || ratio(3, 2) != 1.5 {
		t.Error("ratio")
	}
}

func TestRotate(t *testing.T) {
	xs := []string{"A", "B", "C", "D"}
	var got []string
	for r := range 5 {
		got = append(got, strings.Join(rotate(xs, r), ""))
	}
	want := []string{"ABCD", "BCDA", "CDAB", "DABC", "ABCD"}
	if !slices.Equal(got, want) {
		t.Errorf("rotations = %v, want %v", got, want)
	}
	if !slices.Equal(xs, []string{"A", "B", "C", "D"}) {
		t.Error("rotate changed its input")
	}
}

func TestSscan(t *testing.T) {
	var n int
	if !sscan("60layers", "%dlayers", &n) || n != 60 {
		t.Errorf("60layers: %v %d", sscan("60layers", "%dlayers", &n), n)
	}
	if !sscan("bundle5000", "bundle%d", &n) || n != 5000 {
		t.Errorf("bundle5000: %d", n)
	}
	if sscan("60layersx", "%dlayers", &n) || sscan("bundle", "bundle%d", &n) {
		t.Error("accepted a malformed variant")
	}
}

func TestStepsDockerfile(t *testing.T) {
	shell := stepsDockerfile(&image{Ref: "r/x:1"}, 3, "tok")
	if want := "FROM r/x:1\nRUN true tok-1\nRUN true tok-2\nRUN true tok-3\n"; shell != want {
		t.Errorf("shell form:\n%s\nwant\n%s", shell, want)
	}
	exec := stepsDockerfile(&image{Ref: "r/s:1", Exec: true}, 1, "t")
	if want := "FROM r/s:1\nRUN [\"/true\", \"t-1\"]\n"; exec != want {
		t.Errorf("exec form:\n%s\nwant\n%s", exec, want)
	}
	if a, b := nextToken(), nextToken(); a == b {
		t.Errorf("tokens repeat: %s", a)
	}
}

func sample(ms ...int) Sample {
	var s Sample
	var r []time.Duration
	for _, m := range ms {
		r = append(r, time.Duration(m)*time.Millisecond)
	}
	s.Add(r)
	return s
}

// TestReport renders a report from made-up results and checks the targets'
// verdicts and the tables' rows.
func TestReport(t *testing.T) {
	o, err := parseFlags([]string{"-sections", "overhead,scaling,concurrency,memory"})
	if err != nil {
		t.Fatal(err)
	}
	o.Command = "go -C hack/bench run ."
	tls := &image{Key: "debian-bookworm-tls", Layers: 1, Bundle: 146}
	bb := &image{Key: "busybox"}
	r := &results{
		Overhead: grid{
			"debian-bookworm-tls": {
				"plain":    {Spec: specPlain, Image: tls, Steps: 30, Sample: sample(100, 100, 100)},
				"fast":     {Spec: specFast, Image: tls, Steps: 30, Sample: sample(102, 102, 102), CPUSelf: Floats{3, 4}, CPUChildren: Floats{40}},
				"command":  {Spec: specCommand, Image: tls, Steps: 10, Sample: sample(2100, 2100)},
				"upstream": {Spec: specUpstream, Image: tls, Steps: 30, Sample: sample(99)},
			},
			"busybox": {
				"plain":   {Spec: specPlain, Image: bb, Steps: 30, Sample: sample(50)},
				"command": {Spec: specCommand, Image: bb, Steps: 10, Err: "no tool | here\nsecond line"},
			},
		},
		Scaling: grid{
			"debian-bookworm-tls": {
				"plain":    {Spec: specPlain, Image: tls, Sample: sample(100)},
				"fast":     {Spec: specFast, Image: tls, Sample: sample(101)},
				"cas-1000": {Spec: specCAs(1000), Image: tls, Sample: sample(130)},
			},
		},
		Concurrency: []*concPoint{
			{Spec: specPlain, Builds: 8, StepsPerS: Floats{10}, Sample: sample(100)},
			{Spec: specFast, Builds: 8, StepsPerS: Floats{9.7}, Sample: sample(101)},
		},
		Memory: []memPoint{
			{Spec: specPlain, Peak: 100 << 20, After: map[string]int64{"overhead": 90 << 20, "concurrency": 100 << 20}},
			{Spec: specFast, Peak: 105 << 20, After: map[string]int64{"overhead": 91 << 20, "concurrency": 105 << 20}},
		},
		Images: map[string]*image{"debian-bookworm-tls": tls},
		Loads:  map[string]string{"overhead": "load 1 at start"},
		Params: o.params,
		Installs: map[string]map[string]*installStats{"fast": {"debian-bookworm-tls": {
			Methods: map[string]int{"fast": 2, "generic": 1}, MS: []float64{3, 4, 9},
		}}},
	}
	ts := targets(r)
	got := []string{}
	for _, x := range ts {
		got = append(got, x.Met)
	}
	// 102/100 ≤ 1.05; 130/100 > 1.25; 2000/2 ms = ×1000; 97 %; 105 %.
	if wantList := []string{"yes", "**no**", "yes", "yes", "yes"}; !slices.Equal(got, wantList) {
		t.Errorf("verdicts = %v, want %v\n%+v", got, wantList, ts)
	}
	md := report(r)
	for _, s := range []string{
		"| debian-bookworm-tls | fast | 30 × 1 | 102.0 | 102.0–102.0 | 1.020 (1.02–1.02) | +2.0 | 3.5 / 40.0 | fast ×2, generic ×1, 4 ms |",
		"| debian-bookworm-tls | command | 10 × 1 | 2100.0 |",
		"| busybox | command | 10 × 0 | failed | no tool / here |",
		"| 1000 | 130.0 | 130.0–130.0 | 1.300 (1.30–1.30) | +30.0 |",
		"| 146 (as shipped) | 100.0 | 101.0 |",
		"| 8 | fast | 9.70 | 9.70–9.70 | 101.0 | 97.0 % |",
		"| fast | buildkitd-cacerts, mode=auto, 1 CA(s) | 91.0 | – | 105.0 | 105.0 % |",
		"- overhead: load 1 at start",
	} {
		if !strings.Contains(md, s) {
			t.Errorf("report lacks %q:\n%s", s, md)
		}
	}
}

func TestInstallLog(t *testing.T) {
	l := newInstallLog()
	l.expect("b123-4", "debian-bookworm-tls")
	w := l.writer("fast")
	lines := `time="x" level=info msg="CA certificates installed" cas=1 distro=debian method=fast ms=12 paths=6 span="[ 2/11] RUN true b123-4-1" spanID=f0
time="x" level=info msg="CA certificates installed" cas=1 distro=debian method=fast ms=2 paths=6 span="[ 3/11] RUN true b123-4-2"
time="x" level=info msg="CA certificates installed" method=generic ms=0 span="[2/2] RUN [\"/true\", \"b999-1-1\"]"
time="x" level=info msg="something else" method=fast ms=5 span="RUN true b123-4-3"
`
	// Written in odd chunks: lines are reassembled.
	for _, chunk := range []string{lines[:50], lines[50:51], lines[51:]} {
		w.Write([]byte(chunk))
	}
	st := l.snapshot()["fast"]["debian-bookworm-tls"]
	if st == nil || st.Methods["fast"] != 2 || len(st.Methods) != 1 || !slices.Equal(st.MS, []float64{12, 2}) {
		t.Errorf("stats = %+v", st)
	}
}

func TestMergeMemory(t *testing.T) {
	ms := mergeMemory(nil, "overhead", []memPoint{{Spec: specPlain, Peak: 10}, {Spec: specFast, Peak: 11}})
	ms = mergeMemory(ms, "scaling", []memPoint{{Spec: specPlain, Peak: 12}, {Spec: specFast, Err: "gone"}, {Spec: specCAs(10), Peak: 9}})
	if len(ms) != 3 || ms[0].Peak != 12 || ms[0].After["overhead"] != 10 || ms[0].After["scaling"] != 12 {
		t.Errorf("plain: %+v", ms)
	}
	if ms[1].Err != "gone" || ms[1].After["overhead"] != 11 || len(ms[1].After) != 1 {
		t.Errorf("fast: %+v", ms[1])
	}
	if ms[2].Spec.Name != "cas-10" || ms[2].After["scaling"] != 9 {
		t.Errorf("cas-10: %+v", ms[2])
	}
}

func TestPaired(t *testing.T) {
	// Drift: round 2 is twice as slow for both; the paired ratio stays 1.1.
	a := Sample{Rounds: [][]time.Duration{{110}, {220}, {110, 110}}}
	b := Sample{Rounds: [][]time.Duration{{100}, {200}}}
	rs, ds := paired(&a, &b)
	if len(rs) != 2 || math.Abs(rs[0]-1.1) > 1e-9 || math.Abs(rs[1]-1.1) > 1e-9 {
		t.Errorf("ratios = %v", rs)
	}
	if !slices.Equal(ds, []time.Duration{10, 20}) {
		t.Errorf("diffs = %v", ds)
	}
}
