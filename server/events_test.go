package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// sseMsg is one parsed Server-Sent Event.
type sseMsg struct {
	id, event string
	data      map[string]any
}

// sseStream reads messages from an open event stream.
type sseStream struct {
	t      testing.TB
	resp   *http.Response
	sc     *bufio.Scanner
	cancel context.CancelFunc
}

func (e *env) openSSE(path string, hdr ...string) *sseStream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		cancel()
		e.t.Fatalf("GET %s: %v", path, err)
	}
	s := &sseStream{t: e.t, resp: resp, sc: bufio.NewScanner(resp.Body), cancel: cancel}
	e.t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() { s.cancel(); s.resp.Body.Close() }

// next returns the next message (comments are skipped), failing after d.
func (s *sseStream) next(d time.Duration) sseMsg {
	s.t.Helper()
	type res struct {
		m   sseMsg
		err error
	}
	ch := make(chan res, 1)
	go func() {
		var m sseMsg
		for s.sc.Scan() {
			line := s.sc.Text()
			switch {
			case line == "":
				if m.event != "" {
					ch <- res{m: m}
					return
				}
			case strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "id: "):
				m.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				m.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(line[6:]), &m.data); err != nil {
					ch <- res{err: err}
					return
				}
			}
		}
		ch <- res{err: fmt.Errorf("stream ended: %v", s.sc.Err())}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			s.t.Fatal(r.err)
		}
		return r.m
	case <-time.After(d):
		s.cancel()
		s.t.Fatalf("no event within %v", d)
		return sseMsg{}
	}
}

func TestSSEEvents(t *testing.T) {
	e := newEnv(t)
	e.do("PUT", "/v1/agents/a1/state/local/x", `{"value":1}`).want(t, 201)
	e.do("POST", "/v1/agents/a1/batch/write", `{"ops":[{"op":"put","tier":"local","key":"b1","value":1},{"op":"put","tier":"shared","key":"b2","value":2}]}`).want(t, 200)

	s := e.openSSE("/v1/events?from_revision=0")
	if ct := s.resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	m := s.next(5 * time.Second)
	if m.event != "change" || m.id != "1" || m.data["change_type"] != "create" || m.data["state_key"] != "x" || m.data["old_value"] != nil {
		t.Fatalf("first event %+v", m)
	}
	// The batch's two events share revision 2; only the last carries the id.
	b1, b2 := s.next(5*time.Second), s.next(5*time.Second)
	if b1.id != "" || b2.id != "2" || b1.data["revision"] != float64(2) || b2.data["state_key"] != "b2" {
		t.Fatalf("batch events %+v %+v", b1, b2)
	}
	// Live: an update after the catch-up carries the old value.
	e.do("PUT", "/v1/agents/a1/state/local/x", `{"value":{"n":2}}`).want(t, 200)
	u := s.next(5 * time.Second)
	if u.id != "3" || u.data["change_type"] != "update" || u.data["old_value"] != float64(1) {
		t.Fatalf("live update %+v", u)
	}
	for _, f := range []string{"event_id", "revision", "agent_id", "tier", "state_key", "change_type", "old_value", "new_value", "version", "timestamp", "created_by", "metadata"} {
		if _, ok := u.data[f]; !ok {
			t.Fatalf("event lacks %s: %v", f, u.data)
		}
	}

	// Last-Event-ID resumes after that revision; filters select.
	r := e.openSSE("/v1/events?tier=shared&agent_id=a1", "Last-Event-ID", "1")
	if m := r.next(5 * time.Second); m.data["state_key"] != "b2" || m.id != "2" {
		t.Fatalf("resumed, filtered event %+v", m)
	}
	k := e.openSSE("/v1/events?from_revision=0&key=x&change_type=update")
	if m := k.next(5 * time.Second); m.data["revision"] != float64(3) {
		t.Fatalf("key/change_type filter %+v", m)
	}
}

