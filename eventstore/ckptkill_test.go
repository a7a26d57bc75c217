//go:build unix

package eventstore_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

// TestKillDuringCheckpoint kills, with SIGKILL, a helper process (this test
// binary again, -test.run ^TestKillDuringCheckpointHelper$) that appends
// with SyncEveryCommit to a store of many streams while it writes periodic
// checkpoints back to back (WithCheckpointEvery), so that the kill often
// lands while a checkpoint is being written: its temporary file is then
// left behind, half written or written and not yet renamed. The helper
// prints each receipt after its call returned, the ColdStart of its open,
// and a CKPT line whenever it sees a checkpoint's temporary file appear;
// the parent kills either a short random delay after such a line or at a
// random moment after READY. Across the kills, on the same directory:
//
//   - Verify (no lock, nothing changed) finds no damage, and finds the
//     checkpoint file valid or absent: a kill cannot tear a file that was
//     renamed into place, only the temporary one;
//   - every open (the next helper's, the parent's, a read-only one) works
//     with the temporary file left there, says in ColdStart which path it
//     took and, when a checkpoint existed and it was not used, why;
//     a writable open removes the temporary file, a read-only one leaves
//     it (if no kill left one for a writable open of the parent's, the
//     test leaves the first half of the checkpoint there before the last);
//   - every acknowledged event is there, at its acknowledged sequence, with
//     its version, id, hash and payload; nothing seen after one recovery
//     changes at a later one; every stream's chain verifies; idempotency
//     keys (which checkpoints carry) answer a retry with the original
//     receipts; a stream written with exact expected versions stays dense.
//
// Kill timing is real time, so a seed fixes the workload and the kill
// delays, not where the kills land; the log says how many landed in a
// checkpoint write (left its temporary file), torn or whole. BATPAK_CKPTKILL_SEED sets the seed,
// BATPAK_CKPTKILL_KILLS the number of kills (default 14, 5 with -short),
// BATPAK_CKPTKILL_STREAMS the streams written before the first kill
// (default 30000: each checkpoint then takes a while to write).
const (
	ckHelperEnv  = "BATPAK_CKPTKILL_HELPER"
	ckCycleEnv   = "BATPAK_CKPTKILL_CYCLE"
	ckRetryEnv   = "BATPAK_CKPTKILL_RETRY"
	ckSeedEnv    = "BATPAK_CKPTKILL_SEED"
	ckStreamsEnv = "BATPAK_CKPTKILL_STREAMS"
	ckKeyWorkers = 3 // workers 0..2 make keyed requests; 3 is the Exactly worker
	ckSegBytes   = 2 << 20
	ckEvery      = 64 // events between periodic checkpoints: one is always under way
)

var ckTempName = eventstore.CheckpointFileName + vfs.TempSuffix

// ckOptions are the helper's options; the parent opens with the same
// segment size and the default checkpoint interval.
func ckOptions() []eventstore.Option {
	return []eventstore.Option{
		eventstore.WithSyncMode(eventstore.SyncEveryCommit),
		eventstore.WithSegmentMaxBytes(ckSegBytes),
		eventstore.WithCheckpointEvery(ckEvery),
	}
}

// ckSpec is request n of worker w in a cycle, a pure function of the seed,
// cycle, worker and n, so a later helper can retry it under its key. Its
// tag has the crash test's form (parseCrashKey reads it).
func ckSpec(seed uint64, streams, cycle, w, n int) crashReq {
	rng := rand.New(rand.NewPCG(seed^uint64(cycle)<<8^uint64(w), uint64(n)))
	r := crashReq{tag: fmt.Sprintf("c%dw%dn%d", cycle, w, n)}
	stream := func() string { return fmt.Sprintf("s:%d", rng.IntN(streams)) }
	keyed := false
	switch w {
	case 0: // one event
		r.entities = []string{stream()}
		keyed = n%3 == 0
	case 1: // an atomic batch across distinct streams, one of them new at times
		seen, size := map[string]bool{}, 2+rng.IntN(40)
		for len(r.entities) < size {
			e := stream()
			if len(r.entities) == 0 && rng.IntN(4) == 0 {
				e = fmt.Sprintf("new:%s", r.tag)
			}
			if !seen[e] {
				seen[e] = true
				r.entities = append(r.entities, e)
			}
		}
		r.batch = true
		keyed = n%2 == 1
	case 2: // several events appended atomically to one stream
		e := stream()
		for range 2 + rng.IntN(3) {
			r.entities = append(r.entities, e)
		}
		keyed = n%2 == 0
	}
	if keyed {
		r.key = r.tag
	}
	return r
}

