package main

import (
	"bytes"
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
	"go.uber.org/goleak"
)

// sseConn scripts one connection to the fake event stream.
type sseConn struct {
	query       string // expected, compared as url.Values
	lastEventID string
	status      int // non-zero: this answer instead of a stream
	body        string
	chunks      []string
	end         bool // end the stream after the chunks (else hold it open)
}

// newSSEFake serves /v1/events from the scripted connections; beyond the
// script, it holds requests open until the client leaves.
func newSSEFake(t *testing.T, conns ...sseConn) string {
	t.Helper()
	var (
		mu   sync.Mutex
		next int
	)
	quit := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n := next
		next++
		mu.Unlock()
		if r.URL.Path != "/v1/events" {
			t.Errorf("path = %s", r.URL.Path)
		}
		hold := func() {
			select {
			case <-r.Context().Done():
			case <-quit:
			}
		}
		if n >= len(conns) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.(http.Flusher).Flush()
			hold()
			return
		}
		c := conns[n]
		want, _ := url.ParseQuery(c.query)
		if got := r.URL.Query(); got.Encode() != want.Encode() {
			t.Errorf("connection %d: query = %q, want %q", n, got.Encode(), want.Encode())
		}
		if got := r.Header.Get("Last-Event-ID"); got != c.lastEventID {
			t.Errorf("connection %d: Last-Event-ID = %q, want %q", n, got, c.lastEventID)
		}
		if c.status != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(c.status)
			io.WriteString(w, c.body)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, ch := range c.chunks {
			io.WriteString(w, ch)
		}
		w.(http.Flusher).Flush()
		if !c.end {
			hold()
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(quit) })
	return srv.URL
}

func changeEvent(id string, rev int64, agent, tier, key, changeType, value string, version int64) string {
	b, _ := json.Marshal(map[string]any{
		"event_id": id, "revision": rev, "agent_id": agent, "tier": tier, "state_key": key, "change_type": changeType,
		"old_value": nil, "new_value": json.RawMessage(value), "version": version,
		"timestamp": "2025-01-02T03:04:05.5Z", "created_by": "anonymous", "metadata": map[string]any{},
	})
	return string(b)
}

