package main

import (
	"testing"

	"github.com/batpak-go/batpak/kind"
)

func TestParseKind(t *testing.T) {
	for in, want := range map[string]kind.Kind{
		"1:002":  kind.Custom(1, 2),
		"f:fff":  kind.Custom(0xF, 0xFFF),
		"D:001":  kind.Effect(1),
		"4098":   kind.Custom(1, 2),
		"0x1002": kind.Custom(1, 2),
	} {
		if got, err := parseKind(in); err != nil || got != want {
			t.Errorf("parseKind(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1:", ":1", "10:001", "1:1000", "x", "65536", "-1"} {
		if k, err := parseKind(in); err == nil {
			t.Errorf("parseKind(%q) = %v, want an error", in, k)
		}
	}
}
