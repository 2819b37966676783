package cacerts

import "testing"

// TestParseMethod: the daemon's mode names, parsed in one place; "off" is
// MethodNone and MarshalText gives the name back.
func TestParseMethod(t *testing.T) {
	for in, want := range map[string]Method{"": MethodAuto, "auto": MethodAuto, "command": MethodCommand, "fast": MethodFast, "off": MethodNone} {
		if got, err := ParseMethod(in); err != nil || got != want {
			t.Errorf("ParseMethod(%q) = %v, %v; want %v", in, got, err, want)
		}
		if in == "" {
			continue
		}
		if b, err := want.MarshalText(); err != nil || string(b) != in {
			t.Errorf("%v.MarshalText() = %q, %v; want %q", want, b, err, in)
		}
	}
	var m Method
	if err := m.UnmarshalText([]byte("sometimes")); err == nil {
		t.Error("UnmarshalText accepted an unknown mode")
	}
}
