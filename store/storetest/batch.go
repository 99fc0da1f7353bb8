package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
)

func testBatches(t *testing.T, newStore factory) {
	t.Run("OneRevisionForAllOps", func(t *testing.T) {
		s := newStore(t)
		a, b, c, d := key("a"), key("b"), key("c"), key("d")
		elsewhere := store.Key{AgentID: otherAgent, Tier: otherTier, Key: "a"}
		mustPut(t, s, b, `"b1"`)
		mustPut(t, s, c, `"c1"`)
		mustPut(t, s, d, `"d1"`)
		ops := []store.WriteOp{
			putOp(a, `"a1"`),            // create
			putOp(b, `"b2"`, expect(1)), // conditional update
			restoreOp(c, `"c0"`),        // restore
			deleteOp(d),                 // delete
			putOp(elsewhere, `"other"`), // same name, other agent and tier
		}
		res := mustWrite(t, s, ops...)
		require.Equal(t, int64(4), res.Revision, "the batch takes one revision")
		wantTypes := []string{store.ChangeCreate, store.ChangeUpdate, store.ChangeRestore, store.ChangeDelete, store.ChangeCreate}
		wantVersions := []int64{1, 2, 2, 2, 1}
		for i, r := range res.Results {
			require.Equal(t, res.Revision, r.Entry.Revision, "op %d shares the batch revision", i)
			require.Equal(t, wantTypes[i], r.ChangeType, "op %d ChangeType (results follow op order)", i)
			require.Equal(t, wantVersions[i], r.Entry.Version, "op %d version", i)
			require.Equal(t, ops[i].Key, r.Entry.Key, "op %d Key", i)
		}
		require.Equal(t, int64(4), currentRevision(t, s), "CurrentRevision")
		for _, k := range []store.Key{a, b, c, elsewhere} {
			require.Equal(t, int64(4), mustGet(t, s, k).Revision, "Get %s revision", k)
		}
		requireGetNotFound(t, s, store.GetRequest{Key: d}, "deleted in the batch")
		require.Equal(t, int64(4), history(t, s, d).Versions[0].Revision, "tombstone revision")
	})

	t.Run("AllOrNothing", func(t *testing.T) {
		a, b, c, d := key("a"), key("b"), key("c"), key("d")
		cases := []struct {
			name   string
			failOp store.WriteOp // op 2 of the batch
			check  func(t testing.TB, err error)
		}{
			// A stale ExpectedVersion on op 2.
			{name: "stale version", failOp: putOp(c, `"c2"`, expect(3)), check: func(t testing.TB, err error) {
				ce := conflictOf(t, err, store.ErrVersionConflict, 2, c)
				require.Equal(t, int64(3), ce.Expected)
				require.Equal(t, int64(1), ce.Current)
				require.Equal(t, store.ConflictConcurrentModification, ce.Type)
			}},
			// Create-only on a live key on op 2.
			{name: "create-only on live key", failOp: putOp(c, `"c2"`, expect(0)), check: func(t testing.TB, err error) {
				ce := conflictOf(t, err, store.ErrAlreadyExists, 2, c)
				require.Equal(t, int64(1), ce.Current)
			}},
			// A version on a key that was never written.
			{name: "version on absent key", failOp: putOp(key("nope"), `1`, expect(1)), check: func(t testing.TB, err error) {
				ce := conflictOf(t, err, store.ErrVersionConflict, 2, key("nope"))
				require.Equal(t, store.ConflictDeletedModified, ce.Type)
			}},
			// Deleting an absent key on op 2.
			{name: "delete of absent key", failOp: deleteOp(key("nope")), check: func(t testing.TB, err error) { notFoundOp(t, err, 2) }},
			// A conditional delete with a stale version.
			{name: "stale conditional delete", failOp: deleteOp(c, expect(2)), check: func(t testing.TB, err error) {
				conflictOf(t, err, store.ErrVersionConflict, 2, c)
			}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := newStore(t)
				mustPut(t, s, b, `"b1"`)
				mustPut(t, s, c, `"c1"`)
				before := takeSnapshot(t, s, a, b, c, d, key("nope"))
				_, err := write(t, s,
					putOp(a, `"a1"`),            // op 0: would create a
					putOp(b, `"b2"`, expect(1)), // op 1: would update b
					tc.failOp,                   // op 2: fails
					putOp(d, `"d1"`),            // op 3: would create d
				)
				tc.check(t, err)
				requireUnchanged(t, s, before, "a batch whose op 2 failed")
				requireGetNotFound(t, s, store.GetRequest{Key: a}, "op 0 of the failed batch")
				requireValue(t, []byte(`"b1"`), mustGet(t, s, b).Value, "b after the failed batch")
			})
		}
	})

	t.Run("SameKeyTwiceIsInvalid", func(t *testing.T) {
		k := key("k")
		cases := []struct {
			name string
			ops  []store.WriteOp
		}{
			// Two puts of one key.
			{name: "put, put", ops: []store.WriteOp{putOp(k, `1`), putOp(k, `2`)}},
			// A put and a delete of one key.
			{name: "put, delete", ops: []store.WriteOp{putOp(k, `1`), deleteOp(k)}},
			// An expire and a put of one key, separated by another key.
			{name: "expire, other, put", ops: []store.WriteOp{expireOp(k, 1), putOp(key("other"), `1`), putOp(k, `2`)}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := newStore(t)
				mustPut(t, s, k, `0`)
				before := takeSnapshot(t, s, k, key("other"))
				_, err := write(t, s, tc.ops...)
				require.ErrorIs(t, err, store.ErrInvalid, "Write %s", describe(tc.ops))
				requireUnchanged(t, s, before, "an invalid batch")
			})
		}
	})

	t.Run("SameNameInOtherNamespacesIsAllowed", func(t *testing.T) {
		s := newStore(t)
		ops := []store.WriteOp{
			putOp(store.Key{AgentID: agent, Tier: tier, Key: "k"}, `1`),
			putOp(store.Key{AgentID: agent, Tier: otherTier, Key: "k"}, `2`),
			putOp(store.Key{AgentID: otherAgent, Tier: tier, Key: "k"}, `3`),
		}
		res := mustWrite(t, s, ops...)
		for i, op := range ops {
			require.Equal(t, int64(1), res.Results[i].Entry.Version, "op %d", i)
			requireValue(t, op.Value, mustGet(t, s, op.Key).Value, op.Key.String())
		}
	})

	t.Run("SkippedExpireDoesNotBlockBatch", func(t *testing.T) {
		s := newStore(t)
		k, other := key("k"), key("other")
		mustPut(t, s, k, `1`, withTTL(time.Hour))
		before := takeSnapshot(t, s, k)
		res := mustWrite(t, s, expireOp(k, 1), putOp(other, `"o"`))
		require.True(t, res.Results[0].Skipped, "the expire of a live key is skipped")
		require.False(t, res.Results[1].Skipped, "the put is not skipped")
		require.Equal(t, before.revision+1, res.Revision, "the batch still commits")
		require.Equal(t, res.Revision, res.Results[1].Entry.Revision, "put revision")
		require.Equal(t, store.ChangeCreate, res.Results[1].ChangeType)
		before.revision = res.Revision
		requireUnchanged(t, s, before, "the skipped op's key")
	})

	t.Run("BatchGet", func(t *testing.T) {
		s := newStore(t)
		live := key("live")
		elsewhere := store.Key{AgentID: otherAgent, Tier: otherTier, Key: "live"}
		deleted, never, ttl := key("deleted"), key("never"), key("ttl")
		mustPut(t, s, live, `"l"`)
		mustPut(t, s, elsewhere, `"e"`)
		mustPut(t, s, deleted, `"d"`)
		mustDelete(t, s, deleted)
		mustPut(t, s, ttl, `"t"`, withTTL(time.Hour))
		keys := []store.Key{live, elsewhere, deleted, never, ttl}

		cases := []struct {
			name string
			keys []store.Key
			now  time.Time
			want map[store.Key]string
		}{
			// Present keys are returned, deleted and never-written ones left out.
			{name: "now", keys: keys, now: time.Now(), want: map[store.Key]string{live: `"l"`, elsewhere: `"e"`, ttl: `"t"`}},
			// An expired key is left out too.
			{name: "after expiry", keys: keys, now: time.Now().Add(2 * time.Hour), want: map[store.Key]string{live: `"l"`, elsewhere: `"e"`}},
			// Only absent keys: an empty map, no error.
			{name: "only absent", keys: []store.Key{deleted, never}, now: time.Now(), want: map[store.Key]string{}},
			// No keys at all.
			{name: "no keys", keys: nil, now: time.Now(), want: map[store.Key]string{}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				m, err := s.BatchGet(t.Context(), tc.keys, tc.now)
				require.NoError(t, err, "BatchGet")
				got := map[store.Key]string{}
				for k, e := range m {
					require.NotNil(t, e, "BatchGet entry of %s", k)
					require.Equal(t, k, e.Key, "map key and Entry.Key agree")
					got[k] = string(e.Value)
					requireSameEntry(t, *mustGet(t, s, k), *e, "BatchGet vs Get of "+k.String())
				}
				require.Equal(t, tc.want, got, "BatchGet")
			})
		}
	})
}
