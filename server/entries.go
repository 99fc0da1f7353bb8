package server

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/agentstate/agentstate/state"
)

// Request bodies. Unknown fields are rejected (a typo such as
// "expected_verison" must not silently turn a conditional write into an
// unconditional one).

type putBody struct {
	Value           json.RawMessage `json:"value"` // required; JSON null is a value
	ExpectedVersion *int64          `json:"expected_version"`
	TTLSeconds      *int64          `json:"ttl_seconds"`
	ChangeSummary   string          `json:"change_summary"`
	Metadata        json.RawMessage `json:"metadata"`
	Strategy        string          `json:"strategy"`
	LockID          string          `json:"lock_id"`
}

type patchBody struct {
	JSONPatch       json.RawMessage `json:"json_patch"`
	MergePatch      json.RawMessage `json:"merge_patch"`
	ExpectedVersion *int64          `json:"expected_version"`
	ChangeSummary   string          `json:"change_summary"`
	Metadata        json.RawMessage `json:"metadata"`
	LockID          string          `json:"lock_id"`
}

type batchGetBody struct {
	Keys []state.TierKey `json:"keys"`
}

type batchWriteBody struct {
	Ops           []json.RawMessage `json:"ops"`
	ChangeSummary string            `json:"change_summary"`
}

type batchOpBody struct {
	Op              string          `json:"op"`
	Tier            string          `json:"tier"`
	Key             string          `json:"key"`
	Value           json.RawMessage `json:"value"`
	JSONPatch       json.RawMessage `json:"json_patch"`
	MergePatch      json.RawMessage `json:"merge_patch"`
	ExpectedVersion *int64          `json:"expected_version"`
	TTLSeconds      *int64          `json:"ttl_seconds"`
}

// putEntry: PUT /v1/agents/{agent_id}/state/{tier}/{key...}
func (s *Server) putEntry(w http.ResponseWriter, r *http.Request) {
	agent, tier, key := r.PathValue("agent_id"), r.PathValue("tier"), r.PathValue("key")
	ec := &errContext{key: key}
	body, err := s.readBody(w, r, s.singleLimit)
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	var in putBody
	if err := decodeObject(body, &in, "", -1); err != nil {
		s.fail(w, r, err, ec)
		return
	}
	ec.local = in.Value
	exp, err := expectedVersion(r, in.ExpectedVersion)
	if err == nil {
		exp, err = ifNoneMatchCreate(r, exp)
	}
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	ec.expected = exp
	ttl, err := ttlFrom(in.TTLSeconds, "ttl_seconds", -1)
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	res, err := s.m.Put(r.Context(), state.PutRequest{
		AgentID: agent, Tier: tier, Key: key,
		Value:           in.Value,
		ExpectedVersion: exp,
		TTL:             ttl,
		ChangeSummary:   in.ChangeSummary,
		Metadata:        nullToNil(in.Metadata),
		Strategy:        in.Strategy,
		LockID:          in.LockID,
	})
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	out := entryOut(res.Entry, true)
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	if res.Conflict != nil {
		out.Conflict = conflictDetails(res.Conflict, ec)
		status = http.StatusOK
	}
	w.Header().Set("ETag", etag(res.Entry.Version))
	s.writeJSON(w, r, status, out)
}

// getEntry: GET /v1/agents/{agent_id}/state/{tier}/{key...}
func (s *Server) getEntry(w http.ResponseWriter, r *http.Request) {
	agent, tier, key := r.PathValue("agent_id"), r.PathValue("tier"), r.PathValue("key")
	ec := &errContext{key: key}
	q, err := parseQuery(r)
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	version, hasVersion, err := queryInt(q, "version", 1)
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	atRev, hasAtRev, err := queryInt(q, "at_revision", 1)
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	consistency, err := queryConsistency(q)
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	switch {
	case hasVersion && !hasAtRev:
		ec.notFound = fmt.Sprintf("version %d of key %q not found (never written, a deletion, or pruned from history)", version, key)
	case hasAtRev && !hasVersion:
		ec.notFound = fmt.Sprintf("key %q did not exist at revision %d", key, atRev)
	}
	e, err := s.m.Get(r.Context(), state.GetRequest{
		AgentID: agent, Tier: tier, Key: key,
		Version: version, AtRevision: atRev, Consistency: consistency,
	})
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	w.Header().Set("ETag", etag(e.Version))
	s.writeJSON(w, r, http.StatusOK, entryOut(e, true))
}

// deleteEntry: DELETE /v1/agents/{agent_id}/state/{tier}/{key...}
func (s *Server) deleteEntry(w http.ResponseWriter, r *http.Request) {
	agent, tier, key := r.PathValue("agent_id"), r.PathValue("tier"), r.PathValue("key")
	ec := &errContext{key: key}
	q, err := parseQuery(r)
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	var given *int64
	if v, ok, err := queryInt(q, "expected_version", 0); err != nil {
		s.fail(w, r, err, ec)
		return
	} else if ok {
		given = &v
	}
	exp, err := expectedVersion(r, given)
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	ec.expected = exp
	res, err := s.m.Delete(r.Context(), state.DeleteRequest{
		AgentID: agent, Tier: tier, Key: key,
		ExpectedVersion: exp,
		ChangeSummary:   q.Get("change_summary"),
		LockID:          q.Get("lock_id"),
	})
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	s.writeJSON(w, r, http.StatusOK, deleteJSON{Version: res.Version, Revision: res.Revision})
}

