// Package streamtest is the conformance suite of the event store contract
// (store.StreamStore): every implementation runs it unchanged from its own
// tests, as store/storetest does for store.Store:
//
//	func TestStreamConformance(t *testing.T) {
//		streamtest.Run(t, func(t testing.TB) store.StreamStore {
//			s, err := sqlite.OpenStreams(t.Context(), t.TempDir(), sqlite.StreamOptions{})
//			require.NoError(t, err)
//			t.Cleanup(func() { require.NoError(t, s.Close()) })
//			return s
//		})
//	}
//
// Run covers appends and their expected versions, dense versions and
// positions, atomicity, event ids, reads of one stream and of every stream
// by prefix, concurrent appenders, snapshots, WaitAppend, malformed
// requests and (for a store that is an io.Closer) ErrClosed. Every case gets
// a fresh store from newStore; nothing runs in parallel except the
// goroutines of the concurrency cases, which are always joined.
//
// Beyond the comments of store.StreamStore, the suite fixes these rules:
//   - The first append of a store takes position 1; a failed append takes no
//     position and writes nothing.
//   - An event id is unique in the whole store: an append repeating one
//     (within itself or of any stored event) fails with store.ErrInvalid. An
//     empty EventID gets a new UUIDv7.
//   - ReadStream past the end of an existing stream returns no events and
//     no error. ReadAll never returns more than limit events, except an
//     append larger than limit when it comes first (returned whole).
//   - SaveSnapshot of a missing stream fails with store.ErrNotFound, at a
//     version the stream does not have with store.ErrInvalid. LoadSnapshot
//     returns the snapshot with the highest version saved: saving at a
//     version below it succeeds and changes nothing; saving at the same
//     version replaces it.
//   - Malformed requests fail with store.ErrInvalid: a stream id (or ReadAll
//     prefix) that is not of agent-id syntax, no events or more than 1000, an
//     empty event type or one longer than 256 bytes, data that is not JSON,
//     metadata given but not JSON, an expected version below -1, a negative
//     from version, position or snapshot version, a maxCount or limit outside
//     1..1000, snapshot state that is not JSON.
package streamtest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
)

// Run runs the whole suite. newStore must return a fresh, empty store and
// register its own cleanup (t.Cleanup) to close it; it is called once per
// case. The Closed case closes its store itself when the store is an
// io.Closer, so the cleanup's Close must accept an already closed store.
func Run(t *testing.T, newStore func(t testing.TB) store.StreamStore) {
	f := factory(newStore)
	t.Run("Append", func(t *testing.T) { testAppend(t, f) })
	t.Run("ExpectedVersion", func(t *testing.T) { testExpectedVersion(t, f) })
	t.Run("EventIDs", func(t *testing.T) { testEventIDs(t, f) })
	t.Run("ReadStream", func(t *testing.T) { testReadStream(t, f) })
	t.Run("ReadAll", func(t *testing.T) { testReadAll(t, f) })
	t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, f) })
	t.Run("Snapshots", func(t *testing.T) { testSnapshots(t, f) })
	t.Run("WaitAppend", func(t *testing.T) { testWaitAppend(t, f) })
	t.Run("Invalid", func(t *testing.T) { testInvalid(t, f) })
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, f) })
}

type factory func(t testing.TB) store.StreamStore

// timeSlack is how far a stored timestamp may be from the instant it records
// (stores may keep only milliseconds or microseconds).
const timeSlack = time.Millisecond

// ver returns a pointer for AppendRequest.ExpectedVersion.
func ver(n int64) *int64 { return &n }

// anyVersion is the nil expectation (any state), for readability in tables.
var anyVersion *int64

// ev builds an event of type typ with JSON data.
func ev(typ, data string) store.NewStreamEvent {
	return store.NewStreamEvent{Type: typ, Data: json.RawMessage(data)}
}

// evs builds n events named by tag: type tag, data {"tag":tag,"n":i}.
func evs(tag string, n int) []store.NewStreamEvent {
	out := make([]store.NewStreamEvent, n)
	for i := range out {
		out[i] = ev(tag, fmt.Sprintf(`{"tag":%q,"n":%d}`, tag, i))
	}
	return out
}

