package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/agentstate/agentstate/store"
)

// States of a queued write request. The writer moves a request from queued
// to taken when it puts it in a batch; Write moves it from queued to
// cancelled when its context ends first. Whoever wins the compare-and-swap
// decides: a cancelled request is never applied, a taken one is always
// answered.
const (
	reqQueued int32 = iota
	reqTaken
	reqCancelled
)

// writeReq is one WriteRequest waiting for the writer.
type writeReq struct {
	req   store.WriteRequest
	size  int // payload bytes, for MaxBatchBytes
	state atomic.Int32
	reply chan writeReply // buffered: the writer never blocks on it
}

type writeReply struct {
	res *store.WriteResult
	err error
}

// Write commits req atomically and durably. Concurrent calls are grouped
// into one transaction (one fsync) by the writer goroutine. If ctx ends
// before the request is taken into a transaction, Write returns ctx.Err()
// and the request is never applied; once taken, Write waits for the outcome.
func (s *Store) Write(ctx context.Context, req store.WriteRequest) (*store.WriteResult, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	size, err := validateWrite(req)
	if err != nil {
		return nil, err
	}
	r := &writeReq{req: req, size: size, reply: make(chan writeReply, 1)}
	select {
	case s.queue <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.quit:
		return nil, store.ErrClosed
	}
	select {
	case rep := <-r.reply:
		return rep.res, rep.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqCancelled) {
			return nil, ctx.Err()
		}
	case <-s.done:
		if r.state.CompareAndSwap(reqQueued, reqCancelled) {
			return nil, store.ErrClosed
		}
	}
	// The writer took the request: it is answered before the writer exits.
	rep := <-r.reply
	return rep.res, rep.err
}

// validateWrite checks what can be checked without reading the database and
// returns the request's payload size.
func validateWrite(req store.WriteRequest) (int, error) {
	if len(req.Ops) == 0 {
		return 0, fmt.Errorf("store/sqlite: write without ops: %w", store.ErrInvalid)
	}
	size := 0
	for i := range req.Ops {
		op := &req.Ops[i]
		bad := func(format string, args ...any) error {
			return &store.OpError{Op: i, Err: fmt.Errorf("%w: "+format, append([]any{store.ErrInvalid}, args...)...)}
		}
		switch op.Kind {
		case store.OpPut, store.OpRestore:
			if len(op.Value) == 0 {
				return 0, bad("%s: empty value", op.Key)
			}
		case store.OpDelete, store.OpExpire:
		default:
			return 0, bad("unknown op kind %d", op.Kind)
		}
		if op.Key.AgentID == "" || op.Key.Tier == "" || op.Key.Key == "" {
			return 0, bad("incomplete key %q", op.Key.String())
		}
		if op.ExpectedVersion != nil && *op.ExpectedVersion < 0 {
			return 0, bad("%s: negative expected version %d", op.Key, *op.ExpectedVersion)
		}
		if op.TTL < 0 {
			return 0, bad("%s: negative ttl %s", op.Key, op.TTL)
		}
		if op.HistoryLimit < 0 {
			return 0, bad("%s: negative history limit %d", op.Key, op.HistoryLimit)
		}
		size += 128 + len(op.Value) + len(op.Metadata) + len(op.Checksum) + len(op.ChangeSummary) +
			len(op.CreatedBy) + len(op.Key.AgentID) + len(op.Key.Tier) + len(op.Key.Key)
	}
	if n := len(req.Ops); n > 1 {
		dup := func(i int) error {
			return &store.OpError{Op: i, Err: fmt.Errorf("%w: key %s appears twice in one request", store.ErrInvalid, req.Ops[i].Key)}
		}
		if n <= 16 {
			for i := 1; i < n; i++ {
				for j := range i {
					if req.Ops[i].Key == req.Ops[j].Key {
						return 0, dup(i)
					}
				}
			}
		} else {
			seen := make(map[store.Key]struct{}, n)
			for i := range req.Ops {
				if _, ok := seen[req.Ops[i].Key]; ok {
					return 0, dup(i)
				}
				seen[req.Ops[i].Key] = struct{}{}
			}
		}
	}
	return size, nil
}

