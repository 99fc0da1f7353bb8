package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
)

func testTTL(t *testing.T, newStore factory) {
	t.Run("TTLSetsExpiresAt", func(t *testing.T) {
		s := newStore(t)
		k := key("session/tool")
		before := time.Now()
		r := mustPut(t, s, k, `"x"`, withTTL(time.Hour))
		after := time.Now()
		require.NotNil(t, r.Entry.ExpiresAt, "ExpiresAt with TTL")
		requireTimeBetween(t, *r.Entry.ExpiresAt, before.Add(time.Hour), after.Add(time.Hour), "ExpiresAt = commit time + TTL")
		requireTimeNear(t, r.Entry.UpdatedAt.Add(time.Hour), *r.Entry.ExpiresAt, "ExpiresAt = UpdatedAt + TTL")

		got := mustGet(t, s, k)
		require.NotNil(t, got.ExpiresAt, "Get ExpiresAt")
		requireTimeNear(t, *r.Entry.ExpiresAt, *got.ExpiresAt, "Get ExpiresAt")

		plain := mustPut(t, s, key("plain"), `"y"`)
		require.Nil(t, plain.Entry.ExpiresAt, "no TTL: no ExpiresAt")
		require.Nil(t, mustGet(t, s, key("plain")).ExpiresAt, "no TTL: Get ExpiresAt")
	})

	t.Run("ExpiresAtIsKeptExactly", func(t *testing.T) {
		// WriteOp.ExpiresAt overrides TTL: a patch keeps the key's expiry
		// to the nanosecond rather than pushing it later.
		s := newStore(t)
		k := key("k")
		first := mustPut(t, s, k, `1`, withTTL(time.Hour))
		at := *first.Entry.ExpiresAt
		second := mustPut(t, s, k, `2`, withExpiresAt(at), withTTL(time.Minute))
		require.NotNil(t, second.Entry.ExpiresAt)
		require.True(t, second.Entry.ExpiresAt.Equal(at), "ExpiresAt %v, want %v", second.Entry.ExpiresAt, at)
		require.True(t, mustGet(t, s, k).ExpiresAt.Equal(at), "Get ExpiresAt")
	})

	t.Run("WriteWithoutTTLClearsExpiry", func(t *testing.T) {
		// WriteOp.TTL: "0 = no expiry" applies to each version.
		s := newStore(t)
		k := key("k")
		mustPut(t, s, k, `1`, withTTL(time.Hour))
		r := mustPut(t, s, k, `2`)
		require.Nil(t, r.Entry.ExpiresAt, "a put without TTL has no ExpiresAt")
		far := time.Now().Add(24 * time.Hour)
		got, err := get(t, s, store.GetRequest{Key: k, Now: far})
		require.NoError(t, err, "the key no longer expires")
		require.Nil(t, got.ExpiresAt)
		exp, err := s.ExpiredKeys(t.Context(), far, 100)
		require.NoError(t, err, "ExpiredKeys")
		require.Empty(t, exp, "ExpiredKeys")
	})

	t.Run("ExpiredReadsAsAbsent", func(t *testing.T) {
		cases := []struct {
			name    string
			now     func(expiresAt time.Time) time.Time // zero: time.Now()
			visible bool
		}{
			// The real clock, long before the expiry.
			{name: "zero now", now: func(time.Time) time.Time { return time.Time{} }, visible: true},
			// Just before ExpiresAt the key is live.
			{name: "1ms before ExpiresAt", now: func(e time.Time) time.Time { return e.Add(-time.Millisecond) }, visible: true},
			// "at or before now" reads as absent: exactly at ExpiresAt it is gone.
			{name: "at ExpiresAt", now: func(e time.Time) time.Time { return e }, visible: false},
			// Long after, before any reaper ran.
			{name: "after ExpiresAt", now: func(e time.Time) time.Time { return e.Add(time.Hour) }, visible: false},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := newStore(t)
				k, stay := key("b-expiring"), key("c-staying")
				mustPut(t, s, key("a-staying"), `"a"`)
				mustPut(t, s, k, `"b"`, withTTL(time.Hour))
				mustPut(t, s, stay, `"c"`)
				expiresAt := *mustGet(t, s, k).ExpiresAt
				now := tc.now(expiresAt)

				e, err := get(t, s, store.GetRequest{Key: k, Now: now})
				batchNow := now
				if batchNow.IsZero() {
					batchNow = time.Now()
				}
				m, berr := s.BatchGet(t.Context(), []store.Key{k, stay}, batchNow)
				require.NoError(t, berr, "BatchGet")
				l := list(t, s, store.ListRequest{AgentID: agent, Tier: tier, Limit: 10, Now: now})
				if tc.visible {
					require.NoError(t, err, "Get with Now %s, ExpiresAt %s", now, expiresAt)
					requireValue(t, []byte(`"b"`), e.Value, "Get")
					require.Contains(t, m, k, "BatchGet")
					require.Equal(t, []string{"a-staying", "b-expiring", "c-staying"}, listKeys(l.Entries), "List")
				} else {
					require.ErrorIs(t, err, store.ErrNotFound, "Get with Now %s, ExpiresAt %s: want ErrNotFound, got %+v", now, expiresAt, e)
					require.NotContains(t, m, k, "BatchGet leaves the expired key out")
					require.Equal(t, []string{"a-staying", "c-staying"}, listKeys(l.Entries), "List leaves the expired key out")
				}
				require.Contains(t, m, stay, "BatchGet of a key without TTL")
			})
		}
	})

	t.Run("ExpiredKeys", func(t *testing.T) {
		s := newStore(t)
		now := time.Now()
		a, b, c, d, f := key("a"), key("b"), key("c"), key("d"), key("f")
		e := store.Key{AgentID: otherAgent, Tier: otherTier, Key: "e"}
		mustPut(t, s, a, `1`, withTTL(time.Hour))
		mustPut(t, s, a, `2`, withTTL(time.Hour)) // a is at version 2
		mustPut(t, s, b, `1`, withTTL(2*time.Hour))
		mustPut(t, s, c, `1`) // no TTL
		mustPut(t, s, d, `1`, withTTL(time.Hour))
		mustDelete(t, s, d) // deleted: nothing left to expire
		mustPut(t, s, e, `1`, withTTL(time.Hour))
		mustPut(t, s, f, `1`, withTTL(time.Hour))
		mustPut(t, s, f, `2`) // TTL removed

		cases := []struct {
			name  string
			now   time.Time
			limit int
			want  []store.Expired // nil with limit: only the count is checked
			count int
		}{
			// Nothing has expired yet.
			{name: "now", now: now, limit: 100, want: []store.Expired{}},
			// After an hour: the 1h keys of every agent and tier, at their current version.
			{name: "after 90 minutes", now: now.Add(90 * time.Minute), limit: 100, want: []store.Expired{{Key: a, Version: 2}, {Key: e, Version: 1}}},
			// After three hours the 2h key too.
			{name: "after 3 hours", now: now.Add(3 * time.Hour), limit: 100, want: []store.Expired{{Key: a, Version: 2}, {Key: b, Version: 1}, {Key: e, Version: 1}}},
			// limit caps the answer.
			{name: "limit", now: now.Add(3 * time.Hour), limit: 2, count: 2},
		}
		all := []store.Expired{{Key: a, Version: 2}, {Key: b, Version: 1}, {Key: e, Version: 1}}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.ExpiredKeys(t.Context(), tc.now, tc.limit)
				require.NoError(t, err, "ExpiredKeys")
				if tc.want == nil {
					require.Len(t, got, tc.count, "ExpiredKeys with limit %d: %v", tc.limit, got)
					for _, x := range got {
						require.Contains(t, all, x, "ExpiredKeys returned an unexpected key")
					}
					return
				}
				require.ElementsMatch(t, tc.want, got, "ExpiredKeys(now%+v)", tc.now.Sub(now).Round(time.Minute))
			})
		}
	})

	t.Run("OpExpireWritesExpireTombstone", func(t *testing.T) {
		s := newStore(t)
		k := key("session/temp")
		live := mustPut(t, s, k, `"t"`, withTTL(shortTTL), keep(5))
		waitExpired(t, live.Entry)
		rev := currentRevision(t, s)

		exp, err := s.ExpiredKeys(t.Context(), time.Now(), 10)
		require.NoError(t, err, "ExpiredKeys")
		require.Equal(t, []store.Expired{{Key: k, Version: live.Entry.Version}}, exp, "ExpiredKeys after the TTL passed")

		res := mustWrite(t, s, expireOp(k, live.Entry.Version))
		r := res.Results[0]
		require.False(t, r.Skipped, "OpExpire of an expired key at its version applies")
		require.Equal(t, rev+1, res.Revision, "the expire takes the next revision")
		require.Equal(t, store.ChangeExpire, r.ChangeType, "ChangeType")
		require.Equal(t, live.Entry.Version+1, r.Entry.Version, "expire tombstone version")
		require.Equal(t, res.Revision, r.Entry.Revision, "expire tombstone revision")
		require.True(t, r.Entry.Deleted, "expire tombstone Deleted")
		requireValue(t, nil, r.Entry.Value, "expire tombstone")

		requireGetNotFound(t, s, store.GetRequest{Key: k}, "after expire")
		h := history(t, s, k)
		require.Equal(t, live.Entry.Version+1, h.CurrentVersion, "CurrentVersion counts the expire tombstone")
		tomb := h.Versions[0]
		require.Equal(t, store.ChangeExpire, tomb.ChangeType, "History ChangeType")
		require.True(t, tomb.Deleted, "History Deleted")
		require.Equal(t, "", tomb.Checksum, "a tombstone has an empty checksum")
		requireChain(t, oldestFirst(h.Versions))

		exp, err = s.ExpiredKeys(t.Context(), time.Now().Add(time.Hour), 10)
		require.NoError(t, err, "ExpiredKeys")
		require.Empty(t, exp, "an expired-and-reaped key is not listed again")

		// A later put re-creates the key right after the tombstone.
		again := mustPut(t, s, k, `"again"`)
		require.Equal(t, store.ChangeCreate, again.ChangeType)
		require.Equal(t, live.Entry.Version+2, again.Entry.Version)
		require.Equal(t, res.Revision+1, again.Entry.Revision, "no second expire tombstone")
		require.Nil(t, again.Previous)
	})

	t.Run("OpExpireSkipped", func(t *testing.T) {
		k := key("k")
		cases := []struct {
			name string
			// setup writes k and returns the ExpectedVersion the expire carries.
			setup func(t testing.TB, s store.Store) int64
		}{
			// The key was written again after the reaper read it.
			{name: "stale expected version", setup: func(t testing.TB, s store.Store) int64 {
				mustPut(t, s, k, `1`, withTTL(shortTTL))
				r := mustPut(t, s, k, `2`, withTTL(shortTTL))
				waitExpired(t, r.Entry)
				return r.Entry.Version - 1
			}},
			// Not expired at commit time, whatever "now" the reaper used to find it.
			{name: "not yet expired", setup: func(t testing.TB, s store.Store) int64 {
				return mustPut(t, s, k, `1`, withTTL(time.Hour)).Entry.Version
			}},
			// The key has no TTL at all.
			{name: "no TTL", setup: func(t testing.TB, s store.Store) int64 {
				return mustPut(t, s, k, `1`).Entry.Version
			}},
			// A later write removed the TTL (same version number expected as current).
			{name: "TTL removed by a later write", setup: func(t testing.TB, s store.Store) int64 {
				mustPut(t, s, k, `1`, withTTL(shortTTL))
				r := mustPut(t, s, k, `2`)
				time.Sleep(shortTTL + 5*time.Millisecond)
				return r.Entry.Version
			}},
			// The key was deleted meanwhile: its current version is a tombstone.
			{name: "deleted", setup: func(t testing.TB, s store.Store) int64 {
				mustPut(t, s, k, `1`, withTTL(time.Hour))
				return mustDelete(t, s, k).Entry.Version
			}},
			// A key that was never written.
			{name: "never written", setup: func(t testing.TB, s store.Store) int64 { return 1 }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := newStore(t)
				expected := tc.setup(t, s)
				before := takeSnapshot(t, s, k)
				res := mustWrite(t, s, expireOp(k, expected))
				require.True(t, res.Results[0].Skipped, "OpExpire expected=%d must be skipped", expected)
				require.Equal(t, int64(0), res.Revision, "a request whose every op was skipped has revision 0")
				requireUnchanged(t, s, before, "after a skipped expire")
			})
		}
	})

	t.Run("WriteToExpiredKeyWritesExpireTombstoneFirst", func(t *testing.T) {
		cases := []struct {
			name string
			op   store.WriteOp
			kind string
		}{
			// Create-only succeeds: an expired key is absent.
			{name: "create-only", op: putOp(key("k"), `"new"`, expect(0)), kind: store.ChangeCreate},
			// An unconditional put re-creates the key.
			{name: "unconditional", op: putOp(key("k"), `"new"`), kind: store.ChangeCreate},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := newStore(t)
				k := key("k")
				old := mustPut(t, s, k, `"old"`, withTTL(shortTTL))
				waitExpired(t, old.Entry)
				rev := currentRevision(t, s)

				res := mustWrite(t, s, tc.op)
				r := res.Results[0]
				require.Equal(t, tc.kind, r.ChangeType, "ChangeType")
				require.Nil(t, r.Previous, "Previous: the expired key was absent")
				require.Equal(t, old.Entry.Version+2, r.Entry.Version, "the write follows the expire tombstone")
				require.Equal(t, rev+2, res.Revision, "the expire tombstone takes its own revision before the request's")
				require.Nil(t, r.Entry.ExpiresAt, "the new version has no TTL")
				require.True(t, r.Entry.CreatedAt.After(old.Entry.CreatedAt), "a fresh CreatedAt")

				h := history(t, s, k)
				require.Equal(t, []int64{3, 2, 1}, versionNumbers(h.Versions))
				require.Equal(t, []string{tc.kind, store.ChangeExpire, store.ChangeCreate},
					[]string{h.Versions[0].ChangeType, h.Versions[1].ChangeType, h.Versions[2].ChangeType}, "change types of versions 3, 2, 1")
				require.True(t, h.Versions[1].Deleted, "the expire tombstone is Deleted")
				require.Equal(t, rev+1, h.Versions[1].Revision, "expire tombstone revision")
				require.Equal(t, rev+2, h.Versions[0].Revision, "write revision")
				requireChain(t, oldestFirst(h.Versions))

				got := mustGet(t, s, k)
				requireValue(t, []byte(`"new"`), got.Value, "Get")
				require.Equal(t, rev+2, currentRevision(t, s), "CurrentRevision")
			})
		}
	})

	t.Run("FailedWriteToExpiredKey", func(t *testing.T) {
		cases := []struct {
			name  string
			op    store.WriteOp
			check func(t testing.TB, err error)
		}{
			// The expired version is not live: deleted_modified, Current 0.
			{name: "expected expired version", op: putOp(key("k"), `"new"`, expect(1)), check: func(t testing.TB, err error) {
				ce := conflictOf(t, err, store.ErrVersionConflict, 0, key("k"))
				require.Equal(t, int64(0), ce.Current, "Current of an expired key")
				require.Nil(t, ce.CurrentEntry, "CurrentEntry of an expired key")
				require.Equal(t, store.ConflictDeletedModified, ce.Type, "Type")
			}},
			// Deleting an expired key is deleting an absent key.
			{name: "delete", op: deleteOp(key("k")), check: func(t testing.TB, err error) { notFoundOp(t, err, 0) }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := newStore(t)
				k := key("k")
				old := mustPut(t, s, k, `"old"`, withTTL(shortTTL))
				waitExpired(t, old.Entry)
				before := takeSnapshot(t, s, k)
				_, err := write(t, s, tc.op)
				tc.check(t, err)
				requireUnchanged(t, s, before, "a failed write writes no expire tombstone")
			})
		}
	})

	t.Run("FailedBatchWritesNoExpireTombstone", func(t *testing.T) {
		s := newStore(t)
		a, b := key("a"), key("b")
		old := mustPut(t, s, a, `"old"`, withTTL(shortTTL))
		mustPut(t, s, b, `"b"`)
		waitExpired(t, old.Entry)
		before := takeSnapshot(t, s, a, b)
		// Op 0 alone would write a's expire tombstone; op 1 fails.
		_, err := write(t, s, putOp(a, `"new"`), putOp(b, `"b2"`, expect(5)))
		conflictOf(t, err, store.ErrVersionConflict, 1, b)
		requireUnchanged(t, s, before, "a failed batch")
	})

	t.Run("BatchWithTTLPerOp", func(t *testing.T) {
		s := newStore(t)
		a, b := key("a"), key("b")
		res := mustWrite(t, s, putOp(a, `1`, withTTL(time.Hour)), putOp(b, `1`, withTTL(2*time.Hour)))
		ea, eb := res.Results[0].Entry.ExpiresAt, res.Results[1].Entry.ExpiresAt
		require.NotNil(t, ea)
		require.NotNil(t, eb)
		requireTimeNear(t, ea.Add(time.Hour), *eb, "each op has its own TTL from the same commit time")
		m, err := s.BatchGet(t.Context(), []store.Key{a, b}, time.Now().Add(90*time.Minute))
		require.NoError(t, err)
		got := make([]string, 0, len(m))
		for k := range m {
			got = append(got, k.Key)
		}
		slices.Sort(got)
		require.Equal(t, []string{"b"}, got, "after 90 minutes only the 2h key is live")
	})
}
