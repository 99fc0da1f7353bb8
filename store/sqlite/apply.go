package sqlite

import (
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/agentstate/agentstate/store"
)

// curRow is a key's current state as the writer knows it: its agent_states
// row (rowid is the key id) and its newest version row. Strings (not byte
// slices) so that a cached row is immutable; "" stands for NULL in value and
// metadata (a live value is never empty).
type curRow struct {
	exists        bool
	rowid         int64 // agent_states.id, the key id
	version       int64
	revision      int64
	value         string
	checksum      string
	chain         string
	createdAt     int64
	updatedAt     int64
	expiresAt     sql.NullInt64
	createdBy     string
	metadata      string
	deleted       bool
	keepFrom      int64 // oldest version visible in History/Get (the newest row's keep_from)
	firstRevision int64
	// physMin is the oldest version row stored (<= keepFrom: rows below
	// keepFrom stay while the feed needs them). It may be stale (too low)
	// after a compaction; it only saves the cleanup query, never decides it.
	physMin int64
	// cleanedAt is the oldest revision (feed) at which every row of this key
	// that may go for good was deleted, and later writes cannot make more of
	// them deletable until the feed is compacted again; 0 if unknown.
	cleanedAt int64
}

// size approximates the memory a cached row holds.
func (c *curRow) size(k store.Key) int {
	return 160 + len(k.AgentID) + len(k.Tier) + len(k.Key) + len(c.value) + len(c.checksum) + len(c.chain) +
		len(c.createdBy) + len(c.metadata)
}

// expired reports whether the row is a live version whose TTL has passed.
func (c *curRow) expired(now int64) bool {
	return c.exists && !c.deleted && c.expiresAt.Valid && c.expiresAt.Int64 <= now
}

// live reports whether the key reads as present at now.
func (c *curRow) live(now int64) bool {
	return c.exists && !c.deleted && !(c.expiresAt.Valid && c.expiresAt.Int64 <= now)
}

func (c *curRow) entry(k store.Key) *store.Entry {
	e := &store.Entry{
		Key:       k,
		Version:   c.version,
		Revision:  c.revision,
		CreatedAt: unixNano(c.createdAt),
		UpdatedAt: unixNano(c.updatedAt),
		CreatedBy: c.createdBy,
		Checksum:  c.checksum,
		Deleted:   c.deleted,
	}
	if c.value != "" && !c.deleted {
		e.Value = json.RawMessage(c.value)
	}
	if c.metadata != "" {
		e.Metadata = json.RawMessage(c.metadata)
	}
	if c.expiresAt.Valid {
		t := unixNano(c.expiresAt.Int64)
		e.ExpiresAt = &t
	}
	return e
}

// loadCur returns the current row of k: from the writer's cache, else from
// the database (within the open transaction).
func (w *writer) loadCur(k store.Key) (curRow, error) {
	if c, ok := w.cache.get(k); ok {
		return *c, nil
	}
	var c curRow
	var value, metadata sql.NullString
	var changeType string
	err := w.st.selCur.QueryRowContext(bg, k.AgentID, k.Tier, k.Key).Scan(
		&c.rowid, &c.firstRevision, &c.version, &c.revision, &changeType, &value, &c.checksum, &c.chain,
		&c.createdAt, &c.updatedAt, &c.expiresAt, &c.createdBy, &metadata, &c.keepFrom, &c.physMin)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return curRow{}, nil
	case err != nil:
		return curRow{}, err
	}
	deleted := isTombstone(changeType)
	c.exists = true
	c.deleted = deleted
	c.value, c.metadata = value.String, metadata.String
	w.cache.put(k, &c)
	return c, nil
}

// opPlan is what one op will do, decided by plan before anything is written.
type opPlan struct {
	cur         curRow
	skip        bool         // an OpExpire whose precondition no longer holds
	expireFirst bool         // the key is expired but not reaped: write its expire tombstone first
	prev        *store.Entry // the live entry the op replaces
}

