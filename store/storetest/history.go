package storetest

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
)

// putVersions writes n versions {"v":1}..{"v":n} of k, one request each.
func putVersions(t testing.TB, s store.Store, k store.Key, n int, opts ...opt) []store.OpResult {
	t.Helper()
	out := make([]store.OpResult, n)
	for i := range n {
		out[i] = mustPut(t, s, k, fmt.Sprintf(`{"v":%d}`, i+1), opts...)
	}
	return out
}

func testHistory(t *testing.T, newStore factory) {
	t.Run("NewestFirst", func(t *testing.T) {
		s := newStore(t)
		k := key("doc")
		writes := putVersions(t, s, k, 5, withSummary("edit"))
		mustPut(t, s, key("other"), `1`)
		h := history(t, s, k)
		require.Equal(t, int64(5), h.CurrentVersion, "CurrentVersion")
		require.Equal(t, []int64{5, 4, 3, 2, 1}, versionNumbers(h.Versions), "versions newest first")
		for _, v := range h.Versions {
			w := writes[v.Version-1]
			requireSameEntry(t, w.Entry, v.Entry, fmt.Sprintf("History version %d", v.Version))
			require.Equal(t, "edit", v.ChangeSummary, "ChangeSummary")
			require.Equal(t, w.ChangeType, v.ChangeType, "ChangeType")
		}
		requireChain(t, oldestFirst(h.Versions))
	})

	t.Run("LimitAndBeforeVersion", func(t *testing.T) {
		cases := []struct {
			name   string
			limit  int
			before int64
			want   []int64
		}{
			// Limit keeps the newest.
			{name: "limit 2", limit: 2, want: []int64{5, 4}},
			// Limit 1 is the current version.
			{name: "limit 1", limit: 1, want: []int64{5}},
			// BeforeVersion is exclusive.
			{name: "before 4", limit: 2, before: 4, want: []int64{3, 2}},
			// The last page can be short.
			{name: "before 3", limit: 10, before: 3, want: []int64{2, 1}},
			// Nothing before version 1.
			{name: "before 1", limit: 10, before: 1, want: []int64{}},
			// A bound above the current version bounds nothing.
			{name: "before 100", limit: 10, before: 100, want: []int64{5, 4, 3, 2, 1}},
			// BeforeVersion = current+1 is everything.
			{name: "before 6", limit: 3, before: 6, want: []int64{5, 4, 3}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := newStore(t)
				k := key("doc")
				putVersions(t, s, k, 5)
				h, err := s.History(t.Context(), store.HistoryRequest{Key: k, Limit: tc.limit, BeforeVersion: tc.before})
				require.NoError(t, err, "History")
				require.Equal(t, tc.want, versionNumbers(h.Versions), "History Limit %d BeforeVersion %d", tc.limit, tc.before)
				require.Equal(t, int64(5), h.CurrentVersion, "CurrentVersion does not depend on the page")
			})
		}
	})

	t.Run("PagingCollectsEveryVersionOnce", func(t *testing.T) {
		s := newStore(t)
		k := key("doc")
		putVersions(t, s, k, 7)
		var got []int64
		before := int64(0)
		for page := 1; ; page++ {
			require.LessOrEqual(t, page, 10, "paging does not end")
			h, err := s.History(t.Context(), store.HistoryRequest{Key: k, Limit: 2, BeforeVersion: before})
			require.NoError(t, err, "History page %d", page)
			require.LessOrEqual(t, len(h.Versions), 2, "page %d exceeds Limit", page)
			if len(h.Versions) == 0 {
				break
			}
			got = append(got, versionNumbers(h.Versions)...)
			before = h.Versions[len(h.Versions)-1].Version
		}
		require.Equal(t, []int64{7, 6, 5, 4, 3, 2, 1}, got, "versions collected by paging with BeforeVersion")
	})

	t.Run("CurrentVersionCountsTombstones", func(t *testing.T) {
		s := newStore(t)
		k := key("doc")
		putVersions(t, s, k, 2)
		mustDelete(t, s, k)
		h := history(t, s, k)
		require.Equal(t, int64(3), h.CurrentVersion, "CurrentVersion of a deleted key is its tombstone")
		require.True(t, h.Versions[0].Deleted, "newest version is the tombstone")
		mustPut(t, s, k, `"again"`)
		require.Equal(t, int64(4), history(t, s, k).CurrentVersion, "after re-create")
	})

	t.Run("NeverWrittenIsNotFound", func(t *testing.T) {
		s := newStore(t)
		mustPut(t, s, store.Key{AgentID: otherAgent, Tier: tier, Key: "k"}, `1`)
		mustPut(t, s, store.Key{AgentID: agent, Tier: otherTier, Key: "k"}, `1`)
		mustPut(t, s, key("k2"), `1`)
		_, err := s.History(t.Context(), store.HistoryRequest{Key: key("k"), Limit: 10})
		require.ErrorIs(t, err, store.ErrNotFound, "History of a key never written (though its name exists elsewhere)")
	})

	t.Run("HistoryLimitPrunes", func(t *testing.T) {
		s := newStore(t)
		k := key("session/tool")
		putVersions(t, s, k, 10, keep(3))
		h := history(t, s, k)
		require.Equal(t, int64(10), h.CurrentVersion, "CurrentVersion")
		require.Equal(t, []int64{10, 9, 8}, versionNumbers(h.Versions), "HistoryLimit 3 keeps the newest 3")
		require.Equal(t, int64(7), h.Versions[2].ParentVersion, "the oldest kept version still names its pruned parent")
		requireChain(t, oldestFirst(h.Versions))
		for _, v := range []int64{1, 2, 7} {
			requireGetNotFound(t, s, store.GetRequest{Key: k, Version: v}, fmt.Sprintf("pruned version %d", v))
		}
		e, err := get(t, s, store.GetRequest{Key: k, Version: 8})
		require.NoError(t, err, "Get Version 8 (kept)")
		requireValue(t, []byte(`{"v":8}`), e.Value, "Get Version 8")
		requireValue(t, []byte(`{"v":10}`), mustGet(t, s, k).Value, "current")
		h, err = s.History(t.Context(), store.HistoryRequest{Key: k, Limit: 10, BeforeVersion: 8})
		require.NoError(t, err, "History before the oldest kept version")
		require.Empty(t, h.Versions, "pruned versions are gone")
	})

	t.Run("HistoryLimitZeroKeepsAll", func(t *testing.T) {
		s := newStore(t)
		k := key("doc")
		putVersions(t, s, k, 10, keep(0))
		h := history(t, s, k)
		require.Equal(t, []int64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, versionNumbers(h.Versions))
		requireChain(t, oldestFirst(h.Versions))
	})

	t.Run("HistoryLimitIsAppliedAtEachWrite", func(t *testing.T) {
		s := newStore(t)
		k := key("doc")
		putVersions(t, s, k, 6)
		require.Len(t, history(t, s, k).Versions, 6)
		mustPut(t, s, k, `{"v":7}`, keep(2))
		require.Equal(t, []int64{7, 6}, versionNumbers(history(t, s, k).Versions), "a write with HistoryLimit 2 prunes older versions")
		mustPut(t, s, k, `{"v":8}`)
		require.Equal(t, []int64{8, 7, 6}, versionNumbers(history(t, s, k).Versions), "a later write keeping all does not bring pruned versions back")
		mustPut(t, s, key("other"), `1`, keep(1))
		require.Equal(t, []int64{8, 7, 6}, versionNumbers(history(t, s, k).Versions), "HistoryLimit applies to the written key only")
	})

	t.Run("TombstonesCountTowardHistoryLimit", func(t *testing.T) {
		s := newStore(t)
		k := key("doc")
		putVersions(t, s, k, 3, keep(2))
		mustDelete(t, s, k, keep(2))
		h := history(t, s, k)
		require.Equal(t, []int64{4, 3}, versionNumbers(h.Versions), "the tombstone is one of the kept versions")
		require.Equal(t, int64(4), h.CurrentVersion)
		mustPut(t, s, k, `"again"`, keep(1))
		h = history(t, s, k)
		require.Equal(t, []int64{5}, versionNumbers(h.Versions), "HistoryLimit 1 keeps just the current version")
		require.Equal(t, int64(4), h.Versions[0].ParentVersion)
	})
}
