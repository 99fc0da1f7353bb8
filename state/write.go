package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/agentstate/agentstate/audit"
	"github.com/agentstate/agentstate/auth"
	"github.com/agentstate/agentstate/diff"
	"github.com/agentstate/agentstate/jsonvalue"
	"github.com/agentstate/agentstate/keys"
	"github.com/agentstate/agentstate/store"
)

// maxPatchRetries bounds the optimistic retries of a patch without
// expected_version racing other writers; each retry means someone else
// committed, so the system as a whole made progress.
const maxPatchRetries = 64

// Put writes a value (API.md Write).
func (m *Manager) Put(ctx context.Context, req PutRequest) (*PutResult, error) {
	if err := m.checkOpen(); err != nil {
		return nil, err
	}
	k, err := checkKey(req.AgentID, req.Tier, req.Key)
	if err != nil {
		return nil, err
	}
	switch req.Strategy {
	case "", StrategyFail, StrategyLastWriterWins, StrategyFirstWriterWins:
	case StrategyMerge, StrategyManual:
		return nil, &InvalidArgumentError{Field: "strategy", Op: -1, Message: fmt.Sprintf("strategy %q is not available yet: it comes with conflict resolution; use fail, last_writer_wins or first_writer_wins", req.Strategy)}
	default:
		return nil, &InvalidArgumentError{Field: "strategy", Op: -1, Message: fmt.Sprintf("unknown strategy %q: use fail, last_writer_wins or first_writer_wins", req.Strategy)}
	}
	if err := checkExpected(req.ExpectedVersion, "expected_version"); err != nil {
		return nil, err
	}
	p := auth.FromContext(ctx)
	if err := m.authz.Authorize(ctx, p, auth.ActionWrite, resource(k)); err != nil {
		return nil, err
	}
	op, err := m.putOp(k, req.Value, req.TTL, req.Metadata, -1)
	if err != nil {
		return nil, err
	}
	op.ExpectedVersion = req.ExpectedVersion
	if req.Strategy == StrategyLastWriterWins {
		// last_writer_wins: the write goes in whatever the current version.
		op.ExpectedVersion = nil
	}
	op.ChangeSummary = req.ChangeSummary
	op.CreatedBy = p.ID
	res, err := m.st.Write(ctx, store.WriteRequest{Ops: []store.WriteOp{op}})
	if err != nil {
		var ce *store.ConflictError
		if req.Strategy == StrategyFirstWriterWins && errors.As(err, &ce) && ce.CurrentEntry != nil {
			// first_writer_wins: the write loses, quietly; the caller gets
			// the current entry and what the conflict was.
			return &PutResult{Entry: ce.CurrentEntry, Conflict: ce}, nil
		}
		m.auditFail(ctx, p, "put", k, err)
		return nil, err
	}
	r := res.Results[0]
	m.auditOK(ctx, p, "put", k, r.Entry.Version, res.Revision)
	e := r.Entry
	return &PutResult{Entry: &e, Created: r.ChangeType == store.ChangeCreate}, nil
}

// Delete deletes a key, writing a tombstone; history is kept (API.md Delete).
func (m *Manager) Delete(ctx context.Context, req DeleteRequest) (*DeleteResult, error) {
	if err := m.checkOpen(); err != nil {
		return nil, err
	}
	k, err := checkKey(req.AgentID, req.Tier, req.Key)
	if err != nil {
		return nil, err
	}
	if err := checkExpected(req.ExpectedVersion, "expected_version"); err != nil {
		return nil, err
	}
	p := auth.FromContext(ctx)
	if err := m.authz.Authorize(ctx, p, auth.ActionDelete, resource(k)); err != nil {
		return nil, err
	}
	res, err := m.st.Write(ctx, store.WriteRequest{Ops: []store.WriteOp{{
		Kind:            store.OpDelete,
		Key:             k,
		ExpectedVersion: req.ExpectedVersion,
		ChangeSummary:   req.ChangeSummary,
		CreatedBy:       p.ID,
		HistoryLimit:    m.tiers[k.Tier].HistoryLimit,
	}}})
	if err != nil {
		m.auditFail(ctx, p, "delete", k, err)
		return nil, err
	}
	r := res.Results[0]
	m.auditOK(ctx, p, "delete", k, r.Entry.Version, res.Revision)
	return &DeleteResult{Version: r.Entry.Version, Revision: res.Revision}, nil
}

