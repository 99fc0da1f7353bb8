package streamtest

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
)

func testAppend(t *testing.T, newStore factory) {
	t.Run("FieldsRoundTrip", func(t *testing.T) {
		s := newStore(t)
		before := time.Now()
		res := mustAppend(t, s, "orders-1", anyVersion,
			store.NewStreamEvent{EventID: "evt-1", Type: "OrderPlaced", Data: []byte(`{"sku":"a","qty":2}`),
				Metadata: []byte(`{"by":"agent-7"}`)},
			store.NewStreamEvent{Type: "Noted", Data: []byte(`"plain text"`)})
		after := time.Now()
		// The first append of a store: position 1, versions 0 and 1.
		require.Equal(t, int64(1), res.Position, "Position of the store's first append")
		require.Equal(t, int64(1), res.NextVersion, "NextVersion: the version of the last event appended")

		got := readStream(t, s, "orders-1")
		require.Len(t, got, 2)
		for i, e := range got {
			require.Equal(t, "orders-1", e.StreamID, "event %d StreamID", i)
			require.Equal(t, int64(i), e.Version, "event %d Version", i)
			require.Equal(t, int64(1), e.Position, "event %d Position: shared by the append", i)
			require.Equal(t, i, e.Index, "event %d Index", i)
			require.WithinRange(t, e.Timestamp, before.Add(-timeSlack), after.Add(timeSlack), "event %d Timestamp", i)
		}
		require.Equal(t, "evt-1", got[0].EventID, "a given EventID is kept")
		require.Equal(t, "OrderPlaced", got[0].Type)
		requireJSON(t, `{"sku":"a","qty":2}`, got[0].Data, "Data")
		requireJSON(t, `{"by":"agent-7"}`, got[0].Metadata, "Metadata")
		require.NotEmpty(t, got[1].EventID, "an empty EventID is assigned")
		require.Equal(t, "Noted", got[1].Type)
		requireJSON(t, `"plain text"`, got[1].Data, "Data")
		require.Empty(t, got[1].Metadata, "no metadata given: none read")
	})

	t.Run("DenseVersionsAndPositions", func(t *testing.T) {
		// Appends of 1, 3 and 2 events to one stream, interleaved with
		// another stream: versions are dense per stream, positions dense
		// across the store, one per append.
		s := newStore(t)
		steps := []struct {
			stream   string
			n        int
			wantNext int64
			wantPos  int64
		}{
			{"a", 1, 0, 1},
			{"b", 2, 1, 2},
			{"a", 3, 3, 3},
			{"a", 2, 5, 4},
			{"b", 1, 2, 5},
		}
		for i, st := range steps {
			res := mustAppend(t, s, st.stream, anyVersion, evs(st.stream, st.n)...)
			require.Equal(t, st.wantNext, res.NextVersion, "step %d: NextVersion", i)
			require.Equal(t, st.wantPos, res.Position, "step %d: Position", i)
		}
		require.Equal(t, []string{"a@0#1.0:a", "a@1#3.0:a", "a@2#3.1:a", "a@3#3.2:a", "a@4#4.0:a", "a@5#4.1:a"},
			labels(readStream(t, s, "a")))
		require.Equal(t, []string{"b@0#2.0:b", "b@1#2.1:b", "b@2#5.0:b"}, labels(readStream(t, s, "b")))
	})

	t.Run("FailedAppendWritesNothing", func(t *testing.T) {
		// An append failing its expectation, or for a duplicate event id in
		// its last event, writes none of its events and takes no position.
		s := newStore(t)
		mustAppend(t, s, "s", anyVersion, store.NewStreamEvent{EventID: "taken", Type: "t", Data: []byte(`1`)})
		before := readAll(t, s, "")
		failing := []struct {
			name string
			req  store.AppendRequest
		}{
			{"wrong expected version", store.AppendRequest{StreamID: "s", Events: evs("x", 3), ExpectedVersion: ver(5)}},
			{"duplicate event id in its last event", store.AppendRequest{StreamID: "s", Events: append(evs("x", 3),
				store.NewStreamEvent{EventID: "taken", Type: "t", Data: []byte(`2`)})}},
			{"duplicate event id, new stream", store.AppendRequest{StreamID: "fresh", Events: append(evs("x", 2),
				store.NewStreamEvent{EventID: "taken", Type: "t", Data: []byte(`2`)})}},
		}
		for _, f := range failing {
			_, err := s.Append(t.Context(), f.req)
			require.Error(t, err, "%s: Append must fail", f.name)
			require.Equal(t, labels(before), labels(readAll(t, s, "")), "%s: nothing written", f.name)
		}
		_, err := s.ReadStream(t.Context(), "fresh", 0, 10)
		require.ErrorIs(t, err, store.ErrNotFound, "a failed first append does not create the stream")
		res := mustAppend(t, s, "s", ver(0), evs("y", 1)...)
		require.Equal(t, int64(2), res.Position, "the failed appends took no position")
		require.Equal(t, int64(1), res.NextVersion, "the failed appends took no version")
	})
}

