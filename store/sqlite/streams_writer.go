package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/agentstate/agentstate/keys"
	"github.com/agentstate/agentstate/store"
)

// streamReq is one append or snapshot waiting for the event store's writer.
type streamReq struct {
	app  *store.AppendRequest // an append, or
	snap *store.Snapshot      // a snapshot
	ids  []string             // the append's event ids (given or generated)
	// given[i]: ids[i] came from the caller and must be checked against the
	// stored ids (a generated UUIDv7 is unique by construction).
	given []bool
	size  int
	state atomic.Int32     // reqQueued, reqTaken or reqCancelled (see writeReq)
	reply chan streamReply // buffered: the writer never blocks on it
}

type streamReply struct {
	res *store.AppendResult
	err error
}

// Append adds req's events to the stream atomically and durably. Concurrent
// calls are grouped into one transaction by the writer goroutine. If ctx
// ends before the request is taken into a transaction, Append returns
// ctx.Err() and nothing is written; once taken, Append waits for the
// outcome.
func (s *StreamStore) Append(ctx context.Context, req store.AppendRequest) (*store.AppendResult, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	r, err := newAppendReq(&req)
	if err != nil {
		return nil, err
	}
	rep, err := s.submit(ctx, r)
	if err != nil {
		return nil, err
	}
	return rep.res, rep.err
}

// SaveSnapshot stores snap as its stream's latest snapshot unless a
// snapshot with a higher version is stored already (then it does nothing).
// The stream must exist (store.ErrNotFound) and snap.Version must be one of
// its events (store.ErrInvalid).
func (s *StreamStore) SaveSnapshot(ctx context.Context, snap store.Snapshot) error {
	if err := s.checkOpen(ctx); err != nil {
		return err
	}
	if err := checkStreamID("save snapshot", snap.StreamID); err != nil {
		return err
	}
	if snap.Version < 0 {
		return streamInvalidf("save snapshot of %s: negative version %d", snap.StreamID, snap.Version)
	}
	if len(snap.State) == 0 || !json.Valid(snap.State) {
		return streamInvalidf("save snapshot of %s: state is not valid JSON", snap.StreamID)
	}
	r := &streamReq{snap: &snap, size: 128 + len(snap.StreamID) + len(snap.State), reply: make(chan streamReply, 1)}
	rep, err := s.submit(ctx, r)
	if err != nil {
		return err
	}
	return rep.err
}

// submit queues r for the writer and waits for its reply (see Store.Write
// for the cancellation rules).
func (s *StreamStore) submit(ctx context.Context, r *streamReq) (streamReply, error) {
	select {
	case s.queue <- r:
	case <-ctx.Done():
		return streamReply{}, ctx.Err()
	case <-s.quit:
		return streamReply{}, store.ErrClosed
	}
	select {
	case rep := <-r.reply:
		return rep, nil
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqCancelled) {
			return streamReply{}, ctx.Err()
		}
	case <-s.done:
		if r.state.CompareAndSwap(reqQueued, reqCancelled) {
			return streamReply{}, store.ErrClosed
		}
	}
	// The writer took the request: it is answered before the writer exits.
	return <-r.reply, nil
}

func streamInvalidf(format string, args ...any) error {
	return fmt.Errorf("store/sqlite: %w: "+format, append([]any{store.ErrInvalid}, args...)...)
}

func checkStreamID(what, id string) error {
	if err := keys.ValidateAgentID(id); err != nil {
		return fmt.Errorf("store/sqlite: %s: stream id: %w: %w", what, store.ErrInvalid, err)
	}
	return nil
}

