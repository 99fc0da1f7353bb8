package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
)

func testVersions(t *testing.T, newStore factory) {
	t.Run("DenseVersionNumbers", func(t *testing.T) {
		s := newStore(t)
		k := key("counter")
		for want := int64(1); want <= 5; want++ {
			res := mustPut(t, s, k, fmt.Sprintf(`{"n":%d}`, want))
			require.Equal(t, want, res.Entry.Version, "OpResult version of write #%d", want)
			require.Equal(t, want, mustGet(t, s, k).Version, "Get version after write #%d", want)
		}
		require.Equal(t, []int64{5, 4, 3, 2, 1}, versionNumbers(history(t, s, k).Versions), "history versions")
	})

	t.Run("VersionsArePerKey", func(t *testing.T) {
		s := newStore(t)
		// Interleaved writes to two keys: each key counts its own versions.
		a, b := key("a"), key("b")
		for i := int64(1); i <= 3; i++ {
			require.Equal(t, i, mustPut(t, s, a, `"a"`).Entry.Version, "version of a")
			require.Equal(t, i, mustPut(t, s, b, `"b"`).Entry.Version, "version of b")
		}
	})

	t.Run("Timestamps", func(t *testing.T) {
		s := newStore(t)
		k := key("stamped")
		before := time.Now()
		r1 := mustPut(t, s, k, `1`)
		after := time.Now()
		requireTimeBetween(t, r1.Entry.CreatedAt, before, after, "v1 CreatedAt")
		requireTimeBetween(t, r1.Entry.UpdatedAt, before, after, "v1 UpdatedAt")

		tick()
		before2 := time.Now()
		r2 := mustPut(t, s, k, `2`)
		after2 := time.Now()
		requireTimeNear(t, r1.Entry.CreatedAt, r2.Entry.CreatedAt, "v2 CreatedAt must stay the key's creation time")
		requireTimeBetween(t, r2.Entry.UpdatedAt, before2, after2, "v2 UpdatedAt")

		got := mustGet(t, s, k)
		h := history(t, s, k).Versions
		require.Len(t, h, 2)
		v2, v1 := h[0], h[1]
		require.True(t, v2.CreatedAt.Equal(v1.CreatedAt), "CreatedAt read back: v1 %s, v2 %s, want equal", v1.CreatedAt, v2.CreatedAt)
		require.True(t, got.CreatedAt.Equal(v1.CreatedAt), "Get CreatedAt %s, want v1's %s", got.CreatedAt, v1.CreatedAt)
		require.True(t, v2.UpdatedAt.After(v1.UpdatedAt), "UpdatedAt must move: v1 %s, v2 %s", v1.UpdatedAt, v2.UpdatedAt)
		require.True(t, got.UpdatedAt.Equal(v2.UpdatedAt), "Get UpdatedAt %s, want v2's %s", got.UpdatedAt, v2.UpdatedAt)
	})

	t.Run("CreatedByPerVersion", func(t *testing.T) {
		s := newStore(t)
		k := key("authored")
		mustPut(t, s, k, `"draft"`, by("alice"))
		mustPut(t, s, k, `"edit"`, by("bob"))
		require.Equal(t, "bob", mustGet(t, s, k).CreatedBy, "Get CreatedBy is the latest version's writer")
		mustDelete(t, s, k, by("carol"))
		h := history(t, s, k).Versions
		require.Equal(t, []string{"carol", "bob", "alice"}, []string{h[0].CreatedBy, h[1].CreatedBy, h[2].CreatedBy}, "CreatedBy of versions 3, 2, 1")
	})

	t.Run("FieldsRoundTrip", func(t *testing.T) {
		cases := []struct {
			name    string
			value   string
			meta    string
			summary string
		}{
			// An object with sorted keys, nested values and metadata.
			{name: "object", value: `{"a":1,"b":[true,false,null],"c":{"d":"e"}}`, meta: `{"source":"suite","tags":["x","y"]}`, summary: "set a, b, c"},
			// Key order is the writer's business: a store must not reorder it.
			{name: "unsorted object keys", value: `{"z":1,"a":2,"m":{"y":0,"b":1}}`},
			// Arrays keep their order and element types.
			{name: "array", value: `[1,"two",3.5,null,{"k":[]}]`},
			// Non-ASCII text is stored as UTF-8 bytes, unchanged.
			{name: "unicode string", value: `"héllo, 世界 🙂"`},
			// Escape sequences stay escape sequences (no decoding/re-encoding).
			{name: "escapes", value: `"line\nbreak \"q\" \\ \u0000 \u00e9 \/"`},
			// Numbers beyond float64 precision must not be rounded.
			{name: "big number", value: `12345678901234567890.123456789012345678`},
			// The JSON literal null is a value, not a tombstone or a SQL NULL.
			{name: "json null", value: `null`, meta: `{}`},
			// Scalars and empty containers.
			{name: "false", value: `false`},
			{name: "zero", value: `0`},
			{name: "empty string", value: `""`},
			{name: "empty object", value: `{}`},
			{name: "empty array", value: `[]`},
			// A large value (256 KiB).
			{name: "large value", value: `{"blob":"` + strings.Repeat("0123456789abcdef", 16*1024) + `"}`, summary: strings.Repeat("s", 500)},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := newStore(t)
				k := key("value")
				opts := []opt{by("writer-1"), withSummary(tc.summary)}
				if tc.meta != "" {
					opts = append(opts, withMeta(tc.meta))
				}
				res := mustPut(t, s, k, tc.value, opts...)
				want := res.Entry
				require.Equal(t, k, want.Key, "OpResult Key")
				requireValue(t, []byte(tc.value), want.Value, "OpResult")
				require.Equal(t, checksum(tc.value), want.Checksum, "OpResult Checksum")
				require.Equal(t, "writer-1", want.CreatedBy, "OpResult CreatedBy")
				requireMetadata(t, []byte(tc.meta), want.Metadata, "OpResult")
				require.False(t, want.Deleted, "OpResult Deleted")

				requireSameEntry(t, want, *mustGet(t, s, k), "Get")
				byVersion, err := get(t, s, store.GetRequest{Key: k, Version: 1})
				require.NoError(t, err, "Get Version 1")
				requireSameEntry(t, want, *byVersion, "Get Version 1")
				atRev, err := get(t, s, store.GetRequest{Key: k, AtRevision: want.Revision})
				require.NoError(t, err, "Get AtRevision")
				requireSameEntry(t, want, *atRev, "Get AtRevision")

				h := history(t, s, k)
				require.Len(t, h.Versions, 1, "history")
				requireSameEntry(t, want, h.Versions[0].Entry, "History")
				require.Equal(t, tc.summary, h.Versions[0].ChangeSummary, "History ChangeSummary")

				l := list(t, s, store.ListRequest{AgentID: agent, Tier: tier, Limit: 10})
				require.Len(t, l.Entries, 1, "List")
				requireSameEntry(t, want, l.Entries[0], "List")

				m, err := s.BatchGet(t.Context(), []store.Key{k}, time.Now())
				require.NoError(t, err, "BatchGet")
				require.Contains(t, m, k, "BatchGet")
				requireSameEntry(t, want, *m[k], "BatchGet")
			})
		}
	})

	t.Run("ChangeTypesAndPrevious", func(t *testing.T) {
		s := newStore(t)
		k := key("doc")
		steps := []struct {
			name        string
			op          store.WriteOp
			wantChange  string
			wantVersion int64
			wantPrev    string // value of Previous; "" = Previous must be nil
			wantPrevVer int64
		}{
			// The first write of a key creates it; nothing was replaced.
			{name: "put on absent key", op: putOp(k, `"v1"`), wantChange: store.ChangeCreate, wantVersion: 1},
			// A write to a live key updates it and reports the replaced entry.
			{name: "put on live key", op: putOp(k, `"v2"`), wantChange: store.ChangeUpdate, wantVersion: 2, wantPrev: `"v1"`, wantPrevVer: 1},
			// OpRestore is an update with change type restore.
			{name: "restore", op: restoreOp(k, `"v1"`), wantChange: store.ChangeRestore, wantVersion: 3, wantPrev: `"v2"`, wantPrevVer: 2},
			// A delete writes a tombstone and reports what it deleted.
			{name: "delete", op: deleteOp(k), wantChange: store.ChangeDelete, wantVersion: 4, wantPrev: `"v1"`, wantPrevVer: 3},
			// A write after a delete is a create again; the tombstone is not "previous".
			{name: "put after delete", op: putOp(k, `"v5"`), wantChange: store.ChangeCreate, wantVersion: 5},
			// And the next one an update.
			{name: "put after re-create", op: putOp(k, `"v6"`), wantChange: store.ChangeUpdate, wantVersion: 6, wantPrev: `"v5"`, wantPrevVer: 5},
		}
		for _, st := range steps {
			res := mustWrite(t, s, st.op).Results[0]
			require.Equal(t, st.wantChange, res.ChangeType, "%s: OpResult.ChangeType", st.name)
			require.Equal(t, st.wantVersion, res.Entry.Version, "%s: OpResult version", st.name)
			require.False(t, res.Skipped, "%s: Skipped", st.name)
			if st.wantPrev == "" {
				require.Nil(t, res.Previous, "%s: Previous must be nil", st.name)
				continue
			}
			require.NotNil(t, res.Previous, "%s: Previous must be the replaced entry", st.name)
			require.Equal(t, st.wantPrevVer, res.Previous.Version, "%s: Previous.Version", st.name)
			requireValue(t, []byte(st.wantPrev), res.Previous.Value, st.name+": Previous")
			require.Equal(t, k, res.Previous.Key, "%s: Previous.Key", st.name)
		}
		h := oldestFirst(history(t, s, k).Versions)
		require.Len(t, h, len(steps), "history length")
		for i, st := range steps {
			require.Equal(t, st.wantChange, h[i].ChangeType, "History version %d ChangeType", h[i].Version)
			require.Equal(t, st.wantChange == store.ChangeDelete, h[i].Deleted, "History version %d Deleted", h[i].Version)
		}
	})

	t.Run("ChainHash", func(t *testing.T) {
		s := newStore(t)
		k := key("chained")
		mustPut(t, s, k, `{"n":1}`)
		mustPut(t, s, k, `{"n":2}`)
		mustWrite(t, s, restoreOp(k, `{"n":1}`))
		mustDelete(t, s, k)
		mustPut(t, s, k, `{"n":5}`)
		mustPut(t, s, k, `{"n":6}`)
		h := oldestFirst(history(t, s, k).Versions)
		require.Len(t, h, 6)
		require.Equal(t, "", h[3].Checksum, "a tombstone has an empty checksum")
		requireChain(t, h)
		// The OpResult reports the same chain as the history (via Get of each version).
		for _, v := range h {
			if v.Deleted {
				continue
			}
			e, err := get(t, s, store.GetRequest{Key: k, Version: v.Version})
			require.NoError(t, err, "Get Version %d", v.Version)
			requireSameEntry(t, v.Entry, *e, fmt.Sprintf("Get Version %d", v.Version))
		}
	})
}

