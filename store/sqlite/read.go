package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/agentstate/agentstate/store"
)

// readStmts are prepared on the reader pool (database/sql prepares them on
// each connection as it is first used).
type readStmts struct {
	getCur, getVersion, getAtRev, keyInfo *sql.Stmt
	list, listBounded                     *sql.Stmt
	history                               *sql.Stmt
	expired                               *sql.Stmt
	meta, events, scan                    *sql.Stmt
}

const (
	versionCols = `version, revision, value, checksum, created_at, updated_at, expires_at, created_by, metadata`
	// keyIDOf is the key id of (agent_id, tier, key), NULL for a key never written.
	keyIDOf = `(SELECT id FROM agent_states WHERE agent_id = ? AND tier = ? AND key = ?)`
	// newestOf is the state_versions.id of the newest version of key a.id.
	newestOf = `(SELECT id FROM state_versions WHERE key_id = a.id ORDER BY version DESC LIMIT 1)`
	listCols = `a.key, v.version, v.revision, iif(?, NULL, v.value), v.checksum, v.created_at, v.updated_at,
	v.expires_at, v.created_by, v.metadata`
	listFrom  = ` FROM agent_states a JOIN state_versions v ON v.id = ` + newestOf
	listWhere = ` WHERE a.agent_id = ? AND a.tier = ? AND a.deleted = 0 AND (a.expires_at IS NULL OR a.expires_at > ?)
	AND a.key >= ?`
)

func (r *readStmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		// The current entry is the newest version row (a tombstone when deleted).
		{&r.getCur, `SELECT ` + versionCols + `, change_type IN ('delete', 'expire') FROM state_versions
			WHERE key_id = ` + keyIDOf + ` ORDER BY version DESC LIMIT 1`},
		// A version below the key's keep_from is hidden (pruned from history)
		// even while its row is kept for the change feed.
		{&r.getVersion, `SELECT ` + versionCols + `, change_type FROM state_versions
			WHERE key_id = (SELECT id FROM agent_states WHERE agent_id = ?1 AND tier = ?2 AND key = ?3)
			AND version = ?4 AND version >= (SELECT n.keep_from FROM state_versions n
			WHERE n.key_id = (SELECT id FROM agent_states WHERE agent_id = ?1 AND tier = ?2 AND key = ?3)
			ORDER BY n.version DESC LIMIT 1)`},
		{&r.getAtRev, `SELECT ` + versionCols + `, change_type FROM state_versions
			WHERE key_id = ? AND revision <= ? ORDER BY version DESC LIMIT 1`},
		// The key's id, first revision, newest version and oldest visible version.
		{&r.keyInfo, `SELECT a.id, a.first_revision, v.version, v.keep_from
			FROM agent_states a JOIN state_versions v ON v.id = ` + newestOf + `
			WHERE a.agent_id = ? AND a.tier = ? AND a.key = ?`},
		{&r.list, `SELECT ` + listCols + listFrom + listWhere + ` ORDER BY a.key LIMIT ?`},
		{&r.listBounded, `SELECT ` + listCols + listFrom + listWhere + ` AND a.key < ? ORDER BY a.key LIMIT ?`},
		{&r.history, `SELECT version, revision, change_type, value, checksum, chain,
			created_at, updated_at, expires_at, created_by, change_summary, metadata FROM state_versions
			WHERE key_id = ? AND version < ? AND version >= ? ORDER BY version DESC LIMIT ?`},
		{&r.expired, `SELECT agent_id, tier, key, (SELECT max(version) FROM state_versions WHERE key_id = a.id)
			FROM agent_states a
			WHERE deleted = 0 AND expires_at IS NOT NULL AND expires_at <= ?
			ORDER BY expires_at, agent_id, tier, key LIMIT ?`},
		{&r.meta, sqlMeta},
		{&r.events, sqlEvents},
		{&r.scan, sqlScan},
	} {
		st, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("store/sqlite: prepare %q: %w", p.sql, err)
		}
		*p.dst = st
	}
	return nil
}

func (r *readStmts) close() {
	for _, st := range []*sql.Stmt{r.getCur, r.getVersion, r.getAtRev, r.keyInfo, r.list, r.listBounded,
		r.history, r.expired, r.meta, r.events, r.scan} {
		if st != nil {
			st.Close()
		}
	}
	*r = readStmts{}
}

// entryRow scans the versionCols of agent_states or state_versions.
type entryRow struct {
	version, revision    int64
	value                []byte
	checksum             string
	createdAt, updatedAt int64
	expiresAt            sql.NullInt64
	createdBy            string
	metadata             []byte
}

