package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sseConn scripts one connection to a fake event stream.
type sseConn struct {
	// Expected request: query (compared as url.Values) and Last-Event-ID
	// ("" = absent).
	query       string
	lastEventID string

	status int    // non-zero: answer this status with body, not a stream
	body   string // the answer's body for status
	ctype  string // Content-Type of the stream; default text/event-stream

	chunks []string // written and flushed one after the other
	// hold keeps the connection open after the chunks until the client
	// goes away; otherwise the server ends it.
	hold bool
}

// sseServer answers each request with the next scripted connection;
// beyond the script, it holds requests open until the client leaves.
type sseServer struct {
	t     testing.TB
	mu    sync.Mutex
	conns []sseConn
	next  int
	path  string
	quit  chan struct{}
	srv   *httptest.Server
	// connected is signalled when a connection's chunks are written.
	connected chan int
}

func newSSEServer(t testing.TB, path string, conns ...sseConn) *sseServer {
	t.Helper()
	s := &sseServer{t: t, conns: conns, path: path, quit: make(chan struct{}), connected: make(chan int, 100)}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.srv.Close)
	t.Cleanup(func() { close(s.quit) }) // runs first: releases held requests
	return s
}

// requests reports how many connections were made.
func (s *sseServer) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

func (s *sseServer) handle(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	n := s.next
	s.next++
	var c *sseConn
	if n < len(s.conns) {
		c = &s.conns[n]
	}
	s.mu.Unlock()
	t := s.t
	if r.URL.Path != s.path {
		t.Errorf("connection %d: path = %s, want %s", n, r.URL.Path, s.path)
	}
	if a := r.Header.Get("Accept"); a != "text/event-stream" {
		t.Errorf("connection %d: Accept = %q", n, a)
	}
	if c == nil {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-s.quit:
		}
		return
	}
	if got, want := r.URL.Query().Encode(), mustQuery(t, c.query); got != want {
		t.Errorf("connection %d: query = %q, want %q", n, got, want)
	}
	if got := r.Header.Get("Last-Event-ID"); got != c.lastEventID {
		t.Errorf("connection %d: Last-Event-ID = %q, want %q", n, got, c.lastEventID)
	}
	if c.status != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(c.status)
		io.WriteString(w, c.body)
		s.connected <- n
		return
	}
	ct := c.ctype
	if ct == "" {
		ct = "text/event-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	for _, ch := range c.chunks {
		io.WriteString(w, ch)
		w.(http.Flusher).Flush()
	}
	s.connected <- n
	if c.hold {
		select {
		case <-r.Context().Done():
		case <-s.quit:
		}
	}
}

func mustQuery(t testing.TB, q string) string {
	t.Helper()
	v, err := url.ParseQuery(q)
	require.NoError(t, err)
	return v.Encode()
}

// sseMsg renders a message; id "" writes no id line.
func sseMsg(event, data, id string) string {
	var b strings.Builder
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	b.WriteString("event: " + event + "\n")
	for _, l := range strings.Split(data, "\n") {
		b.WriteString("data: " + l + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

// change renders a change event of revision rev.
func change(eventID string, rev int64, key string) string {
	b, _ := json.Marshal(map[string]any{
		"event_id": eventID, "revision": rev, "agent_id": "agent-1", "tier": "local", "state_key": key,
		"change_type": "update", "old_value": map[string]any{"n": rev - 1}, "new_value": map[string]any{"n": rev},
		"version": rev, "timestamp": "2025-01-02T03:04:05.5Z", "created_by": "anonymous", "metadata": map[string]any{},
	})
	return string(b)
}

// changeMsg is the SSE message of change; last writes the id line.
func changeMsg(eventID string, rev int64, key string, last bool) string {
	id := ""
	if last {
		id = fmt.Sprint(rev)
	}
	return sseMsg("change", change(eventID, rev, key), id)
}

func errorMsg(code, details string) string {
	return sseMsg("error", apiError(code, code+" happened", details), "")
}

// testClient is a client whose backoff does not sleep and has no jitter;
// the delays asked for are recorded.
type testClient struct {
	*Client
	mu     sync.Mutex
	delays []time.Duration
	errs   []error
}

func newTestClient(t testing.TB, base string, opts ...Option) *testClient {
	t.Helper()
	tc := &testClient{}
	opts = append([]Option{WithReconnectHook(func(err error, d time.Duration) {
		tc.mu.Lock()
		defer tc.mu.Unlock()
		tc.errs = append(tc.errs, err)
	})}, opts...)
	c, err := New(base, opts...)
	require.NoError(t, err)
	c.jitter = func(d time.Duration) time.Duration { return d }
	c.sleep = func(ctx context.Context, d time.Duration) error {
		tc.mu.Lock()
		tc.delays = append(tc.delays, d)
		tc.mu.Unlock()
		return ctx.Err()
	}
	tc.Client = c
	return tc
}

func (tc *testClient) recorded() ([]time.Duration, []error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return append([]time.Duration(nil), tc.delays...), append([]error(nil), tc.errs...)
}

// nextN reads n events, failing the test on an error or after 5 seconds.
func nextN[T any](t testing.TB, next func(context.Context) (T, error), n int) []T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []T
	for range n {
		e, err := next(ctx)
		require.NoError(t, err)
		out = append(out, e)
	}
	return out
}

func eventIDs(evs []Event) []string {
	var ids []string
	for _, e := range evs {
		switch e.Type {
		case EventSnapshot:
			ids = append(ids, "snap:"+e.Snapshot.Key)
		case EventSnapshotBegin:
			ids = append(ids, "begin")
		case EventSnapshotEnd:
			ids = append(ids, "end")
		default:
			ids = append(ids, e.EventID)
		}
	}
	return ids
}