// Patch applies an RFC 6902 or RFC 7386 patch to the current value, atomically:
// the patched value is written only if the key is still at the version the
// patch was applied to. Without expected_version, a race with another writer
// re-reads and re-applies (the patch is then applied to the newer value, as
// a client doing read-patch-write with retries would); with it, a race is the
// caller's conflict.
func (m *Manager) Patch(ctx context.Context, req PatchRequest) (*PutResult, error) {
	if err := m.checkOpen(); err != nil {
		return nil, err
	}
	k, err := checkKey(req.AgentID, req.Tier, req.Key)
	if err != nil {
		return nil, err
	}
	if err := checkExpected(req.ExpectedVersion, "expected_version"); err != nil {
		return nil, err
	}
	pf, err := m.parsePatch(req.JSONPatch, req.MergePatch, -1)
	if err != nil {
		return nil, err
	}
	p := auth.FromContext(ctx)
	if err := m.authz.Authorize(ctx, p, auth.ActionWrite, resource(k)); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		cur, err := m.st.Get(ctx, store.GetRequest{Key: k, Now: m.now()})
		if err != nil {
			return nil, err
		}
		if req.ExpectedVersion != nil && *req.ExpectedVersion != cur.Version {
			return nil, conflictFor(k, *req.ExpectedVersion, cur)
		}
		newVal, err := pf(cur)
		if err != nil {
			return nil, err
		}
		md := req.Metadata
		if md == nil {
			// A patch changes the value; metadata stays unless given.
			md = cur.Metadata
		}
		op, err := m.putOp(k, newVal, nil, md, -1)
		if err != nil {
			return nil, err
		}
		v := cur.Version
		op.ExpectedVersion = &v
		op.ChangeSummary = req.ChangeSummary
		op.CreatedBy = p.ID
		// A patch keeps the key's expiry exactly, not the tier default.
		op.TTL, op.ExpiresAt = 0, cur.ExpiresAt
		res, err := m.st.Write(ctx, store.WriteRequest{Ops: []store.WriteOp{op}})
		if err != nil {
			var ce *store.ConflictError
			if req.ExpectedVersion == nil && errors.As(err, &ce) && attempt < maxPatchRetries {
				continue
			}
			m.auditFail(ctx, p, "patch", k, err)
			return nil, err
		}
		r := res.Results[0]
		m.auditOK(ctx, p, "patch", k, r.Entry.Version, res.Revision)
		e := r.Entry
		return &PutResult{Entry: &e}, nil
	}
}

// Rollback writes an older version's value as a new version, change type
// restore (API.md History).
func (m *Manager) Rollback(ctx context.Context, req RollbackRequest) (*Entry, error) {
	if err := m.checkOpen(); err != nil {
		return nil, err
	}
	k, err := checkKey(req.AgentID, req.Tier, req.Key)
	if err != nil {
		return nil, err
	}
	if req.Version < 1 {
		return nil, &InvalidArgumentError{Field: "version", Op: -1, Message: "version must be an integer >= 1"}
	}
	if err := checkExpected(req.ExpectedVersion, "expected_version"); err != nil {
		return nil, err
	}
	p := auth.FromContext(ctx)
	if err := m.authz.Authorize(ctx, p, auth.ActionWrite, resource(k)); err != nil {
		return nil, err
	}
	old, err := m.st.Get(ctx, store.GetRequest{Key: k, Version: req.Version, Now: m.now()})
	if err != nil {
		return nil, err
	}
	op, err := m.putOp(k, old.Value, nil, old.Metadata, -1)
	if err != nil {
		return nil, err
	}
	op.Kind = store.OpRestore
	op.ExpectedVersion = req.ExpectedVersion
	op.CreatedBy = p.ID
	op.ChangeSummary = req.ChangeSummary
	if op.ChangeSummary == "" {
		op.ChangeSummary = fmt.Sprintf("rollback to version %d", req.Version)
	}
	res, err := m.st.Write(ctx, store.WriteRequest{Ops: []store.WriteOp{op}})
	if err != nil {
		m.auditFail(ctx, p, "rollback", k, err)
		return nil, err
	}
	r := res.Results[0]
	m.auditOK(ctx, p, "rollback", k, r.Entry.Version, res.Revision)
	e := r.Entry
	return &e, nil
}

