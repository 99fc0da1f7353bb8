package storetest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
)

func testCAS(t *testing.T, newStore factory) {
	k := key("cas")
	// Histories the cases start from; every step is its own request.
	var (
		absent  []store.WriteOp
		liveV1  = []store.WriteOp{putOp(k, `"one"`)}
		liveV3  = []store.WriteOp{putOp(k, `"one"`), putOp(k, `"two"`), putOp(k, `"three"`)}
		deleted = []store.WriteOp{putOp(k, `"one"`), deleteOp(k)} // tombstone is version 2
	)
	cases := []struct {
		name     string
		setup    []store.WriteOp
		op       store.WriteOp
		wantErr  error // nil: the write succeeds
		wantVer  int64 // success: the new version
		wantType string
		// Conflict expectations.
		wantCurrent      int64
		wantCurrentEntry string // value of CurrentEntry; "" = nil
		wantConflict     string // ConflictError.Type; "" = not checked
	}{
		// nil ExpectedVersion is unconditional: creates...
		{name: "unconditional on absent key", setup: absent, op: putOp(k, `"new"`), wantVer: 1, wantType: store.ChangeCreate},
		// ...updates...
		{name: "unconditional on live key", setup: liveV3, op: putOp(k, `"new"`), wantVer: 4, wantType: store.ChangeUpdate},
		// ...and re-creates after a delete.
		{name: "unconditional on deleted key", setup: deleted, op: putOp(k, `"new"`), wantVer: 3, wantType: store.ChangeCreate},
		// 0 = create-only: fine when the key was never written...
		{name: "create-only on absent key", setup: absent, op: putOp(k, `"new"`, expect(0)), wantVer: 1, wantType: store.ChangeCreate},
		// ...or is deleted (versions continue after the tombstone)...
		{name: "create-only on deleted key", setup: deleted, op: putOp(k, `"new"`, expect(0)), wantVer: 3, wantType: store.ChangeCreate},
		// ...and ErrAlreadyExists when the key is live.
		{name: "create-only on live key", setup: liveV3, op: putOp(k, `"new"`, expect(0)),
			wantErr: store.ErrAlreadyExists, wantCurrent: 3, wantCurrentEntry: `"three"`},
		// N = the current version: the write applies.
		{name: "current version", setup: liveV3, op: putOp(k, `"new"`, expect(3)), wantVer: 4, wantType: store.ChangeUpdate},
		// The current version of a key written once.
		{name: "current version 1", setup: liveV1, op: putOp(k, `"new"`, expect(1)), wantVer: 2, wantType: store.ChangeUpdate},
		// A stale version is a concurrent modification; the error carries the live entry.
		{name: "stale version", setup: liveV3, op: putOp(k, `"new"`, expect(2)),
			wantErr: store.ErrVersionConflict, wantCurrent: 3, wantCurrentEntry: `"three"`, wantConflict: store.ConflictConcurrentModification},
		// A version from the future is a mismatch too.
		{name: "future version", setup: liveV3, op: putOp(k, `"new"`, expect(7)),
			wantErr: store.ErrVersionConflict, wantCurrent: 3, wantCurrentEntry: `"three"`, wantConflict: store.ConflictConcurrentModification},
		// N > 0 on a key that was never written: deleted_modified, Current 0.
		{name: "version on absent key", setup: absent, op: putOp(k, `"new"`, expect(1)),
			wantErr: store.ErrVersionConflict, wantCurrent: 0, wantConflict: store.ConflictDeletedModified},
		// N = the last live version before a delete: the key is gone.
		{name: "last live version of deleted key", setup: deleted, op: putOp(k, `"new"`, expect(1)),
			wantErr: store.ErrVersionConflict, wantCurrent: 0, wantConflict: store.ConflictDeletedModified},
		// N = the tombstone's own version: a tombstone is not a live version.
		{name: "tombstone version of deleted key", setup: deleted, op: putOp(k, `"new"`, expect(2)),
			wantErr: store.ErrVersionConflict, wantCurrent: 0, wantConflict: store.ConflictDeletedModified},
		// OpRestore honours ExpectedVersion like OpPut.
		{name: "restore with current version", setup: liveV3, op: restoreOp(k, `"one"`, expect(3)), wantVer: 4, wantType: store.ChangeRestore},
		{name: "restore with stale version", setup: liveV3, op: restoreOp(k, `"one"`, expect(1)),
			wantErr: store.ErrVersionConflict, wantCurrent: 3, wantCurrentEntry: `"three"`, wantConflict: store.ConflictConcurrentModification},
		// OpDelete honours ExpectedVersion too.
		{name: "delete with current version", setup: liveV3, op: deleteOp(k, expect(3)), wantVer: 4, wantType: store.ChangeDelete},
		{name: "delete with stale version", setup: liveV3, op: deleteOp(k, expect(2)),
			wantErr: store.ErrVersionConflict, wantCurrent: 3, wantCurrentEntry: `"three"`, wantConflict: store.ConflictConcurrentModification},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			for _, op := range tc.setup {
				mustWrite(t, s, op)
			}
			before := takeSnapshot(t, s, k)
			res, err := write(t, s, tc.op)
			if tc.wantErr == nil {
				require.NoError(t, err, "Write %s", describe([]store.WriteOp{tc.op}))
				require.Len(t, res.Results, 1)
				r := res.Results[0]
				require.Equal(t, tc.wantVer, r.Entry.Version, "new version")
				require.Equal(t, tc.wantType, r.ChangeType, "ChangeType")
				require.Equal(t, before.revision+1, res.Revision, "WriteResult.Revision")
				require.Equal(t, tc.wantVer, history(t, s, k).CurrentVersion, "History CurrentVersion")
				if tc.wantType == store.ChangeDelete {
					requireGetNotFound(t, s, store.GetRequest{Key: k}, "after delete")
				} else {
					got := mustGet(t, s, k)
					require.Equal(t, tc.wantVer, got.Version, "Get version")
					requireValue(t, tc.op.Value, got.Value, "Get")
				}
				return
			}

			ce := conflictOf(t, err, tc.wantErr, 0, k)
			require.Equal(t, *tc.op.ExpectedVersion, ce.Expected, "ConflictError.Expected")
			require.Equal(t, tc.wantCurrent, ce.Current, "ConflictError.Current")
			if tc.wantCurrentEntry == "" {
				require.Nil(t, ce.CurrentEntry, "ConflictError.CurrentEntry must be nil when the key is not live")
			} else {
				require.NotNil(t, ce.CurrentEntry, "ConflictError.CurrentEntry must be the live entry")
				require.Equal(t, tc.wantCurrent, ce.CurrentEntry.Version, "CurrentEntry.Version")
				require.Equal(t, k, ce.CurrentEntry.Key, "CurrentEntry.Key")
				requireValue(t, []byte(tc.wantCurrentEntry), ce.CurrentEntry.Value, "CurrentEntry")
			}
			if tc.wantConflict != "" {
				require.Equal(t, tc.wantConflict, ce.Type, "ConflictError.Type")
			}
			requireUnchanged(t, s, before, "after a failed conditional write")
		})
	}
}
