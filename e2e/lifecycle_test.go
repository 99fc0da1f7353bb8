package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMDrainsAndExitsZero proves API.md's "SIGTERM drains connections
// and exits 0": a request whose body is still being sent when SIGTERM
// arrives is served to the end, the process then exits with status 0 within
// a few seconds, no writer sees a 5xx, and every write acknowledged before
// (or during) the drain is there after a restart.
func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	const agent = "term-agent"
	dataDir := t.TempDir()
	p := startServer(t, dataDir)

	// Some ordinary traffic first.
	for i := range 5 {
		p.putValue(t, agent, "persistent", fmt.Sprintf("before/%d", i), i)
	}
	last := p.putValue(t, agent, "persistent", "last-before-term", "acknowledged just before SIGTERM")

	// Background writers run across the signal.
	var (
		wg     sync.WaitGroup
		stop   atomic.Bool
		mu     sync.Mutex
		acked  = map[string]int64{}
		server = make(chan string, 4)
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				key := fmt.Sprintf("bg/w%d/%d", w, i)
				r, err := p.send(context.Background(), http.MethodPut, statePath(agent, "persistent", key), `{"value": {"i": `+fmt.Sprint(i)+`}}`, nil)
				if err != nil {
					return // refused once the listener closed
				}
				if r.Status >= 500 {
					server <- r.String()
					return
				}
				if r.Status == http.StatusCreated {
					mu.Lock()
					acked[key] = 1
					mu.Unlock()
				}
			}
		})
	}

	// A request in flight: headers and half the body sent before SIGTERM,
	// the rest after. A draining server must finish it.
	pr, pw := io.Pipe()
	type result struct {
		r   *response
		err error
	}
	inflight := make(chan result, 1)
	go func() {
		r, err := p.send(context.Background(), http.MethodPut, statePath(agent, "persistent", "inflight"), pr, nil)
		inflight <- result{r, err}
	}()
	if _, err := io.WriteString(pw, `{"value": {"sent": "before SIGTERM"`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the server is now reading the body

	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	if p.exited() {
		t.Errorf("the server exited %v after SIGTERM with a request still in flight (%v); it must drain it first; stderr:\n%s", time.Since(start), p.waitErr, p.stderrTail())
	}
	if _, err := io.WriteString(pw, `, "then": "after"}}`); err != nil {
		t.Errorf("finishing the in-flight body after SIGTERM: %v", err)
	}
	pw.Close()
	select {
	case res := <-inflight:
		if res.err != nil {
			t.Errorf("the in-flight PUT was cut by SIGTERM: %v; want it served (graceful drain)", res.err)
		} else if res.r.Status != http.StatusCreated {
			t.Errorf("in-flight PUT during drain: %s\nwant 201", res.r)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("the in-flight PUT got no answer within 10 s of SIGTERM")
	}

	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the server did not exit within 10 s of SIGTERM; stderr:\n%s", p.stderrTail())
	}
	took := time.Since(start)
	stop.Store(true)
	wg.Wait()
	close(server)
	for s := range server {
		t.Errorf("a writer got a server error during the drain: %s", s)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status after SIGTERM = %d (%v); want 0; stderr:\n%s", code, p.waitErr, p.stderrTail())
	}
	if took > 5*time.Second {
		t.Errorf("the server took %v to exit after SIGTERM; want a few seconds at most", took)
	}
	t.Logf("exited %v after SIGTERM; %d background writes acknowledged", took.Round(time.Millisecond), len(acked))

	// Everything acknowledged is there after a restart.
	p2 := startServer(t, dataDir)
	if e, ok := p2.getEntry(t, agent, "persistent", "last-before-term"); !ok || e.Version != last.Version || !jsonEqual(e.Value, last.Value) {
		t.Errorf("after restart, last-before-term = %+v (found %v); want version %d value %s", e, ok, last.Version, last.Value)
	}
	if e, ok := p2.getEntry(t, agent, "persistent", "inflight"); !ok || !jsonEqual(e.Value, []byte(`{"sent": "before SIGTERM", "then": "after"}`)) {
		t.Errorf("after restart, the PUT drained during shutdown reads %s (found %v)", e.Value, ok)
	}
	mu.Lock()
	defer mu.Unlock()
	for key := range acked {
		if _, ok := p2.getEntry(t, agent, "persistent", key); !ok {
			t.Errorf("after restart, %s is missing although its PUT answered 201", key)
		}
	}
	if s := p.stderr.String(); strings.Contains(s, "panic") {
		t.Errorf("the server logged a panic during shutdown:\n%s", p.stderrTail())
	}
}