func sseMessage(event, data string, id int64) string {
	s := ""
	if id > 0 {
		s = fmt.Sprintf("id: %d\n", id)
	}
	return s + "event: " + event + "\ndata: " + data + "\n\n"
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWatchCommand runs watch against scripted event streams. A watch that
// does not end by itself is interrupted (as by Ctrl-C) once stdout has
// lines lines.
func TestWatchCommand(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e6 := changeEvent("e6", 6, "agent-1", "local", "prefs/ui", "update", `{"theme":"dark"}`, 3)
	e7 := changeEvent("e7", 7, "agent-2", "shared", "plan", "delete", `null`, 4)
	e51 := changeEvent("e51", 51, "agent-1", "local", "a", "create", `2`, 3)
	snap := `{"type":"snapshot","revision":50,"entry":{"agent_id":"agent-1","tier":"local","key":"a","value":1,"version":2,"revision":40,` +
		`"created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:01Z","expires_at":null,"created_by":"x","checksum":"","metadata":{}}}`
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		conns    []sseConn
		lines    int // stdout lines after which to interrupt; 0: the watch ends by itself
		wantCode int
		wantOut  string
		errHas   []string
	}{
		{
			// Every agent by default (the AGENT column), filters, history
			// from a revision; one line per event.
			name: "table",
			args: []string{"watch", "--tier", "local", "--tier", "shared", "--key", "prefs/**", "--change-type", "update", "--from-revision", "5"},
			conns: []sseConn{{query: "tier=local&tier=shared&key=prefs/**&change_type=update&from_revision=5", lastEventID: "5",
				chunks: []string{": ping\n\n", sseMessage("change", e6, 6), sseMessage("change", e7, 7)}}},
			lines: 3,
			wantOut: "TIME                  REVISION  CHANGE    AGENT         KEY                       VERSION  VALUE\n" +
				"2025-01-02T03:04:05Z  6         update    agent-1       local/prefs/ui            3        {\"theme\":\"dark\"}\n" +
				"2025-01-02T03:04:05Z  7         delete    agent-2       shared/plan               4        -\n",
		},
		{
			// -a, repeatable, filters by agent; -o json prints the events
			// as sent, one per line.
			name:    "json-agents",
			args:    []string{"watch", "-a", "agent-1", "-a", "agent-2", "-o", "json"},
			conns:   []sseConn{{query: "agent_id=agent-1&agent_id=agent-2", chunks: []string{sseMessage("change", e6, 6), sseMessage("change", e7, 7)}}},
			lines:   2,
			wantOut: e6 + "\n" + e7 + "\n",
		},
		{
			// AGENTSTATE_AGENT filters too; one agent: no AGENT column.
			name:  "env-agent",
			args:  []string{"watch"},
			env:   map[string]string{"AGENTSTATE_AGENT": "agent-1"},
			conns: []sseConn{{query: "agent_id=agent-1", chunks: []string{sseMessage("change", e6, 6)}}},
			lines: 2,
			wantOut: "TIME                  REVISION  CHANGE    KEY                       VERSION  VALUE\n" +
				"2025-01-02T03:04:05Z  6         update    local/prefs/ui            3        {\"theme\":\"dark\"}\n",
		},
		{
			// -a '' watches every agent despite AGENTSTATE_AGENT.
			name:    "all-agents-despite-env",
			args:    []string{"watch", "-a", "", "-o", "json"},
			env:     map[string]string{"AGENTSTATE_AGENT": "agent-1"},
			conns:   []sseConn{{chunks: []string{sseMessage("change", e7, 7)}}},
			lines:   1,
			wantOut: e7 + "\n",
		},
		{
			// A snapshot line, then the changes after it.
			name: "snapshot",
			args: []string{"watch", "--from-revision", "3", "--on-compacted", "snapshot", "-a", "agent-1"},
			conns: []sseConn{{query: "agent_id=agent-1&from_revision=3&on_compacted=snapshot", lastEventID: "3", chunks: []string{sseMessage("snapshot", `{"type":"snapshot_begin","revision":50}`, 0), sseMessage("snapshot", snap, 0),
				sseMessage("change", e51, 51), sseMessage("snapshot", `{"type":"snapshot_end","revision":51}`, 51)}}},
			lines: 5,
			wantOut: "TIME                  REVISION  CHANGE    KEY                       VERSION  VALUE\n" +
				"-- snapshot at revision 50: the current state follows --\n" +
				"2025-01-01T00:00:01Z  50        snapshot  local/a                   2        1\n" +
				"2025-01-02T03:04:05Z  51        create    local/a                   3        2\n" +
				"-- snapshot complete at revision 51 --\n",
		},
		{
			// A lost connection is resumed, and said so on stderr.
			name: "reconnect",
			args: []string{"watch", "-o", "json"},
			conns: []sseConn{
				{chunks: []string{sseMessage("change", e6, 6)}, end: true},
				{query: "from_revision=6", lastEventID: "6", chunks: []string{sseMessage("change", e7, 7)}},
			},
			lines:   2,
			wantOut: e6 + "\n" + e7 + "\n",
			errHas:  []string{"watch: client: transport failure: /v1/events: the server ended the event stream; reconnecting in "},
		},
		{
			// History no longer kept: exit status 1 with the oldest revision.
			name:     "compacted",
			args:     []string{"watch", "--from-revision", "3", "-o", "json"},
			conns:    []sseConn{{query: "from_revision=3", lastEventID: "3", chunks: []string{sseMessage("error", `{"error":{"code":"compacted","message":"revision 3 is compacted","details":{"oldest_revision":100}}}`, 0)}}},
			wantCode: 1,
			errHas:   []string{"error: compacted: revision 3 is compacted\n  oldest_revision: 100\n"},
		},
		{
			// A refusal ends it at once.
			name:     "unauthenticated",
			args:     []string{"watch", "-o", "json"},
			conns:    []sseConn{{status: 401, body: apiError("unauthenticated", "missing bearer token", "")}},
			wantCode: 1,
			errHas:   []string{"error: unauthenticated: missing bearer token\n"},
		},
		{
			// --timeout ends the watch: exit status 0.
			name:    "timeout",
			args:    []string{"watch", "--timeout", "200ms", "-o", "json"},
			conns:   []sseConn{{chunks: []string{sseMessage("change", e6, 6)}}},
			wantOut: e6 + "\n",
		},
		// Usage errors.
		{name: "bad-tier", args: []string{"watch", "--tier", "cache"}, wantCode: 2, errHas: []string{`unknown tier "cache"`}},
		{name: "bad-change-type", args: []string{"watch", "--change-type", "upsert"}, wantCode: 2, errHas: []string{`unknown change type "upsert"`}},
		{name: "bad-on-compacted", args: []string{"watch", "--on-compacted", "ignore"}, wantCode: 2, errHas: []string{`invalid --on-compacted "ignore"`}},
		{name: "negative-revision", args: []string{"watch", "--from-revision", "-1"}, wantCode: 2, errHas: []string{"--from-revision must be positive"}},
		{name: "argument", args: []string{"watch", "local"}, wantCode: 2, errHas: []string{`unexpected argument "local"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := newSSEFake(t, tt.conns...)
			env := map[string]string{"AGENTSTATE_SERVER": base}
			for k, v := range tt.env {
				env[k] = v
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out, errb syncBuffer
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, tt.args, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
			}()
			var code int
			if tt.lines > 0 {
				require.Eventually(t, func() bool { return strings.Count(out.String(), "\n") >= tt.lines }, 5*time.Second, 5*time.Millisecond,
					"stdout: %s\nstderr: %s", &out, &errb)
				cancel() // Ctrl-C
			}
			select {
			case code = <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("watch did not end; stdout: %s", out.String())
			}
			require.Equal(t, tt.wantCode, code, "stderr: %s", errb.String())
			if tt.wantOut != "" || tt.wantCode != 0 {
				require.Equal(t, tt.wantOut, out.String())
			}
			for _, s := range tt.errHas {
				require.Contains(t, errb.String(), s)
			}
			if tt.wantCode == 0 && len(tt.errHas) == 0 {
				require.Empty(t, errb.String())
			}
			require.NotContains(t, out.String()+errb.String(), "\x1b[", "no colours off a terminal")
		})
	}
}
