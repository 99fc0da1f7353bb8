package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// HistoryOptions select the versions of a history. The zero value asks for
// the server's default page (50 newest versions).
type HistoryOptions struct {
	Limit         int   // versions to answer; 0: the server's default
	BeforeVersion int64 // > 0: only versions older than this one (paging)
	IncludeDiff   bool  // add each version's diff from its parent
}

// History reads the versions of a key, newest first:
// GET /v1/agents/{agentID}/history/{tier}/{key}. Versions pruned beyond the
// tier's history limit are absent; asking before the oldest kept revision
// is ErrCompacted.
func (c *Client) History(ctx context.Context, agentID, tier, key string, opts *HistoryOptions) (*History, error) {
	p, err := statePath("history", agentID, tier, key)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if opts != nil {
		if opts.Limit > 0 {
			q.Set("limit", strconv.Itoa(opts.Limit))
		}
		if opts.BeforeVersion > 0 {
			q.Set("before_version", strconv.FormatInt(opts.BeforeVersion, 10))
		}
		if opts.IncludeDiff {
			q.Set("include_diff", "true")
		}
	}
	var h History
	if _, err := c.do(ctx, http.MethodGet, p, q, nil, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// DiffOptions name the two versions to compare. Zero leaves a bound to the
// server.
type DiffOptions struct {
	From int64
	To   int64
}

func (o *DiffOptions) query() url.Values {
	q := url.Values{}
	if o == nil {
		return q
	}
	if o.From > 0 {
		q.Set("from", strconv.FormatInt(o.From, 10))
	}
	if o.To > 0 {
		q.Set("to", strconv.FormatInt(o.To, 10))
	}
	return q
}

// Diff compares two versions of a key as added, modified and removed JSON
// Pointers: GET /v1/agents/{agentID}/diff/{tier}/{key}?from=&to=.
func (c *Client) Diff(ctx context.Context, agentID, tier, key string, opts *DiffOptions) (*Diff, error) {
	p, err := statePath("diff", agentID, tier, key)
	if err != nil {
		return nil, err
	}
	var d Diff
	if _, err := c.do(ctx, http.MethodGet, p, opts.query(), nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// DiffJSONPatch answers the RFC 6902 patch that turns version From into
// version To: GET /v1/agents/{agentID}/diff/{tier}/{key}?format=json-patch.
func (c *Client) DiffJSONPatch(ctx context.Context, agentID, tier, key string, opts *DiffOptions) ([]PatchOp, error) {
	p, err := statePath("diff", agentID, tier, key)
	if err != nil {
		return nil, err
	}
	q := opts.query()
	q.Set("format", "json-patch")
	var raw json.RawMessage
	if _, err := c.do(ctx, http.MethodGet, p, q, nil, &raw); err != nil {
		return nil, err
	}
	ops, err := decodePatch(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: decode answer: %w", ErrTransport, p, err)
	}
	return ops, nil
}

// decodePatch decodes a JSON Patch answer: the contract's bare array, or,
// tolerated, an object wrapping it as "patch" or "json_patch".
func decodePatch(raw json.RawMessage) ([]PatchOp, error) {
	raw = bytes.TrimSpace(raw)
	ops := []PatchOp{}
	if isNull(raw) {
		return ops, nil
	}
	if raw[0] == '{' {
		var w struct {
			Patch     json.RawMessage `json:"patch"`
			JSONPatch json.RawMessage `json:"json_patch"`
		}
		if err := json.Unmarshal(raw, &w); err != nil {
			return nil, err
		}
		switch {
		case len(w.JSONPatch) > 0:
			raw = w.JSONPatch
		case len(w.Patch) > 0:
			raw = w.Patch
		default:
			return nil, fmt.Errorf("not a JSON Patch: %.80s", raw)
		}
	}
	if err := json.Unmarshal(raw, &ops); err != nil {
		return nil, err
	}
	return ops, nil
}

// Rollback writes the value of an earlier version as a new version (change
// type restore) and answers the new entry:
// POST /v1/agents/{agentID}/rollback/{tier}/{key} {"version": N}.
func (c *Client) Rollback(ctx context.Context, agentID, tier, key string, version int64, opts ...*RollbackOptions) (*Entry, error) {
	p, err := statePath("rollback", agentID, tier, key)
	if err != nil {
		return nil, err
	}
	body := struct {
		Version         int64  `json:"version"`
		ExpectedVersion *int64 `json:"expected_version,omitempty"`
		ChangeSummary   string `json:"change_summary,omitempty"`
	}{Version: version}
	for _, o := range opts {
		if o != nil {
			body.ExpectedVersion, body.ChangeSummary = o.ExpectedVersion, o.ChangeSummary
		}
	}
	var e Entry
	if _, err := c.do(ctx, http.MethodPost, p, nil, body, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// RollbackOptions make a rollback conditional and describe it.
type RollbackOptions struct {
	// ExpectedVersion: write only if the key is at this version.
	ExpectedVersion *int64
	// ChangeSummary is recorded in the history (default "rollback to version N").
	ChangeSummary string
}

// Healthz reports whether the server is up: GET /healthz answers 2xx. Any
// other answer is an *Error.
func (c *Client) Healthz(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
	return err
}

// Readyz reports whether the server is ready to serve traffic: GET /readyz
// answers 2xx. Any other answer is an *Error.
func (c *Client) Readyz(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, "/readyz", nil, nil, nil)
	return err
}
