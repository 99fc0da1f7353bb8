package streamtest

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
)

func testInvalid(t *testing.T, newStore factory) {
	// Setup: stream "s" with versions 0..1. Every case must fail with
	// ErrInvalid and write nothing.
	s := newStore(t)
	mustAppend(t, s, "s", anyVersion, evs("e", 2)...)
	before := readAll(t, s, "")

	appendReq := func(stream string, expected *int64, events ...store.NewStreamEvent) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := s.Append(ctx, store.AppendRequest{StreamID: stream, Events: events, ExpectedVersion: expected})
			return err
		}
	}
	readStreamCall := func(stream string, from int64, maxCount int) func(context.Context) error {
		return func(ctx context.Context) error { _, err := s.ReadStream(ctx, stream, from, maxCount); return err }
	}
	readAllCall := func(prefix string, after int64, limit int) func(context.Context) error {
		return func(ctx context.Context) error { _, err := s.ReadAll(ctx, prefix, after, limit); return err }
	}
	save := func(stream string, version int64, state string) func(context.Context) error {
		return func(ctx context.Context) error {
			var st json.RawMessage
			if state != "" {
				st = json.RawMessage(state)
			}
			return s.SaveSnapshot(ctx, store.Snapshot{StreamID: stream, Version: version, State: st, CreatedAt: time.Now()})
		}
	}
	one := ev("t", `{}`)
	cases := []struct {
		name string
		call func(context.Context) error
	}{
		// Stream ids have the agent-id syntax: 1-128 chars of [A-Za-z0-9_.:-].
		{"append: empty stream id", appendReq("", anyVersion, one)},
		{"append: stream id with a space", appendReq("a b", anyVersion, one)},
		{"append: stream id with a slash", appendReq("a/b", anyVersion, one)},
		{"append: stream id too long", appendReq(strings.Repeat("s", 129), anyVersion, one)},
		// At least one event, at most 1000.
		{"append: no events", appendReq("s", anyVersion)},
		{"append: 1001 events", appendReq("s", anyVersion, evs("e", 1001)...)},
		{"append: empty event type", appendReq("s", anyVersion, ev("", `{}`))},
		{"append: event type too long", appendReq("s", anyVersion, ev(strings.Repeat("t", 257), `{}`))},
		{"append: no data", appendReq("s", anyVersion, store.NewStreamEvent{Type: "t"})},
		{"append: data not JSON", appendReq("s", anyVersion, ev("t", `{"a":`))},
		{"append: data of two JSON values", appendReq("s", anyVersion, ev("t", `1 2`))},
		{"append: metadata not JSON", appendReq("s", anyVersion,
			store.NewStreamEvent{Type: "t", Data: []byte(`{}`), Metadata: []byte(`{oops}`)})},
		// A bad event after good ones fails the whole append.
		{"append: bad last event", appendReq("s", anyVersion, one, one, ev("t", `nope`))},
		{"append: expected version -2", appendReq("s", ver(-2), one)},
		{"append: duplicate event id", appendReq("s", anyVersion, withID("dup"), withID("dup"))},

		{"read stream: bad stream id", readStreamCall("a b", 0, 10)},
		{"read stream: negative from", readStreamCall("s", -1, 10)},
		{"read stream: max count 0", readStreamCall("s", 0, 0)},
		{"read stream: negative max count", readStreamCall("s", 0, -1)},
		{"read stream: max count 1001", readStreamCall("s", 0, 1001)},

		{"read all: bad prefix", readAllCall("a b", 0, 10)},
		{"read all: negative position", readAllCall("", -1, 10)},
		{"read all: limit 0", readAllCall("", 0, 0)},
		{"read all: limit 1001", readAllCall("", 0, 1001)},

		{"save snapshot: bad stream id", save("a/b", 0, `{}`)},
		{"save snapshot: negative version", save("s", -1, `{}`)},
		{"save snapshot: no state", save("s", 0, "")},
		{"save snapshot: state not JSON", save("s", 0, `{`)},

		{"load snapshot: bad stream id", func(ctx context.Context) error { _, err := s.LoadSnapshot(ctx, ""); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, tc.call(t.Context()), store.ErrInvalid)
		})
	}
	require.Equal(t, labels(before), labels(readAll(t, s, "")), "the invalid requests wrote nothing")
	_, err := s.LoadSnapshot(t.Context(), "s")
	require.ErrorIs(t, err, store.ErrNotFound, "the invalid snapshots saved nothing")
}

func testLifecycle(t *testing.T, newStore factory) {
	t.Run("CanceledContext", func(t *testing.T) {
		// An Append may notice the cancelled context or not; if it fails,
		// it wrote nothing.
		s := newStore(t)
		mustAppend(t, s, "s", anyVersion, evs("e", 1)...)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		res, err := s.Append(ctx, store.AppendRequest{StreamID: "s", Events: evs("e", 1)})
		if err != nil {
			require.ErrorIs(t, err, context.Canceled, "an Append failing on a cancelled context reports it")
			require.Len(t, readStream(t, s, "s"), 1, "an Append that failed on a cancelled context wrote nothing")
			return
		}
		require.Equal(t, int64(2), res.Position)
	})

	t.Run("Closed", func(t *testing.T) {
		// A store that can be closed fails every call after Close with
		// ErrClosed. (newStore's cleanup closes it again.)
		s := newStore(t)
		c, ok := s.(io.Closer)
		if !ok {
			t.Skip("the store is not an io.Closer")
		}
		mustAppend(t, s, "s", anyVersion, evs("e", 1)...)
		require.NoError(t, c.Close(), "Close")
		ctx := t.Context()
		calls := []struct {
			name string
			call func() error
		}{
			{"Append", func() error {
				_, err := s.Append(ctx, store.AppendRequest{StreamID: "s", Events: evs("e", 1)})
				return err
			}},
			{"ReadStream", func() error { _, err := s.ReadStream(ctx, "s", 0, 10); return err }},
			{"ReadAll", func() error { _, err := s.ReadAll(ctx, "", 0, 10); return err }},
			{"WaitAppend", func() error { _, err := s.WaitAppend(ctx, 100); return err }},
			{"SaveSnapshot", func() error {
				return s.SaveSnapshot(ctx, store.Snapshot{StreamID: "s", Version: 0, State: []byte(`{}`), CreatedAt: time.Now()})
			}},
			{"LoadSnapshot", func() error { _, err := s.LoadSnapshot(ctx, "s"); return err }},
		}
		for _, call := range calls {
			require.ErrorIs(t, call.call(), store.ErrClosed, "%s after Close", call.name)
		}
		require.NoError(t, c.Close(), "a second Close")
	})
}