// BatchWrite applies ops atomically under one revision (API.md Batch). Patch
// ops read their key first and pin its version; if another writer moves a
// pinned key (and the caller gave no expected_version for it), the whole
// batch is read and tried again.
func (m *Manager) BatchWrite(ctx context.Context, req BatchWriteRequest) (*BatchWriteResult, error) {
	if err := m.checkOpen(); err != nil {
		return nil, err
	}
	if err := keys.ValidateAgentID(req.AgentID); err != nil {
		return nil, invalid(err, -1)
	}
	if len(req.Ops) == 0 {
		return nil, &InvalidArgumentError{Field: "ops", Op: -1, Message: "ops must hold at least one op"}
	}
	if len(req.Ops) > m.maxBatch {
		return nil, &InvalidArgumentError{Field: "ops", Op: -1, Message: fmt.Sprintf("a batch holds at most %d ops; got %d", m.maxBatch, len(req.Ops))}
	}
	p := auth.FromContext(ctx)
	type prepared struct {
		op      store.WriteOp
		patch   func(*Entry) (json.RawMessage, error)
		pinned  bool // expected version set by us for a patch
		userExp *int64
	}
	preps := make([]prepared, len(req.Ops))
	seen := make(map[store.Key]int, len(req.Ops))
	var bytesTotal int
	for i, o := range req.Ops {
		k, err := checkKey(req.AgentID, o.Tier, o.Key)
		if err != nil {
			return nil, withOp(err, i)
		}
		if j, dup := seen[k]; dup {
			return nil, &InvalidArgumentError{Field: "ops", Op: i, Message: fmt.Sprintf("op %d: key %s/%s already appears in op %d; a batch writes each key once", i, o.Tier, o.Key, j)}
		}
		seen[k] = i
		if err := checkExpected(o.ExpectedVersion, fmt.Sprintf("ops[%d].expected_version", i)); err != nil {
			return nil, withOp(err, i)
		}
		pr := prepared{userExp: o.ExpectedVersion}
		var action auth.Action
		switch o.Op {
		case BatchPut:
			action = auth.ActionWrite
			op, err := m.putOp(k, o.Value, o.TTL, nil, i)
			if err != nil {
				return nil, err
			}
			op.ExpectedVersion = o.ExpectedVersion
			pr.op = op
			bytesTotal += len(op.Value)
		case BatchDelete:
			action = auth.ActionDelete
			if o.TTL != nil {
				return nil, &InvalidArgumentError{Field: "ttl_seconds", Op: i, Message: fmt.Sprintf("op %d: ttl_seconds applies to put ops only", i)}
			}
			pr.op = store.WriteOp{Kind: store.OpDelete, Key: k, ExpectedVersion: o.ExpectedVersion, HistoryLimit: m.tiers[k.Tier].HistoryLimit}
		case BatchPatch:
			action = auth.ActionWrite
			if o.TTL != nil {
				return nil, &InvalidArgumentError{Field: "ttl_seconds", Op: i, Message: fmt.Sprintf("op %d: ttl_seconds applies to put ops only", i)}
			}
			pf, err := m.parsePatch(o.JSONPatch, o.MergePatch, i)
			if err != nil {
				return nil, err
			}
			pr.patch = pf
			pr.op = store.WriteOp{Kind: store.OpPut, Key: k}
		default:
			return nil, &InvalidArgumentError{Field: "op", Op: i, Message: fmt.Sprintf("op %d: unknown op %q: use put, delete or patch", i, o.Op)}
		}
		if o.Op != BatchPut && o.Value != nil {
			return nil, &InvalidArgumentError{Field: "value", Op: i, Message: fmt.Sprintf("op %d: value applies to put ops only", i)}
		}
		if o.Op != BatchPatch && (o.JSONPatch != nil || o.MergePatch != nil) {
			return nil, &InvalidArgumentError{Field: "json_patch", Op: i, Message: fmt.Sprintf("op %d: json_patch and merge_patch apply to patch ops only", i)}
		}
		if err := m.authz.Authorize(ctx, p, action, resource(k)); err != nil {
			return nil, err
		}
		pr.op.CreatedBy = p.ID
		pr.op.ChangeSummary = req.ChangeSummary
		preps[i] = pr
	}
	// A batch is one transaction; bound its size like a request body.
	if limit := 8 * m.limits.MaxBytes; bytesTotal > limit {
		return nil, &TooLargeError{Message: fmt.Sprintf("batch values total %d bytes; the limit is %d", bytesTotal, limit), Limit: limit, Actual: bytesTotal, Op: -1}
	}
	for attempt := 0; ; attempt++ {
		ops := make([]store.WriteOp, len(preps))
		for i := range preps {
			pr := &preps[i]
			if pr.patch != nil {
				cur, err := m.st.Get(ctx, store.GetRequest{Key: pr.op.Key, Now: m.now()})
				if err != nil {
					return nil, &store.OpError{Op: i, Err: err}
				}
				if pr.userExp != nil && *pr.userExp != cur.Version {
					ce := conflictFor(pr.op.Key, *pr.userExp, cur)
					ce.Op = i
					return nil, ce
				}
				nv, err := pr.patch(cur)
				if err != nil {
					return nil, withOp(err, i)
				}
				// A patch keeps the key's metadata, as a single PATCH does.
				op, err := m.putOp(pr.op.Key, nv, nil, cur.Metadata, i)
				if err != nil {
					return nil, err
				}
				op.TTL, op.ExpiresAt = 0, cur.ExpiresAt
				v := cur.Version
				op.ExpectedVersion = &v
				op.CreatedBy, op.ChangeSummary = pr.op.CreatedBy, pr.op.ChangeSummary
				pr.op = op
				pr.pinned = pr.userExp == nil
			}
			ops[i] = pr.op
		}
		res, err := m.st.Write(ctx, store.WriteRequest{Ops: ops})
		if err != nil {
			var ce *store.ConflictError
			if errors.As(err, &ce) && ce.Op >= 0 && ce.Op < len(preps) && preps[ce.Op].pinned && attempt < maxPatchRetries {
				continue
			}
			for _, o := range ops {
				m.auditFail(ctx, p, "batch", o.Key, err)
			}
			return nil, err
		}
		out := &BatchWriteResult{Revision: res.Revision, Results: make([]BatchResult, len(res.Results))}
		for i, r := range res.Results {
			out.Results[i] = BatchResult{Tier: ops[i].Key.Tier, Key: ops[i].Key.Key, Version: r.Entry.Version}
			m.auditOK(ctx, p, "batch", ops[i].Key, r.Entry.Version, res.Revision)
		}
		return out, nil
	}
}