// patchEntry: PATCH /v1/agents/{agent_id}/state/{tier}/{key...}
func (s *Server) patchEntry(w http.ResponseWriter, r *http.Request) {
	agent, tier, key := r.PathValue("agent_id"), r.PathValue("tier"), r.PathValue("key")
	ec := &errContext{key: key}
	body, err := s.readBody(w, r, s.singleLimit)
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	var in patchBody
	if err := decodeObject(body, &in, "", -1); err != nil {
		s.fail(w, r, err, ec)
		return
	}
	exp, err := expectedVersion(r, in.ExpectedVersion)
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	ec.expected = exp
	res, err := s.m.Patch(r.Context(), state.PatchRequest{
		AgentID: agent, Tier: tier, Key: key,
		JSONPatch:       in.JSONPatch,
		MergePatch:      in.MergePatch,
		ExpectedVersion: exp,
		ChangeSummary:   in.ChangeSummary,
		Metadata:        nullToNil(in.Metadata),
		LockID:          in.LockID,
	})
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	w.Header().Set("ETag", etag(res.Entry.Version))
	s.writeJSON(w, r, http.StatusOK, entryOut(res.Entry, true))
}

// listEntries: GET /v1/agents/{agent_id}/state/{tier}
func (s *Server) listEntries(w http.ResponseWriter, r *http.Request) {
	agent, tier := r.PathValue("agent_id"), r.PathValue("tier")
	q, err := parseQuery(r)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	limit, _, err := queryInt(q, "limit", 1)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	values, err := queryBool(q, "values", true)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	consistency, err := queryConsistency(q)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	res, err := s.m.List(r.Context(), state.ListRequest{
		AgentID: agent, Tier: tier,
		Prefix:      q.Get("prefix"),
		Pattern:     q.Get("pattern"),
		Limit:       clampInt(limit),
		Cursor:      q.Get("cursor"),
		KeysOnly:    !values,
		Consistency: consistency,
	})
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	out := listJSON{Entries: entriesOut(res.Entries, values)}
	if res.NextCursor != "" {
		c := res.NextCursor
		out.NextCursor = &c
	}
	s.writeJSON(w, r, http.StatusOK, out)
}

// batchGet: POST /v1/agents/{agent_id}/batch/get
func (s *Server) batchGet(w http.ResponseWriter, r *http.Request) {
	agent := r.PathValue("agent_id")
	q, err := parseQuery(r)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	consistency, err := queryConsistency(q)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	body, err := s.readBody(w, r, s.batchLimit)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	var in batchGetBody
	if err := decodeObject(body, &in, "", -1); err != nil {
		s.fail(w, r, err, nil)
		return
	}
	ec := &errContext{batch: true, opKeys: make([]string, len(in.Keys))}
	for i, k := range in.Keys {
		ec.opKeys[i] = k.Key
	}
	res, err := s.m.BatchGet(r.Context(), agent, in.Keys, consistency)
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	missing := res.Missing
	if missing == nil {
		missing = []state.TierKey{}
	}
	s.writeJSON(w, r, http.StatusOK, batchGetJSON{Entries: entriesOut(res.Entries, true), Missing: missing})
}

// batchWrite: POST /v1/agents/{agent_id}/batch/write
func (s *Server) batchWrite(w http.ResponseWriter, r *http.Request) {
	agent := r.PathValue("agent_id")
	body, err := s.readBody(w, r, s.batchLimit)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	var in batchWriteBody
	if err := decodeObject(body, &in, "", -1); err != nil {
		s.fail(w, r, err, nil)
		return
	}
	req := state.BatchWriteRequest{AgentID: agent, ChangeSummary: in.ChangeSummary, Ops: make([]state.BatchOp, len(in.Ops))}
	ec := &errContext{batch: true, opValues: make([]json.RawMessage, len(in.Ops)), opKeys: make([]string, len(in.Ops))}
	for i, raw := range in.Ops {
		prefix := fmt.Sprintf("ops[%d].", i)
		var o batchOpBody
		if err := decodeObject(raw, &o, prefix, i); err != nil {
			s.fail(w, r, err, ec)
			return
		}
		if err := nonNegative(o.ExpectedVersion, prefix+"expected_version", i); err != nil {
			s.fail(w, r, err, ec)
			return
		}
		ttl, err := ttlFrom(o.TTLSeconds, prefix+"ttl_seconds", i)
		if err != nil {
			s.fail(w, r, err, ec)
			return
		}
		ec.opValues[i], ec.opKeys[i] = o.Value, o.Key
		req.Ops[i] = state.BatchOp{
			Op: o.Op, Tier: o.Tier, Key: o.Key,
			Value: o.Value, JSONPatch: o.JSONPatch, MergePatch: o.MergePatch,
			ExpectedVersion: o.ExpectedVersion, TTL: ttl,
		}
	}
	res, err := s.m.BatchWrite(r.Context(), req)
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	results := res.Results
	if results == nil {
		results = []state.BatchResult{}
	}
	s.writeJSON(w, r, http.StatusOK, batchWriteJSON{Revision: res.Revision, Results: results})
}

// clampInt converts a parsed query integer to int without overflow (the
// engine then rejects it as out of range).
func clampInt(n int64) int {
	const maxInt = int64(^uint(0) >> 1)
	if n > maxInt {
		return int(maxInt)
	}
	return int(n)
}
