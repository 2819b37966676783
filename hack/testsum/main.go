// Command testsum reads `go test -json` events on stdin, prints the tests'
// output as `go test` would, and ends with one summary line:
//
//	N passed, M failed, K skipped
//
// It exits non-zero when any test or package failed, or when the stream holds
// no test at all (a run that tested nothing is not a pass).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"time"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

type summary struct {
	passed, failed, skipped int
	failedNames             []string
	buildFailed             bool
}

func main() {
	start := time.Now()
	s, err := run(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testsum: %v\n", err)
		os.Exit(2)
	}
	sort.Strings(s.failedNames)
	for _, n := range s.failedNames {
		fmt.Printf("FAILED: %s\n", n)
	}
	fmt.Printf("wall time %s\n", time.Since(start).Round(time.Second))
	fmt.Printf("%d passed, %d failed, %d skipped\n", s.passed, s.failed, s.skipped)
	if s.failed > 0 || s.buildFailed || s.passed == 0 {
		os.Exit(1)
	}
}

func run(r io.Reader, w io.Writer) (summary, error) {
	var s summary
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			// Build errors and other non-JSON lines pass through as they are.
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		switch e.Action {
		case "output":
			fmt.Fprint(w, e.Output)
		case "build-fail":
			s.buildFailed = true
			s.failedNames = append(s.failedNames, e.Package+" (build)")
		case "pass", "fail", "skip":
			if e.Test == "" {
				if e.Action == "fail" {
					s.buildFailed = true
					s.failedNames = append(s.failedNames, e.Package+" (package)")
				}
				continue
			}
			switch e.Action {
			case "pass":
				s.passed++
			case "fail":
				s.failed++
				s.failedNames = append(s.failedNames, e.Package+"."+e.Test)
			case "skip":
				s.skipped++
			}
		}
	}
	return s, sc.Err()
}
