package harness

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// PeakRSS returns a process's peak resident set size in bytes (VmHWM in
// /proc/PID/status). It counts the process alone, not its children (runc,
// containers), which is what a daemon's own memory cost is.
func PeakRSS(pid int) (int64, error) {
	return statusKB(pid, "VmHWM")
}

// RSS returns a process's current resident set size in bytes (VmRSS).
func RSS(pid int) (int64, error) {
	return statusKB(pid, "VmRSS")
}

func statusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseStatusKB(b, field)
}

// parseStatusKB reads "Field:   1234 kB" from a /proc/PID/status text.
func parseStatusKB(status []byte, field string) (int64, error) {
	s := bufio.NewScanner(bytes.NewReader(status))
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok || k != field {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc status: unexpected %s line %q", field, s.Text())
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc status: %s: %w", field, err)
		}
		return n * 1024, nil
	}
	return 0, fmt.Errorf("/proc status: no %s line", field)
}