// putOp validates a value and builds the store op that writes it: limits,
// compaction, checksum, TTL (the tier default when ttl is nil) and history
// limit. opIndex is the batch op index for errors (-1 outside batches).
func (m *Manager) putOp(k store.Key, value json.RawMessage, ttl *time.Duration, metadata json.RawMessage, opIndex int) (store.WriteOp, error) {
	if value == nil {
		return store.WriteOp{}, &InvalidArgumentError{Field: "value", Op: opIndex, Message: prefixOp(opIndex, "value is required (JSON null is a value; an absent field is not)")}
	}
	v, err := jsonvalue.Check(value, m.limits)
	if err != nil {
		return store.WriteOp{}, valueError(err, opIndex)
	}
	sum, err := jsonvalue.Checksum(v)
	if err != nil {
		return store.WriteOp{}, valueError(err, opIndex)
	}
	meta, err := m.checkMetadata(metadata, opIndex)
	if err != nil {
		return store.WriteOp{}, err
	}
	pol := m.tiers[k.Tier]
	d := pol.DefaultTTL
	if ttl != nil {
		if *ttl <= 0 {
			return store.WriteOp{}, &InvalidArgumentError{Field: "ttl_seconds", Op: opIndex, Message: prefixOp(opIndex, "ttl_seconds must be an integer >= 1")}
		}
		d = *ttl
	}
	return store.WriteOp{
		Kind:         store.OpPut,
		Key:          k,
		Value:        v,
		Checksum:     sum,
		TTL:          d,
		Metadata:     meta,
		HistoryLimit: pol.HistoryLimit,
	}, nil
}

// checkMetadata accepts a JSON object (or nothing) within the value limits.
func (m *Manager) checkMetadata(md json.RawMessage, opIndex int) (json.RawMessage, error) {
	if md == nil || bytes.Equal(bytes.TrimSpace(md), []byte("null")) {
		return nil, nil
	}
	v, err := jsonvalue.Check(md, jsonvalue.Limits{MaxBytes: 64 << 10, MaxDepth: m.limits.MaxDepth})
	if err != nil {
		var le *jsonvalue.LimitError
		if errors.As(err, &le) && errors.Is(err, jsonvalue.ErrTooLarge) {
			return nil, &TooLargeError{Message: prefixOp(opIndex, "metadata: "+le.Reason), Limit: le.Limit, Actual: le.Actual, Op: opIndex}
		}
		return nil, &InvalidArgumentError{Field: "metadata", Op: opIndex, Message: prefixOp(opIndex, "metadata: "+err.Error())}
	}
	if v[0] != '{' {
		return nil, &InvalidArgumentError{Field: "metadata", Op: opIndex, Message: prefixOp(opIndex, "metadata must be a JSON object")}
	}
	return v, nil
}

