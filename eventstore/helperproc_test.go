package eventstore_test

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
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
// with SIGKILL delay after it prints READY. It gives up (and kills) at the
// hang guard (dtHangTimeout). Used by the crash and soak tests.
func runAndKill(t *testing.T, test string, env []string, delay time.Duration, handle func(line string)) childRun {
	t.Helper()
	return runAndKillOn(t, test, env, func(line string) (time.Duration, bool) {
		return delay, strings.HasPrefix(line, "READY")
	}, handle)
}

// runAndKillOn is runAndKill with the kill armed by the first line, READY
// or later, for which arm returns true: SIGKILL follows the delay it
// returns. arm sees every line after handle has.
func runAndKillOn(t *testing.T, test string, env []string, arm func(line string) (time.Duration, bool), handle func(line string)) childRun {
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
	armed := false // kill stays nil once it fired
	giveUp := time.After(dtHangTimeout(t))
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
			if run.ready && kill == nil && !armed {
				if delay, ok := arm(line); ok {
					kill, armed = time.After(delay), true
				}
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

// keyedRequests names the idempotency keys of a crash or soak test's keyed
// workers: parse reads a request's cycle, worker and number from its tag,
// key returns the key of worker's request n in a cycle ("" if unkeyed).
type keyedRequests struct {
	workers int
	parse   func(tag string) (cycle, worker, n int, ok bool)
	key     func(cycle, worker, n int) string
}

// retryKeys appends to dst the keys the next helper run retries: per keyed
// worker the two requests after its last one acknowledged in cycle
// (possibly in flight, possibly written at the kill), and about three of
// the acknowledged keys (sorted), each with probability 3/len(acked).
func (k keyedRequests) retryKeys(dst []string, cycle int, ackTags []string, acked []string, rng *rand.Rand) []string {
	last := map[int]int{}
	for _, tag := range ackTags {
		if c, w, n, ok := k.parse(tag); ok && c == cycle && w < k.workers {
			last[w] = max(last[w], n)
		}
	}
	for w := range k.workers {
		for n := last[w] + 1; n <= last[w]+2; n++ {
			if key := k.key(cycle, w, n); key != "" {
				dst = append(dst, key)
			}
		}
	}
	for _, key := range acked {
		if rng.IntN(len(acked)) < 3 {
			dst = append(dst, key)
		}
	}
	return dst
}

// tagsOf returns the tags of a helper run's acknowledgements.
func tagsOf[A any](acks []A, tag func(A) string) []string {
	tags := make([]string, len(acks))
	for i, a := range acks {
		tags[i] = tag(a)
	}
	return tags
}

// helperStart begins a helper process run by runAndKill: the process exits
// when its parent goes away (its stdin closes), and emit prints a line in
// one write, so that a kill cannot split it.
func helperStart() (emit func(line string)) {
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	var mu sync.Mutex
	return func(line string) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = os.Stdout.Write([]byte(line + "\n"))
	}
}
