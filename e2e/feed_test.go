package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentstate/agentstate/client"
)

// feedEvent is the part of a change event these tests check.
type feedEvent struct {
	EventID  string `json:"event_id"`
	Revision int64  `json:"revision"`
	AgentID  string `json:"agent_id"`
	StateKey string `json:"state_key"`
	Version  int64  `json:"version"`
}

// sseReader reads change events from a raw /v1/events stream, keeping the
// last id: line like an EventSource does.
type sseReader struct {
	resp   *http.Response
	sc     *bufio.Scanner
	lastID string
	cancel context.CancelFunc
}

func openEvents(t *testing.T, p *proc, query, lastID string) *sseReader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/v1/events?"+query, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET /v1/events: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		t.Fatalf("GET /v1/events: %d", resp.StatusCode)
	}
	r := &sseReader{resp: resp, sc: bufio.NewScanner(resp.Body), cancel: cancel}
	r.sc.Buffer(make([]byte, 64<<10), 4<<20)
	t.Cleanup(r.close)
	return r
}

func (r *sseReader) close() { r.cancel(); r.resp.Body.Close() }

// next returns the next change event; it fails the test on an error
// message or when the stream ends.
func (r *sseReader) next(t *testing.T) feedEvent {
	t.Helper()
	var name, data, id string
	for r.sc.Scan() {
		line := r.sc.Text()
		switch {
		case line == "":
			if name == "" {
				continue
			}
			if name != "change" {
				t.Fatalf("unexpected %s message: %s", name, data)
			}
			if id != "" {
				r.lastID = id
			}
			var e feedEvent
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				t.Fatalf("event %q: %v", data, err)
			}
			return e
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "event: "):
			name = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		}
	}
	t.Fatalf("event stream ended: %v", r.sc.Err())
	return feedEvent{}
}

// writeConcurrently has writers put values on their own keys and returns
// every acknowledged (revision, key) pair.
func writeConcurrently(t *testing.T, p *proc, agent string, writers, each int) map[string]int64 {
	t.Helper()
	var mu sync.Mutex
	acked := map[string]int64{} // "key@version" -> revision
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				e := p.putValue(t, agent, "shared", fmt.Sprintf("w%d", w), i)
				mu.Lock()
				acked[fmt.Sprintf("%s@%d", e.Key, e.Version)] = e.Revision
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	return acked
}

// checkExactlyOnce: the events are in revision order, none twice, and they
// are exactly the acknowledged writes.
func checkExactlyOnce(t *testing.T, got []feedEvent, acked map[string]int64) {
	t.Helper()
	seen := map[string]bool{}
	var last int64
	for i, e := range got {
		if e.Revision < last {
			t.Fatalf("event %d: revision %d after %d: out of order", i, e.Revision, last)
		}
		last = e.Revision
		if seen[e.EventID] {
			t.Fatalf("event %s delivered twice", e.EventID)
		}
		seen[e.EventID] = true
		k := fmt.Sprintf("%s@%d", e.StateKey, e.Version)
		rev, ok := acked[k]
		if !ok {
			t.Fatalf("event %+v was never written", e)
		}
		if rev != e.Revision {
			t.Fatalf("event %+v: the write was acknowledged at revision %d", e, rev)
		}
	}
	if len(got) != len(acked) {
		t.Fatalf("got %d events, %d writes were acknowledged", len(got), len(acked))
	}
}

// TestFeedExactlyOnceWithConcurrentWriters: a subscriber that starts before
// and one that starts in the middle of 8 concurrent writers (catch-up, then
// the seam, then live) each get every change once, in order; a subscriber
// that disconnects and resumes with Last-Event-ID gets exactly what it missed.
func TestFeedExactlyOnceWithConcurrentWriters(t *testing.T) {
	p := startServer(t, t.TempDir())
	const writers, each = 8, 40
	early := openEvents(t, p, "agent_id=feed&from_revision=0", "")

	var acked map[string]int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		acked = writeConcurrently(t, p, "feed", writers, each)
	}()
	// Join while the writers run: catch-up from the store, then live.
	time.Sleep(50 * time.Millisecond)
	late := openEvents(t, p, "agent_id=feed&from_revision=0", "")
	<-done

	read := func(r *sseReader, n int) []feedEvent {
		out := make([]feedEvent, 0, n)
		for len(out) < n {
			out = append(out, r.next(t))
		}
		return out
	}
	checkExactlyOnce(t, read(early, writers*each), acked)
	checkExactlyOnce(t, read(late, writers*each), acked)

	// Disconnect after a third, resume with Last-Event-ID.
	r := openEvents(t, p, "agent_id=feed&from_revision=0", "")
	first := read(r, writers*each/3)
	for first[len(first)-1].Revision == r.next(t).Revision {
		// Read to the end of the revision the id: line covers.
	}
	lastID := r.lastID
	r.close()
	var resumedFrom int64
	fmt.Sscan(lastID, &resumedFrom)
	rest := openEvents(t, p, "agent_id=feed", lastID)
	var missed []string
	for k, rev := range acked {
		if rev > resumedFrom {
			missed = append(missed, k)
		}
	}
	sort.Strings(missed)
	got := read(rest, len(missed))
	var gotKeys []string
	for _, e := range got {
		if e.Revision <= resumedFrom {
			t.Fatalf("resumed after %d but got revision %d", resumedFrom, e.Revision)
		}
		gotKeys = append(gotKeys, fmt.Sprintf("%s@%d", e.StateKey, e.Version))
	}
	sort.Strings(gotKeys)
	if strings.Join(gotKeys, ",") != strings.Join(missed, ",") {
		t.Fatalf("resumed from %d: got %d events, missed %d", resumedFrom, len(gotKeys), len(missed))
	}
}