// newAppendReq validates req, assigns the missing event ids and returns the
// queued request.
func newAppendReq(req *store.AppendRequest) (*streamReq, error) {
	if err := checkStreamID("append", req.StreamID); err != nil {
		return nil, err
	}
	n := len(req.Events)
	if n == 0 || n > MaxStreamAppendEvents {
		return nil, streamInvalidf("append to %s: %d events; an append holds 1 to %d", req.StreamID, n, MaxStreamAppendEvents)
	}
	if e := req.ExpectedVersion; e != nil && *e < store.ExpectNoStream {
		return nil, streamInvalidf("append to %s: expected version %d", req.StreamID, *e)
	}
	r := &streamReq{app: req, ids: make([]string, n), given: make([]bool, n), reply: make(chan streamReply, 1)}
	size := 128 + len(req.StreamID)
	var seen map[string]struct{}
	for i := range req.Events {
		ev := &req.Events[i]
		bad := func(format string, args ...any) error {
			return streamInvalidf("append to %s: event %d: "+format, append([]any{req.StreamID, i}, args...)...)
		}
		if ev.Type == "" || len(ev.Type) > MaxStreamEventTypeLen {
			return nil, bad("event type must be 1 to %d bytes", MaxStreamEventTypeLen)
		}
		if len(ev.Data) == 0 || !json.Valid(ev.Data) {
			return nil, bad("data is not valid JSON")
		}
		if len(ev.Metadata) > 0 && !json.Valid(ev.Metadata) {
			return nil, bad("metadata is not valid JSON")
		}
		if ev.EventID == "" {
			id, err := uuid.NewV7()
			if err != nil {
				return nil, fmt.Errorf("store/sqlite: append to %s: event id: %w: %w", req.StreamID, store.ErrUnavailable, err)
			}
			r.ids[i] = id.String()
		} else {
			if err := checkStreamEventID(ev.EventID); err != nil {
				return nil, bad("event id %q: %v", ev.EventID, err)
			}
			if seen == nil {
				seen = make(map[string]struct{}, n)
			}
			if _, dup := seen[ev.EventID]; dup {
				return nil, bad("event id %q appears twice in one append", ev.EventID)
			}
			seen[ev.EventID] = struct{}{}
			r.ids[i], r.given[i] = ev.EventID, true
		}
		size += 64 + len(r.ids[i]) + len(ev.Type) + len(ev.Data) + len(ev.Metadata)
	}
	r.size = size
	return r, nil
}

// checkStreamEventID accepts 1..MaxStreamEventIDLen bytes of UTF-8 without spaces or
// control characters.
func checkStreamEventID(id string) error {
	if len(id) > MaxStreamEventIDLen {
		return fmt.Errorf("longer than %d bytes", MaxStreamEventIDLen)
	}
	if !utf8.ValidString(id) {
		return errors.New("not UTF-8")
	}
	for _, c := range id {
		if unicode.IsSpace(c) || unicode.IsControl(c) {
			return errors.New("contains a space or control character")
		}
	}
	return nil
}

// streamWriter owns the event store's write connection and position counter.
type streamWriter struct {
	s        *StreamStore
	conn     *sql.Conn
	st       streamWriteStmts
	pos      int64 // position of the latest append applied (committed or in the open batch)
	lastNow  time.Time
	batch    []*streamReq
	replies  []streamReply
	maxBatch int
	maxBytes int

	// beforeCommit, when set (tests), runs before COMMIT; an error makes the
	// batch fail as if COMMIT had failed.
	beforeCommit func() error
}

type streamWriteStmts struct {
	begin, commit, rollback    *sql.Stmt
	savepoint, release, undoSP *sql.Stmt
	selStream                  *sql.Stmt
	insStream, updStream       *sql.Stmt
	eventExists, insEvent      *sql.Stmt
	putSnapshot                *sql.Stmt
	loadPos                    *sql.Stmt
}

func (st *streamWriteStmts) all() []*sql.Stmt {
	return []*sql.Stmt{st.begin, st.commit, st.rollback, st.savepoint, st.release, st.undoSP, st.selStream,
		st.insStream, st.updStream, st.eventExists, st.insEvent, st.putSnapshot, st.loadPos}
}

