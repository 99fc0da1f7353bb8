package streamtest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
)

func testReadStream(t *testing.T, newStore factory) {
	// Setup: stream "s" of 10 events in appends of 3, 4 and 3 events
	// (positions 1, 2, 3); stream "s-other" in between must not show.
	setup := func(t *testing.T) store.StreamStore {
		s := newStore(t)
		mustAppend(t, s, "s", anyVersion, evs("a", 3)...)
		mustAppend(t, s, "s-other", anyVersion, evs("o", 1)...)
		mustAppend(t, s, "s", anyVersion, evs("b", 4)...)
		mustAppend(t, s, "s", anyVersion, evs("c", 3)...)
		return s
	}
	all := []string{"s@0#1.0:a", "s@1#1.1:a", "s@2#1.2:a", "s@3#3.0:b", "s@4#3.1:b", "s@5#3.2:b", "s@6#3.3:b",
		"s@7#4.0:c", "s@8#4.1:c", "s@9#4.2:c"}
	cases := []struct {
		name     string
		from     int64
		maxCount int
		want     []string
	}{
		{name: "everything", from: 0, maxCount: 100, want: all},
		{name: "largest max count", from: 0, maxCount: 1000, want: all},
		{name: "first event", from: 0, maxCount: 1, want: all[:1]},
		// A window in the middle, across an append boundary.
		{name: "from 2, four events", from: 2, maxCount: 4, want: all[2:6]},
		{name: "from 3, exactly one append", from: 3, maxCount: 4, want: all[3:7]},
		{name: "last event", from: 9, maxCount: 5, want: all[9:]},
		// Past the end of an existing stream: no events, no error.
		{name: "just past the end", from: 10, maxCount: 5, want: []string{}},
		{name: "far past the end", from: 1000, maxCount: 1, want: []string{}},
	}
	s := setup(t) // read-only: the cases share it
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ReadStream(t.Context(), "s", tc.from, tc.maxCount)
			require.NoError(t, err, "ReadStream from %d max %d", tc.from, tc.maxCount)
			require.Equal(t, tc.want, labels(got))
		})
	}

	t.Run("MissingStream", func(t *testing.T) {
		cases := []struct {
			name   string
			stream string
		}{
			{"never appended to", "nothing"},
			// A prefix of an existing stream's id is not a stream.
			{"prefix of a stream", "s-oth"},
		}
		for _, tc := range cases {
			_, err := s.ReadStream(t.Context(), tc.stream, 0, 10)
			require.ErrorIs(t, err, store.ErrNotFound, "%s: ReadStream %s", tc.name, tc.stream)
		}
	})
}

func testReadAll(t *testing.T, newStore factory) {
	// Setup, in position order:
	//   1: order-1 [a b]   2: other [x]   3: order-2 [c]   4: orders [d e f]   5: order-1 [g]
	setup := func(t *testing.T) store.StreamStore {
		s := newStore(t)
		mustAppend(t, s, "order-1", anyVersion, ev("a", `1`), ev("b", `2`))
		mustAppend(t, s, "other", anyVersion, ev("x", `3`))
		mustAppend(t, s, "order-2", anyVersion, ev("c", `4`))
		mustAppend(t, s, "orders", anyVersion, ev("d", `5`), ev("e", `6`), ev("f", `7`))
		mustAppend(t, s, "order-1", anyVersion, ev("g", `8`))
		return s
	}
	var (
		a = "order-1@0#1.0:a"
		b = "order-1@1#1.1:b"
		x = "other@0#2.0:x"
		c = "order-2@0#3.0:c"
		d = "orders@0#4.0:d"
		e = "orders@1#4.1:e"
		f = "orders@2#4.2:f"
		g = "order-1@2#5.0:g"
	)
	cases := []struct {
		name   string
		prefix string
		after  int64
		limit  int
		want   []string
	}{
		{name: "everything", prefix: "", after: 0, limit: 100, want: []string{a, b, x, c, d, e, f, g}},
		// A prefix selects streams by their id's start, in position order.
		{name: "prefix order-", prefix: "order-", limit: 100, want: []string{a, b, c, g}},
		{name: "prefix order", prefix: "order", limit: 100, want: []string{a, b, c, d, e, f, g}},
		{name: "prefix is a whole id", prefix: "order-1", limit: 100, want: []string{a, b, g}},
		{name: "prefix other", prefix: "other", limit: 100, want: []string{x}},
		{name: "prefix matching nothing", prefix: "zzz", limit: 100, want: []string{}},
		// afterPosition is exclusive.
		{name: "after 3", after: 3, limit: 100, want: []string{d, e, f, g}},
		{name: "after 3, prefix order-", prefix: "order-", after: 3, limit: 100, want: []string{g}},
		{name: "after the last position", after: 5, limit: 100, want: []string{}},
		{name: "far after", after: 1000, limit: 100, want: []string{}},
		// Whole appends: never more than limit events...
		{name: "limit 3", limit: 3, want: []string{a, b, x}},
		{name: "limit 4", limit: 4, want: []string{a, b, x, c}},
		{name: "limit 5 stops before a 3-event append", limit: 5, want: []string{a, b, x, c}},
		{name: "limit 7", limit: 7, want: []string{a, b, x, c, d, e, f}},
		{name: "prefix order, limit 3", prefix: "order", limit: 3, want: []string{a, b, c}},
		// ...except a first append larger than limit, returned whole.
		{name: "limit 1, first append of 2", limit: 1, want: []string{a, b}},
		{name: "limit 2 after 3, first append of 3", after: 3, limit: 2, want: []string{d, e, f}},
	}
	s := setup(t) // read-only: the cases share it
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ReadAll(t.Context(), tc.prefix, tc.after, tc.limit)
			require.NoError(t, err, "ReadAll %q after %d limit %d", tc.prefix, tc.after, tc.limit)
			require.Equal(t, tc.want, labels(got))
			for _, e := range got {
				require.NotEmpty(t, e.EventID, "EventID")
				require.NotEmpty(t, e.Data, "Data")
				require.False(t, e.Timestamp.IsZero(), "Timestamp")
			}
		})
	}

	t.Run("PagingSeesEveryAppendOnce", func(t *testing.T) {
		// Paging with small limits returns every event once, whole appends
		// per page, for every prefix.
		want := map[string][]string{"": {a, b, x, c, d, e, f, g}, "order": {a, b, c, d, e, f, g}, "order-": {a, b, c, g}}
		for prefix, w := range want {
			for limit := 1; limit <= 4; limit++ {
				var got []string
				var after int64
				for pages := 0; ; pages++ {
					require.Less(t, pages, 20, "prefix %q limit %d: paging does not end", prefix, limit)
					page, err := s.ReadAll(t.Context(), prefix, after, limit)
					require.NoError(t, err)
					if len(page) == 0 {
						break
					}
					requireWholeAppends(t, page, "page")
					got = append(got, labels(page)...)
					after = page[len(page)-1].Position
				}
				require.Equal(t, w, got, "prefix %q limit %d", prefix, limit)
			}
		}
	})

	t.Run("EmptyStore", func(t *testing.T) {
		s := newStore(t)
		got, err := s.ReadAll(t.Context(), "", 0, 10)
		require.NoError(t, err)
		require.Empty(t, got)
	})
}