func testRevisions(t *testing.T, newStore factory) {
	t.Run("FreshStoreIsAtZero", func(t *testing.T) {
		s := newStore(t)
		require.Equal(t, int64(0), currentRevision(t, s), "CurrentRevision of an empty store")
	})

	t.Run("OnePerRequestInCommitOrder", func(t *testing.T) {
		s := newStore(t)
		a, b, c, d := key("a"), key("b"), key("c"), key("d")
		steps := []struct {
			name string
			ops  []store.WriteOp
		}{
			// The first committed request takes revision 1.
			{name: "create a", ops: []store.WriteOp{putOp(a, `1`)}},
			// Revisions are store-wide, not per key.
			{name: "create b", ops: []store.WriteOp{putOp(b, `1`)}},
			{name: "update a", ops: []store.WriteOp{putOp(a, `2`)}},
			// A batch takes one revision for all its ops.
			{name: "batch c, d", ops: []store.WriteOp{putOp(c, `1`), putOp(d, `1`)}},
			{name: "delete b", ops: []store.WriteOp{deleteOp(b)}},
		}
		for i, st := range steps {
			want := int64(i + 1)
			res := mustWrite(t, s, st.ops...)
			require.Equal(t, want, res.Revision, "%s: WriteResult.Revision", st.name)
			for j, r := range res.Results {
				require.Equal(t, want, r.Entry.Revision, "%s: op %d Entry.Revision", st.name, j)
			}
			require.Equal(t, want, currentRevision(t, s), "%s: CurrentRevision", st.name)
		}
		require.Equal(t, int64(3), mustGet(t, s, a).Revision, "Get a: revision of its latest write")
		require.Equal(t, int64(4), mustGet(t, s, c).Revision, "Get c")
		require.Equal(t, int64(4), mustGet(t, s, d).Revision, "Get d")

		// Reads do not take revisions.
		_, _ = s.BatchGet(t.Context(), []store.Key{a, b}, time.Now())
		list(t, s, store.ListRequest{AgentID: agent, Tier: tier, Limit: 10})
		history(t, s, a)
		require.Equal(t, int64(5), currentRevision(t, s), "CurrentRevision after reads")
	})

	t.Run("FailedWriteTakesNoRevision", func(t *testing.T) {
		s := newStore(t)
		k := key("k")
		mustPut(t, s, k, `1`)
		_, err := write(t, s, putOp(k, `2`, expect(7)))
		conflictOf(t, err, store.ErrVersionConflict, 0, k)
		_, err = write(t, s, deleteOp(key("absent")))
		notFoundOp(t, err, 0)
		require.Equal(t, int64(1), currentRevision(t, s), "CurrentRevision after failed writes")
		require.Equal(t, int64(2), mustPut(t, s, k, `2`).Entry.Revision, "next committed request takes the next revision")
	})
}
