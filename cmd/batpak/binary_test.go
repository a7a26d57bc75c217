package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinaryExitCodes builds the command once and checks the exit codes a
// shell sees.
func TestBinaryExitCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "batpak")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	healthy := newTestStore(t, 60)
	d := newDamagedStore(t)
	d.hideFooter(t)

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"help", []string{"--help"}, exitOK, "Exit codes", ""},
		{"inspect", []string{"inspect", healthy.dir}, exitOK, "cold start  checkpoint", ""},
		{"verify healthy", []string{"verify", healthy.dir}, exitOK, "OK: no problems", ""},
		{"dump", []string{"dump", healthy.dir, "--from", "63"}, exitOK, `"entity":"shipment:7"`, ""},
		{"verify damaged", []string{"verify", d.dir}, exitFailure, "0000000002.seg", "problem(s) found"},
		{"inspect damaged", []string{"inspect", d.dir}, exitFailure, "0000000002.seg", "the store is damaged"},
		{"repair without --yes", []string{"repair", d.dir}, exitFailure, "repair would", "stdin is not a terminal"},
		{"unknown command", []string{"bench"}, exitUsage, "", `unknown command "bench"`},
		{"missing argument", []string{"tail"}, exitUsage, "", "accepts 1 arg(s)"},
		{"bad flag value", []string{"tail", healthy.dir, "--kind", "x"}, exitUsage, "", "invalid kind"},
		{"repair --yes", []string{"repair", d.dir, "--yes"}, exitOK, "events kept", ""},
		{"verify repaired", []string{"verify", d.dir}, exitOK, "OK: no problems", ""},
	} {
		cmd := exec.Command(bin, tc.args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdin = strings.NewReader("y\n") // not a terminal: repair must not take it as consent
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if code != tc.code {
			t.Errorf("%s: batpak %v exited %d, want %d\nstdout:\n%s\nstderr:\n%s", tc.name, tc.args, code, tc.code, &stdout, &stderr)
			continue
		}
		wantContains(t, tc.name+" stdout", stdout.String(), tc.stdout)
		wantContains(t, tc.name+" stderr", stderr.String(), tc.stderr)
		if tc.code == exitOK && tc.name != "help" && stderr.Len() > 0 {
			t.Errorf("%s: stderr is not empty on success:\n%s", tc.name, &stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(d.dir, "quarantine")); err != nil {
		t.Errorf("repair left no quarantine: %v", err)
	}
}