// writer owns the single write connection and the in-memory revision counter.
type writer struct {
	s        *Store
	conn     *sql.Conn
	st       writeStmts
	rev      int64     // revision of the latest request applied (committed or in the open batch)
	lastNow  time.Time // the writer's clock never goes backwards
	batch    []*writeReq
	replies  []writeReply
	cache    *rowCache   // current rows, see rowCache
	staged   []stagedRow // rows written by the request being applied
	maxBatch int
	maxBytes int

	// beforeCommit, when set (tests), runs before COMMIT; an error makes the
	// batch fail as if COMMIT had failed.
	beforeCommit func() error

	// The change feed's compaction (events.go).
	oldest      int64         // the feed's oldest kept revision (store_meta.oldest_revision)
	purge       int64         // store_meta.purge_revision: compaction's cleanup is done below it
	compactions []*compactReq // CompactEvents waiting for the cleanup to reach their revision
	purgeFailed error         // the cleanup failed: it waits for the next compaction
}

// writeStmts are prepared once on the write connection.
type writeStmts struct {
	begin, commit, rollback    *sql.Stmt
	savepoint, release, undoSP *sql.Stmt
	selCur                     *sql.Stmt
	insVersion                 *sql.Stmt
	insCur, updCur             *sql.Stmt
	prune, cleanMax            *sql.Stmt
	setRev                     *sql.Stmt
	loadRev, loadMeta          *sql.Stmt
	setOldest, purgeRows       *sql.Stmt
	setPurge                   *sql.Stmt
}