// TestKillDuringCheckpointHelper is the helper process; it only runs when
// re-executed by TestKillDuringCheckpoint and never returns normally.
func TestKillDuringCheckpointHelper(t *testing.T) {
	dir := os.Getenv(ckHelperEnv)
	if dir == "" {
		t.Skip("helper process of TestKillDuringCheckpoint")
	}
	os.Exit(ckHelperMain(dir))
}

func ckHelperMain(dir string) int {
	emit := helperStart()
	cycle, _ := strconv.Atoi(os.Getenv(ckCycleEnv))
	seed := uint64(envInt(ckSeedEnv, 0))
	streams := int(envInt(ckStreamsEnv, 0))

	s, err := eventstore.Open(dir, ckOptions()...)
	if err != nil {
		emit("ERR open: " + err.Error())
		return 2
	}
	cs, _ := json.Marshal(s.Stats().ColdStart)
	emit("COLD " + string(cs))
	emit(fmt.Sprintf("READY %d", s.LastSequence()))

	// Watch for a checkpoint's temporary file: it exists from the start of
	// the checkpoint's write to its rename. (No hook in the store: this
	// looks at what a kill leaves behind.)
	go func() {
		tmp := filepath.Join(dir, ckTempName)
		in, n, since := false, 0, time.Time{}
		for {
			_, err := os.Lstat(tmp)
			if now := err == nil; now != in {
				if in = now; in {
					n++
					since = time.Now()
					emit(fmt.Sprintf("CKPT %d", n))
				} else {
					emit(fmt.Sprintf("CKPTDONE %d", time.Since(since).Microseconds()))
				}
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()

	spec := func(c, w, n int) crashReq { return ckSpec(seed, streams, c, w, n) }
	runCrashWorkers(s, cycle, ckKeyWorkers, os.Getenv(ckRetryEnv), spec, crashAcker(emit))
	return 0
}

// ckState is what the parent knows: crashState (acknowledged events by
// sequence, keys, what recoveries saw) and each acknowledged event's
// payload, as request tag and index.
type ckState struct {
	*crashState
	payload map[uint64]dtPayload
}

func (st *ckState) absorb(t *testing.T, acks []crashAck) {
	t.Helper()
	st.crashState.absorb(t, acks)
	for _, a := range acks {
		for i, r := range a.R {
			st.payload[r.Seq] = dtPayload{Tag: a.Tag, I: i, N: len(a.R)}
		}
	}
}

// verify checks an open store against everything acknowledged: crashState's
// checks (dense, chains, Get, nothing reused) and every payload.
func (st *ckState) verify(t *testing.T, s *eventstore.Store) int {
	t.Helper()
	n := st.crashState.verify(t, s)
	recs := dtReadAll(t, s)
	for seq, want := range st.payload {
		var got dtPayload
		if err := recs[seq-1].Decode(&got); err != nil || got != want {
			t.Fatalf("acknowledged sequence %d: payload %+v (%v), acknowledged %+v", seq, got, err, want)
		}
	}
	return n
}

// ckCold checks a ColdStart: a known path, the checkpoint used only if
// there was one, a reason whenever one existed and was not used. It returns
// that reason ("" if used or absent).
func ckCold(t *testing.T, where string, cs eventstore.ColdStart, hadCheckpoint bool, events uint64) string {
	t.Helper()
	switch cs.Path {
	case "checkpoint", "footer", "scan":
	default:
		t.Fatalf("%s: cold start path %q after a kill (%+v)", where, cs.Path, cs)
	}
	if cs.Path == "checkpoint" && (!hadCheckpoint || cs.CheckpointIgnored != "") {
		t.Fatalf("%s: cold start from a checkpoint (there was one: %v), ignored %q", where, hadCheckpoint, cs.CheckpointIgnored)
	}
	if hadCheckpoint && cs.Path != "checkpoint" && cs.CheckpointIgnored == "" {
		t.Fatalf("%s: a checkpoint existed, the open took path %q and says no reason (%+v)", where, cs.Path, cs)
	}
	if cs.EventsFromCheckpoint > events {
		t.Fatalf("%s: %d events, %d of them from the checkpoint", where, events, cs.EventsFromCheckpoint)
	}
	if hadCheckpoint && cs.Path != "checkpoint" {
		return cs.CheckpointIgnored
	}
	return ""
}

// ckVerifyDir runs Verify on a closed or killed store: no damage, only the
// warnings a kill may leave, and a checkpoint that is valid (or absent,
// before the first one).
func ckVerifyDir(t *testing.T, dir string, afterKill bool) *eventstore.VerifyReport {
	t.Helper()
	rep, err := eventstore.Verify(dir)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("Verify finds damage: %v", rep.Problems)
	}
	for _, w := range rep.Warnings {
		blank := w.Kind == "file" && strings.Contains(w.Detail, "never got its header")
		seal := w.Kind == "footer" && strings.Contains(w.Detail, "interrupted seal")
		if w.Kind != "torn-tail" && !blank && !seal || !afterKill {
			t.Fatalf("Verify warns (after a kill: %v): %v", afterKill, w)
		}
	}
	if rep.Checkpoint != "valid" && rep.Checkpoint != "absent" {
		t.Fatalf("Verify: checkpoint %s (a kill cannot tear a renamed checkpoint)", rep.Checkpoint)
	}
	return rep
}

func ckExists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Lstat(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// ckKillStats counts where the kills landed and how the opens went.
type ckKillStats struct {
	onCheckpoint, atRandom       int // kills armed by a CKPT line, by READY
	landed, landedOnCkpt         int // kills that left a temporary file (of them, armed by CKPT)
	torn                         int // temporary files left that do not decode (the rest were whole, not yet renamed)
	windows                      []time.Duration
	checkpoints                  int // CKPT lines: checkpoint writes seen by the helpers
	paths                        map[string]int
	ignored                      []string
	cleaned, keptReadOnly        int // temporary files a parent's writable open removed, a read-only open left
	parentChecks, readOnlyChecks int
}

func TestKillDuringCheckpoint(t *testing.T) {
	kills := int(envInt("BATPAK_CKPTKILL_KILLS", 14))
	if testing.Short() {
		kills = int(envInt("BATPAK_CKPTKILL_KILLS", 5))
	}
	streams := int(envInt(ckStreamsEnv, 30000))
	seed := envInt(ckSeedEnv, time.Now().UnixNano())
	t.Logf("%d kills, %d streams, seed %d (BATPAK_CKPTKILL_KILLS, BATPAK_CKPTKILL_STREAMS, BATPAK_CKPTKILL_SEED)", kills, streams, seed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("rerun with BATPAK_CKPTKILL_SEED=%d BATPAK_CKPTKILL_KILLS=%d BATPAK_CKPTKILL_STREAMS=%d (the kills land at other moments)", seed, kills, streams)
		}
	})
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	dir := filepath.Join(t.TempDir(), "store")
	tmpPath := filepath.Join(dir, ckTempName)
	ckptPath := filepath.Join(dir, eventstore.CheckpointFileName)
	st := &ckState{crashState: &crashState{acked: make(map[uint64]crashEvent), keys: make(map[string][]crashReceipt)}, payload: make(map[uint64]dtPayload)}
	ks := ckKillStats{paths: map[string]int{}}
	keys := keyedRequests{workers: ckKeyWorkers, parse: parseCrashKey,
		key: func(c, w, n int) string { return ckSpec(uint64(seed), streams, c, w, n).key }}

	// Many streams, so that each checkpoint has a lot to write. Their
	// receipts count as acknowledgements too.
	s := dtOpen(t, dir, eventstore.WithSegmentMaxBytes(ckSegBytes), eventstore.WithCheckpointEvery(0))
	const perBatch = 1000
	for b := 0; b*perBatch < streams; b++ {
		tag := fmt.Sprintf("pre%d", b)
		var entities []string
		for i := b * perBatch; i < min((b+1)*perBatch, streams); i++ {
			entities = append(entities, fmt.Sprintf("s:%d", i))
		}
		rs := dtBatch(t, s, tag, entities)
		a := crashAck{Tag: tag}
		for i, rc := range rs {
			a.R = append(a.R, crashReceipt{ID: rc.EventID.String(), Seq: rc.Sequence, Ver: rc.Version, Hash: hex.EncodeToString(rc.Hash[:]), E: entities[i]})
		}
		st.absorb(t, []crashAck{a})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(ckptPath); err != nil { // the first helper starts without one
		t.Fatal(err)
	}

	var retry []string
	lastAcked := uint64(0) // the highest acknowledged sequence
	for seq := range st.acked {
		lastAcked = max(lastAcked, seq)
	}
	for cycle := range kills {
		hadCheckpoint := ckExists(t, ckptPath)
		onCkpt := rng.IntN(3) != 0
		nth := 1 + rng.IntN(3)
		delay := time.Duration(rng.IntN(4000)) * time.Microsecond
		if rng.IntN(2) == 0 { // the write itself, before the sync, is short
			delay = 0
		}
		if !onCkpt {
			delay = time.Duration(20+rng.IntN(200)) * time.Millisecond
		}
		var acks []crashAck
		var errs []string
		var cold *eventstore.ColdStart
		var readyAt uint64
		ckpts := 0
		env := []string{ckHelperEnv + "=" + dir, ckCycleEnv + "=" + strconv.Itoa(cycle), ckRetryEnv + "=" + strings.Join(retry, ","),
			ckSeedEnv + "=" + strconv.FormatInt(seed, 10), ckStreamsEnv + "=" + strconv.Itoa(streams)}
		run := runAndKillOn(t, "TestKillDuringCheckpointHelper", env, func(line string) (time.Duration, bool) {
			switch {
			case !onCkpt:
				return delay, strings.HasPrefix(line, "READY")
			case strings.HasPrefix(line, "CKPT "):
				return delay, ckpts == nth
			case strings.HasPrefix(line, "ACK "):
				// No checkpoint seen in all this time: kill anyway rather
				// than wait for the hang guard (the check after the kill
				// still holds).
				return 0, len(acks) >= 20000
			}
			return 0, false
		}, func(line string) {
			switch {
			case strings.HasPrefix(line, "ACK "):
				var a crashAck
				if err := json.Unmarshal([]byte(line[4:]), &a); err == nil {
					acks = append(acks, a)
				}
			case strings.HasPrefix(line, "CKPT "):
				ckpts++
			case strings.HasPrefix(line, "CKPTDONE "):
				if us, err := strconv.ParseInt(line[9:], 10, 64); err == nil {
					ks.windows = append(ks.windows, time.Duration(us)*time.Microsecond)
				}
			case strings.HasPrefix(line, "COLD "):
				cold = new(eventstore.ColdStart)
				if err := json.Unmarshal([]byte(line[5:]), cold); err != nil {
					errs = append(errs, line)
				}
			case strings.HasPrefix(line, "READY "):
				readyAt, _ = strconv.ParseUint(line[6:], 10, 64)
			case strings.HasPrefix(line, "ERR "):
				errs = append(errs, line)
			}
		})
		if !run.ready || len(errs) > 0 || cold == nil {
			t.Fatalf("cycle %d: helper ready %v, errors %q, exit %v\nstderr:\n%s", cycle, run.ready, errs, run.waitErr, run.stderr)
		}
		if ws, ok := run.waitErr.(*exec.ExitError); !ok || ws.ExitCode() != -1 {
			t.Fatalf("cycle %d: helper was not killed: %v\nstderr:\n%s", cycle, run.waitErr, run.stderr)
		}
		if reason := ckCold(t, fmt.Sprintf("cycle %d: helper's open", cycle), *cold, hadCheckpoint, readyAt); reason != "" {
			ks.ignored = append(ks.ignored, reason)
		}
		ks.paths[cold.Path]++
		if readyAt < uint64(len(st.seen)) || readyAt < lastAcked {
			t.Fatalf("cycle %d: the helper opened %d events; %d were seen after an earlier recovery, %d acknowledged", cycle, readyAt, len(st.seen), lastAcked)
		}
		st.absorb(t, acks)
		for seq := range st.acked {
			lastAcked = max(lastAcked, seq)
		}
		retry = keys.retryKeys(retry[:0], cycle, tagsOf(acks, func(a crashAck) string { return a.Tag }), dtSortedKeys(st.keys), rng)
		ks.checkpoints += ckpts
		if onCkpt {
			ks.onCheckpoint++
		} else {
			ks.atRandom++
		}
		left := ckExists(t, tmpPath)
		if left {
			ks.landed++
			if onCkpt {
				ks.landedOnCkpt++
			}
			data, err := os.ReadFile(tmpPath)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := segment.DecodeCheckpoint(data); err != nil {
				ks.torn++ // the kill caught it half written
			}
		}
		ckVerifyDir(t, dir, true)

		// Alternate: let the next helper recover, or recover here,
		// writable or read-only.
		hadCheckpoint = ckExists(t, ckptPath)
		switch cycle % 3 {
		case 1:
			s := dtOpen(t, dir, eventstore.WithSegmentMaxBytes(ckSegBytes))
			if ckExists(t, tmpPath) {
				t.Fatalf("cycle %d: the writable open left the checkpoint's temporary file", cycle)
			} else if left {
				ks.cleaned++
			}
			if reason := ckCold(t, fmt.Sprintf("cycle %d: parent's open", cycle), s.Stats().ColdStart, hadCheckpoint, s.LastSequence()); reason != "" {
				ks.ignored = append(ks.ignored, reason)
			}
			st.verify(t, s)
			dtClose(t, s)
			ks.parentChecks++
		case 2:
			s, err := eventstore.OpenReadOnly(dir)
			if err != nil {
				t.Fatalf("cycle %d: read-only open (temporary checkpoint file left: %v): %v", cycle, left, err)
			}
			if left {
				if !ckExists(t, tmpPath) {
					t.Fatalf("cycle %d: the read-only open removed the checkpoint's temporary file", cycle)
				}
				ks.keptReadOnly++
			}
			if reason := ckCold(t, fmt.Sprintf("cycle %d: read-only open", cycle), s.Stats().ColdStart, hadCheckpoint, s.LastSequence()); reason != "" {
				ks.ignored = append(ks.ignored, reason)
			}
			st.verify(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			ks.readOnlyChecks++
		}
	}

	// If no kill left a temporary file for a writable parent open to find,
	// leave one: the first half of the checkpoint, as a kill in its write
	// would.
	planted := false
	if !ckExists(t, tmpPath) && ks.cleaned == 0 {
		if data, err := os.ReadFile(ckptPath); err == nil {
			if err := os.WriteFile(tmpPath, data[:len(data)/2], 0o600); err != nil {
				t.Fatal(err)
			}
			planted = true
		}
	}
	left := ckExists(t, tmpPath)
	hadCheckpoint := ckExists(t, ckptPath)
	s = dtOpen(t, dir, eventstore.WithSegmentMaxBytes(ckSegBytes))
	if ckExists(t, tmpPath) {
		t.Fatal("the final open left the checkpoint's temporary file")
	} else if left && !planted {
		ks.cleaned++
	}
	if reason := ckCold(t, "final open", s.Stats().ColdStart, hadCheckpoint, s.LastSequence()); reason != "" {
		ks.ignored = append(ks.ignored, reason)
	}
	n := st.verify(t, s)
	if rep, err := s.Scrub(context.Background()); err != nil || len(rep.Damage) > 0 {
		t.Fatalf("scrub after the last kill: %v %+v", err, rep)
	}
	cs := s.Stats()
	rs := dtAppend(t, s, "s:0", dtEvents("final", 1))
	if rs[0].Sequence != uint64(n+1) {
		t.Fatalf("append after the last kill got sequence %d, want %d", rs[0].Sequence, n+1)
	}
	dtClose(t, s)
	ckVerifyDir(t, dir, false)
	s = dtOpen(t, dir)
	defer s.Close()
	if got := s.Stats().ColdStart; got.Path != "checkpoint" || got.CheckpointIgnored != "" {
		t.Fatalf("open after a clean close: %+v, want the checkpoint the close wrote", got)
	}
	if got := st.verify(t, s); got != n+1 {
		t.Fatalf("final reopen: %d events, want %d", got, n+1)
	}
	slices.Sort(ks.windows)
	var median time.Duration
	if len(ks.windows) > 0 {
		median = ks.windows[len(ks.windows)/2]
	}
	t.Logf("%d kills (%d armed by a checkpoint write, %d at random); %d landed in a checkpoint write, leaving its temporary file (%d of those armed by one; %d torn, %d whole and not renamed); %d checkpoint writes seen, their temporary file there for %v (median)",
		kills, ks.onCheckpoint, ks.atRandom, ks.landed, ks.landedOnCkpt, ks.torn, ks.landed-ks.torn, ks.checkpoints, median)
	t.Logf("opens by path %v; checkpoints ignored: %q; temporary files removed by a writable parent open %d, kept by a read-only one %d, planted %v",
		ks.paths, ks.ignored, ks.cleaned, ks.keptReadOnly, planted)
	t.Logf("%d acknowledged requests (%d events, %d keys, %d idempotent retries matched); %d events over %d segments; %d parent reopens, %d read-only checks",
		st.acks, len(st.acked), len(st.keys), st.retried, n, cs.Segments, ks.parentChecks, ks.readOnlyChecks)
}
