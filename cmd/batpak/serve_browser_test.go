package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
)

// findChromium returns the path of a Chromium (or Chrome) binary, or "".
func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// bankStore runs the bank example with its store in a temporary directory
// (-data DIR: DIR is the store) and returns the store's directory.
func bankStore(t *testing.T, ctx context.Context) string {
	t.Helper()
	data := t.TempDir()
	cmd := exec.CommandContext(ctx, "go", "run", "github.com/batpak-go/batpak/examples/bank", "-data", data)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./examples/bank: %v\n%s", err, out)
	}
	return data
}

// startServe runs 'batpak serve' in-process on dir and returns its address;
// it stops with the test.
func startServe(t *testing.T, ctx context.Context, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	var stdout, stderr syncBuffer
	a := &app{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}
	done := make(chan int, 1)
	go func() { done <- a.run(ctx, append([]string{"serve", dir, "--addr", "127.0.0.1:0"}, args...)) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("batpak serve exited %d\nstderr:\n%s", code, stderr.String())
		}
	})
	addr := regexp.MustCompile(`on (https?://127\.0\.0\.1:\d+)/`)
	for {
		if m := addr.FindStringSubmatch(stdout.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("batpak serve exited %d before serving\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
		case <-ctx.Done():
			t.Fatal("batpak serve did not start")
		case <-time.After(10 * time.Millisecond): // polling its output, not a budget
		}
	}
}