// TestWatchSurvivesRestart: the SDK's Watch, through a SIGKILL and a
// restart of the server, delivers every acknowledged change exactly once.
func TestWatchSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, dir)
	addr := p.addr
	c, err := client.New("http://"+addr, client.WithReconnectBackoff(20*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := c.Watch(ctx, client.WatchFilter{AgentIDs: []string{"watch"}}, 0)
	defer w.Close()

	var mu sync.Mutex
	var got []feedEvent
	go func() {
		for {
			e, err := w.Next(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			got = append(got, feedEvent{EventID: e.EventID, Revision: e.Revision, StateKey: e.StateKey, Version: e.Version})
			mu.Unlock()
		}
	}()

	acked := map[string]int64{}
	write := func(p *proc, from, to int) {
		for i := from; i < to; i++ {
			e := p.putValue(t, "watch", "shared", fmt.Sprintf("k%d", i%7), i)
			acked[fmt.Sprintf("%s@%d", e.Key, e.Version)] = e.Revision
		}
	}
	write(p, 0, 60)
	p.kill9()
	// Written while the watcher is cut off, right after the restart.
	p2 := startServerOn(t, dir, addr)
	write(p2, 60, 120)

	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(acked) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // a duplicate would arrive now
	mu.Lock()
	defer mu.Unlock()
	checkExactlyOnce(t, got, acked)
}

// TestEventStreamsOverHTTP: append under expected versions (only one of two
// racing appends with the same expectation wins), read, snapshots, and a
// catch-up subscription that then follows live appends.
func TestEventStreamsOverHTTP(t *testing.T) {
	p := startServer(t, t.TempDir())
	c, err := client.New(p.base)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev := func(typ string, n int) []client.NewEvent {
		return []client.NewEvent{{EventType: typ, EventData: map[string]any{"n": n}}}
	}
	v, err := c.AppendEvents(ctx, "order-1", ev("created", 0), ptr(client.NoStream))
	if err != nil || v != 0 {
		t.Fatalf("first append: %d, %v", v, err)
	}
	if _, err := c.AppendEvents(ctx, "order-1", ev("created", 0), ptr(client.NoStream)); !errors.Is(err, client.ErrWrongExpectedVersion) {
		t.Fatalf("append to an existing stream with -1: %v", err)
	}
	// Two racing appends with the same expected version: one wins.
	var wg sync.WaitGroup
	results := make([]error, 2)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, results[i] = c.AppendEvents(ctx, "order-1", ev("paid", i), ptr(0))
		}(i)
	}
	wg.Wait()
	if (results[0] == nil) == (results[1] == nil) {
		t.Fatalf("racing appends: %v / %v (exactly one must win)", results[0], results[1])
	}
	var apiErr *client.Error
	for _, err := range results {
		if err != nil {
			if !errors.As(err, &apiErr) {
				t.Fatalf("loser: %v", err)
			}
			if cur, ok := apiErr.CurrentVersion(); !ok || cur != 1 {
				t.Fatalf("loser's current_version %d %v", cur, ok)
			}
		}
	}
	evs, err := c.ReadStream(ctx, "order-1", 0, 10)
	if err != nil || len(evs) != 2 || evs[1].Version != 1 {
		t.Fatalf("read: %+v %v", evs, err)
	}
	if _, err := c.SaveSnapshot(ctx, "order-1", 1, map[string]any{"status": "paid"}); err != nil {
		t.Fatal(err)
	}
	snap, err := c.LoadSnapshot(ctx, "order-1")
	if err != nil || snap.Version != 1 {
		t.Fatalf("snapshot %+v %v", snap, err)
	}
	// Catch-up subscription: the two stored events, then a live one.
	sw := c.SubscribeStream(ctx, "order-1", 0)
	defer sw.Close()
	for want := int64(0); want < 3; want++ {
		if want == 2 {
			if _, err := c.AppendEvents(ctx, "order-1", ev("shipped", 2), nil); err != nil {
				t.Fatal(err)
			}
		}
		e, err := sw.Next(ctx)
		if err != nil || e.Version != want {
			t.Fatalf("subscription event %d: %+v %v", want, e, err)
		}
	}
}

func ptr(v int64) *int64 { return &v }

func errorIs(err, target error) bool     { return errors.Is(err, target) }
func errorAs(err error, target any) bool { return errors.As(err, target) }

// TestSIGTERMEndsOpenStreams: open SSE and stream subscriptions do not hold
// the drain: SIGTERM still exits 0 promptly.
func TestSIGTERMEndsOpenStreams(t *testing.T) {
	p := startServer(t, t.TempDir())
	p.putValue(t, "term", "local", "k", 1)
	r := openEvents(t, p, "from_revision=0", "")
	if e := r.next(t); e.StateKey != "k" {
		t.Fatalf("event %+v", e)
	}
	s := openRaw(t, p, "/v1/streams/s1/subscribe")
	defer s.Body.Close()
	code, took, ok := p.terminate(10 * time.Second)
	if !ok || code != 0 {
		t.Fatalf("SIGTERM with open streams: exit %d after %v (exited: %v); stderr:\n%s", code, took, ok, p.stderrTail())
	}
	if took > 5*time.Second {
		t.Fatalf("SIGTERM took %v with open streams: they held the drain", took)
	}
}

func openRaw(t *testing.T, p *proc, path string) *http.Response {
	t.Helper()
	resp, err := http.Get(p.base + path)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	return resp
}
