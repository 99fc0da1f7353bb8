package server

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/agentstate/agentstate/state"
)

type rollbackBody struct {
	Version         *int64 `json:"version"` // required
	ExpectedVersion *int64 `json:"expected_version"`
	ChangeSummary   string `json:"change_summary"`
}

// history: GET /v1/agents/{agent_id}/history/{tier}/{key...}
func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	agent, tier, key := r.PathValue("agent_id"), r.PathValue("tier"), r.PathValue("key")
	ec := &errContext{key: key, notFound: fmt.Sprintf("key %q has no history (never written)", key)}
	q, err := parseQuery(r)
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	limit, _, err := queryInt(q, "limit", 1)
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	before, _, err := queryInt(q, "before_version", 1)
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	includeDiff, err := queryBool(q, "include_diff", false)
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	res, err := s.m.History(r.Context(), state.HistoryRequest{
		AgentID: agent, Tier: tier, Key: key,
		Limit: clampInt(limit), BeforeVersion: before, IncludeDiff: includeDiff,
	})
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	s.writeJSON(w, r, http.StatusOK, historyOut(res, includeDiff))
}

// diff: GET /v1/agents/{agent_id}/diff/{tier}/{key...}?from=&to=[&format=json-patch]
func (s *Server) diff(w http.ResponseWriter, r *http.Request) {
	agent, tier, key := r.PathValue("agent_id"), r.PathValue("tier"), r.PathValue("key")
	ec := &errContext{key: key}
	q, err := parseQuery(r)
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	from, _, err := queryInt(q, "from", 1)
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	to, _, err := queryInt(q, "to", 1)
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	format := q.Get("format")
	if format != "" && format != "json-patch" {
		s.fail(w, r, invalidArg("format", "query parameter format must be json-patch or absent, not %q", format), ec)
		return
	}
	ec.notFound = fmt.Sprintf("version %d or %d of key %q not found (never written, a deletion, or pruned from history)", from, to, key)
	res, err := s.m.Diff(r.Context(), state.DiffRequest{AgentID: agent, Tier: tier, Key: key, From: from, To: to})
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	if format == "json-patch" {
		p := res.JSONPatch
		if len(p) == 0 || string(p) == "null" {
			p = json.RawMessage("[]")
		}
		s.writeJSON(w, r, http.StatusOK, p)
		return
	}
	c := res.Changes
	if c == nil {
		c = &state.Changes{}
	}
	s.writeJSON(w, r, http.StatusOK, changesOut(c))
}

// rollback: POST /v1/agents/{agent_id}/rollback/{tier}/{key...} body {"version": N}
func (s *Server) rollback(w http.ResponseWriter, r *http.Request) {
	agent, tier, key := r.PathValue("agent_id"), r.PathValue("tier"), r.PathValue("key")
	ec := &errContext{key: key}
	body, err := s.readBody(w, r, s.singleLimit)
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	var in rollbackBody
	if err := decodeObject(body, &in, "", -1); err != nil {
		s.fail(w, r, err, ec)
		return
	}
	if in.Version == nil {
		s.fail(w, r, invalidArg("version", "version is required: the version to roll back to"), ec)
		return
	}
	if *in.Version < 1 {
		s.fail(w, r, invalidArg("version", "version must be an integer >= 1, not %d", *in.Version), ec)
		return
	}
	exp, err := expectedVersion(r, in.ExpectedVersion)
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	ec.expected = exp
	ec.notFound = fmt.Sprintf("version %d of key %q not found (never written, a deletion, or pruned from history)", *in.Version, key)
	e, err := s.m.Rollback(r.Context(), state.RollbackRequest{
		AgentID: agent, Tier: tier, Key: key,
		Version: *in.Version, ExpectedVersion: exp, ChangeSummary: in.ChangeSummary,
	})
	if err != nil {
		s.fail(w, r, err, ec)
		return
	}
	w.Header().Set("ETag", etag(e.Version))
	s.writeJSON(w, r, http.StatusOK, entryOut(e, true))
}
