package client

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const min0 = DefaultBackoffMin

// TestWatch runs watches against scripted event streams: what is asked
// for on each connection, what is delivered, and how it ends.
func TestWatch(t *testing.T) {
	// The entry of key at version, in a snapshot at revision rev.
	snap := func(key string, version, rev int64) string {
		e := strings.ReplaceAll(strings.ReplaceAll(entryJSON, `"prefs/ui"`, `"`+key+`"`), `"version":3`, `"version":`+itoa(version))
		return sseMsg("snapshot", `{"type":"snapshot","revision":`+itoa(rev)+`,"entry":`+e+`}`, "")
	}
	snapBegin := func(rev int64) string {
		return sseMsg("snapshot", `{"type":"snapshot_begin","revision":`+itoa(rev)+`}`, "")
	}
	snapEnd := func(rev int64) string {
		return sseMsg("snapshot", `{"type":"snapshot_end","revision":`+itoa(rev)+`}`, itoa(rev))
	}
	tests := []struct {
		name         string
		filter       WatchFilter
		from         int64
		conns        []sseConn
		want         []string // event ids delivered, in order; snapshot entries as snap:<key>
		wantErr      error    // the error of the Next after want; nil: not read
		wantRevision int64
		wantDelays   []time.Duration
		check        func(t *testing.T, err error)
	}{
		{
			// Every filter is sent; comments and unknown messages are
			// skipped; the events of a batch share the id of its last.
			name:   "filters-and-order",
			filter: WatchFilter{AgentIDs: []string{"a", "b"}, Tiers: []string{"local"}, Key: "prefs/**", ChangeTypes: []string{"update", "delete"}, OnCompacted: OnCompactedFail},
			from:   5,
			conns: []sseConn{{
				query:       "agent_id=a&agent_id=b&tier=local&key=prefs/**&change_type=update&change_type=delete&on_compacted=fail&from_revision=5",
				lastEventID: "5",
				chunks: []string{": ping\n\n", changeMsg("e6", 6, "k", true), changeMsg("e7a", 7, "k", false),
					sseMsg("hello", "{}", ""), changeMsg("e7b", 7, "j", true), changeMsg("e8", 8, "k", true)},
				hold: true,
			}},
			want:         []string{"e6", "e7a", "e7b", "e8"},
			wantRevision: 8,
		},
		{
			// Dropped in the middle of revision 7: resumed after 6, and the
			// event of 7 already seen is not delivered again.
			name: "drop-mid-revision",
			from: 5,
			conns: []sseConn{
				{query: "from_revision=5", lastEventID: "5", chunks: []string{changeMsg("e6", 6, "k", true), changeMsg("e7a", 7, "k", false)}},
				{query: "from_revision=6", lastEventID: "6", chunks: []string{changeMsg("e7a", 7, "k", false), changeMsg("e7b", 7, "j", true), changeMsg("e8", 8, "k", true)}, hold: true},
			},
			want:         []string{"e6", "e7a", "e7b", "e8"},
			wantRevision: 8,
			wantDelays:   []time.Duration{min0},
		},
		{
			// Dropped in the middle of a message: the partial message is not
			// delivered.
			name: "drop-mid-message",
			from: 5,
			conns: []sseConn{
				{query: "from_revision=5", lastEventID: "5", chunks: []string{changeMsg("e6", 6, "k", true), "event: change\ndata: " + change("e7", 7, "k")}},
				{query: "from_revision=6", lastEventID: "6", chunks: []string{changeMsg("e7", 7, "k", true)}, hold: true},
			},
			want:         []string{"e6", "e7"},
			wantRevision: 7,
		},
		{
			// From now: no from_revision; an event of revision 10 proves 9
			// complete, so a drop inside 10 resumes after 9.
			name: "from-now",
			from: FromNow,
			conns: []sseConn{
				{chunks: []string{changeMsg("e10a", 10, "k", false), changeMsg("e10b", 10, "j", false)}},
				{query: "from_revision=9", lastEventID: "9", chunks: []string{changeMsg("e10a", 10, "k", false), changeMsg("e10b", 10, "j", false), changeMsg("e10c", 10, "i", true)}, hold: true},
			},
			want:         []string{"e10a", "e10b", "e10c"},
			wantRevision: 10,
		},
		{
			// A consumer shed with unavailable resumes from resume_from.
			name: "unavailable",
			from: 5,
			conns: []sseConn{
				{query: "from_revision=5", lastEventID: "5", chunks: []string{changeMsg("e6", 6, "k", true), errorMsg("unavailable", `{"resume_from":6}`)}},
				{query: "from_revision=6", lastEventID: "6", chunks: []string{changeMsg("e7", 7, "k", true)}, hold: true},
			},
			want:         []string{"e6", "e7"},
			wantRevision: 7,
			wantDelays:   []time.Duration{min0},
		},
		{
			// A resume_from behind what was delivered: the repeats are skipped.
			name: "unavailable-behind",
			from: 5,
			conns: []sseConn{
				{query: "from_revision=5", lastEventID: "5", chunks: []string{changeMsg("e6", 6, "k", true), changeMsg("e7", 7, "k", true), errorMsg("unavailable", `{"resume_from":6}`)}},
				{query: "from_revision=6", lastEventID: "6", chunks: []string{changeMsg("e7", 7, "k", true), changeMsg("e8", 8, "k", true)}, hold: true},
			},
			want:         []string{"e6", "e7", "e8"},
			wantRevision: 8,
		},
		{
			// A watch from now learns its position from resume_from.
			name: "unavailable-from-now",
			from: FromNow,
			conns: []sseConn{
				{chunks: []string{errorMsg("unavailable", `{"resume_from":42}`)}},
				{query: "from_revision=42", lastEventID: "42", chunks: []string{changeMsg("e43", 43, "k", true)}, hold: true},
			},
			want:         []string{"e43"},
			wantRevision: 43,
		},
		{
			// compacted ends the watch, with the oldest revision kept.
			name:    "compacted",
			from:    3,
			conns:   []sseConn{{query: "from_revision=3", lastEventID: "3", chunks: []string{errorMsg("compacted", `{"oldest_revision":100}`)}}},
			wantErr: ErrCompacted,
			check: func(t *testing.T, err error) {
				var e *Error
				require.ErrorAs(t, err, &e)
				rev, ok := e.OldestRevision()
				require.True(t, ok)
				require.EqualValues(t, 100, rev)
				require.Zero(t, e.Status, "sent in the stream, not as an HTTP status")
			},
			wantRevision: 3,
		},
		{
			// compacted answered as HTTP 410 ends it too.
			name:    "compacted-410",
			from:    3,
			conns:   []sseConn{{query: "from_revision=3", lastEventID: "3", status: 410, body: apiError("compacted", "too old", `{"oldest_revision":7}`)}},
			wantErr: ErrCompacted,
			check: func(t *testing.T, err error) {
				var e *Error
				require.ErrorAs(t, err, &e)
				rev, _ := e.OldestRevision()
				require.EqualValues(t, 7, rev)
			},
			wantRevision: 3,
		},
		{
			// A refusal is not retried.
			name:         "unauthenticated",
			from:         FromNow,
			conns:        []sseConn{{status: 401, body: apiError("unauthenticated", "no token", "")}},
			wantErr:      ErrUnauthenticated,
			wantRevision: FromNow,
		},
		{
			// Something else than an event stream is not retried.
			name:         "not-an-event-stream",
			from:         FromNow,
			conns:        []sseConn{{ctype: "text/html", chunks: []string{"<html>"}}},
			wantErr:      ErrTransport,
			wantRevision: FromNow,
		},
		{
			// Overload and proxy errors are retried with a doubling delay;
			// an error message the server does not name is terminal.
			name: "retry-then-fail",
			from: 5,
			conns: []sseConn{
				{query: "from_revision=5", lastEventID: "5", status: 503, body: apiError("unavailable", "starting", "")},
				{query: "from_revision=5", lastEventID: "5", status: 502, body: "<h1>Bad Gateway</h1>"},
				{query: "from_revision=5", lastEventID: "5", status: 429, body: apiError("rate_limited", "slow down", "")},
				{query: "from_revision=5", lastEventID: "5", chunks: []string{changeMsg("e6", 6, "k", true), errorMsg("permission_denied", "")}},
			},
			want:         []string{"e6"},
			wantErr:      ErrPermissionDenied,
			wantRevision: 6,
			wantDelays:   []time.Duration{min0, 2 * min0, 4 * min0},
		},
		{
			// The current state of compacted keys comes first, between a
			// begin and an end message; the end is a resume point.
			name:   "snapshot",
			filter: WatchFilter{OnCompacted: OnCompactedSnapshot},
			from:   3,
			conns: []sseConn{{query: "on_compacted=snapshot&from_revision=3", lastEventID: "3",
				chunks: []string{snapBegin(50), snap("a", 1, 50), snap("b", 2, 50), changeMsg("e51", 51, "c", true), snapEnd(51)}, hold: true}},
			want:         []string{"begin", "snap:a", "snap:b", "e51", "end"},
			wantRevision: 51,
		},
		{
			// Cut in the middle of a snapshot: the snapshot starts over,
			// with a begin.
			name:   "snapshot-cut",
			filter: WatchFilter{OnCompacted: OnCompactedSnapshot},
			from:   3,
			conns: []sseConn{
				{query: "on_compacted=snapshot&from_revision=3", lastEventID: "3", chunks: []string{snapBegin(50), snap("a", 1, 50)}},
				{query: "on_compacted=snapshot&from_revision=3", lastEventID: "3", chunks: []string{snapBegin(50), snap("a", 1, 50), snap("b", 2, 50), changeMsg("e51", 51, "c", true), snapEnd(51)}, hold: true},
			},
			want:         []string{"begin", "snap:a", "begin", "snap:a", "snap:b", "e51", "end"},
			wantRevision: 51,
		},
		{
			// Cut after the entries, inside the first revision after the
			// snapshot: resumed there; a change of a key already sent in the
			// snapshot at that version or a later one is dropped.
			name:   "snapshot-then-cut",
			filter: WatchFilter{OnCompacted: OnCompactedSnapshot},
			from:   3,
			conns: []sseConn{
				{query: "on_compacted=snapshot&from_revision=3", lastEventID: "3", chunks: []string{
					snapBegin(50), snap("a", 1, 50), snap("b", 52, 53), changeMsg("e51a", 51, "c", false)}},
				{query: "on_compacted=snapshot&from_revision=50", lastEventID: "50", chunks: []string{
					changeMsg("e51a", 51, "c", false), changeMsg("e51b", 51, "d", true), changeMsg("e52", 52, "b", true), changeMsg("e53", 53, "b", true)}, hold: true},
			},
			want:         []string{"begin", "snap:a", "snap:b", "e51a", "e51b", "e53"},
			wantRevision: 53,
		},
		{
			// Snapshot entries without begin and end are delivered too.
			name:   "snapshot-entries-only",
			filter: WatchFilter{OnCompacted: OnCompactedSnapshot},
			from:   3,
			conns: []sseConn{{query: "on_compacted=snapshot&from_revision=3", lastEventID: "3",
				chunks: []string{snap("a", 1, 50), changeMsg("e51", 51, "c", true)}, hold: true}},
			want:         []string{"snap:a", "e51"},
			wantRevision: 51,
		},
		{
			// A bad OnCompacted fails without connecting.
			name:         "bad-on-compacted",
			filter:       WatchFilter{OnCompacted: "ignore"},
			from:         FromNow,
			wantErr:      errors.New("invalid OnCompacted"),
			wantRevision: FromNow,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSSEServer(t, "/v1/events", tt.conns...)
			c := newTestClient(t, srv.srv.URL, WithToken("tok"))
			w := c.Watch(context.Background(), tt.filter, tt.from)
			defer w.Close()
			got := nextN(t, w.Next, len(tt.want))
			require.Equal(t, tt.want, eventIDs(got))
			if tt.wantErr != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_, err := w.Next(ctx)
				if _, sentinel := tt.wantErr.(*Error); sentinel || tt.wantErr == ErrTransport {
					require.ErrorIs(t, err, tt.wantErr)
				} else {
					require.ErrorContains(t, err, tt.wantErr.Error())
				}
				if tt.check != nil {
					tt.check(t, err)
				}
				n := srv.requests()
				_, again := w.Next(ctx)
				require.Equal(t, err, again, "a terminal error stays")
				require.Equal(t, n, srv.requests(), "no reconnection after a terminal error")
			}
			require.Equal(t, tt.wantRevision, w.Revision())
			delays, _ := c.recorded()
			if tt.wantDelays != nil {
				require.Equal(t, tt.wantDelays, delays)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestWatchEventFields checks the decoding of a change event.
func TestWatchEventFields(t *testing.T) {
	srv := newSSEServer(t, "/v1/events", sseConn{chunks: []string{changeMsg("e6", 6, "prefs/ui", true)}, hold: true})
	c := newTestClient(t, srv.srv.URL)
	w := c.Watch(context.Background(), WatchFilter{}, FromNow)
	defer w.Close()
	e := nextN(t, w.Next, 1)[0]
	require.Equal(t, EventChange, e.Type)
	require.Equal(t, "e6", e.EventID)
	require.EqualValues(t, 6, e.Revision)
	require.Equal(t, "agent-1", e.AgentID)
	require.Equal(t, TierLocal, e.Tier)
	require.Equal(t, "prefs/ui", e.StateKey)
	require.Equal(t, ChangeUpdate, e.ChangeType)
	require.JSONEq(t, `{"n":5}`, string(e.OldValue))
	require.JSONEq(t, `{"n":6}`, string(e.NewValue))
	require.EqualValues(t, 6, e.Version)
	require.Equal(t, time.Date(2025, 1, 2, 3, 4, 5, 5e8, time.UTC), e.Timestamp)
	require.Equal(t, "anonymous", e.CreatedBy)
	require.Nil(t, e.Snapshot)
	require.JSONEq(t, change("e6", 6, "prefs/ui"), string(e.Raw))
}

// TestWatchBackoff checks the delays: doubling from the minimum, capped at
// the maximum, and back to the minimum once a connection delivers.
func TestWatchBackoff(t *testing.T) {
	fail := sseConn{status: 503, body: apiError("unavailable", "down", "")}
	srv := newSSEServer(t, "/v1/events", fail, fail, fail, fail, fail,
		sseConn{chunks: []string{changeMsg("e1", 1, "k", true)}}, // then ends: one retry
		sseConn{query: "from_revision=1", lastEventID: "1", status: 503, body: apiError("unavailable", "down", "")},
		sseConn{query: "from_revision=1", lastEventID: "1", chunks: []string{changeMsg("e2", 2, "k", true)}, hold: true})
	c := newTestClient(t, srv.srv.URL, WithReconnectBackoff(time.Second, 3*time.Second))
	w := c.Watch(context.Background(), WatchFilter{}, FromNow)
	defer w.Close()
	require.Equal(t, []string{"e1", "e2"}, eventIDs(nextN(t, w.Next, 2)))
	delays, errs := c.recorded()
	s := time.Second
	require.Equal(t, []time.Duration{s, 2 * s, 3 * s, 3 * s, 3 * s, s, 2 * s}, delays)
	require.Len(t, errs, 7)
	require.ErrorIs(t, errs[0], ErrUnavailable)
	require.ErrorIs(t, errs[5], ErrTransport, "the server ended the stream")

	// The jitter keeps a delay between half and all of it.
	for range 100 {
		d := halfJitter(time.Second)
		require.True(t, d >= 500*time.Millisecond && d <= time.Second, d)
	}
}

// TestWatchNetworkFailures checks reconnection after failures below HTTP:
// connections refused while the server restarts, and a connection cut.
func TestWatchNetworkFailures(t *testing.T) {
	srv := newSSEServer(t, "/v1/events",
		sseConn{query: "from_revision=0", lastEventID: "0", chunks: []string{changeMsg("e1", 1, "k", true), changeMsg("e2a", 2, "k", false)}, hold: true},
		sseConn{query: "from_revision=1", lastEventID: "1", chunks: []string{changeMsg("e2a", 2, "k", false), changeMsg("e2b", 2, "j", true)}, hold: true},
	)
	var refuse atomic.Int32
	refuse.Store(2)
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if refuse.Add(-1) >= 0 {
			return nil, errors.New("connection refused")
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	c := newTestClient(t, srv.srv.URL, WithHTTPClient(&http.Client{Transport: rt}))
	w := c.Watch(context.Background(), WatchFilter{}, 0)
	defer w.Close()
	require.Equal(t, []string{"e1", "e2a"}, eventIDs(nextN(t, w.Next, 2)))
	srv.srv.CloseClientConnections()
	require.Equal(t, []string{"e2b"}, eventIDs(nextN(t, w.Next, 1)))
	_, errs := c.recorded()
	require.Len(t, errs, 3)
	for _, err := range errs {
		require.ErrorIs(t, err, ErrTransport)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestWatchEnd checks the ways a watch ends: Close, the watch's context,
// and a Next's own context (which does not end the watch).
func TestWatchEnd(t *testing.T) {
	t.Run("close-unblocks-next", func(t *testing.T) {
		srv := newSSEServer(t, "/v1/events", sseConn{hold: true})
		c := newTestClient(t, srv.srv.URL)
		w := c.Watch(context.Background(), WatchFilter{}, FromNow)
		done := make(chan error, 1)
		go func() {
			_, err := w.Next(context.Background())
			done <- err
		}()
		<-srv.connected
		require.NoError(t, w.Close())
		select {
		case err := <-done:
			require.ErrorIs(t, err, ErrWatcherClosed)
		case <-time.After(5 * time.Second):
			t.Fatal("Next still blocked after Close")
		}
		_, err := w.Next(context.Background())
		require.ErrorIs(t, err, ErrWatcherClosed)
		require.NoError(t, w.Close(), "Close twice")
	})
	t.Run("close-during-backoff", func(t *testing.T) {
		srv := newSSEServer(t, "/v1/events", sseConn{status: 503, body: apiError("unavailable", "down", "")})
		c, err := New(srv.srv.URL, WithReconnectBackoff(time.Hour, time.Hour)) // real sleeps
		require.NoError(t, err)
		w := c.Watch(context.Background(), WatchFilter{}, FromNow)
		done := make(chan error, 1)
		go func() {
			_, err := w.Next(context.Background())
			done <- err
		}()
		<-srv.connected
		w.Close()
		select {
		case err := <-done:
			require.ErrorIs(t, err, ErrWatcherClosed)
		case <-time.After(5 * time.Second):
			t.Fatal("Next still waiting after Close")
		}
	})
	t.Run("watch-context", func(t *testing.T) {
		srv := newSSEServer(t, "/v1/events", sseConn{hold: true})
		c := newTestClient(t, srv.srv.URL)
		ctx, cancel := context.WithCancel(context.Background())
		w := c.Watch(ctx, WatchFilter{}, FromNow)
		defer w.Close()
		go func() { <-srv.connected; cancel() }()
		_, err := w.Next(context.Background())
		require.ErrorIs(t, err, context.Canceled)
		_, err = w.Next(context.Background())
		require.ErrorIs(t, err, context.Canceled)
	})
	t.Run("next-context", func(t *testing.T) {
		srv := newSSEServer(t, "/v1/events",
			sseConn{query: "from_revision=5", lastEventID: "5", chunks: []string{changeMsg("e6", 6, "k", true)}, hold: true},
			sseConn{query: "from_revision=6", lastEventID: "6", chunks: []string{changeMsg("e7", 7, "k", true)}, hold: true})
		c := newTestClient(t, srv.srv.URL)
		w := c.Watch(context.Background(), WatchFilter{}, 5)
		defer w.Close()
		require.Equal(t, []string{"e6"}, eventIDs(nextN(t, w.Next, 1)))
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := w.Next(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		// The watch goes on, from where it was.
		require.Equal(t, []string{"e7"}, eventIDs(nextN(t, w.Next, 1)))
		delays, _ := c.recorded()
		require.Empty(t, delays, "no backoff after an interrupted Next")
	})
}