// TestExplorerInBrowser is the explorer as a person uses it: 'batpak serve'
// on the bank example's store, a headless Chromium clicking from a transfer
// to its causal graph and on to the credited account's stream, and a live
// tail showing events appended while it watches. Screenshots go to
// $BATPAK_SCREENSHOTS if set, else to the test's temporary directory.
func TestExplorerInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bank example and drives a browser")
	}
	chromium := findChromium()
	if chromium == "" {
		t.Skip("no Chromium on this machine (looked for chromium, chromium-browser and google-chrome on PATH): install Debian's chromium package, as .ci/run does, to run the browser test")
	}
	ctx := hangContext(t)
	dir := bankStore(t, ctx)
	base := startServe(t, ctx, dir, "--interval", "50ms",
		"--kind-name", "1:004=TransferSent", "--kind-name", "1:005=TransferReceived", "--kind-name", "1:002=Deposited")

	shots := os.Getenv("BATPAK_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 860),
	)...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	count := func(sel string) int {
		t.Helper()
		n, err := chromedp.Run(bctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
		if err != nil {
			t.Fatalf("count %s: %v", sel, err)
		}
		return n
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(shots, name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s", path)
	}
	want := func(what, got string, subs ...string) {
		t.Helper()
		for _, sub := range subs {
			if !strings.Contains(got, sub) {
				t.Errorf("%s shows %q, want it to contain %q", what, got, sub)
			}
		}
	}
	visible := func(sel string) chromedp.Action[chromedp.Void] { return chromedp.WaitVisible(chromedp.CSS(sel)) }
	click := func(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }

	do("start Chromium", chromedp.Navigate("about:blank"))
	var dialogs atomic.Int32 // alert() and friends: stored text run as script
	opened := chromedp.Events(bctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range opened {
			if err != nil {
				return
			}
			dialogs.Add(1)
			_, _ = chromedp.Call(bctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{})
		}
	}()

	// The health page: the bank's 18 events in 4 streams, and the verify
	// that serve ran in the background (reloaded until it has finished).
	var check string
	for check == "" {
		do("health", chromedp.Navigate(base+"/"), visible("h2"))
		if count(".check-result") == 1 {
			check = text(".check-result")
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the verify did not finish")
		case <-time.After(100 * time.Millisecond): // polling the page, not a budget
		}
	}
	if events, streams := text("#events"), text("#streams"); events != "18" || streams != "4" {
		t.Errorf("health shows %s events in %s streams, want 18 in 4", events, streams)
	}
	want("the verify result", check, "OK: no damage", "18 events")
	shot("1-health")

	// The stream list, then alice's stream.
	do("streams", click(`nav a[href="/streams"]`), visible("table.streams"))
	want("the stream list", text("table.streams tbody"), "account:alice", "account:bob", "account:carol", "account:dave", "bank")
	shot("2-streams")
	do("alice", click(`table.streams a.entity[href^="/stream?entity=account%3Aalice&"]`), visible(`tr.event[data-kind="TransferSent"]`))
	shot("3-stream-alice")

	// The transfer to carol: its event, then its causal graph.
	do("transfer", click(`tr.event[data-kind="TransferSent"] a.seq`), visible("#graph-link"))
	want("the transfer's stream", text("#entity"), "account:alice")
	want("the transfer's payload", text("#payload"), `"To": "carol"`, `"Amount": 300`)
	want("the transfer's chain check", text("#chain-result"), "OK", "matches the event's content")
	shot("4-event-transfer")

	do("graph", click("#graph-link"), visible("#graph svg g.causal-node"))
	nodes, err := chromedp.Run(bctx, chromedp.Evaluate[[]map[string]string](
		`[...document.querySelectorAll("#graph g.causal-node")].map(g => ({seq: g.dataset.sequence, text: g.textContent}))`))
	if err != nil {
		t.Fatal(err)
	}
	shot("5-graph")
	credited := ""
	for _, n := range nodes {
		if strings.Contains(n["text"], "account:carol") {
			credited = n["seq"]
		}
	}
	if len(nodes) != 2 || credited == "" {
		t.Fatalf("the graph shows %v, want the transfer and carol's credit", nodes)
	}

	// On to the credited event (a click on its box), then carol's stream.
	do("credited event", click(fmt.Sprintf("#ev-%s a", credited)), visible("#stream-link"))
	want("the credited event's stream", text("#entity"), "account:carol")
	want("the credited event's kind", text("h1"), "1:005", "TransferReceived")
	if text("#cause-link") == "" {
		t.Error("the credited event does not link to its cause")
	}
	shot("6-event-credit")
	do("carol's stream", click("#stream-link"), visible(`tr.event[data-kind="TransferReceived"]`))
	want("carol's stream page", text("h1"), "account:carol")
	want("carol's stream", text("table.events tbody"), "TransferReceived", `"From":"alice"`, `"Amount":300`)
	shot("7-stream-carol")

	// The live tail, while another writer appends to the store: one event
	// carries a script that must show as text.
	do("tail", chromedp.Navigate(base+"/tail?prefix=account:"),
		visible(`#tail-status[data-state="live"]`), visible(`#tail-rows tr[data-sequence="18"]`))
	want("the tail's status", text("#tail-status"), "live")
	w, err := eventstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	evil := `<script>alert("tail")</script><img src=x onerror=alert(2)>`
	for i, p := range []any{map[string]any{"Amount": 77}, map[string]any{"Amount": 1, "Note": evil}} {
		if _, err := w.Append(ctx, batpak.Coordinate{Entity: "account:carol", Scope: "bank"},
			[]batpak.Event{{Kind: kind.Custom(1, 2), Payload: p}}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	do("tail shows new events", visible(`#tail-rows tr[data-sequence="20"]`))
	want("the first new event", text(`#tail-rows tr[data-sequence="19"]`), "#19", "account:carol", "Deposited", `"Amount":77`)
	want("the second new event", text(`#tail-rows tr[data-sequence="20"] code.payload`), `"Note":"<script>alert(\"tail\")</script><img src=x onerror=alert(2)>"`)
	if n := count("#tail-rows script, #tail-rows img"); n != 0 {
		t.Errorf("the tail made %d elements out of a payload", n)
	}
	shot("8-tail")

	// The same payload on its event page, and the health page counting it.
	do("event with a script", chromedp.Navigate(base+"/event/20"), visible("#payload"))
	want("the payload", text("#payload"), `"Note": "<script>alert(\"tail\")</script><img src=x onerror=alert(2)>"`)
	if n := count("main script, main img"); n != 0 {
		t.Errorf("the event page made %d elements out of a payload", n)
	}
	do("health after appends", chromedp.Navigate(base+"/"), visible("#events"))
	if events := text("#events"); events != "20" {
		t.Errorf("health shows %s events after two appends, want 20", events)
	}
	if n := dialogs.Load(); n != 0 {
		t.Errorf("%d script dialogs opened: stored text ran as script", n)
	}
}