func TestSSEBadInputAndCompaction(t *testing.T) {
	e := newEnv(t)
	for _, q := range []string{"tier=global", "change_type=nope", "from_revision=-1", "from_revision=x", "key=a//b", "on_compacted=maybe", "agent_id=a%20b"} {
		e.do("GET", "/v1/events?"+q, "").wantError(t, 400, CodeInvalidArgument)
	}
	e.do("GET", "/v1/events", "", "Last-Event-ID", "abc").wantError(t, 400, CodeInvalidArgument)

	for i := 0; i < 5; i++ {
		status := 200
		if i == 0 {
			status = 201
		}
		e.do("PUT", "/v1/agents/a1/state/persistent/k", fmt.Sprintf(`{"value":%d}`, i)).want(t, status)
	}
	if _, err := e.m.CompactFeed(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	s := e.openSSE("/v1/events?from_revision=1")
	m := s.next(5 * time.Second)
	if m.event != "error" {
		t.Fatalf("want an error message, got %+v", m)
	}
	er := m.data["error"].(map[string]any)
	if er["code"] != CodeCompacted || er["details"].(map[string]any)["oldest_revision"] != float64(4) {
		t.Fatalf("compacted error %+v", er)
	}
	// From the oldest kept revision - 1, the stream works.
	ok := e.openSSE("/v1/events?from_revision=3")
	if m := ok.next(5 * time.Second); m.data["revision"] != float64(4) {
		t.Fatalf("after compaction %+v", m)
	}
	// on_compacted=snapshot: the current state, then live.
	snap := e.openSSE("/v1/events?from_revision=0&on_compacted=snapshot")
	var kinds []string
	for {
		m := snap.next(5 * time.Second)
		kinds = append(kinds, m.data["type"].(string))
		if m.data["type"] == "snapshot_end" {
			break
		}
		if m.data["type"] == "snapshot" && m.data["entry"].(map[string]any)["value"] != float64(4) {
			t.Fatalf("snapshot entry %+v", m.data)
		}
	}
	if strings.Join(kinds, ",") != "snapshot_begin,snapshot,snapshot_end" {
		t.Fatalf("snapshot messages %v", kinds)
	}
}

func TestWebSocket(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(e.ts.URL, "http", "ws", 1)+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	var mu sync.Mutex
	send := func(v any) {
		mu.Lock()
		defer mu.Unlock()
		if err := wsjson.Write(ctx, c, v); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() map[string]any {
		var m map[string]any
		if err := wsjson.Read(ctx, c, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	send(map[string]any{"type": "subscribe", "id": "s1", "filter": map[string]any{"agent_id": "a1", "tier": []string{"local"}}, "from_revision": 0})
	send(map[string]any{"type": "put", "request_id": "r1", "agent_id": "a1", "tier": "local", "key": "k", "value": map[string]any{"v": 1}})
	got := map[string]map[string]any{}
	for len(got) < 2 {
		m := recv()
		got[m["type"].(string)] = m
	}
	if r := got["result"]; r["request_id"] != "r1" || r["entry"].(map[string]any)["version"] != float64(1) {
		t.Fatalf("result %v", r)
	}
	if ev := got["event"]; ev["subscription"] != "s1" || ev["event"].(map[string]any)["state_key"] != "k" {
		t.Fatalf("event %v", ev)
	}
	// Errors come back as messages, by request_id.
	send(map[string]any{"type": "put", "request_id": "r2", "agent_id": "a1", "tier": "local", "key": "k", "value": 2, "expected_version": 7})
	if m := recv(); m["type"] != "error" || m["request_id"] != "r2" || m["error"].(map[string]any)["code"] != CodeVersionConflict {
		t.Fatalf("conflict %v", m)
	}
	send(map[string]any{"type": "frobnicate"})
	if m := recv(); m["type"] != "error" || m["error"].(map[string]any)["code"] != CodeInvalidArgument {
		t.Fatalf("unknown type %v", m)
	}
	send(map[string]any{"type": "subscribe", "id": "s1"})
	if m := recv(); m["type"] != "error" {
		t.Fatalf("duplicate subscription %v", m)
	}
	// Unsubscribe: no more events for s1; a delete answers version and revision.
	send(map[string]any{"type": "unsubscribe", "id": "s1"})
	send(map[string]any{"type": "delete", "request_id": "r3", "agent_id": "a1", "tier": "local", "key": "k"})
	if m := recv(); m["type"] != "result" || m["request_id"] != "r3" || m["version"] != float64(2) {
		t.Fatalf("delete result %v (an event after unsubscribe?)", m)
	}
}

func TestWebSocketLimits(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := strings.Replace(e.ts.URL, "http", "ws", 1) + "/v1/ws"
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for i := 0; i <= MaxSubscriptionsPerSocket; i++ {
		if err := wsjson.Write(ctx, c, map[string]any{"type": "subscribe", "id": fmt.Sprintf("s%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var m map[string]any
	if err := wsjson.Read(ctx, c, &m); err != nil {
		t.Fatal(err)
	}
	if m["type"] != "error" || m["subscription"] != fmt.Sprintf("s%d", MaxSubscriptionsPerSocket) {
		t.Fatalf("subscription %d past the limit: %v", MaxSubscriptionsPerSocket+1, m)
	}
	// A message larger than a single write's body ends the socket.
	big := `{"type":"put","request_id":"r","agent_id":"a","tier":"local","key":"k","value":"` + strings.Repeat("x", 2<<20) + `"}`
	_ = c.Write(ctx, websocket.MessageText, []byte(big))
	_, _, err = c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("oversized message: %v", err)
	}
}