// plan reads the current row of every op's key and checks every
// precondition, so that a request that fails writes nothing at all. It
// returns a *store.ConflictError or *store.OpError for a failed precondition,
// any other error for a database failure.
func (w *writer) plan(req store.WriteRequest, now time.Time) ([]opPlan, error) {
	nowNs := now.UnixNano()
	plans := make([]opPlan, len(req.Ops))
	for i := range req.Ops {
		op := &req.Ops[i]
		cur, err := w.loadCur(op.Key)
		if err != nil {
			return nil, err
		}
		p := &plans[i]
		p.cur = cur
		live := cur.live(nowNs)
		if op.Kind == store.OpExpire {
			if !cur.expired(nowNs) || (op.ExpectedVersion != nil && *op.ExpectedVersion != cur.version) {
				p.skip = true
				continue
			}
			p.prev = cur.entry(op.Key)
			continue
		}
		if live {
			p.prev = cur.entry(op.Key)
		}
		if ev := op.ExpectedVersion; ev != nil {
			var current int64
			if live {
				current = cur.version
			}
			if (*ev == 0 && live) || (*ev > 0 && current != *ev) {
				typ := store.ConflictConcurrentModification
				if *ev > 0 && !live {
					typ = store.ConflictDeletedModified
				}
				return nil, &store.ConflictError{
					Op: i, Key: op.Key, Expected: *ev, Current: current, CurrentEntry: p.prev, Type: typ,
				}
			}
		}
		if op.Kind == store.OpDelete && !live {
			return nil, &store.OpError{Op: i, Err: store.ErrNotFound}
		}
		p.expireFirst = cur.expired(nowNs)
	}
	return plans, nil
}