// parsePatch checks a patch request and returns the function that applies it
// to a current entry.
func (m *Manager) parsePatch(jp, mp json.RawMessage, opIndex int) (func(*Entry) (json.RawMessage, error), error) {
	hasJP := jp != nil && !bytes.Equal(bytes.TrimSpace(jp), []byte("null"))
	hasMP := mp != nil
	switch {
	case hasJP && hasMP:
		return nil, &InvalidArgumentError{Field: "json_patch", Op: opIndex, Message: prefixOp(opIndex, "give either json_patch or merge_patch, not both")}
	case !hasJP && !hasMP:
		return nil, &InvalidArgumentError{Field: "json_patch", Op: opIndex, Message: prefixOp(opIndex, "a patch needs json_patch (RFC 6902) or merge_patch (RFC 7386)")}
	}
	if hasMP {
		// A merge patch is shaped like the value it patches: same limits.
		doc, err := jsonvalue.Check(mp, m.limits)
		if err != nil {
			return nil, fieldError(fmt.Errorf("merge_patch: %w", err), "merge_patch", opIndex)
		}
		return func(cur *Entry) (json.RawMessage, error) {
			// RFC 7386: a patch that is not an object replaces the target;
			// an object patch on a target that is not an object applies to {}.
			// (evanphx/json-patch refuses both; spell them out.)
			if doc[0] != '{' {
				return doc, nil
			}
			target := cur.Value
			if len(target) == 0 || target[0] != '{' {
				target = json.RawMessage("{}")
			}
			out, err := jsonpatch.MergePatch(target, doc)
			if err != nil {
				return nil, &InvalidArgumentError{Field: "merge_patch", Op: opIndex, Message: prefixOp(opIndex, "merge_patch: "+err.Error())}
			}
			return out, nil
		}, nil
	}
	// The ops array and an op object add two levels around the values they
	// carry; the values themselves are held to the value limit when the
	// result is written.
	raw, err := jsonvalue.Check(jp, jsonvalue.Limits{MaxBytes: m.limits.MaxBytes, MaxDepth: m.limits.MaxDepth + 2})
	if err != nil {
		var le *jsonvalue.LimitError
		if errors.As(err, &le) && errors.Is(err, jsonvalue.ErrInvalid) && le.Limit > 0 {
			return nil, &InvalidArgumentError{Field: "json_patch", Op: opIndex, Message: prefixOp(opIndex, fmt.Sprintf("json_patch carries values nested deeper than the limit of %d", m.limits.MaxDepth))}
		}
		return nil, fieldError(fmt.Errorf("json_patch: %w", err), "json_patch", opIndex)
	}
	patch, err := jsonpatch.DecodePatch(raw)
	if err != nil || raw[0] != '[' {
		msg := "json_patch must be an array of RFC 6902 operations"
		if err != nil {
			msg += ": " + err.Error()
		}
		return nil, &InvalidArgumentError{Field: "json_patch", Op: opIndex, Message: prefixOp(opIndex, msg)}
	}
	if err := checkPatchOps(patch); err != nil {
		return nil, &InvalidArgumentError{Field: "json_patch", Op: opIndex, Message: prefixOp(opIndex, err.Error())}
	}
	opts := jsonpatch.NewApplyOptions()
	opts.EnsurePathExistsOnAdd = false
	return func(cur *Entry) (json.RawMessage, error) {
		out, err := diff.ApplyPatch(cur.Value, patch, opts)
		if err != nil {
			if errors.Is(err, jsonpatch.ErrTestFailed) {
				return nil, &PatchTestFailedError{Message: prefixOp(opIndex, "json_patch test failed: "+err.Error()), Current: cur}
			}
			return nil, &InvalidArgumentError{Field: "json_patch", Op: opIndex, Message: prefixOp(opIndex, "json_patch does not apply: "+err.Error())}
		}
		return out, nil
	}, nil
}

