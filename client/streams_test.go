package client

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStreamEndpoints checks the event store calls against API.md.
func TestStreamEndpoints(t *testing.T) {
	ctx := context.Background()
	const evJSON = `{"event_id":"ev-1","event_type":"OrderPlaced","event_data":{"total":12},"version":0,
		"timestamp":"2025-01-02T03:04:05.25Z","metadata":{"by":"agent-1"}}`
	tests := []struct {
		name  string
		exs   []exchange
		call  func(c *Client) (any, error)
		check func(t *testing.T, res any, err error)
	}{
		{
			// Any version: expected_version is sent as null; metadata and
			// event_id only when set; nil data is JSON null.
			name: "append/any",
			exs: []exchange{{method: "POST", path: "/v1/streams/order-1/events",
				body: `{"events":[{"event_type":"OrderPlaced","event_data":{"total":12},"metadata":{"by":"a"},"event_id":"ev-1"},
					{"event_type":"Noted","event_data":null}],"expected_version":null}`,
				reply: `{"next_version":1}`}},
			call: func(c *Client) (any, error) {
				return c.AppendEvents(ctx, "order-1", []NewEvent{
					{EventType: "OrderPlaced", EventData: map[string]int{"total": 12}, Metadata: map[string]any{"by": "a"}, EventID: "ev-1"},
					{EventType: "Noted"},
				}, nil)
			},
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				require.EqualValues(t, 1, res)
			},
		},
		{
			// NoStream is sent as -1.
			name: "append/no-stream",
			exs: []exchange{{method: "POST", path: "/v1/streams/order-1/events",
				body: `{"events":[{"event_type":"T","event_data":"x"}],"expected_version":-1}`, reply: `{"next_version":0}`}},
			call: func(c *Client) (any, error) {
				return c.AppendEvents(ctx, "order-1", []NewEvent{{EventType: "T", EventData: json.RawMessage(`"x"`)}}, Version(NoStream))
			},
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				require.EqualValues(t, 0, res)
			},
		},
		{
			// A failed expectation: the stream's current version in the error.
			name: "append/wrong-expected-version",
			exs: []exchange{{method: "POST", path: "/v1/streams/order-1/events",
				body: `{"events":[{"event_type":"T","event_data":1}],"expected_version":3}`, status: 409,
				reply: apiError("wrong_expected_version", "stream order-1 is at version 5", `{"current_version":5}`)}},
			call: func(c *Client) (any, error) {
				return c.AppendEvents(ctx, "order-1", []NewEvent{{EventType: "T", EventData: 1}}, Version(3))
			},
			check: func(t *testing.T, _ any, err error) {
				require.ErrorIs(t, err, ErrWrongExpectedVersion)
				var e *Error
				require.ErrorAs(t, err, &e)
				v, ok := e.CurrentVersion()
				require.True(t, ok)
				require.EqualValues(t, 5, v)
			},
		},
		{
			// An id with reserved characters is escaped as one segment.
			name: "append/escaped-id",
			exs: []exchange{{method: "POST", path: "/v1/streams/a%2Fb%3F/events",
				body: `{"events":[],"expected_version":null}`, status: 400, reply: apiError("invalid_argument", "no events", "")}},
			call: func(c *Client) (any, error) { return c.AppendEvents(ctx, "a/b?", nil, nil) },
			check: func(t *testing.T, _ any, err error) {
				require.ErrorIs(t, err, ErrInvalidArgument)
			},
		},
		{
			// Read sends from_version always and max_count when set.
			name: "read",
			exs: []exchange{{method: "GET", path: "/v1/streams/order-1/events", query: "from_version=0&max_count=10",
				reply: `{"events":[` + evJSON + `]}`}},
			call: func(c *Client) (any, error) { return c.ReadStream(ctx, "order-1", 0, 10) },
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				evs := res.([]StreamEvent)
				require.Len(t, evs, 1)
				e := evs[0]
				require.Equal(t, "ev-1", e.EventID)
				require.Equal(t, "OrderPlaced", e.EventType)
				require.JSONEq(t, `{"total":12}`, string(e.EventData))
				require.EqualValues(t, 0, e.Version)
				require.Equal(t, time.Date(2025, 1, 2, 3, 4, 5, 25e7, time.UTC), e.Timestamp)
				require.Equal(t, map[string]any{"by": "agent-1"}, e.Metadata)
			},
		},
		{
			// An empty page is an empty slice; a missing stream is not found.
			name: "read/empty",
			exs:  []exchange{{method: "GET", path: "/v1/streams/s/events", query: "from_version=7", reply: `{"events":null}`}},
			call: func(c *Client) (any, error) { return c.ReadStream(ctx, "s", 7, 0) },
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				require.Equal(t, []StreamEvent{}, res)
			},
		},
		{
			name: "read/not-found",
			exs: []exchange{{method: "GET", path: "/v1/streams/s/events", query: "from_version=0", status: 404,
				reply: apiError("not_found", "no stream s", "")}},
			call:  func(c *Client) (any, error) { return c.ReadStream(ctx, "s", 0, 0) },
			check: func(t *testing.T, _ any, err error) { require.ErrorIs(t, err, ErrNotFound) },
		},
		{
			// Save sends version and state.
			name: "snapshot/save",
			exs: []exchange{{method: "PUT", path: "/v1/streams/order-1/snapshot", body: `{"version":4,"state":{"total":12}}`,
				reply: `{"stream_id":"order-1","version":4,"created_at":"2025-01-02T03:04:05Z"}`}},
			call: func(c *Client) (any, error) {
				return c.SaveSnapshot(ctx, "order-1", 4, map[string]int{"total": 12})
			},
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				s := res.(*StreamSnapshot)
				require.Equal(t, "order-1", s.StreamID)
				require.EqualValues(t, 4, s.Version)
				require.Nil(t, s.State)
				require.Equal(t, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), s.CreatedAt)
			},
		},
		{
			// Load answers the latest snapshot.
			name: "snapshot/load",
			exs: []exchange{{method: "GET", path: "/v1/streams/order-1/snapshot",
				reply: `{"stream_id":"order-1","version":4,"state":{"total":12},"created_at":"2025-01-02T03:04:05Z"}`}},
			call: func(c *Client) (any, error) { return c.LoadSnapshot(ctx, "order-1") },
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				require.JSONEq(t, `{"total":12}`, string(res.(*StreamSnapshot).State))
			},
		},
		{
			name: "snapshot/none",
			exs: []exchange{{method: "GET", path: "/v1/streams/order-1/snapshot", status: 404,
				reply: apiError("not_found", "no snapshot", "")}},
			call:  func(c *Client) (any, error) { return c.LoadSnapshot(ctx, "order-1") },
			check: func(t *testing.T, _ any, err error) { require.ErrorIs(t, err, ErrNotFound) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.exs...)
			res, err := tt.call(f.client(t))
			tt.check(t, res, err)
		})
	}
	// Local validation: no request.
	c, err := New("http://127.0.0.1:1")
	require.NoError(t, err)
	_, err = c.AppendEvents(ctx, "", nil, nil)
	require.ErrorContains(t, err, "empty stream id")
	_, err = c.LoadSnapshot(ctx, "..")
	require.ErrorContains(t, err, "invalid stream id")
}