const (
	// sqlSelCur reads a key's current state: its agent_states row, its
	// newest version row and its oldest stored version.
	sqlSelCur = `SELECT a.id, a.first_revision, v.version, v.revision, v.change_type, v.value, v.checksum, v.chain,
	v.created_at, v.updated_at, v.expires_at, v.created_by, v.metadata, v.keep_from,
	(SELECT min(version) FROM state_versions WHERE key_id = a.id)
	FROM agent_states a JOIN state_versions v ON v.key_id = a.id
	WHERE a.agent_id = ? AND a.tier = ? AND a.key = ? ORDER BY v.version DESC LIMIT 1`
	sqlInsVersion = `INSERT INTO state_versions (key_id, version, revision, change_type, value, checksum, chain,
	created_at, updated_at, expires_at, created_by, change_summary, metadata, keep_from)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlInsCur = `INSERT INTO agent_states (agent_id, tier, key, deleted, expires_at, first_revision) VALUES (?, ?, ?, ?, ?, ?)`
	sqlUpdCur = `UPDATE agent_states SET deleted = ?, expires_at = ? WHERE id = ?`
	sqlPrune  = `DELETE FROM state_versions WHERE key_id = ? AND version < ?`
	// sqlCleanMax: the newest version <= keep_from (?2) of a key whose
	// revision is compacted (< ?3), see writer.cleanup.
	sqlCleanMax = `SELECT coalesce(max(version), 0) FROM state_versions
	WHERE key_id = ?1 AND version <= ?2 AND revision < ?3`
	sqlLoadMeta  = `SELECT oldest_revision, purge_revision FROM store_meta WHERE id = 1`
	sqlSetOldest = `UPDATE store_meta SET oldest_revision = ? WHERE id = 1`
	sqlSetPurge  = `UPDATE store_meta SET purge_revision = ? WHERE id = 1`
	// sqlPurgeRows is compaction's cleanup of the rows u with revision in
	// [?1, ?2), which the feed no longer holds: u's predecessor p is no
	// longer any event's old value, so it goes if History hides it too
	// (below the key's keep_from, the newest row's).
	sqlPurgeRows = `DELETE FROM state_versions WHERE id IN (
	SELECT p.id FROM state_versions u
	JOIN state_versions p ON p.key_id = u.key_id AND p.version = u.version - 1
	WHERE u.revision >= ?1 AND u.revision < ?2
	AND p.version < (SELECT n.keep_from FROM state_versions n WHERE n.key_id = u.key_id ORDER BY n.version DESC LIMIT 1))`
	sqlSetRev = `UPDATE store_meta SET revision = ? WHERE id = 1`
	// sqlLoadRev: the newest version row (highest id) carries the latest revision.
	sqlLoadRev = `SELECT max((SELECT revision FROM store_meta WHERE id = 1),
	coalesce((SELECT revision FROM state_versions ORDER BY id DESC LIMIT 1), 0))`
)

func newWriter(ctx context.Context, s *Store) (*writer, error) {
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: writer connection: %w", err)
	}
	w := &writer{
		s:        s,
		conn:     conn,
		maxBatch: s.opts.MaxBatch,
		maxBytes: s.opts.MaxBatchBytes,
		batch:    make([]*writeReq, 0, s.opts.MaxBatch),
		replies:  make([]writeReply, 0, s.opts.MaxBatch),
		cache:    newRowCache(s.opts.RowCacheBytes),
	}
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&w.st.begin, "BEGIN IMMEDIATE"},
		{&w.st.commit, "COMMIT"},
		{&w.st.rollback, "ROLLBACK"},
		{&w.st.savepoint, "SAVEPOINT req"},
		{&w.st.release, "RELEASE req"},
		{&w.st.undoSP, "ROLLBACK TO req"},
		{&w.st.selCur, sqlSelCur},
		{&w.st.insVersion, sqlInsVersion},
		{&w.st.insCur, sqlInsCur},
		{&w.st.updCur, sqlUpdCur},
		{&w.st.prune, sqlPrune},
		{&w.st.cleanMax, sqlCleanMax},
		{&w.st.setRev, sqlSetRev},
		{&w.st.loadRev, sqlLoadRev},
		{&w.st.loadMeta, sqlLoadMeta},
		{&w.st.setOldest, sqlSetOldest},
		{&w.st.purgeRows, sqlPurgeRows},
		{&w.st.setPurge, sqlSetPurge},
	} {
		st, err := conn.PrepareContext(ctx, p.sql)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("store/sqlite: prepare %q: %w", p.sql, err)
		}
		*p.dst = st
	}
	if err := w.st.loadRev.QueryRowContext(ctx).Scan(&w.rev); err != nil {
		w.close()
		return nil, fmt.Errorf("store/sqlite: load revision: %w", err)
	}
	if err := w.st.loadMeta.QueryRowContext(ctx).Scan(&w.oldest, &w.purge); err != nil {
		w.close()
		return nil, fmt.Errorf("store/sqlite: load oldest revision: %w", err)
	}
	return w, nil
}

// close releases the statements and the connection (after run has exited).
func (w *writer) close() error {
	for _, st := range []*sql.Stmt{w.st.begin, w.st.commit, w.st.rollback, w.st.savepoint, w.st.release,
		w.st.undoSP, w.st.selCur, w.st.insVersion, w.st.insCur, w.st.updCur, w.st.prune, w.st.cleanMax, w.st.setRev,
		w.st.loadRev, w.st.loadMeta, w.st.setOldest, w.st.purgeRows, w.st.setPurge} {
		if st != nil {
			st.Close()
		}
	}
	w.st = writeStmts{}
	if w.conn == nil {
		return nil
	}
	err := w.conn.Close()
	w.conn = nil
	return err
}

// now is the commit clock: s.opts.Now, never going backwards, in UTC
// without a monotonic reading, at nanosecond precision as stored.
func (w *writer) now() time.Time {
	t := w.s.opts.Now().UTC().Round(0)
	if t.Before(w.lastNow) {
		t = w.lastNow
	}
	w.lastNow = t
	return t
}

// run is the writer goroutine: it takes every queued request (up to
// MaxBatch requests and MaxBatchBytes) into one transaction, commits it, and
// answers each request. It exits when Close closes quit.
func (w *writer) run() {
	s := w.s
	defer close(s.done)
	defer w.answerCompactions(store.ErrClosed)
	var carry *writeReq // taken from the queue but did not fit the previous batch
	for {
		select {
		case <-s.quit:
			return
		default:
		}
		batch := w.batch[:0]
		bytes := 0
		take := func(r *writeReq) {
			if r.state.CompareAndSwap(reqQueued, reqTaken) {
				batch = append(batch, r)
				bytes += r.size
			}
		}
		switch {
		case carry != nil:
			take(carry)
			carry = nil
		case w.purging():
			// Compaction's cleanup runs in small transactions while no
			// write is waiting.
			select {
			case r := <-s.queue:
				take(r)
			case c := <-s.compactQ:
				w.compact(c)
				continue
			case <-s.quit:
				return
			default:
				w.purgeStep()
				continue
			}
		default:
			select {
			case r := <-s.queue:
				take(r)
			case c := <-s.compactQ:
				w.compact(c)
				continue
			case <-s.quit:
				return
			}
		}
	drain:
		for len(batch) < w.maxBatch {
			select {
			case r := <-s.queue:
				if len(batch) > 0 && bytes+r.size > w.maxBytes {
					carry = r
					break drain
				}
				take(r)
			default:
				break drain
			}
		}
		if len(batch) > 0 {
			w.commitBatch(batch)
		}
		clear(batch)
		w.batch = batch[:0]
	}
}

var bg = context.Background()

// commitBatch applies batch in one transaction, commits once and answers
// every request.
//
// Preconditions are all checked (plan) before a request writes anything, so
// a request can only fail half-way through its writes on a database error,
// which is rare. The batch is therefore first applied without savepoints
// (they cost ~10% of the writer's CPU: two statements per request and a copy
// of every page a request first touches into the sub-journal). If a write
// fails there, the whole transaction is rolled back and the batch is applied
// again with each request under its own SAVEPOINT, so that only the failing
// request is undone. A batch of one request needs no savepoint either way.
func (w *writer) commitBatch(batch []*writeReq) {
	if w.applyBatch(batch, false) {
		w.applyBatch(batch, true)
	}
}

// applyBatch runs one attempt of commitBatch. It returns true, having rolled
// back and answered no request, when a write of a request failed without
// savepoints and the batch should be applied again with them.
func (w *writer) applyBatch(batch []*writeReq, useSP bool) (retry bool) {
	base := w.rev
	replies := w.replies[:0]
	defer func() {
		clear(replies)
		w.replies = replies[:0]
	}()

	if _, err := w.st.begin.ExecContext(bg); err != nil {
		w.abort(batch, base, "begin", err)
		return false
	}
	applied := 0
	for _, r := range batch {
		now := w.now()
		plans, err := w.plan(r.req, now)
		if err != nil {
			if !isPrecondition(err) {
				err = unavailable("read", err)
			}
			replies = append(replies, writeReply{err: err})
			continue
		}
		if useSP {
			if _, err := w.st.savepoint.ExecContext(bg); err != nil {
				w.abort(batch, base, "savepoint", err)
				return false
			}
		}
		clear(w.staged)
		w.staged = w.staged[:0]
		res, rev, err := w.execute(r.req, plans, now, w.rev)
		if err != nil {
			if !useSP {
				if len(batch) > 1 {
					w.rollback(base)
					return true
				}
				w.abort(batch, base, "write", err)
				return false
			}
			if _, uerr := w.st.undoSP.ExecContext(bg); uerr != nil {
				w.abort(batch, base, "rollback to savepoint", errors.Join(err, uerr))
				return false
			}
			if _, rerr := w.st.release.ExecContext(bg); rerr != nil {
				w.abort(batch, base, "release savepoint", errors.Join(err, rerr))
				return false
			}
			replies = append(replies, writeReply{err: unavailable("write", err)})
			continue
		}
		if useSP {
			if _, err := w.st.release.ExecContext(bg); err != nil {
				w.abort(batch, base, "release savepoint", err)
				return false
			}
		}
		for i := range w.staged {
			row := w.staged[i].row // the cache keeps its own copy
			w.cache.put(w.staged[i].key, &row)
		}
		w.staged = w.staged[:0]
		if rev != w.rev {
			applied++
		}
		w.rev = rev
		replies = append(replies, writeReply{res: res})
	}
	if w.rev != base {
		if _, err := w.st.setRev.ExecContext(bg, w.rev); err != nil {
			w.abort(batch, base, "store revision", err)
			return false
		}
	}
	if w.beforeCommit != nil {
		if err := w.beforeCommit(); err != nil {
			w.abort(batch, base, "commit", err)
			return false
		}
	}
	if _, err := w.st.commit.ExecContext(bg); err != nil {
		w.abort(batch, base, "commit", err)
		return false
	}
	if w.rev != base {
		w.s.committed.Store(w.rev)
		w.s.notifyCommit()
		w.s.stats.batches.Add(1)
		w.s.stats.requests.Add(int64(applied))
		w.s.kickCheckpoint()
	}
	for i, r := range batch {
		r.reply <- replies[i]
	}
	return false
}

// rollback undoes the open transaction and forgets what it wrote: the row
// cache and the revision counter go back to their state before it.
func (w *writer) rollback(base int64) {
	w.st.rollback.ExecContext(bg) // may fail: a failed statement may have ended the transaction already
	w.cache.reset()
	clear(w.staged)
	w.staged = w.staged[:0]
	w.rev = base
}

// abort rolls the open transaction back, restores the revision counter from
// the database and fails every request of the batch with ErrUnavailable:
// even a precondition failure may have been computed against writes that
// are now undone.
func (w *writer) abort(batch []*writeReq, base int64, what string, cause error) {
	w.rollback(base)
	var rev int64
	if err := w.st.loadRev.QueryRowContext(bg).Scan(&rev); err == nil && rev > base {
		w.rev = rev // the failed COMMIT may have reached the disk after all
		w.s.committed.Store(rev)
		w.s.notifyCommit()
	}
	err := unavailable(what, cause)
	for _, r := range batch {
		r.reply <- writeReply{err: err}
	}
}

func unavailable(what string, err error) error {
	return fmt.Errorf("store/sqlite: %s: %w: %w", what, store.ErrUnavailable, err)
}

// isPrecondition reports whether err is a request's own failure (conflict,
// not found, invalid) rather than a database failure.
func isPrecondition(err error) bool {
	var ce *store.ConflictError
	var oe *store.OpError
	return errors.As(err, &ce) || errors.As(err, &oe)
}
