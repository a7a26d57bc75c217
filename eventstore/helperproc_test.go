package eventstore_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// childRun is how a helper process run by runAndKill ended.
type childRun struct {
	ready   bool // it printed READY
	stderr  string
	waitErr error
}

// runAndKill re-runs this test binary as a helper process (test function
// test, with env added), hands every line it prints to handle, and kills it
// with SIGKILL delay after it prints READY. It gives up (and kills) after
// 90 s. Used by the crash and soak tests.
func runAndKill(t *testing.T, test string, env []string, delay time.Duration, handle func(line string)) childRun {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe() // closed when we return: the helper sees EOF if we die
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var run childRun
	var kill <-chan time.Time
	giveUp := time.After(90 * time.Second)
loop:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				break loop
			}
			if strings.HasPrefix(line, "READY") {
				run.ready = true
			}
			handle(line)
			if run.ready && kill == nil {
				kill = time.After(delay)
			}
		case <-kill:
			_ = cmd.Process.Kill() // SIGKILL
			kill = nil
		case <-giveUp:
			_ = cmd.Process.Kill()
			giveUp = nil
		}
	}
	run.waitErr = cmd.Wait()
	run.stderr = stderr.String()
	return run
}
