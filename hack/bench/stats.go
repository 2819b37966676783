package main

import (
	"math"
	"slices"
	"time"
)

// Sample is the measurements of one configuration at one point: every RUN
// step's duration, grouped by round (one build, or one batch of concurrent
// builds, per round).
type Sample struct {
	Rounds [][]time.Duration
}

// Add records one round's step durations.
func (s *Sample) Add(steps []time.Duration) {
	if len(steps) > 0 {
		s.Rounds = append(s.Rounds, slices.Clone(steps))
	}
}

// N is the number of step durations recorded.
func (s *Sample) N() int {
	n := 0
	for _, r := range s.Rounds {
		n += len(r)
	}
	return n
}

// Median is the median of every step duration, pooled over rounds.
func (s *Sample) Median() time.Duration {
	var all []time.Duration
	for _, r := range s.Rounds {
		all = append(all, r...)
	}
	return median(all)
}

// RoundRange is the smallest and largest per-round median.
func (s *Sample) RoundRange() (lo, hi time.Duration) {
	for i, r := range s.Rounds {
		m := median(r)
		if i == 0 || m < lo {
			lo = m
		}
		if i == 0 || m > hi {
			hi = m
		}
	}
	return lo, hi
}

// median of ds (zero for none); the mean of the two middle values for an
// even count.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Floats is a list of per-round values (steps per second, bytes).
type Floats []float64

// Median of the values (NaN for none).
func (f Floats) Median() float64 {
	if len(f) == 0 {
		return math.NaN()
	}
	s := slices.Clone(f)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Range is the smallest and largest value (NaN for none).
func (f Floats) Range() (lo, hi float64) {
	if len(f) == 0 {
		return math.NaN(), math.NaN()
	}
	return slices.Min(f), slices.Max(f)
}

// ratio is a/b, NaN when b is zero.
func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// overheadFactor is how many times larger the command path's per-step
// overhead is than the fast path's (both against plain). A fast-path
// overhead at or below zero (not measurable above the noise) gives +Inf.
func overheadFactor(plain, fast, command time.Duration) float64 {
	fo, co := fast-plain, command-plain
	if fo <= 0 {
		return math.Inf(1)
	}
	return float64(co) / float64(fo)
}

// rotate returns xs rotated left by k (for interleaving A B C D, B C D A, …).
func rotate[T any](xs []T, k int) []T {
	if len(xs) == 0 {
		return nil
	}
	k %= len(xs)
	return append(slices.Clone(xs[k:]), xs[:k]...)
}

// paired compares s with base round by round: in each round the two ran
// back to back, so the ratio and the difference of the two rounds' medians
// cancel the machine's drift between rounds. Rounds pair by index.
func paired(s, base *Sample) (ratios Floats, diffs []time.Duration) {
	n := min(len(s.Rounds), len(base.Rounds))
	for i := range n {
		a, b := median(s.Rounds[i]), median(base.Rounds[i])
		if b > 0 {
			ratios = append(ratios, float64(a)/float64(b))
		}
		diffs = append(diffs, a-b)
	}
	return ratios, diffs
}
