package sqlite

import (
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/agentstate/agentstate/store"
)

// curRow is a key's row of agent_states as the writer reads it.
type curRow struct {
	exists        bool
	rowid         int64
	version       int64
	revision      int64
	value         []byte
	checksum      string
	chain         string
	createdAt     int64
	updatedAt     int64
	expiresAt     sql.NullInt64
	createdBy     string
	metadata      []byte
	deleted       bool
	minVersion    int64
	firstRevision int64
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
		Value:     json.RawMessage(c.value),
		Version:   c.version,
		Revision:  c.revision,
		CreatedAt: unixNano(c.createdAt),
		UpdatedAt: unixNano(c.updatedAt),
		CreatedBy: c.createdBy,
		Checksum:  c.checksum,
		Metadata:  rawOrNil(c.metadata),
		Deleted:   c.deleted,
	}
	if c.expiresAt.Valid {
		t := unixNano(c.expiresAt.Int64)
		e.ExpiresAt = &t
	}
	return e
}

func (w *writer) loadCur(k store.Key) (curRow, error) {
	var c curRow
	var deleted int64
	err := w.st.selCur.QueryRowContext(bg, k.AgentID, k.Tier, k.Key).Scan(
		&c.rowid, &c.version, &c.revision, &c.value, &c.checksum, &c.chain, &c.createdAt, &c.updatedAt,
		&c.expiresAt, &c.createdBy, &c.metadata, &deleted, &c.minVersion, &c.firstRevision)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return curRow{}, nil
	case err != nil:
		return curRow{}, err
	}
	c.exists = true
	c.deleted = deleted != 0
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
		minVersion, firstRevision := cur.minVersion, cur.firstRevision
		if !cur.exists {
			version, chain, minVersion, firstRevision = 0, "", 1, rev
		}
		if p.expireFirst {
			version++
			chain = store.ChainHash(chain, version, store.ChangeExpire, "")
			if _, err := w.st.insVersion.ExecContext(bg, k.AgentID, k.Tier, k.Key, version, version-1, expRev,
				store.ChangeExpire, nil, "", chain, createdAt, nowNs, nil, "", "", nil); err != nil {
				return nil, 0, err
			}
		}

		e := store.Entry{Key: k, Version: version + 1, Revision: rev, UpdatedAt: nowT, CreatedBy: op.CreatedBy,
			Metadata: rawOrNil(op.Metadata)}
		var changeType string
		var value any
		var expiresAt any
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
			value = string(op.Value)
			if op.TTL > 0 {
				exp := nowNs + int64(op.TTL)
				t := unixNano(exp)
				e.ExpiresAt = &t
				expiresAt = exp
			}
		case store.OpDelete:
			changeType = store.ChangeDelete
			e.Deleted = true
		case store.OpExpire:
			changeType = store.ChangeExpire
			e.Deleted = true
		}
		e.CreatedAt = unixNano(createdAt)
		chain = store.ChainHash(chain, e.Version, changeType, e.Checksum)
		metadata := textOrNil(op.Metadata)
		if _, err := w.st.insVersion.ExecContext(bg, k.AgentID, k.Tier, k.Key, e.Version, version, rev,
			changeType, value, e.Checksum, chain, createdAt, nowNs, expiresAt, op.CreatedBy, op.ChangeSummary,
			metadata); err != nil {
			return nil, 0, err
		}
		if lim := int64(op.HistoryLimit); lim > 0 && e.Version-minVersion+1 > lim {
			minVersion = e.Version - lim + 1
			if _, err := w.st.prune.ExecContext(bg, k.AgentID, k.Tier, k.Key, minVersion); err != nil {
				return nil, 0, err
			}
		}
		var err error
		if cur.exists {
			_, err = w.st.updCur.ExecContext(bg, e.Version, rev, value, e.Checksum, chain, createdAt, nowNs,
				expiresAt, op.CreatedBy, metadata, e.Deleted, minVersion, cur.rowid)
		} else {
			_, err = w.st.insCur.ExecContext(bg, e.Version, rev, value, e.Checksum, chain, createdAt, nowNs,
				expiresAt, op.CreatedBy, metadata, e.Deleted, minVersion, firstRevision, k.AgentID, k.Tier, k.Key)
		}
		if err != nil {
			return nil, 0, err
		}
		res.Results[i] = store.OpResult{Entry: e, ChangeType: changeType, Previous: p.prev}
	}
	return res, rev, nil
}

// rawOrNil returns b as JSON, nil when empty.
func rawOrNil(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(b)
}

// textOrNil binds b as TEXT, or NULL when empty.
func textOrNil(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}
