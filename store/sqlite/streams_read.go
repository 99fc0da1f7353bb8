package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/agentstate/agentstate/store"
)

// streamReadStmts are prepared on the reader pool.
type streamReadStmts struct {
	readStream          *sql.Stmt
	readAll, readPrefix *sql.Stmt
	loadSnapshot        *sql.Stmt
}

const (
	streamEventCols = `e.position, e.idx, e.version, e.event_id, e.type, e.data, e.metadata, e.timestamp`
	// sqlReadStream: one row per event, or one row of NULLs after the
	// stream's last_version when no event is at or after the version (so
	// that a missing stream, no row, is told apart in the same snapshot).
	sqlReadStream = `SELECT s.last_version, ` + streamEventCols + `
	FROM streams s LEFT JOIN stream_events e ON e.stream = s.id AND e.version >= ?2
	WHERE s.stream_id = ?1 ORDER BY e.version LIMIT ?3`
	// sqlReadAll walks stream_events_position (CROSS JOIN keeps the events
	// as the outer loop, so no sort, whatever the prefix).
	sqlReadAll = `SELECT s.stream_id, ` + streamEventCols + `
	FROM stream_events e CROSS JOIN streams s ON s.id = e.stream
	WHERE e.position > ?1`
	sqlReadAllOrder       = ` ORDER BY e.position, e.idx`
	sqlReadPrefix         = sqlReadAll + ` AND s.stream_id >= ?2 AND s.stream_id < ?3` + sqlReadAllOrder
	sqlLoadStreamSnapshot = `SELECT p.version, p.state, p.created_at
	FROM streams s JOIN stream_snapshots p ON p.stream = s.id WHERE s.stream_id = ?`
)

func (r *streamReadStmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&r.readStream, sqlReadStream},
		{&r.readAll, sqlReadAll + sqlReadAllOrder},
		{&r.readPrefix, sqlReadPrefix},
		{&r.loadSnapshot, sqlLoadStreamSnapshot},
	} {
		st, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("store/sqlite: prepare %q: %w", p.sql, err)
		}
		*p.dst = st
	}
	return nil
}

func (r *streamReadStmts) close() {
	for _, st := range []*sql.Stmt{r.readStream, r.readAll, r.readPrefix, r.loadSnapshot} {
		if st != nil {
			st.Close()
		}
	}
	*r = streamReadStmts{}
}

func checkStreamReadCount(what string, n int) error {
	if n < 1 || n > MaxStreamReadCount {
		return streamInvalidf("%s: count %d: want 1 to %d", what, n, MaxStreamReadCount)
	}
	return nil
}

// ReadStream returns up to maxCount events of a stream with version >=
// fromVersion, in version order (none past the stream's end);
// store.ErrNotFound when the stream does not exist.
func (s *StreamStore) ReadStream(ctx context.Context, streamID string, fromVersion int64, maxCount int) ([]store.StreamEvent, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	if err := checkStreamID("read stream", streamID); err != nil {
		return nil, err
	}
	if fromVersion < 0 {
		return nil, streamInvalidf("read stream %s: negative version %d", streamID, fromVersion)
	}
	if err := checkStreamReadCount("read stream "+streamID, maxCount); err != nil {
		return nil, err
	}
	rows, err := s.rs.readStream.QueryContext(ctx, streamID, fromVersion, maxCount)
	if err != nil {
		return nil, s.readErr(ctx, "read stream", err)
	}
	defer rows.Close()
	found := false
	var out []store.StreamEvent
	for rows.Next() {
		found = true
		var last int64
		var pos, idx, version, ts sql.NullInt64
		var eventID, typ sql.NullString
		var data, meta []byte
		if err := rows.Scan(&last, &pos, &idx, &version, &eventID, &typ, &data, &meta, &ts); err != nil {
			return nil, s.readErr(ctx, "read stream", err)
		}
		if !pos.Valid {
			break // the stream exists; no event at or after fromVersion
		}
		out = append(out, store.StreamEvent{StreamID: streamID, Version: version.Int64, Position: pos.Int64,
			Index: int(idx.Int64), EventID: eventID.String, Type: typ.String, Data: rawOrNil(data),
			Metadata: rawOrNil(meta), Timestamp: unixNano(ts.Int64)})
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr(ctx, "read stream", err)
	}
	if !found {
		return nil, fmt.Errorf("store/sqlite: read stream: stream %s: %w", streamID, store.ErrNotFound)
	}
	if out == nil {
		out = []store.StreamEvent{}
	}
	return out, nil
}

// ReadAll returns the events of every stream whose id starts with prefix
// ("" = all) with Position > afterPosition, in (Position, Index) order,
// from one snapshot. It returns whole appends, at most limit events, except
// that an append of more than limit events is returned whole when it comes
// first.
func (s *StreamStore) ReadAll(ctx context.Context, prefix string, afterPosition int64, limit int) ([]store.StreamEvent, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	if prefix != "" {
		if err := checkStreamID("read all", prefix); err != nil {
			return nil, err
		}
	}
	if afterPosition < 0 {
		return nil, streamInvalidf("read all: negative position %d", afterPosition)
	}
	if err := checkStreamReadCount("read all", limit); err != nil {
		return nil, err
	}
	out := []store.StreamEvent{}
	if afterPosition >= s.position.Load() {
		return out, nil
	}
	var rows *sql.Rows
	var err error
	if prefix == "" {
		rows, err = s.rs.readAll.QueryContext(ctx, afterPosition)
	} else {
		// A valid prefix is ASCII without 0xff bytes: PrefixEnd is not "".
		rows, err = s.rs.readPrefix.QueryContext(ctx, afterPosition, prefix, store.PrefixEnd(prefix))
	}
	if err != nil {
		return nil, s.readErr(ctx, "read all", err)
	}
	defer rows.Close()
	start := 0 // index in out of the first event of the append being read
	for rows.Next() {
		var ev store.StreamEvent
		var data, meta []byte
		var ts int64
		if err := rows.Scan(&ev.StreamID, &ev.Position, &ev.Index, &ev.Version, &ev.EventID, &ev.Type, &data, &meta,
			&ts); err != nil {
			return nil, s.readErr(ctx, "read all", err)
		}
		if n := len(out); n > 0 && out[n-1].Position != ev.Position {
			// The append before ev is complete.
			if n >= limit {
				break
			}
			start = n
		}
		if start > 0 && len(out) >= limit {
			// This append does not fit: leave it for the next read.
			out = out[:start]
			break
		}
		ev.Data, ev.Metadata, ev.Timestamp = rawOrNil(data), rawOrNil(meta), unixNano(ts)
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr(ctx, "read all", err)
	}
	return out, nil
}

// LoadSnapshot returns the stream's latest snapshot (store.ErrNotFound when
// none was saved or the stream does not exist).
func (s *StreamStore) LoadSnapshot(ctx context.Context, streamID string) (*store.Snapshot, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	if err := checkStreamID("load snapshot", streamID); err != nil {
		return nil, err
	}
	snap := &store.Snapshot{StreamID: streamID}
	var state []byte
	var created int64
	if err := s.rs.loadSnapshot.QueryRowContext(ctx, streamID).Scan(&snap.Version, &state, &created); err != nil {
		err = s.readErr(ctx, "load snapshot", err)
		if errors.Is(err, store.ErrNotFound) {
			err = fmt.Errorf("store/sqlite: load snapshot: stream %s has no snapshot: %w", streamID, store.ErrNotFound)
		}
		return nil, err
	}
	snap.State, snap.CreatedAt = state, unixNano(created)
	return snap, nil
}