func testExpectedVersion(t *testing.T, newStore factory) {
	// Setup: stream "s" with versions 0..2 (appends of 2 and 1 events,
	// positions 1 and 2).
	const existing, missing = "s", "new"
	cases := []struct {
		name     string
		stream   string
		expected *int64
		n        int
		// wantNext >= 0: success with this NextVersion (and position 3);
		// otherwise a WrongExpectedVersionError with wantCurrent.
		wantNext    int64
		wantCurrent int64
	}{
		// nil: any state.
		{name: "any on a new stream", stream: missing, expected: anyVersion, n: 2, wantNext: 1},
		{name: "any on an existing stream", stream: existing, expected: anyVersion, n: 1, wantNext: 3},
		// -1: the stream must not exist.
		{name: "no stream on a new stream", stream: missing, expected: ver(store.ExpectNoStream), n: 1, wantNext: 0},
		{name: "no stream on an existing stream", stream: existing, expected: ver(store.ExpectNoStream), n: 1,
			wantNext: -1, wantCurrent: 2},
		// N: the last event's version must be N.
		{name: "last version", stream: existing, expected: ver(2), n: 2, wantNext: 4},
		{name: "stale version", stream: existing, expected: ver(1), n: 1, wantNext: -1, wantCurrent: 2},
		{name: "first version, stale", stream: existing, expected: ver(0), n: 1, wantNext: -1, wantCurrent: 2},
		{name: "version ahead", stream: existing, expected: ver(3), n: 1, wantNext: -1, wantCurrent: 2},
		{name: "version on a missing stream", stream: missing, expected: ver(0), n: 1, wantNext: -1, wantCurrent: -1},
		{name: "high version on a missing stream", stream: missing, expected: ver(7), n: 1, wantNext: -1, wantCurrent: -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			mustAppend(t, s, existing, ver(store.ExpectNoStream), evs("setup", 2)...)
			mustAppend(t, s, existing, ver(1), evs("setup", 1)...)
			before := readAll(t, s, "")

			res, err := appendTo(t, s, tc.stream, tc.expected, evs("case", tc.n)...)
			if tc.wantNext < 0 {
				requireWrongVersion(t, err, tc.stream, *tc.expected, tc.wantCurrent)
				require.Nil(t, res, "no result with an error")
				require.Equal(t, labels(before), labels(readAll(t, s, "")), "nothing written")
				return
			}
			require.NoError(t, err, "Append expecting %s", fmtExpected(tc.expected))
			require.Equal(t, tc.wantNext, res.NextVersion, "NextVersion")
			require.Equal(t, int64(3), res.Position, "Position")
			got := readStream(t, s, tc.stream)
			require.Equal(t, tc.wantNext, got[len(got)-1].Version, "the stream's last version is NextVersion")
			// NextVersion is the expectation of the next append.
			res2 := mustAppend(t, s, tc.stream, ver(res.NextVersion), evs("next", 1)...)
			require.Equal(t, tc.wantNext+1, res2.NextVersion, "append expecting the returned NextVersion")
		})
	}
}

func testEventIDs(t *testing.T, newStore factory) {
	t.Run("GeneratedAreUUIDv7AndUnique", func(t *testing.T) {
		s := newStore(t)
		mustAppend(t, s, "a", anyVersion, evs("x", 5)...)
		mustAppend(t, s, "b", anyVersion, evs("x", 5)...)
		seen := map[string]bool{}
		for _, e := range readAll(t, s, "") {
			id, err := uuid.Parse(e.EventID)
			require.NoError(t, err, "generated event id %q is a UUID", e.EventID)
			require.Equal(t, uuid.Version(7), id.Version(), "generated event id %q is a UUIDv7", e.EventID)
			require.False(t, seen[e.EventID], "event id %q assigned twice", e.EventID)
			seen[e.EventID] = true
		}
	})

	cases := []struct {
		name string
		// first is appended (and must succeed) before second.
		first, second store.AppendRequest
	}{
		// Repeating an id of the same stream.
		{"same stream", store.AppendRequest{StreamID: "a", Events: []store.NewStreamEvent{withID("id-1")}},
			store.AppendRequest{StreamID: "a", Events: []store.NewStreamEvent{withID("id-1")}}},
		// Ids are unique across streams, not per stream.
		{"other stream", store.AppendRequest{StreamID: "a", Events: []store.NewStreamEvent{withID("id-1")}},
			store.AppendRequest{StreamID: "b", Events: []store.NewStreamEvent{withID("id-1")}}},
		// A retried append is not deduplicated: it fails as a whole.
		{"retried append", store.AppendRequest{StreamID: "a", Events: []store.NewStreamEvent{withID("id-1"), withID("id-2")}},
			store.AppendRequest{StreamID: "a", Events: []store.NewStreamEvent{withID("id-1"), withID("id-2")}}},
		// Twice in one append (to a new stream: it is not created).
		{"within one append", store.AppendRequest{StreamID: "a", Events: []store.NewStreamEvent{withID("id-0")}},
			store.AppendRequest{StreamID: "b", Events: []store.NewStreamEvent{withID("id-1"), withID("id-1")}}},
	}
	for _, tc := range cases {
		t.Run("Duplicate/"+tc.name, func(t *testing.T) {
			s := newStore(t)
			_, err := s.Append(t.Context(), tc.first)
			require.NoError(t, err, "first append")
			before := readAll(t, s, "")
			_, err = s.Append(t.Context(), tc.second)
			require.ErrorIs(t, err, store.ErrInvalid, "a duplicate event id is ErrInvalid")
			require.Equal(t, labels(before), labels(readAll(t, s, "")), "nothing written")
		})
	}
}

func withID(id string) store.NewStreamEvent {
	return store.NewStreamEvent{EventID: id, Type: "t", Data: []byte(`{}`)}
}
