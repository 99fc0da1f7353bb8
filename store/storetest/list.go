package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
)

// putKeys writes value "<name>" for each name under the default agent and
// tier, in one batch.
func putKeys(t testing.TB, s store.Store, names ...string) {
	t.Helper()
	ops := make([]store.WriteOp, len(names))
	for i, n := range names {
		ops[i] = putOp(key(n), fmt.Sprintf("%q", n))
	}
	mustWrite(t, s, ops...)
}

func sorted(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out) // Go compares strings byte by byte
	return out
}

func testList(t *testing.T, newStore factory) {
	t.Run("ByteOrder", func(t *testing.T) {
		s := newStore(t)
		// Byte order, not locale order: 'B' < 'a', and '-' < '.' < '/' < '0' < '_' < 'b' < '~' < non-ASCII.
		names := []string{"a", "a/b", "a.b", "B", "a-", "a0", "aB", "ab", "a_", "a~", "Z", "0", "z", "é", "e", "日本", "a b"}
		putKeys(t, s, names...)
		l := list(t, s, store.ListRequest{AgentID: agent, Tier: tier, Limit: 100})
		require.Equal(t, sorted(names), listKeys(l.Entries), "List must return keys in byte order")
		require.False(t, l.More, "More with everything on one page")
		for _, e := range l.Entries {
			requireValue(t, []byte(fmt.Sprintf("%q", e.Key.Key)), e.Value, "List value of "+e.Key.Key)
			require.Equal(t, agent, e.Key.AgentID, "List Key.AgentID")
			require.Equal(t, tier, e.Key.Tier, "List Key.Tier")
		}
	})

	t.Run("Prefix", func(t *testing.T) {
		names := []string{"a", "a/b", "a/c", "a/b/c", "a.b", "ab", "b/x", "a_b", "axb", "a%1", "a%%", "abc", "caf", "cafe", "café", "cafg", "A/b"}
		cases := []struct {
			name   string
			prefix string
			want   []string
		}{
			// No prefix lists everything.
			{name: "empty", prefix: "", want: sorted(names)},
			// A "directory" prefix.
			{name: "slash", prefix: "a/", want: []string{"a/b", "a/b/c", "a/c"}},
			// A prefix includes the key equal to it.
			{name: "whole key", prefix: "a/b", want: []string{"a/b", "a/b/c"}},
			// A one-character prefix.
			{name: "single char", prefix: "a", want: []string{"a", "a%%", "a%1", "a.b", "a/b", "a/b/c", "a/c", "a_b", "ab", "abc", "axb"}},
			// '_' is literal (not a SQL LIKE wildcard).
			{name: "underscore", prefix: "a_", want: []string{"a_b"}},
			// '%' is literal (not a SQL LIKE wildcard).
			{name: "percent", prefix: "a%", want: []string{"a%%", "a%1"}},
			{name: "double percent", prefix: "a%%", want: []string{"a%%"}},
			// Prefixes are case-sensitive.
			{name: "case", prefix: "A", want: []string{"A/b"}},
			// Multi-byte UTF-8.
			{name: "utf-8", prefix: "caf", want: []string{"caf", "cafe", "cafg", "café"}},
			{name: "utf-8 full", prefix: "café", want: []string{"café"}},
			// Nothing matches.
			{name: "no match", prefix: "zzz", want: []string{}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := newStore(t)
				putKeys(t, s, names...)
				l := list(t, s, store.ListRequest{AgentID: agent, Tier: tier, Prefix: tc.prefix, Limit: 100})
				require.Equal(t, tc.want, listKeys(l.Entries), "List Prefix %q", tc.prefix)
				require.False(t, l.More, "More")
			})
		}
	})

	t.Run("After", func(t *testing.T) {
		names := []string{"a", "a/b", "a/c", "b", "b/x", "b/y", "c"}
		cases := []struct {
			name   string
			prefix string
			after  string
			want   []string
		}{
			// Empty After starts at the beginning.
			{name: "empty", after: "", want: names},
			// After is exclusive.
			{name: "existing key", after: "a/c", want: []string{"b", "b/x", "b/y", "c"}},
			// After need not exist.
			{name: "missing key", after: "a/bb", want: []string{"a/c", "b", "b/x", "b/y", "c"}},
			// After past the end.
			{name: "past the end", after: "d", want: []string{}},
			// With a prefix: After inside the prefix range.
			{name: "inside prefix", prefix: "b/", after: "b/x", want: []string{"b/y"}},
			// After before the prefix range does not widen it.
			{name: "before prefix", prefix: "b/", after: "a", want: []string{"b/x", "b/y"}},
			// After beyond the prefix range.
			{name: "beyond prefix", prefix: "a", after: "b", want: []string{}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := newStore(t)
				putKeys(t, s, names...)
				l := list(t, s, store.ListRequest{AgentID: agent, Tier: tier, Prefix: tc.prefix, After: tc.after, Limit: 100})
				require.Equal(t, tc.want, listKeys(l.Entries), "List Prefix %q After %q", tc.prefix, tc.after)
				require.False(t, l.More, "More")
			})
		}
	})

	t.Run("PagingCollectsEveryKeyOnce", func(t *testing.T) {
		names := []string{"k1", "k2", "k3", "k4", "k5", "k6", "k7", "other/1", "other/2", "x"}
		cases := []struct {
			name   string
			prefix string
			want   []string
		}{
			// Odd number of keys: the last page is short.
			{name: "all keys", want: sorted(names)},
			// Pages within a prefix.
			{name: "prefix k", prefix: "k", want: []string{"k1", "k2", "k3", "k4", "k5", "k6", "k7"}},
			// Exactly one full page.
			{name: "prefix other/", prefix: "other/", want: []string{"other/1", "other/2"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := newStore(t)
				putKeys(t, s, names...)
				var got []string
				after := ""
				for page := 1; ; page++ {
					require.LessOrEqual(t, page, 20, "paging does not end")
					l := list(t, s, store.ListRequest{AgentID: agent, Tier: tier, Prefix: tc.prefix, After: after, Limit: 2})
					require.LessOrEqual(t, len(l.Entries), 2, "page %d exceeds Limit", page)
					got = append(got, listKeys(l.Entries)...)
					if !l.More {
						break
					}
					require.Len(t, l.Entries, 2, "page %d: More is set, so the page must be full", page)
					after = l.Entries[len(l.Entries)-1].Key.Key
				}
				require.Equal(t, tc.want, got, "keys collected by paging with After, 2 per page")
			})
		}
	})

	t.Run("More", func(t *testing.T) {
		cases := []struct {
			name  string
			setup func(t testing.TB, s store.Store)
			req   store.ListRequest
			want  []string
			more  bool
		}{
			// Limit equals the number of keys: nothing beyond.
			{name: "limit = count", setup: func(t testing.TB, s store.Store) { putKeys(t, s, "a", "b", "c") },
				req: store.ListRequest{Limit: 3}, want: []string{"a", "b", "c"}, more: false},
			// One key beyond the page.
			{name: "limit = count-1", setup: func(t testing.TB, s store.Store) { putKeys(t, s, "a", "b", "c") },
				req: store.ListRequest{Limit: 2}, want: []string{"a", "b"}, more: true},
			// Limit larger than the number of keys.
			{name: "limit > count", setup: func(t testing.TB, s store.Store) { putKeys(t, s, "a", "b", "c") },
				req: store.ListRequest{Limit: 10}, want: []string{"a", "b", "c"}, more: false},
			// An empty namespace.
			{name: "empty", setup: func(t testing.TB, s store.Store) {},
				req: store.ListRequest{Limit: 10}, want: []string{}, more: false},
			// The only key beyond the page is deleted: it does not exist.
			{name: "next is deleted", setup: func(t testing.TB, s store.Store) {
				putKeys(t, s, "a", "b", "c")
				mustDelete(t, s, key("c"))
			}, req: store.ListRequest{Limit: 2}, want: []string{"a", "b"}, more: false},
			// The only key beyond the page is expired.
			{name: "next is expired", setup: func(t testing.TB, s store.Store) {
				putKeys(t, s, "a", "b")
				mustPut(t, s, key("c"), `1`, withTTL(time.Hour))
			}, req: store.ListRequest{Limit: 2, Now: time.Now().Add(2 * time.Hour)}, want: []string{"a", "b"}, more: false},
			// The only key beyond the page is outside the prefix.
			{name: "next is outside prefix", setup: func(t testing.TB, s store.Store) { putKeys(t, s, "p/a", "p/b", "q") },
				req: store.ListRequest{Prefix: "p/", Limit: 2}, want: []string{"p/a", "p/b"}, more: false},
			// The keys beyond belong to other agents and tiers.
			{name: "next is in another namespace", setup: func(t testing.TB, s store.Store) {
				putKeys(t, s, "a", "b")
				mustPut(t, s, store.Key{AgentID: agent, Tier: otherTier, Key: "c"}, `1`)
				mustPut(t, s, store.Key{AgentID: otherAgent, Tier: tier, Key: "c"}, `1`)
			}, req: store.ListRequest{Limit: 2}, want: []string{"a", "b"}, more: false},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := newStore(t)
				tc.setup(t, s)
				req := tc.req
				req.AgentID, req.Tier = agent, tier
				l := list(t, s, req)
				require.Equal(t, tc.want, listKeys(l.Entries), "entries")
				require.Equal(t, tc.more, l.More, "More")
			})
		}
	})

	t.Run("KeysOnly", func(t *testing.T) {
		s := newStore(t)
		putKeys(t, s, "a", "b", "c")
		mustPut(t, s, key("b"), `"b2"`)
		full := list(t, s, store.ListRequest{AgentID: agent, Tier: tier, Limit: 10})
		keysOnly := list(t, s, store.ListRequest{AgentID: agent, Tier: tier, Limit: 10, KeysOnly: true})
		require.Equal(t, []string{"a", "b", "c"}, listKeys(keysOnly.Entries), "KeysOnly keys")
		require.Len(t, full.Entries, 3)
		for i, e := range keysOnly.Entries {
			require.Nil(t, e.Value, "KeysOnly leaves Value nil (%s)", e.Key)
			require.Equal(t, full.Entries[i].Version, e.Version, "KeysOnly still reports Version (%s)", e.Key)
			require.Equal(t, full.Entries[i].Key, e.Key, "KeysOnly Key")
			require.NotNil(t, full.Entries[i].Value, "a full listing has values (%s)", e.Key)
		}
		require.Equal(t, int64(2), keysOnly.Entries[1].Version, "version of b")
		for _, e := range full.Entries {
			requireSameEntry(t, *mustGet(t, s, e.Key), e, "List vs Get of "+e.Key.Key)
		}
	})

	t.Run("LeavesOutDeletedAndExpired", func(t *testing.T) {
		s := newStore(t)
		putKeys(t, s, "a-live", "b-deleted", "d-recreated")
		mustDelete(t, s, key("b-deleted"))
		mustPut(t, s, key("c-expiring"), `1`, withTTL(time.Hour))
		mustDelete(t, s, key("d-recreated"))
		mustPut(t, s, key("d-recreated"), `"again"`)

		now := list(t, s, store.ListRequest{AgentID: agent, Tier: tier, Limit: 10})
		require.Equal(t, []string{"a-live", "c-expiring", "d-recreated"}, listKeys(now.Entries), "List now")
		require.Equal(t, int64(3), now.Entries[2].Version, "a re-created key lists at its new version")

		later := list(t, s, store.ListRequest{AgentID: agent, Tier: tier, Limit: 10, Now: time.Now().Add(2 * time.Hour)})
		require.Equal(t, []string{"a-live", "d-recreated"}, listKeys(later.Entries), "List with Now after the TTL")
	})

	t.Run("AgentAndTierIsolation", func(t *testing.T) {
		s := newStore(t)
		spaces := []struct {
			agent, tier string
			keys        []string
		}{
			{agent, tier, []string{"shared-name", "only-1-local"}},
			{agent, otherTier, []string{"shared-name", "only-1-persistent"}},
			{otherAgent, tier, []string{"shared-name", "only-10-local"}},
			{"agent-2", "session", []string{"shared-name"}},
		}
		for _, sp := range spaces {
			for _, n := range sp.keys {
				mustPut(t, s, store.Key{AgentID: sp.agent, Tier: sp.tier, Key: n}, fmt.Sprintf(`"%s/%s/%s"`, sp.agent, sp.tier, n))
			}
		}
		for _, sp := range spaces {
			l := list(t, s, store.ListRequest{AgentID: sp.agent, Tier: sp.tier, Limit: 100})
			require.Equal(t, sorted(sp.keys), listKeys(l.Entries), "List %s/%s sees only its own keys", sp.agent, sp.tier)
			for _, e := range l.Entries {
				require.Equal(t, sp.agent, e.Key.AgentID)
				require.Equal(t, sp.tier, e.Key.Tier)
			}
			k := store.Key{AgentID: sp.agent, Tier: sp.tier, Key: "shared-name"}
			requireValue(t, []byte(fmt.Sprintf(`"%s/%s/shared-name"`, sp.agent, sp.tier)), mustGet(t, s, k).Value, "Get "+k.String())
			require.Len(t, history(t, s, k).Versions, 1, "History %s holds only its own versions", k)
		}
		// Keys written in one space are not read from another.
		for _, k := range []store.Key{
			{AgentID: agent, Tier: tier, Key: "only-1-persistent"},
			{AgentID: agent, Tier: tier, Key: "only-10-local"},
			{AgentID: agent, Tier: otherTier, Key: "only-1-local"},
			{AgentID: otherAgent, Tier: tier, Key: "only-1-local"},
			{AgentID: "agent", Tier: tier, Key: "shared-name"},
		} {
			requireGetNotFound(t, s, store.GetRequest{Key: k}, "a key of another agent or tier")
			_, err := s.History(t.Context(), store.HistoryRequest{Key: k, Limit: 10})
			require.ErrorIs(t, err, store.ErrNotFound, "History %s", k)
		}
		l := list(t, s, store.ListRequest{AgentID: "agent", Tier: tier, Limit: 100})
		require.Empty(t, l.Entries, "agent IDs are not prefixes")
	})
}
