package storetest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
)

func testAtRevision(t *testing.T, newStore factory) {
	t.Run("ReadsAsOfRevision", func(t *testing.T) {
		a, b, c := key("a"), key("b"), key("c")
		// Revisions:   1      2      3      4      5          6      7
		// Writes:     a=a1   b=b1   a=a2   b=b2   delete a   c=c1   a=a3
		// Versions of a: 1@1, 2@3, 3 (tombstone)@5, 4@7.
		setup := []store.WriteOp{
			putOp(a, `"a1"`), putOp(b, `"b1"`), putOp(a, `"a2"`), putOp(b, `"b2"`), deleteOp(a), putOp(c, `"c1"`), putOp(a, `"a3"`),
		}
		cases := []struct {
			name    string
			key     store.Key
			rev     int64
			want    string // "" = ErrNotFound
			wantVer int64
		}{
			// The revision of the first write.
			{name: "a at its first write", key: a, rev: 1, want: `"a1"`, wantVer: 1},
			// Between two writes of a: still the first value.
			{name: "a between writes", key: a, rev: 2, want: `"a1"`, wantVer: 1},
			{name: "a at its second write", key: a, rev: 3, want: `"a2"`, wantVer: 2},
			{name: "a after its second write", key: a, rev: 4, want: `"a2"`, wantVer: 2},
			// At the delete and after it, before the re-create: absent.
			{name: "a at its delete", key: a, rev: 5, want: ""},
			{name: "a while deleted", key: a, rev: 6, want: ""},
			// The re-created key.
			{name: "a re-created", key: a, rev: 7, want: `"a3"`, wantVer: 4},
			// Before the key existed.
			{name: "b before it existed", key: b, rev: 1, want: ""},
			{name: "c before it existed", key: c, rev: 5, want: ""},
			{name: "b at its first write", key: b, rev: 2, want: `"b1"`, wantVer: 1},
			{name: "b at the latest revision", key: b, rev: 7, want: `"b2"`, wantVer: 2},
			{name: "c at its write", key: c, rev: 6, want: `"c1"`, wantVer: 1},
			// A key that was never written.
			{name: "never written", key: key("never"), rev: 7, want: ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := newStore(t)
				for i, op := range setup {
					require.Equal(t, int64(i+1), mustWrite(t, s, op).Revision, "setup write %d", i)
				}
				req := store.GetRequest{Key: tc.key, AtRevision: tc.rev}
				if tc.want == "" {
					requireGetNotFound(t, s, req, "at-revision read")
					return
				}
				e, err := get(t, s, req)
				require.NoError(t, err, "Get %s AtRevision %d", tc.key, tc.rev)
				requireValue(t, []byte(tc.want), e.Value, "Get AtRevision")
				require.Equal(t, tc.wantVer, e.Version, "Version")
				require.LessOrEqual(t, e.Revision, tc.rev, "the version read was written at or before the revision")
				require.Equal(t, tc.key, e.Key, "Key")
				require.False(t, e.Deleted, "Deleted")
			})
		}
	})

	t.Run("Compacted", func(t *testing.T) {
		s := newStore(t)
		k := key("pruned")
		writes := putVersions(t, s, k, 10, keep(3))
		revOf := func(v int64) int64 { return writes[v-1].Entry.Revision }
		cases := []struct {
			name    string
			rev     int64
			wantVer int64 // 0 = ErrCompacted
		}{
			// Version 5 answered this revision; it is pruned.
			{name: "pruned version", rev: revOf(5), wantVer: 0},
			// Just before the oldest kept version: version 7 (pruned) answers.
			{name: "just before the oldest kept", rev: revOf(8) - 1, wantVer: 0},
			// The oldest kept version still answers.
			{name: "oldest kept", rev: revOf(8), wantVer: 8},
			{name: "current", rev: revOf(10), wantVer: 10},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e, err := get(t, s, store.GetRequest{Key: k, AtRevision: tc.rev})
				if tc.wantVer == 0 {
					require.ErrorIs(t, err, store.ErrCompacted, "Get AtRevision %d after pruning: want ErrCompacted, got %+v", tc.rev, e)
					return
				}
				require.NoError(t, err, "Get AtRevision %d", tc.rev)
				require.Equal(t, tc.wantVer, e.Version, "Version")
			})
		}
	})

	t.Run("ReadsSpecificVersions", func(t *testing.T) {
		s := newStore(t)
		k := key("doc")
		mustPut(t, s, k, `"v1"`)
		mustPut(t, s, k, `"v2"`)
		mustDelete(t, s, k)
		mustPut(t, s, k, `"v4"`)
		cases := []struct {
			name    string
			version int64
			want    string // "" = ErrNotFound
		}{
			// Old versions stay readable while kept.
			{name: "version 1", version: 1, want: `"v1"`},
			{name: "version 2", version: 2, want: `"v2"`},
			// A tombstone has no value to read.
			{name: "tombstone", version: 3, want: ""},
			// The current version.
			{name: "version 4", version: 4, want: `"v4"`},
			// A version never written.
			{name: "future version", version: 5, want: ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				req := store.GetRequest{Key: k, Version: tc.version}
				if tc.want == "" {
					requireGetNotFound(t, s, req, "version read")
					return
				}
				e, err := get(t, s, req)
				require.NoError(t, err, "Get Version %d", tc.version)
				requireValue(t, []byte(tc.want), e.Value, "Get Version")
				require.Equal(t, tc.version, e.Version, "Version")
				require.Equal(t, tc.version, e.Revision, "Revision (one write per revision here)")
			})
		}
		requireGetNotFound(t, s, store.GetRequest{Key: key("never"), Version: 1}, "version of a key never written")
	})
}
