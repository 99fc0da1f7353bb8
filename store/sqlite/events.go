package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"

	"github.com/agentstate/agentstate/store"
)

// The change feed. Its events are the version rows themselves (no second
// copy of any value): the event of a row is its revision, key, change type,
// version, value (the new value) and the value of the key's previous version
// row (the old value). The rows of a request are numbered in id order, which
// is the order the request wrote its ops in.
//
// Compaction (CompactEvents) and history pruning are two views of the same
// rows (see store.EventCompactor): a row below its key's keep_from is hidden
// from History and Get; a row with revision < store_meta.oldest_revision is
// out of the feed. A row is deleted only when both hold for it and for the
// feed's sake its successor's revision is compacted too. The writer deletes
// such rows of the key it writes (writer.cleanup); compaction deletes those
// that its new oldest revision frees, in small transactions on the writer
// goroutine between write batches (writer.purgeStep).

var (
	_ store.EventReader    = (*Store)(nil)
	_ store.CommitWaiter   = (*Store)(nil)
	_ store.EventCompactor = (*Store)(nil)
	_ store.Scanner        = (*Store)(nil)
)

// purgeChunk is how many revisions one cleanup transaction of compaction
// covers (a few ms of writer time).
const purgeChunk = 1024

const (
	sqlMeta = `SELECT revision, oldest_revision FROM store_meta WHERE id = 1`
	// sqlEvents reads the feed after a revision, in (revision, id) order
	// through state_versions_revision (whose entries end with the rowid).
	sqlEvents = `SELECT v.revision, a.agent_id, a.tier, a.key, v.change_type, v.version, v.value, p.value,
	v.updated_at, v.created_by, v.metadata
	FROM state_versions v JOIN agent_states a ON a.id = v.key_id
	LEFT JOIN state_versions p ON p.key_id = v.key_id AND p.version = v.version - 1
	WHERE v.revision > ? ORDER BY v.revision, v.id`
	// sqlScan reads live entries of every agent and tier after a key.
	sqlScan = `SELECT a.agent_id, a.tier, a.key, v.version, v.revision, v.value, v.checksum, v.created_at, v.updated_at,
	v.expires_at, v.created_by, v.metadata` + listFrom + `
	WHERE a.deleted = 0 AND (a.expires_at IS NULL OR a.expires_at > ?) AND (a.agent_id, a.tier, a.key) > (?, ?, ?)
	ORDER BY a.agent_id, a.tier, a.key LIMIT ?`
)