func (e *entryRow) dest() []any {
	return []any{&e.version, &e.revision, &e.value, &e.checksum, &e.createdAt, &e.updatedAt, &e.expiresAt,
		&e.createdBy, &e.metadata}
}

func (e *entryRow) entry(k store.Key, deleted bool) *store.Entry {
	out := &store.Entry{
		Key:       k,
		Value:     rawOrNil(e.value),
		Version:   e.version,
		Revision:  e.revision,
		CreatedAt: unixNano(e.createdAt),
		UpdatedAt: unixNano(e.updatedAt),
		CreatedBy: e.createdBy,
		Checksum:  e.checksum,
		Metadata:  rawOrNil(e.metadata),
		Deleted:   deleted,
	}
	if deleted {
		out.Value = nil
	}
	if e.expiresAt.Valid {
		t := unixNano(e.expiresAt.Int64)
		out.ExpiresAt = &t
	}
	return out
}

func (e *entryRow) expired(now int64) bool {
	return e.expiresAt.Valid && e.expiresAt.Int64 <= now
}

func isTombstone(changeType string) bool {
	return changeType == store.ChangeDelete || changeType == store.ChangeExpire
}

func nowOr(t time.Time) int64 {
	if t.IsZero() {
		return time.Now().UnixNano()
	}
	return t.UnixNano()
}

func (s *Store) checkOpen(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return ctx.Err()
}

// Get reads the current live entry of a key, one version of it, or the key
// as it was at a revision.
func (s *Store) Get(ctx context.Context, req store.GetRequest) (*store.Entry, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	k := req.Key
	switch {
	case req.Version < 0 || req.AtRevision < 0:
		return nil, fmt.Errorf("store/sqlite: get %s: negative version or revision: %w", k, store.ErrInvalid)
	case req.Version > 0 && req.AtRevision > 0:
		return nil, fmt.Errorf("store/sqlite: get %s: both version and revision: %w", k, store.ErrInvalid)
	case req.Version > 0:
		var row entryRow
		var changeType string
		err := s.rs.getVersion.QueryRowContext(ctx, k.AgentID, k.Tier, k.Key, req.Version).
			Scan(append(row.dest(), &changeType)...)
		if err != nil {
			return nil, s.readErr(ctx, "get", err)
		}
		if isTombstone(changeType) {
			return nil, store.ErrNotFound
		}
		return row.entry(k, false), nil
	case req.AtRevision > 0:
		return s.getAtRevision(ctx, k, req.AtRevision)
	}
	var row entryRow
	var deleted bool
	err := s.rs.getCur.QueryRowContext(ctx, k.AgentID, k.Tier, k.Key).Scan(append(row.dest(), &deleted)...)
	if err != nil {
		return nil, s.readErr(ctx, "get", err)
	}
	if deleted || row.expired(nowOr(req.Now)) {
		return nil, store.ErrNotFound
	}
	return row.entry(k, false), nil
}

// getAtRevision reads the newest version with revision <= rev, in one read
// transaction so that pruning info and versions agree.
func (s *Store) getAtRevision(ctx context.Context, k store.Key, rev int64) (_ *store.Entry, err error) {
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.readErr(ctx, "get", err)
	}
	defer tx.Rollback()
	var keyID, firstRevision, cur, keepFrom int64
	if err := tx.StmtContext(ctx, s.rs.keyInfo).QueryRowContext(ctx, k.AgentID, k.Tier, k.Key).
		Scan(&keyID, &firstRevision, &cur, &keepFrom); err != nil {
		return nil, s.readErr(ctx, "get", err)
	}
	var row entryRow
	var changeType string
	err = tx.StmtContext(ctx, s.rs.getAtRev).QueryRowContext(ctx, keyID, rev).
		Scan(append(row.dest(), &changeType)...)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// No stored version is old enough. Either the key did not exist yet
		// at rev, or the version that answered was pruned.
		if rev >= firstRevision && keepFrom > 1 {
			return nil, store.ErrCompacted
		}
		return nil, store.ErrNotFound
	case err != nil:
		return nil, s.readErr(ctx, "get", err)
	case row.version < keepFrom:
		// The answer is stored (the feed still needs it) but pruned from history.
		return nil, store.ErrCompacted
	case isTombstone(changeType):
		return nil, store.ErrNotFound
	}
	return row.entry(k, false), nil
}

