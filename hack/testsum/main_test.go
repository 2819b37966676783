package main

import (
	"io"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name                 string
		in                   string
		passed, failed, skip int
		buildFailed          bool
	}{
		{
			name: "mixed",
			in: `{"Action":"run","Package":"p","Test":"A"}
{"Action":"pass","Package":"p","Test":"A"}
{"Action":"fail","Package":"p","Test":"B"}
{"Action":"skip","Package":"p","Test":"C"}
{"Action":"fail","Package":"p"}
`,
			passed: 1, failed: 1, skip: 1, buildFailed: true,
		},
		{
			name:        "build error line passes through",
			in:          "# p\nfoo.go:1: undefined: x\n{\"Action\":\"build-fail\",\"Package\":\"p\"}\n",
			buildFailed: true,
		},
		{
			name:   "package pass is not a test",
			in:     `{"Action":"pass","Package":"p"}` + "\n" + `{"Action":"pass","Package":"p","Test":"T/sub"}` + "\n",
			passed: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := run(strings.NewReader(tc.in), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if s.passed != tc.passed || s.failed != tc.failed || s.skipped != tc.skip || s.buildFailed != tc.buildFailed {
				t.Errorf("got %+v, want passed=%d failed=%d skipped=%d buildFailed=%v", s, tc.passed, tc.failed, tc.skip, tc.buildFailed)
			}
		})
	}
}