// streamMsg renders a stream_event message.
func streamMsg(eventID, streamID string, version, position int64, id string) string {
	return sseMsg("stream_event", fmt.Sprintf(`{"event_id":%q,"event_type":"T","event_data":{"v":%d},"version":%d,"timestamp":"2025-01-02T03:04:05Z","stream_id":%q,"position":%d}`,
		eventID, version, version, streamID, position), id)
}

// TestSubscribe checks the stream subscriptions' requests and their
// resumption after a cut.
func TestSubscribe(t *testing.T) {
	t.Run("stream", func(t *testing.T) {
		srv := newSSEServer(t, "/v1/streams/order-1/subscribe",
			sseConn{query: "from_version=0", chunks: []string{streamMsg("a", "order-1", 0, 1, "0"), streamMsg("b", "order-1", 1, 2, "1")}},
			// Resumed after version 1; a server taking from_version as
			// inclusive sends version 1 again: skipped.
			sseConn{query: "from_version=1", lastEventID: "1", chunks: []string{streamMsg("b", "order-1", 1, 2, "1"), streamMsg("c", "order-1", 2, 3, "2")}, hold: true},
		)
		c := newTestClient(t, srv.srv.URL)
		w := c.SubscribeStream(context.Background(), "order-1", 0)
		defer w.Close()
		evs := nextN(t, w.Next, 3)
		require.Equal(t, []string{"a", "b", "c"}, []string{evs[0].EventID, evs[1].EventID, evs[2].EventID})
		require.EqualValues(t, 2, evs[2].Version)
		require.Equal(t, "order-1", evs[2].StreamID)
		require.JSONEq(t, `{"v":2}`, string(evs[2].EventData))
		require.NotEmpty(t, evs[2].Raw)
		require.EqualValues(t, 2, w.Position())
	})
	t.Run("all", func(t *testing.T) {
		srv := newSSEServer(t, "/v1/streams/events",
			// One append at position 5 (two events, the id on the last),
			// cut inside the append at position 6.
			sseConn{query: "prefix=order-&from_position=4", chunks: []string{
				streamMsg("a", "order-1", 0, 5, ""), streamMsg("b", "order-2", 0, 5, "5"), streamMsg("c", "order-1", 1, 6, "")}},
			sseConn{query: "prefix=order-&from_position=5", lastEventID: "5", chunks: []string{
				streamMsg("c", "order-1", 1, 6, ""), streamMsg("d", "order-1", 2, 6, "6")}, hold: true},
		)
		c := newTestClient(t, srv.srv.URL)
		w := c.SubscribeAll(context.Background(), "order-", 4)
		defer w.Close()
		evs := nextN(t, w.Next, 4)
		var ids []string
		for _, e := range evs {
			ids = append(ids, e.StreamID+"/"+e.EventID)
		}
		require.Equal(t, []string{"order-1/a", "order-2/b", "order-1/c", "order-1/d"}, ids)
		require.EqualValues(t, 6, w.Position())
	})
	t.Run("not-found", func(t *testing.T) {
		srv := newSSEServer(t, "/v1/streams/nope/subscribe", sseConn{status: 404, body: apiError("not_found", "no stream", "")})
		c := newTestClient(t, srv.srv.URL)
		w := c.SubscribeStream(context.Background(), "nope", -1)
		defer w.Close()
		_, err := w.Next(context.Background())
		require.ErrorIs(t, err, ErrNotFound)
	})
	t.Run("bad-id", func(t *testing.T) {
		c := newTestClient(t, "http://127.0.0.1:1")
		w := c.SubscribeStream(context.Background(), "", 0)
		defer w.Close()
		_, err := w.Next(context.Background())
		require.ErrorContains(t, err, "empty stream id")
	})
}