// BatchGet reads the live entries of keys from one snapshot.
func (s *Store) BatchGet(ctx context.Context, keys []store.Key, now time.Time) (map[store.Key]*store.Entry, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	out := make(map[store.Key]*store.Entry, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	nowNs := nowOr(now)
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.readErr(ctx, "batch get", err)
	}
	defer tx.Rollback()
	st := tx.StmtContext(ctx, s.rs.getCur)
	defer st.Close()
	for _, k := range keys {
		if _, ok := out[k]; ok {
			continue
		}
		var row entryRow
		var deleted bool
		err := st.QueryRowContext(ctx, k.AgentID, k.Tier, k.Key).Scan(append(row.dest(), &deleted)...)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			continue
		case err != nil:
			return nil, s.readErr(ctx, "batch get", err)
		}
		if deleted || row.expired(nowNs) {
			continue
		}
		out[k] = row.entry(k, false)
	}
	return out, nil
}

// List returns one page of the live keys of an agent and tier in byte order.
func (s *Store) List(ctx context.Context, req store.ListRequest) (*store.ListResult, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	if req.Limit <= 0 {
		return nil, fmt.Errorf("store/sqlite: list: limit %d: %w", req.Limit, store.ErrInvalid)
	}
	// One lower bound: the prefix, or the smallest key after After.
	lo := req.Prefix
	if req.After != "" && req.After >= lo {
		lo = req.After + "\x00"
	}
	args := []any{req.KeysOnly, req.AgentID, req.Tier, nowOr(req.Now), lo}
	st := s.rs.list
	if hi := store.PrefixEnd(req.Prefix); hi != "" {
		st = s.rs.listBounded
		args = append(args, hi)
	}
	limit := req.Limit
	if limit < math.MaxInt {
		limit++
	}
	args = append(args, limit)
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, s.readErr(ctx, "list", err)
	}
	defer rows.Close()
	res := &store.ListResult{}
	for rows.Next() {
		if len(res.Entries) == req.Limit {
			res.More = true
			break
		}
		var row entryRow
		k := store.Key{AgentID: req.AgentID, Tier: req.Tier}
		if err := rows.Scan(append([]any{&k.Key}, row.dest()...)...); err != nil {
			return nil, s.readErr(ctx, "list", err)
		}
		e := row.entry(k, false)
		if req.KeysOnly {
			e.Value = nil
		}
		res.Entries = append(res.Entries, *e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr(ctx, "list", err)
	}
	return res, nil
}

// History lists the kept versions of a key, newest first.
func (s *Store) History(ctx context.Context, req store.HistoryRequest) (*store.HistoryResult, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	if req.Limit <= 0 || req.BeforeVersion < 0 {
		return nil, fmt.Errorf("store/sqlite: history: limit %d, before %d: %w", req.Limit, req.BeforeVersion,
			store.ErrInvalid)
	}
	k := req.Key
	before := req.BeforeVersion
	if before == 0 {
		before = math.MaxInt64
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.readErr(ctx, "history", err)
	}
	defer tx.Rollback()
	res := &store.HistoryResult{}
	var keyID, firstRevision, keepFrom int64
	if err := tx.StmtContext(ctx, s.rs.keyInfo).QueryRowContext(ctx, k.AgentID, k.Tier, k.Key).
		Scan(&keyID, &firstRevision, &res.CurrentVersion, &keepFrom); err != nil {
		return nil, s.readErr(ctx, "history", err)
	}
	rows, err := tx.StmtContext(ctx, s.rs.history).QueryContext(ctx, keyID, before, keepFrom, req.Limit)
	if err != nil {
		return nil, s.readErr(ctx, "history", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v store.Version
		var row entryRow
		if err := rows.Scan(&row.version, &row.revision, &v.ChangeType, &row.value,
			&row.checksum, &v.Chain, &row.createdAt, &row.updatedAt, &row.expiresAt, &row.createdBy,
			&v.ChangeSummary, &row.metadata); err != nil {
			return nil, s.readErr(ctx, "history", err)
		}
		v.ParentVersion = row.version - 1
		v.Entry = *row.entry(k, isTombstone(v.ChangeType))
		res.Versions = append(res.Versions, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr(ctx, "history", err)
	}
	return res, nil
}

// ExpiredKeys lists live keys whose expiry is at or before now, the earliest
// expiry first. limit <= 0 means no limit.
func (s *Store) ExpiredKeys(ctx context.Context, now time.Time, limit int) ([]store.Expired, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	lim := int64(limit)
	if limit <= 0 {
		lim = -1
	}
	rows, err := s.rs.expired.QueryContext(ctx, nowOr(now), lim)
	if err != nil {
		return nil, s.readErr(ctx, "expired keys", err)
	}
	defer rows.Close()
	var out []store.Expired
	for rows.Next() {
		var e store.Expired
		if err := rows.Scan(&e.Key.AgentID, &e.Key.Tier, &e.Key.Key, &e.Version); err != nil {
			return nil, s.readErr(ctx, "expired keys", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr(ctx, "expired keys", err)
	}
	return out, nil
}