const (
	sqlSelStream         = `SELECT id, last_version FROM streams WHERE stream_id = ?`
	sqlInsStream         = `INSERT INTO streams (stream_id, last_version) VALUES (?, ?)`
	sqlUpdStream         = `UPDATE streams SET last_version = ? WHERE id = ?`
	sqlStreamEventExists = `SELECT EXISTS (SELECT 1 FROM stream_events WHERE event_id = ?)`
	sqlInsStreamEvent    = `INSERT INTO stream_events (position, idx, stream, version, event_id, type, data, metadata, timestamp)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// sqlPutStreamSnapshot keeps the snapshot with the highest version.
	sqlPutStreamSnapshot = `INSERT INTO stream_snapshots (stream, version, state, created_at) VALUES (?1, ?2, ?3, ?4)
	ON CONFLICT (stream) DO UPDATE SET version = ?2, state = ?3, created_at = ?4 WHERE ?2 >= version`
	sqlLoadStreamPos = `SELECT coalesce(max(position), 0) FROM stream_events`
)

func newStreamWriter(ctx context.Context, s *StreamStore) (*streamWriter, error) {
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: streams writer connection: %w", err)
	}
	w := &streamWriter{
		s:        s,
		conn:     conn,
		maxBatch: s.opts.MaxBatch,
		maxBytes: s.opts.MaxBatchBytes,
		batch:    make([]*streamReq, 0, s.opts.MaxBatch),
		replies:  make([]streamReply, 0, s.opts.MaxBatch),
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
		{&w.st.selStream, sqlSelStream},
		{&w.st.insStream, sqlInsStream},
		{&w.st.updStream, sqlUpdStream},
		{&w.st.eventExists, sqlStreamEventExists},
		{&w.st.insEvent, sqlInsStreamEvent},
		{&w.st.putSnapshot, sqlPutStreamSnapshot},
		{&w.st.loadPos, sqlLoadStreamPos},
	} {
		st, err := conn.PrepareContext(ctx, p.sql)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("store/sqlite: prepare %q: %w", p.sql, err)
		}
		*p.dst = st
	}
	if err := w.st.loadPos.QueryRowContext(ctx).Scan(&w.pos); err != nil {
		w.close()
		return nil, fmt.Errorf("store/sqlite: load stream position: %w", err)
	}
	return w, nil
}

func (w *streamWriter) close() error {
	for _, st := range w.st.all() {
		if st != nil {
			st.Close()
		}
	}
	w.st = streamWriteStmts{}
	if w.conn == nil {
		return nil
	}
	err := w.conn.Close()
	w.conn = nil
	return err
}

// now is the commit clock: opts.Now, never going backwards, in UTC.
func (w *streamWriter) now() time.Time {
	t := w.s.opts.Now().UTC().Round(0)
	if t.Before(w.lastNow) {
		t = w.lastNow
	}
	w.lastNow = t
	return t
}

// run is the writer goroutine: it takes every queued request (up to
// MaxBatch requests and MaxBatchBytes) into one transaction, commits it and
// answers each request. It exits when Close closes quit.
func (w *streamWriter) run() {
	s := w.s
	defer close(s.done)
	var carry *streamReq // taken from the queue but did not fit the previous batch
	for {
		select {
		case <-s.quit:
			return
		default:
		}
		batch := w.batch[:0]
		bytes := 0
		take := func(r *streamReq) {
			if r.state.CompareAndSwap(reqQueued, reqTaken) {
				batch = append(batch, r)
				bytes += r.size
			}
		}
		if carry != nil {
			take(carry)
			carry = nil
		} else {
			select {
			case r := <-s.queue:
				take(r)
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
			// As in writer.commitBatch: without savepoints first; again
			// with one per request if a write failed half-way.
			if w.applyBatch(batch, false) {
				w.applyBatch(batch, true)
			}
		}
		clear(batch)
		w.batch = batch[:0]
	}
}

// streamPlan is what a request's checks found: the stream's key id (0 when
// it does not exist) and last version (-1 when it does not exist).
type streamPlan struct {
	id   int64
	last int64
}

// plan checks r's preconditions against the open transaction (which holds
// the earlier requests of the batch). fail is the request's own failure;
// err a database error.
func (w *streamWriter) plan(r *streamReq) (p streamPlan, fail, err error) {
	streamID := ""
	if r.app != nil {
		streamID = r.app.StreamID
	} else {
		streamID = r.snap.StreamID
	}
	p.last = -1
	switch err := w.st.selStream.QueryRowContext(bg, streamID).Scan(&p.id, &p.last); {
	case errors.Is(err, sql.ErrNoRows):
		p.id, p.last = 0, -1
	case err != nil:
		return p, nil, err
	}
	if r.snap != nil {
		switch {
		case p.id == 0:
			return p, fmt.Errorf("store/sqlite: save snapshot: stream %s: %w", streamID, store.ErrNotFound), nil
		case r.snap.Version > p.last:
			return p, streamInvalidf("save snapshot of %s: version %d does not exist (last version %d)",
				streamID, r.snap.Version, p.last), nil
		}
		return p, nil, nil
	}
	if e := r.app.ExpectedVersion; e != nil {
		ok := *e == p.last // ExpectNoStream (-1) matches a missing stream
		if !ok {
			return p, &store.WrongExpectedVersionError{StreamID: streamID, Expected: *e, CurrentVersion: p.last}, nil
		}
	}
	for i, id := range r.ids {
		if !r.given[i] {
			continue
		}
		var exists bool
		if err := w.st.eventExists.QueryRowContext(bg, id).Scan(&exists); err != nil {
			return p, nil, err
		}
		if exists {
			return p, streamInvalidf("append to %s: event %d: event id %q already exists", streamID, i, id), nil
		}
	}
	return p, nil, nil
}

// execute writes a planned request; it returns the result and the new
// position (unchanged for a snapshot).
func (w *streamWriter) execute(r *streamReq, p streamPlan) (*store.AppendResult, int64, error) {
	now := w.now()
	if r.snap != nil {
		created := r.snap.CreatedAt
		if created.IsZero() {
			created = now
		}
		_, err := w.st.putSnapshot.ExecContext(bg, p.id, r.snap.Version, []byte(r.snap.State), created.UnixNano())
		return nil, w.pos, err
	}
	req := r.app
	n := int64(len(req.Events))
	last := p.last + n
	if p.id == 0 {
		res, err := w.st.insStream.ExecContext(bg, req.StreamID, last)
		if err != nil {
			return nil, 0, err
		}
		if p.id, err = res.LastInsertId(); err != nil {
			return nil, 0, err
		}
	} else if _, err := w.st.updStream.ExecContext(bg, last, p.id); err != nil {
		return nil, 0, err
	}
	pos := w.pos + 1
	ts := now.UnixNano()
	for i := range req.Events {
		ev := &req.Events[i]
		var meta []byte
		if len(ev.Metadata) > 0 {
			meta = ev.Metadata
		}
		if _, err := w.st.insEvent.ExecContext(bg, pos, i, p.id, p.last+1+int64(i), r.ids[i], ev.Type,
			[]byte(ev.Data), meta, ts); err != nil {
			return nil, 0, err
		}
	}
	return &store.AppendResult{NextVersion: last, Position: pos}, pos, nil
}

// applyBatch runs the batch in one transaction. It returns true, having
// rolled back and answered no request, when a write failed without
// savepoints and the batch should be applied again with them.
func (w *streamWriter) applyBatch(batch []*streamReq, useSP bool) (retry bool) {
	base := w.pos
	replies := w.replies[:0]
	defer func() {
		clear(replies)
		w.replies = replies[:0]
	}()
	if _, err := w.st.begin.ExecContext(bg); err != nil {
		w.abort(batch, base, "begin", err)
		return false
	}
	wrote, appends := false, 0
	for _, r := range batch {
		p, fail, err := w.plan(r)
		if err != nil {
			// A failed read leaves the transaction usable; only this
			// request fails.
			replies = append(replies, streamReply{err: unavailable("read", err)})
			continue
		}
		if fail != nil {
			replies = append(replies, streamReply{err: fail})
			continue
		}
		if useSP {
			if _, err := w.st.savepoint.ExecContext(bg); err != nil {
				w.abort(batch, base, "savepoint", err)
				return false
			}
		}
		res, pos, err := w.execute(r, p)
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
			replies = append(replies, streamReply{err: unavailable("write", err)})
			continue
		}
		if useSP {
			if _, err := w.st.release.ExecContext(bg); err != nil {
				w.abort(batch, base, "release savepoint", err)
				return false
			}
		}
		wrote = true
		if pos != w.pos {
			appends++
		}
		w.pos = pos
		replies = append(replies, streamReply{res: res})
	}
	if !wrote {
		// Nothing to make durable: end the transaction without an fsync.
		w.rollback(base)
	} else {
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
		w.s.stats.batches.Add(1)
		w.s.stats.appends.Add(int64(appends))
		w.s.kickCheckpoint()
		if w.pos != base {
			w.s.position.Store(w.pos)
			w.s.notifyAppend()
		}
	}
	for i, r := range batch {
		r.reply <- replies[i]
	}
	return false
}

// rollback undoes the open transaction and its positions.
func (w *streamWriter) rollback(base int64) {
	w.st.rollback.ExecContext(bg) // may fail: a failed statement may have ended the transaction already
	w.pos = base
}

// abort rolls the open transaction back, reloads the position from the
// database and fails every request of the batch with ErrUnavailable.
func (w *streamWriter) abort(batch []*streamReq, base int64, what string, cause error) {
	w.rollback(base)
	var pos int64
	if err := w.st.loadPos.QueryRowContext(bg).Scan(&pos); err == nil && pos > base {
		w.pos = pos // the failed COMMIT may have reached the disk after all
		w.s.position.Store(pos)
		w.s.notifyAppend()
	}
	err := unavailable(what, cause)
	for _, r := range batch {
		r.reply <- streamReply{err: err}
	}
}
