package streamtest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
)

func testSnapshots(t *testing.T, newStore factory) {
	t.Run("SaveAndLatest", func(t *testing.T) {
		// One store, steps in order: each step saves a snapshot of "s"
		// (versions 0..4) and then loads the latest.
		s := newStore(t)
		mustAppend(t, s, "s", anyVersion, evs("e", 5)...)
		mustAppend(t, s, "other", anyVersion, evs("o", 1)...)

		_, err := s.LoadSnapshot(t.Context(), "s")
		require.ErrorIs(t, err, store.ErrNotFound, "no snapshot saved yet")

		created := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
		steps := []struct {
			name      string
			version   int64
			state     string
			wantErr   error // nil: saved (or ignored)
			wantVer   int64 // the latest afterwards
			wantState string
		}{
			{name: "first snapshot", version: 1, state: `{"total":1}`, wantVer: 1, wantState: `{"total":1}`},
			{name: "a newer version replaces it", version: 3, state: `{"total":3}`, wantVer: 3, wantState: `{"total":3}`},
			// An older snapshot is accepted but the latest stays.
			{name: "an older version changes nothing", version: 2, state: `{"total":2}`, wantVer: 3, wantState: `{"total":3}`},
			// The same version again: replaced (a re-computed projection).
			{name: "the same version replaces it", version: 3, state: `{"total":"3b"}`, wantVer: 3, wantState: `{"total":"3b"}`},
			{name: "version 0", version: 0, state: `[]`, wantVer: 3, wantState: `{"total":"3b"}`},
			{name: "the last version", version: 4, state: `{"total":4}`, wantVer: 4, wantState: `{"total":4}`},
			// A version the stream does not have.
			{name: "past the stream's end", version: 5, state: `{}`, wantErr: store.ErrInvalid, wantVer: 4,
				wantState: `{"total":4}`},
		}
		for _, st := range steps {
			err := s.SaveSnapshot(t.Context(), store.Snapshot{StreamID: "s", Version: st.version,
				State: json.RawMessage(st.state), CreatedAt: created})
			if st.wantErr != nil {
				require.ErrorIs(t, err, st.wantErr, "%s: SaveSnapshot", st.name)
			} else {
				require.NoError(t, err, "%s: SaveSnapshot", st.name)
			}
			snap, err := s.LoadSnapshot(t.Context(), "s")
			require.NoError(t, err, "%s: LoadSnapshot", st.name)
			require.Equal(t, "s", snap.StreamID, "%s: StreamID", st.name)
			require.Equal(t, st.wantVer, snap.Version, "%s: Version", st.name)
			requireJSON(t, st.wantState, snap.State, st.name+": State")
			require.WithinDuration(t, created, snap.CreatedAt, timeSlack, "%s: CreatedAt", st.name)
		}

		_, err = s.LoadSnapshot(t.Context(), "other")
		require.ErrorIs(t, err, store.ErrNotFound, "snapshots are per stream")
	})

	t.Run("MissingStream", func(t *testing.T) {
		s := newStore(t)
		mustAppend(t, s, "s", anyVersion, evs("e", 1)...)
		err := s.SaveSnapshot(t.Context(), store.Snapshot{StreamID: "nothing", Version: 0, State: json.RawMessage(`{}`),
			CreatedAt: time.Now()})
		require.ErrorIs(t, err, store.ErrNotFound, "SaveSnapshot of a missing stream")
		_, err = s.LoadSnapshot(t.Context(), "nothing")
		require.ErrorIs(t, err, store.ErrNotFound, "LoadSnapshot of a missing stream")
		_, err = s.ReadStream(t.Context(), "nothing", 0, 1)
		require.ErrorIs(t, err, store.ErrNotFound, "a failed snapshot does not create the stream")
	})

	t.Run("SnapshotTakesNoPosition", func(t *testing.T) {
		s := newStore(t)
		mustAppend(t, s, "s", anyVersion, evs("e", 1)...)
		require.NoError(t, s.SaveSnapshot(t.Context(), store.Snapshot{StreamID: "s", Version: 0,
			State: json.RawMessage(`{}`), CreatedAt: time.Now()}))
		res := mustAppend(t, s, "s", anyVersion, evs("e", 1)...)
		require.Equal(t, int64(2), res.Position, "a snapshot is not an append")
	})
}