// TestTTLExpiresOverHTTP checks ttl_seconds end to end: the entry carries
// expires_at, reads 404 once the TTL has passed, disappears from lists, and
// its history then ends with an "expire" version written by the reaper
// (which runs every second by default).
func TestTTLExpiresOverHTTP(t *testing.T) {
	const agent = "ttl-agent"
	p := startServer(t, t.TempDir())
	target := statePath(agent, "local", "ephemeral")

	r := p.must(t, http.MethodPut, target, `{"value": {"short": "lived"}, "ttl_seconds": 1}`, http.StatusCreated)
	var e entry
	r.decode(t, &e)
	if e.ExpiresAt == nil {
		t.Fatalf("%s\nwant expires_at set for ttl_seconds 1", r)
	}
	exp, err := time.Parse(time.RFC3339Nano, *e.ExpiresAt)
	if err != nil {
		t.Fatalf("%s\nexpires_at %q is not RFC 3339: %v", r, *e.ExpiresAt, err)
	}
	if d := time.Until(exp); d > 1500*time.Millisecond || d < -500*time.Millisecond {
		t.Errorf("expires_at %s is %v from now; want about 1 s", *e.ExpiresAt, d)
	}
	p.must(t, http.MethodGet, target, nil, http.StatusOK)
	p.putValue(t, agent, "local", "durable", "stays")

	time.Sleep(1200 * time.Millisecond)
	r = p.do(t, http.MethodGet, target, nil)
	checkErrorAnswer(t, r, http.StatusNotFound, "not_found")

	var list struct {
		Entries []entry `json:"entries"`
	}
	p.must(t, http.MethodGet, "/v1/agents/"+agent+"/state/local", nil, http.StatusOK).decode(t, &list)
	if len(list.Entries) != 1 || list.Entries[0].Key != "durable" {
		t.Errorf("list after expiry = %+v; want only the key \"durable\"", list.Entries)
	}

	// The reaper writes the expire version.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var h historyAnswer
		hr := p.must(t, http.MethodGet, historyPath(agent, "local", "ephemeral"), nil, http.StatusOK)
		hr.decode(t, &h)
		if len(h.Versions) > 0 && h.Versions[0].ChangeType == "expire" {
			if h.Versions[0].Version != 2 {
				t.Errorf("%s\nwant the expire version to be version 2, after the create", hr)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no expire version in the history 5 s after the TTL passed: %s", hr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Still 404, and a new write continues the numbering.
	checkErrorAnswer(t, p.do(t, http.MethodGet, target, nil), http.StatusNotFound, "not_found")
	r = p.must(t, http.MethodPut, target, `{"value": "again"}`, http.StatusCreated, http.StatusOK)
	r.decode(t, &e)
	if e.Version != 3 || e.ExpiresAt != nil {
		t.Errorf("%s\nwant a write after expiry to create version 3 without expires_at", r)
	}
}

// TestTTLAcrossRestart checks that expiry is durable state, not a timer in
// the process: an entry whose TTL passes while the server is down reads 404
// after a restart and then gets its expire version; a long TTL keeps its
// expires_at across the restart; and the session tier's default TTL (1 h)
// applies when none is given.
func TestTTLAcrossRestart(t *testing.T) {
	const agent = "ttl-restart"
	dataDir := t.TempDir()
	p := startServer(t, dataDir)
	short := statePath(agent, "persistent", "short")
	long := statePath(agent, "persistent", "long")
	sess := statePath(agent, "session", "s1/tool")
	p.must(t, http.MethodPut, short, `{"value": 1, "ttl_seconds": 1}`, http.StatusCreated)
	var el, es entry
	p.must(t, http.MethodPut, long, `{"value": 2, "ttl_seconds": 3600}`, http.StatusCreated).decode(t, &el)
	p.must(t, http.MethodPut, sess, `{"value": 3}`, http.StatusCreated).decode(t, &es)
	if es.ExpiresAt == nil {
		t.Errorf("session-tier PUT without ttl_seconds: expires_at is null; want the tier's default TTL (1 h)")
	} else if exp, err := time.Parse(time.RFC3339Nano, *es.ExpiresAt); err != nil || time.Until(exp) < 59*time.Minute || time.Until(exp) > 61*time.Minute {
		t.Errorf("session-tier PUT without ttl_seconds: expires_at %s; want about 1 h from now (err %v)", *es.ExpiresAt, err)
	}
	if code, _, ok := p.terminate(stopTimeout); !ok || code != 0 {
		t.Fatalf("SIGTERM: exit %d (exited %v); stderr:\n%s", code, ok, p.stderrTail())
	}

	time.Sleep(1500 * time.Millisecond) // the short TTL passes while the server is down
	p = startServer(t, dataDir)
	checkErrorAnswer(t, p.do(t, http.MethodGet, short, nil), http.StatusNotFound, "not_found")
	if e, ok := p.getEntry(t, agent, "persistent", "long"); !ok || e.ExpiresAt == nil || el.ExpiresAt == nil || *e.ExpiresAt != *el.ExpiresAt {
		t.Errorf("after restart the long-TTL entry reads %+v (found %v); want expires_at %v unchanged", e, ok, el.ExpiresAt)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var h historyAnswer
		hr := p.must(t, http.MethodGet, historyPath(agent, "persistent", "short"), nil, http.StatusOK)
		hr.decode(t, &h)
		if len(h.Versions) > 0 && h.Versions[0].ChangeType == "expire" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no expire version 5 s after a restart past the TTL: %s", hr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
