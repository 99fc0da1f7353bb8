package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// cutPlan says how the model server ends one connection: after sending
// after messages, by dropping it, by dropping it inside a message, or with
// an unavailable error whose resume_from lags behind by lag revisions.
type cutPlan struct {
	after int
	mode  int // 0 drop, 1 partial message, 2 unavailable
	lag   int64
}

// modelServer serves /v1/events over a fixed history as the server does:
// from_revision or Last-Event-ID, "id:" on the last event of each
// revision, and connections cut as planned.
type modelServer struct {
	history [][]string // history[r-1]: event ids of revision r
	mu      sync.Mutex
	plans   []cutPlan
	conns   int
	errs    []string
}

func (m *modelServer) handle(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	var plan *cutPlan
	if m.conns < len(m.plans) {
		plan = &m.plans[m.conns]
	}
	m.conns++
	m.mu.Unlock()
	from := int64(-1)
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		from, _ = strconv.ParseInt(v, 10, 64)
	} else if v := r.URL.Query().Get("from_revision"); v != "" {
		from, _ = strconv.ParseInt(v, 10, 64)
	}
	if q := r.URL.Query().Get("from_revision"); q != r.Header.Get("Last-Event-ID") {
		m.mu.Lock()
		m.errs = append(m.errs, fmt.Sprintf("from_revision %q and Last-Event-ID %q differ", q, r.Header.Get("Last-Event-ID")))
		m.mu.Unlock()
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	f := w.(http.Flusher)
	sent, complete := 0, max(from, 0)
	for i, ids := range m.history {
		rev := int64(i + 1)
		if rev <= from {
			continue
		}
		for j, id := range ids {
			if plan != nil && sent == plan.after {
				switch plan.mode {
				case 1:
					io.WriteString(w, "event: change\ndata: "+change(id, rev, "k")[:20])
				case 2:
					io.WriteString(w, errorMsg("unavailable", fmt.Sprintf(`{"resume_from":%d}`, max(complete-plan.lag, 0))))
				}
				f.Flush()
				return
			}
			io.WriteString(w, changeMsg(id, rev, "k", j == len(ids)-1))
			if j%2 == 0 {
				io.WriteString(w, ": ping\n\n")
			}
			f.Flush()
			sent++
		}
		complete = rev
	}
	<-r.Context().Done()
}

// TestWatchExactlyOnce checks, over random histories and random cuts,
// that a watch from revision 0 delivers the whole history in order,
// each event exactly once.
func TestWatchExactlyOnce(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		m := &modelServer{}
		var want []string
		for r := range rapid.IntRange(1, 12).Draw(rt, "revisions") {
			var ids []string
			for i := range rapid.IntRange(1, 4).Draw(rt, fmt.Sprintf("events%d", r)) {
				ids = append(ids, fmt.Sprintf("r%de%d", r+1, i))
			}
			m.history = append(m.history, ids)
			want = append(want, ids...)
		}
		m.plans = rapid.SliceOfN(rapid.Custom(func(t *rapid.T) cutPlan {
			return cutPlan{
				after: rapid.IntRange(0, 6).Draw(t, "after"),
				mode:  rapid.IntRange(0, 2).Draw(t, "mode"),
				lag:   rapid.Int64Range(0, 2).Draw(t, "lag"),
			}
		}), 0, 8).Draw(rt, "plans")

		srv := httptest.NewServer(http.HandlerFunc(m.handle))
		defer srv.Close()
		c := newTestClient(t, srv.URL)
		w := c.Watch(context.Background(), WatchFilter{}, 0)
		defer w.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var got []string
		for range want {
			e, err := w.Next(ctx)
			if err != nil {
				rt.Fatalf("after %v: %v", got, err)
			}
			got = append(got, e.EventID)
		}
		if !equalStrings(got, want) {
			rt.Fatalf("delivered %v, want %v", got, want)
		}
		if rev := w.Revision(); rev != int64(len(m.history)) {
			rt.Fatalf("Revision() = %d, want %d", rev, len(m.history))
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if len(m.errs) > 0 {
			rt.Fatalf("requests: %v", m.errs)
		}
	})
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
