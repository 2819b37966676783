package main

import (
	"bytes"
	"io"
	"regexp"
	"strconv"
	"sync"
)

// installStats is what a daemon's log said about its installs on one image:
// the method of each install (fast, generic, command, …) and the install's
// own time (the log's ms field: install only, not the revert).
type installStats struct {
	Methods map[string]int
	MS      []float64
}

// installLog collects the daemons' "CA certificates installed" log lines
// and attributes them to images by the build token in the RUN's span.
type installLog struct {
	mu     sync.Mutex
	tokens map[string]string                   // build token → image key
	stats  map[string]map[string]*installStats // daemon → image key → stats
}

func newInstallLog() *installLog {
	return &installLog{tokens: map[string]string{}, stats: map[string]map[string]*installStats{}}
}

// expect registers the token of a build on an image.
func (l *installLog) expect(token, imageKey string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tokens[token] = imageKey
}

var (
	installedRE = regexp.MustCompile(`msg="CA certificates installed"`)
	methodRE    = regexp.MustCompile(`\bmethod=([a-z]+)`)
	msRE        = regexp.MustCompile(`\bms=([0-9]+)`)
	tokenRE     = regexp.MustCompile(`\b(b[0-9]+-[0-9]+)-[0-9]+\b`)
)

// line records one log line of daemon.
func (l *installLog) line(daemon string, line []byte) {
	if !installedRE.Match(line) {
		return
	}
	m := methodRE.FindSubmatch(line)
	t := tokenRE.FindSubmatch(line)
	if m == nil || t == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	img, ok := l.tokens[string(t[1])]
	if !ok {
		return
	}
	if l.stats[daemon] == nil {
		l.stats[daemon] = map[string]*installStats{}
	}
	st := l.stats[daemon][img]
	if st == nil {
		st = &installStats{Methods: map[string]int{}}
		l.stats[daemon][img] = st
	}
	st.Methods[string(m[1])]++
	if x := msRE.FindSubmatch(line); x != nil {
		if v, err := strconv.ParseFloat(string(x[1]), 64); err == nil {
			st.MS = append(st.MS, v)
		}
	}
}

// writer returns a writer that feeds daemon's output to l line by line.
func (l *installLog) writer(daemon string) io.Writer {
	return &lineWriter{f: func(b []byte) { l.line(daemon, b) }}
}

// snapshot copies the statistics.
func (l *installLog) snapshot() map[string]map[string]*installStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]map[string]*installStats{}
	for d, m := range l.stats {
		out[d] = map[string]*installStats{}
		for k, v := range m {
			c := &installStats{Methods: map[string]int{}, MS: append([]float64(nil), v.MS...)}
			for mk, mv := range v.Methods {
				c.Methods[mk] = mv
			}
			out[d][k] = c
		}
	}
	return out
}

// lineWriter calls f with each complete line written to it.
type lineWriter struct {
	mu  sync.Mutex
	buf []byte
	f   func([]byte)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.f(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 1<<20 { // a runaway line: drop it
		w.buf = w.buf[:0]
	}
	return len(p), nil
}