// checkPatchOps rejects unknown ops and missing fields up front, so a bad
// patch is a 400 whatever the current value.
func checkPatchOps(p jsonpatch.Patch) error {
	for i, op := range p {
		kind := op.Kind()
		switch kind {
		case "add", "replace", "test":
			if _, ok := op["value"]; !ok {
				return fmt.Errorf("json_patch op %d (%s) needs a value", i, kind)
			}
		case "remove":
		case "move", "copy":
			if _, err := op.From(); err != nil {
				return fmt.Errorf("json_patch op %d (%s) needs from", i, kind)
			}
		default:
			return fmt.Errorf("json_patch op %d: unknown op %q (want add, remove, replace, move, copy or test)", i, kind)
		}
		if _, err := op.Path(); err != nil {
			return fmt.Errorf("json_patch op %d (%s) needs a path", i, kind)
		}
	}
	return nil
}

// conflictFor builds the conflict error of an expected-version check made by
// the engine itself (patch), shaped like the store's.
func conflictFor(k store.Key, expected int64, cur *Entry) *store.ConflictError {
	return &store.ConflictError{Op: -1, Key: k, Expected: expected, Current: cur.Version, CurrentEntry: cur, Type: store.ConflictConcurrentModification}
}

func checkKey(agentID, tier, key string) (store.Key, error) {
	if err := keys.ValidateAgentID(agentID); err != nil {
		return store.Key{}, invalid(err, -1)
	}
	if err := keys.ValidateTier(tier); err != nil {
		return store.Key{}, invalid(err, -1)
	}
	if err := keys.ValidateKey(key); err != nil {
		return store.Key{}, invalid(err, -1)
	}
	return store.Key{AgentID: agentID, Tier: tier, Key: key}, nil
}

func checkExpected(v *int64, field string) error {
	if v != nil && *v < 0 {
		return &InvalidArgumentError{Field: field, Op: -1, Message: field + " must be an integer >= 0"}
	}
	return nil
}

func invalid(err error, op int) error {
	var se *keys.SyntaxError
	if errors.As(err, &se) {
		return &InvalidArgumentError{Field: se.Field, Op: op, Message: prefixOp(op, se.Error())}
	}
	return &InvalidArgumentError{Op: op, Message: prefixOp(op, err.Error())}
}

// withOp stamps a batch op index on an engine error.
func withOp(err error, op int) error {
	var ia *InvalidArgumentError
	if errors.As(err, &ia) {
		c := *ia
		c.Op = op
		c.Message = prefixOp(op, c.Message)
		return &c
	}
	var pt *PatchTestFailedError
	if errors.As(err, &pt) {
		return &store.OpError{Op: op, Err: err}
	}
	return err
}

func valueError(err error, op int) error { return fieldError(err, "value", op) }

// fieldError maps a jsonvalue error on a field to the engine's errors.
func fieldError(err error, field string, op int) error {
	var le *jsonvalue.LimitError
	if errors.As(err, &le) && errors.Is(err, jsonvalue.ErrTooLarge) {
		return &TooLargeError{Message: prefixOp(op, le.Reason), Limit: le.Limit, Actual: le.Actual, Op: op}
	}
	msg := err.Error()
	if errors.As(err, &le) {
		msg = le.Reason
		if pfx, _, ok := strings.Cut(err.Error(), le.Reason); ok && pfx != "" {
			msg = pfx + le.Reason // keep a "merge_patch: " prefix
		}
	}
	return &InvalidArgumentError{Field: field, Op: op, Message: prefixOp(op, msg)}
}

func prefixOp(op int, msg string) string {
	if op < 0 {
		return msg
	}
	p := fmt.Sprintf("op %d: ", op)
	if len(msg) >= len(p) && msg[:len(p)] == p {
		return msg
	}
	return p + msg
}

func resource(k store.Key) auth.Resource {
	return auth.Resource{AgentID: k.AgentID, Tier: k.Tier, Key: k.Key}
}

func (m *Manager) auditOK(ctx context.Context, p auth.Principal, action string, k store.Key, version, rev int64) {
	m.audit.Record(ctx, audit.Record{Time: m.now(), Principal: p.ID, Action: action, AgentID: k.AgentID, Tier: k.Tier, Key: k.Key, Version: version, Revision: rev, Outcome: "ok"})
}

func (m *Manager) auditFail(ctx context.Context, p auth.Principal, action string, k store.Key, err error) {
	m.audit.Record(ctx, audit.Record{Time: m.now(), Principal: p.ID, Action: action, AgentID: k.AgentID, Tier: k.Tier, Key: k.Key, Outcome: err.Error()})
}