func appendTo(t testing.TB, s store.StreamStore, stream string, expected *int64, events ...store.NewStreamEvent) (*store.AppendResult, error) {
	t.Helper()
	return s.Append(t.Context(), store.AppendRequest{StreamID: stream, Events: events, ExpectedVersion: expected})
}

// mustAppend appends and checks that a result came back.
func mustAppend(t testing.TB, s store.StreamStore, stream string, expected *int64, events ...store.NewStreamEvent) *store.AppendResult {
	t.Helper()
	res, err := appendTo(t, s, stream, expected, events...)
	require.NoError(t, err, "Append %d events to %s (expected %s)", len(events), stream, fmtExpected(expected))
	require.NotNil(t, res, "Append to %s returned a nil result", stream)
	return res
}

func fmtExpected(e *int64) string {
	if e == nil {
		return "any"
	}
	return fmt.Sprint(*e)
}

// readStream reads the whole stream (up to 1000 events).
func readStream(t testing.TB, s store.StreamStore, stream string) []store.StreamEvent {
	t.Helper()
	got, err := s.ReadStream(t.Context(), stream, 0, 1000)
	require.NoError(t, err, "ReadStream %s", stream)
	return got
}

// readAll pages through every event of the store with ReadAll, checking
// that each page holds whole appends.
func readAll(t testing.TB, s store.StreamStore, prefix string) []store.StreamEvent {
	t.Helper()
	var all []store.StreamEvent
	var after int64
	for {
		page, err := s.ReadAll(t.Context(), prefix, after, 1000)
		require.NoError(t, err, "ReadAll %q after %d", prefix, after)
		if len(page) == 0 {
			return all
		}
		requireWholeAppends(t, page, "ReadAll page")
		all = append(all, page...)
		after = page[len(page)-1].Position
	}
}

// requireWholeAppends checks that events are in (Position, Index) order and
// that each position's events are numbered densely from index 0.
func requireWholeAppends(t testing.TB, events []store.StreamEvent, what string) {
	t.Helper()
	for i, e := range events {
		if i == 0 || events[i-1].Position != e.Position {
			require.Zero(t, e.Index, "%s: event %d starts position %d at index %d: a partial append", what, i, e.Position, e.Index)
			if i > 0 {
				require.Greater(t, e.Position, events[i-1].Position, "%s: positions ascend", what)
			}
			continue
		}
		p := events[i-1]
		require.Equal(t, p.Index+1, e.Index, "%s: event %d: indexes of position %d are dense", what, i, e.Position)
		require.Equal(t, p.StreamID, e.StreamID, "%s: an append is to one stream", what)
		require.Equal(t, p.Version+1, e.Version, "%s: an append's versions are consecutive", what)
	}
}

// label renders an event compactly for table comparisons:
// stream@version#position.index:type.
func label(e store.StreamEvent) string {
	return fmt.Sprintf("%s@%d#%d.%d:%s", e.StreamID, e.Version, e.Position, e.Index, e.Type)
}

func labels(events []store.StreamEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = label(e)
	}
	return out
}

// requireWrongVersion checks a failed expectation's error.
func requireWrongVersion(t testing.TB, err error, stream string, expected, current int64) {
	t.Helper()
	require.Error(t, err, "append to %s expecting %d: want a wrong expected version error", stream, expected)
	require.ErrorIs(t, err, store.ErrWrongExpectedVersion, "errors.Is ErrWrongExpectedVersion")
	var we *store.WrongExpectedVersionError
	require.ErrorAs(t, err, &we, "a *store.WrongExpectedVersionError")
	require.Equal(t, stream, we.StreamID, "WrongExpectedVersionError.StreamID")
	require.Equal(t, expected, we.Expected, "WrongExpectedVersionError.Expected")
	require.Equal(t, current, we.CurrentVersion, "WrongExpectedVersionError.CurrentVersion")
}

// requireJSON compares JSON by meaning (a store may re-encode it).
func requireJSON(t testing.TB, want string, got json.RawMessage, what string) {
	t.Helper()
	require.NotEmpty(t, got, "%s: empty", what)
	require.JSONEq(t, want, string(got), what)
}
