package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
)

func testTombstones(t *testing.T, newStore factory) {
	t.Run("DeleteWritesTombstone", func(t *testing.T) {
		s := newStore(t)
		k := key("doomed")
		mustPut(t, s, k, `"one"`)
		mustPut(t, s, k, `"two"`)
		res := mustWrite(t, s, deleteOp(k, by("remover"), withSummary("bye")))
		r := res.Results[0]
		require.Equal(t, store.ChangeDelete, r.ChangeType, "ChangeType")
		require.Equal(t, int64(3), r.Entry.Version, "the tombstone is the next version")
		require.Equal(t, res.Revision, r.Entry.Revision, "tombstone revision")
		require.True(t, r.Entry.Deleted, "tombstone Entry.Deleted")
		requireValue(t, nil, r.Entry.Value, "tombstone")
		require.Equal(t, k, r.Entry.Key, "tombstone Key")
		require.NotNil(t, r.Previous, "Previous is the deleted entry")
		require.Equal(t, int64(2), r.Previous.Version, "Previous.Version")

		requireGetNotFound(t, s, store.GetRequest{Key: k}, "a deleted key")
		requireGetNotFound(t, s, store.GetRequest{Key: k, Version: 3}, "the tombstone version")
		old, err := get(t, s, store.GetRequest{Key: k, Version: 2})
		require.NoError(t, err, "versions before the tombstone stay readable")
		requireValue(t, []byte(`"two"`), old.Value, "Get Version 2")

		h := history(t, s, k)
		require.Equal(t, int64(3), h.CurrentVersion, "CurrentVersion counts the tombstone")
		require.Equal(t, []int64{3, 2, 1}, versionNumbers(h.Versions))
		tomb := h.Versions[0]
		require.Equal(t, store.ChangeDelete, tomb.ChangeType, "History change type")
		require.True(t, tomb.Deleted, "History Deleted")
		requireValue(t, nil, tomb.Value, "History tombstone")
		require.Equal(t, "", tomb.Checksum, "a tombstone has an empty checksum")
		require.Equal(t, "remover", tomb.CreatedBy, "tombstone CreatedBy")
		require.Equal(t, "bye", tomb.ChangeSummary, "tombstone ChangeSummary")
		require.Equal(t, int64(2), tomb.ParentVersion, "tombstone ParentVersion")
		requireChain(t, oldestFirst(h.Versions))

		l := list(t, s, store.ListRequest{AgentID: agent, Tier: tier, Limit: 10})
		require.Empty(t, l.Entries, "List leaves deleted keys out")
		m, err := s.BatchGet(t.Context(), []store.Key{k}, time.Now())
		require.NoError(t, err, "BatchGet")
		require.Empty(t, m, "BatchGet leaves deleted keys out")
	})

	t.Run("PutAfterDeleteRecreates", func(t *testing.T) {
		s := newStore(t)
		k := key("phoenix")
		first := mustPut(t, s, k, `"one"`)
		mustDelete(t, s, k)
		tick()
		r := mustPut(t, s, k, `"again"`)
		require.Equal(t, int64(3), r.Entry.Version, "numbering continues after the tombstone")
		require.Equal(t, store.ChangeCreate, r.ChangeType, "a put after a delete is a create")
		require.Nil(t, r.Previous, "Previous is nil: the key was absent")

		got := mustGet(t, s, k)
		require.Equal(t, int64(3), got.Version)
		requireValue(t, []byte(`"again"`), got.Value, "Get")
		v1 := history(t, s, k).Versions[2]
		require.Equal(t, int64(1), v1.Version)
		require.True(t, got.CreatedAt.After(v1.CreatedAt), "CreatedAt must be fresh after re-create: first %s, now %s", v1.CreatedAt, got.CreatedAt)
		requireTimeNear(t, r.Entry.UpdatedAt, got.CreatedAt, "CreatedAt of the re-created key is its create time")
		require.True(t, first.Entry.CreatedAt.Before(got.CreatedAt), "CreatedAt moved")

		h := history(t, s, k)
		require.Equal(t, int64(2), h.Versions[1].Version)
		require.Equal(t, int64(2), h.Versions[0].ParentVersion, "the re-create's parent is the tombstone")
		requireChain(t, oldestFirst(h.Versions))
	})

	t.Run("DeleteOfAbsentKey", func(t *testing.T) {
		cases := []struct {
			name  string
			setup []store.WriteOp
		}{
			// A key that was never written.
			{name: "never written"},
			// A key whose current version is already a tombstone.
			{name: "already deleted", setup: []store.WriteOp{putOp(key("gone"), `1`), deleteOp(key("gone"))}},
			// The same name under another agent and tier does not count.
			{name: "written only elsewhere", setup: []store.WriteOp{
				putOp(store.Key{AgentID: otherAgent, Tier: tier, Key: "gone"}, `1`),
				putOp(store.Key{AgentID: agent, Tier: otherTier, Key: "gone"}, `1`),
			}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := newStore(t)
				for _, op := range tc.setup {
					mustWrite(t, s, op)
				}
				k := key("gone")
				before := takeSnapshot(t, s, k)
				_, err := write(t, s, deleteOp(k))
				notFoundOp(t, err, 0)
				requireUnchanged(t, s, before, "after deleting an absent key")
			})
		}
	})

	t.Run("DeleteOfAbsentKeyInBatchNamesOp", func(t *testing.T) {
		s := newStore(t)
		a, b, gone := key("a"), key("b"), key("gone")
		mustPut(t, s, b, `"b1"`)
		before := takeSnapshot(t, s, a, b, gone)
		_, err := write(t, s, putOp(a, `"a1"`), putOp(b, `"b2"`), deleteOp(gone))
		notFoundOp(t, err, 2)
		requireUnchanged(t, s, before, "a batch with a failing delete")
	})

}