// ReadEvents returns the events after req.AfterRevision, whole revisions
// only, read from one snapshot.
func (s *Store) ReadEvents(ctx context.Context, req store.EventsRequest) (*store.EventsResult, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	if req.Limit <= 0 || req.AfterRevision < 0 {
		return nil, fmt.Errorf("store/sqlite: read events: after %d, limit %d: %w", req.AfterRevision, req.Limit,
			store.ErrInvalid)
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.readErr(ctx, "read events", err)
	}
	defer tx.Rollback()
	res := &store.EventsResult{}
	var oldest int64
	if err := tx.StmtContext(ctx, s.rs.meta).QueryRowContext(ctx).Scan(&res.Revision, &oldest); err != nil {
		return nil, s.readErr(ctx, "read events", err)
	}
	if req.AfterRevision < oldest-1 {
		return nil, &store.CompactedError{OldestRevision: oldest}
	}
	if req.AfterRevision >= res.Revision {
		return res, nil
	}
	rows, err := tx.StmtContext(ctx, s.rs.events).QueryContext(ctx, req.AfterRevision)
	if err != nil {
		return nil, s.readErr(ctx, "read events", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ev store.Event
		var value, old, metadata []byte
		var ts int64
		if err := rows.Scan(&ev.Revision, &ev.Key.AgentID, &ev.Key.Tier, &ev.Key.Key, &ev.ChangeType, &ev.Version,
			&value, &old, &ts, &ev.CreatedBy, &metadata); err != nil {
			return nil, s.readErr(ctx, "read events", err)
		}
		if n := len(res.Events); n > 0 {
			last := &res.Events[n-1]
			if last.Revision == ev.Revision {
				ev.Index = last.Index + 1
			} else if n >= req.Limit {
				res.More = true
				break
			}
		}
		if !isTombstone(ev.ChangeType) {
			ev.NewValue = rawOrNil(value)
		}
		ev.OldValue = rawOrNil(old)
		ev.Metadata = rawOrNil(metadata)
		ev.Timestamp = unixNano(ts)
		res.Events = append(res.Events, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr(ctx, "read events", err)
	}
	return res, nil
}

// OldestRevision is the oldest revision whose events are kept.
func (s *Store) OldestRevision(ctx context.Context) (int64, error) {
	if err := s.checkOpen(ctx); err != nil {
		return 0, err
	}
	return s.oldest.Load(), nil
}

// WaitCommit blocks until a request with a revision greater than after has
// committed, or ctx ends, and returns the current revision.
func (s *Store) WaitCommit(ctx context.Context, after int64) (int64, error) {
	for {
		if s.closed.Load() {
			return 0, store.ErrClosed
		}
		ch := s.commitChan()
		rev := s.committed.Load()
		if rev > after {
			return rev, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return s.committed.Load(), ctx.Err()
		case <-s.quit:
			return 0, store.ErrClosed
		}
	}
}

// commitChan returns a channel that is closed at the next commit.
func (s *Store) commitChan() <-chan struct{} {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.commitWaited = true
	return s.commitCh
}

// notifyCommit wakes every WaitCommit (called by the writer after a commit).
func (s *Store) notifyCommit() {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if !s.commitWaited {
		return
	}
	close(s.commitCh)
	s.commitCh = make(chan struct{})
	s.commitWaited = false
}

// compactReq asks the writer goroutine to compact the feed.
type compactReq struct {
	through int64
	oldest  int64      // set by the writer: the oldest revision whose cleanup the caller waits for
	reply   chan error // buffered
}

// CompactEvents drops the events with revision <= through (clamped to the
// current revision). It runs on the writer goroutine, between write
// batches: it moves the oldest revision (one small transaction), then
// deletes the rows no view needs any more in transactions of purgeChunk
// revisions, letting queued writes go first; it returns when that cleanup
// is done (or ctx ends, which does not stop the cleanup).
func (s *Store) CompactEvents(ctx context.Context, through int64) error {
	if err := s.checkOpen(ctx); err != nil {
		return err
	}
	if through < 0 {
		return fmt.Errorf("store/sqlite: compact events through %d: %w", through, store.ErrInvalid)
	}
	c := &compactReq{through: through, reply: make(chan error, 1)}
	select {
	case s.compactQ <- c:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.quit:
		return store.ErrClosed
	}
	select {
	case err := <-c.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		// The writer answers what it took before it exits.
		select {
		case err := <-c.reply:
			return err
		default:
			return store.ErrClosed
		}
	}
}

// compact handles a CompactEvents on the writer goroutine (no transaction
// is open).
func (w *writer) compact(c *compactReq) {
	if oldest := min(c.through, w.rev) + 1; oldest > w.oldest {
		if err := w.runTx(func() error {
			_, err := w.st.setOldest.ExecContext(bg, oldest)
			return err
		}); err != nil {
			c.reply <- unavailable("compact events", err)
			return
		}
		w.oldest = oldest
		w.s.oldest.Store(oldest)
	}
	w.purgeFailed = nil
	c.oldest = w.oldest
	w.compactions = append(w.compactions, c)
	w.answerCompactions(nil)
}

// purgeStep runs one cleanup transaction of compaction: the predecessors of
// the rows with revision in [purge, purge+purgeChunk) that no view needs.
func (w *writer) purgeStep() {
	hi := min(w.oldest, w.purge+purgeChunk)
	err := w.runTx(func() error {
		if _, err := w.st.purgeRows.ExecContext(bg, w.purge, hi); err != nil {
			return err
		}
		_, err := w.st.setPurge.ExecContext(bg, hi)
		return err
	})
	if err != nil {
		// Stop until the next compaction retries; tell who waits.
		w.purgeFailed = unavailable("compact events", err)
		w.answerCompactions(w.purgeFailed)
		return
	}
	w.purge = hi
	w.s.kickCheckpoint()
	w.answerCompactions(nil)
}

// purging reports whether compaction's cleanup has work to do.
func (w *writer) purging() bool { return w.purge < w.oldest && w.purgeFailed == nil }

// answerCompactions answers the compactions whose cleanup is done, or all
// of them with err when err is not nil.
func (w *writer) answerCompactions(err error) {
	kept := w.compactions[:0]
	for _, c := range w.compactions {
		switch {
		case err != nil:
			c.reply <- err
		case w.purge >= c.oldest:
			c.reply <- nil
		default:
			kept = append(kept, c)
		}
	}
	clear(w.compactions[len(kept):])
	w.compactions = kept
}

// runTx runs fn in its own write transaction on the writer connection.
func (w *writer) runTx(fn func() error) error {
	if _, err := w.st.begin.ExecContext(bg); err != nil {
		return err
	}
	if err := fn(); err != nil {
		w.st.rollback.ExecContext(bg)
		return err
	}
	if _, err := w.st.commit.ExecContext(bg); err != nil {
		w.st.rollback.ExecContext(bg)
		return err
	}
	return nil
}

// Scan returns one page of the live entries of every agent and tier after
// req.After in (agent, tier, key) order, from one snapshot.
func (s *Store) Scan(ctx context.Context, req store.ScanRequest) (*store.ScanResult, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	if req.Limit <= 0 {
		return nil, fmt.Errorf("store/sqlite: scan: limit %d: %w", req.Limit, store.ErrInvalid)
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.readErr(ctx, "scan", err)
	}
	defer tx.Rollback()
	res := &store.ScanResult{}
	var oldest int64
	if err := tx.StmtContext(ctx, s.rs.meta).QueryRowContext(ctx).Scan(&res.Revision, &oldest); err != nil {
		return nil, s.readErr(ctx, "scan", err)
	}
	limit := req.Limit
	if limit < math.MaxInt {
		limit++
	}
	a := req.After
	rows, err := tx.StmtContext(ctx, s.rs.scan).QueryContext(ctx, nowOr(req.Now), a.AgentID, a.Tier, a.Key, limit)
	if err != nil {
		return nil, s.readErr(ctx, "scan", err)
	}
	defer rows.Close()
	for rows.Next() {
		if len(res.Entries) == req.Limit {
			res.More = true
			break
		}
		var row entryRow
		var k store.Key
		if err := rows.Scan(append([]any{&k.AgentID, &k.Tier, &k.Key}, row.dest()...)...); err != nil {
			return nil, s.readErr(ctx, "scan", err)
		}
		res.Entries = append(res.Entries, *row.entry(k, false))
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr(ctx, "scan", err)
	}
	return res, nil
}