// execute writes the planned ops. rev is the revision before the request;
// it returns the revision after it (unchanged if every op was skipped).
func (w *writer) execute(req store.WriteRequest, plans []opPlan, now time.Time, rev int64) (*store.WriteResult, int64, error) {
	nowNs := now.UnixNano()
	nowT := unixNano(nowNs)
	res := &store.WriteResult{Results: make([]store.OpResult, len(req.Ops))}
	applies, expireFirst := false, false
	for i := range plans {
		applies = applies || !plans[i].skip
		expireFirst = expireFirst || plans[i].expireFirst
	}
	if !applies {
		for i := range req.Ops {
			res.Results[i] = store.OpResult{Entry: store.Entry{Key: req.Ops[i].Key}, Skipped: true}
		}
		return res, rev, nil
	}
	// Expire tombstones of keys that expired without being reaped take their
	// own revision, before the request's.
	var expRev int64
	if expireFirst {
		rev++
		expRev = rev
	}
	rev++
	res.Revision = rev

	for i := range req.Ops {
		op := &req.Ops[i]
		p := &plans[i]
		k := op.Key
		if p.skip {
			res.Results[i] = store.OpResult{Entry: store.Entry{Key: k}, Skipped: true}
			continue
		}
		cur := &p.cur
		version, chain, createdAt := cur.version, cur.chain, cur.createdAt
		keepFrom, firstRevision := cur.keepFrom, cur.firstRevision
		physMin, cleanedAt := cur.physMin, cur.cleanedAt
		keyID := cur.rowid
		if !cur.exists {
			version, chain, keepFrom, firstRevision, physMin, cleanedAt = 0, "", 1, rev, 1, 0
		}
		if p.expireFirst { // only for an existing key: keyID is set
			version++
			chain = store.ChainHash(chain, version, store.ChangeExpire, "")
			if _, err := w.st.insVersion.ExecContext(bg, keyID, version, expRev, store.ChangeExpire, nil, "", chain,
				createdAt, nowNs, nil, ExpireCreatedBy, "expired", nil, keepFrom); err != nil {
				return nil, 0, err
			}
		}

		e := store.Entry{Key: k, Version: version + 1, Revision: rev, UpdatedAt: nowT, CreatedBy: op.CreatedBy,
			Metadata: rawOrNil(op.Metadata)}
		var changeType string
		var value any
		var expiresAt any
		var row curRow // the new current row, for the writer's cache
		switch op.Kind {
		case store.OpPut, store.OpRestore:
			switch {
			case op.Kind == store.OpRestore:
				changeType = store.ChangeRestore
			case p.prev != nil:
				changeType = store.ChangeUpdate
			default:
				changeType = store.ChangeCreate
			}
			if p.prev == nil {
				createdAt = nowNs
			}
			e.Value = op.Value
			e.Checksum = op.Checksum
			row.value = string(op.Value)
			value = row.value
			if op.TTL > 0 || op.ExpiresAt != nil {
				exp := nowNs + int64(op.TTL)
				if op.ExpiresAt != nil {
					exp = op.ExpiresAt.UnixNano()
				}
				t := unixNano(exp)
				e.ExpiresAt = &t
				expiresAt = exp
				row.expiresAt = sql.NullInt64{Int64: exp, Valid: true}
			}
		case store.OpDelete:
			changeType = store.ChangeDelete
			e.Deleted = true
		case store.OpExpire:
			changeType = store.ChangeExpire
			e.Deleted = true
		}
		e.CreatedAt = unixNano(createdAt)

		// agent_states holds what the list and reaper filters need; it
		// changes only when the key is created, or its deleted flag or
		// expiry changes.
		if !cur.exists {
			r, err := w.st.insCur.ExecContext(bg, k.AgentID, k.Tier, k.Key, e.Deleted, expiresAt, firstRevision)
			if err != nil {
				return nil, 0, err
			}
			if keyID, err = r.LastInsertId(); err != nil {
				return nil, 0, err
			}
		} else if cur.deleted != e.Deleted || cur.expiresAt != row.expiresAt {
			if _, err := w.st.updCur.ExecContext(bg, e.Deleted, expiresAt, keyID); err != nil {
				return nil, 0, err
			}
		}

		chain = store.ChainHash(chain, e.Version, changeType, e.Checksum)
		var metadata any
		if len(op.Metadata) > 0 {
			row.metadata = string(op.Metadata)
			metadata = row.metadata
		}
		// History pruning is logical: versions below keepFrom are hidden at
		// once; their rows go when the feed no longer needs them (cleanup).
		if lim := int64(op.HistoryLimit); lim > 0 && e.Version-keepFrom+1 > lim {
			keepFrom = e.Version - lim + 1
		}
		if _, err := w.st.insVersion.ExecContext(bg, keyID, e.Version, rev, changeType, value, e.Checksum, chain,
			createdAt, nowNs, expiresAt, op.CreatedBy, op.ChangeSummary, metadata, keepFrom); err != nil {
			return nil, 0, err
		}
		if w.oldest > 1 && physMin < keepFrom && cleanedAt != w.oldest {
			var err error
			if physMin, cleanedAt, err = w.cleanup(keyID, keepFrom, physMin); err != nil {
				return nil, 0, err
			}
		}
		row.exists, row.rowid, row.version, row.revision = true, keyID, e.Version, rev
		row.checksum, row.chain, row.createdAt, row.updatedAt = e.Checksum, chain, createdAt, nowNs
		row.createdBy, row.deleted, row.keepFrom, row.firstRevision = op.CreatedBy, e.Deleted, keepFrom, firstRevision
		row.physMin, row.cleanedAt = physMin, cleanedAt
		w.staged = append(w.staged, stagedRow{k, row})
		res.Results[i] = store.OpResult{Entry: e, ChangeType: changeType, Previous: p.prev}
	}
	return res, rev, nil
}

// cleanup deletes the version rows of key keyID that are in neither view:
// hidden from History (version < keepFrom) and not needed by the feed (the
// next version's revision is below the oldest kept revision, so no kept event
// has this row as its old value). Revisions grow with versions, so with m =
// the newest version <= keepFrom whose revision is compacted, exactly the rows
// below m may go. It returns the new oldest stored version and, when no later
// write can make more rows deletable before the next compaction (the row at
// keepFrom is kept by the feed), the oldest revision it cleaned at.
func (w *writer) cleanup(keyID, keepFrom, physMin int64) (int64, int64, error) {
	var m int64
	if err := w.st.cleanMax.QueryRowContext(bg, keyID, keepFrom, w.oldest).Scan(&m); err != nil {
		return 0, 0, err
	}
	if m > physMin {
		if _, err := w.st.prune.ExecContext(bg, keyID, m); err != nil {
			return 0, 0, err
		}
		physMin = m
	}
	var cleanedAt int64
	if m < keepFrom {
		cleanedAt = w.oldest
	}
	return physMin, cleanedAt, nil
}

// rawOrNil returns b as JSON, nil when empty.
func rawOrNil(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(b)
}
