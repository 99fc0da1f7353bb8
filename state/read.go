package state

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/agentstate/agentstate/auth"
	"github.com/agentstate/agentstate/diff"
	"github.com/agentstate/agentstate/keys"
	"github.com/agentstate/agentstate/store"
)

// Page sizes (API.md: list limit default 100, max 1000; history default 50).
const (
	DefaultListLimit    = 100
	MaxListLimit        = 1000
	DefaultHistoryLimit = 50
	MaxHistoryLimit     = 1000
	// maxScanPerPage bounds the rows a pattern list examines for one page, so
	// a sparse pattern over many keys answers a short page with a cursor
	// instead of scanning everything in one request.
	maxScanPerPage = 10000
)

// Get reads a key (API.md Read).
func (m *Manager) Get(ctx context.Context, req GetRequest) (*Entry, error) {
	if err := m.checkOpen(); err != nil {
		return nil, err
	}
	k, err := checkKey(req.AgentID, req.Tier, req.Key)
	if err != nil {
		return nil, err
	}
	if err := checkConsistency(req.Consistency); err != nil {
		return nil, err
	}
	switch {
	case req.Version < 0:
		return nil, &InvalidArgumentError{Field: "version", Op: -1, Message: "version must be an integer >= 1"}
	case req.AtRevision < 0:
		return nil, &InvalidArgumentError{Field: "at_revision", Op: -1, Message: "at_revision must be an integer >= 1"}
	case req.Version > 0 && req.AtRevision > 0:
		return nil, &InvalidArgumentError{Field: "version", Op: -1, Message: "give version or at_revision, not both"}
	}
	if err := m.authz.Authorize(ctx, auth.FromContext(ctx), auth.ActionRead, resource(k)); err != nil {
		return nil, err
	}
	if req.AtRevision > 0 {
		cur, err := m.st.CurrentRevision(ctx)
		if err != nil {
			return nil, err
		}
		if req.AtRevision > cur {
			return nil, &InvalidArgumentError{Field: "at_revision", Op: -1, Message: fmt.Sprintf("at_revision %d is ahead of the store's current revision %d", req.AtRevision, cur)}
		}
	}
	return m.st.Get(ctx, store.GetRequest{Key: k, Version: req.Version, AtRevision: req.AtRevision, Now: m.now()})
}

// List lists live keys in byte order (API.md List). With a pattern, the
// store scans the pattern's literal prefix and the engine filters; a page may
// then hold fewer than Limit entries — follow NextCursor until it is "".
func (m *Manager) List(ctx context.Context, req ListRequest) (*ListResult, error) {
	if err := m.checkOpen(); err != nil {
		return nil, err
	}
	if err := keys.ValidateAgentID(req.AgentID); err != nil {
		return nil, invalid(err, -1)
	}
	if err := keys.ValidateTier(req.Tier); err != nil {
		return nil, invalid(err, -1)
	}
	if err := checkConsistency(req.Consistency); err != nil {
		return nil, err
	}
	limit := req.Limit
	switch {
	case limit == 0:
		limit = DefaultListLimit
	case limit < 0 || limit > MaxListLimit:
		return nil, &InvalidArgumentError{Field: "limit", Op: -1, Message: fmt.Sprintf("limit must be between 1 and %d", MaxListLimit)}
	}
	if req.Prefix != "" && req.Pattern != "" {
		return nil, &InvalidArgumentError{Field: "pattern", Op: -1, Message: "give prefix or pattern, not both"}
	}
	if err := keys.ValidatePrefix(req.Prefix); err != nil {
		return nil, invalid(err, -1)
	}
	var glob *keys.Glob
	prefix := req.Prefix
	if req.Pattern != "" {
		g, err := keys.CompileGlob(req.Pattern)
		if err != nil {
			return nil, invalid(err, -1)
		}
		glob, prefix = g, g.LiteralPrefix()
	}
	after, err := decodeCursor(req.Cursor)
	if err != nil {
		return nil, err
	}
	if err := m.authz.Authorize(ctx, auth.FromContext(ctx), auth.ActionRead, auth.Resource{AgentID: req.AgentID, Tier: req.Tier}); err != nil {
		return nil, err
	}
	now := m.now()
	out := &ListResult{Entries: make([]*Entry, 0, min(limit, 64))}
	if glob == nil {
		page, err := m.st.List(ctx, store.ListRequest{AgentID: req.AgentID, Tier: req.Tier, Prefix: prefix, After: after, Limit: limit, KeysOnly: req.KeysOnly, Now: now})
		if err != nil {
			return nil, err
		}
		for i := range page.Entries {
			out.Entries = append(out.Entries, &page.Entries[i])
		}
		if page.More && len(page.Entries) > 0 {
			out.NextCursor = encodeCursor(page.Entries[len(page.Entries)-1].Key.Key)
		}
		return out, nil
	}
	scanned := 0
	for {
		chunk := min(max(limit*2, 100), MaxListLimit)
		page, err := m.st.List(ctx, store.ListRequest{AgentID: req.AgentID, Tier: req.Tier, Prefix: prefix, After: after, Limit: chunk, KeysOnly: req.KeysOnly, Now: now})
		if err != nil {
			return nil, err
		}
		for i := range page.Entries {
			e := &page.Entries[i]
			scanned++
			after = e.Key.Key
			if !glob.Match(e.Key.Key) {
				continue
			}
			if len(out.Entries) == limit {
				// One match beyond the page: there is a next page.
				out.NextCursor = encodeCursor(out.Entries[limit-1].Key.Key)
				return out, nil
			}
			out.Entries = append(out.Entries, e)
		}
		if !page.More {
			return out, nil
		}
		if scanned >= maxScanPerPage {
			out.NextCursor = encodeCursor(after)
			return out, nil
		}
	}
}

// BatchGet reads several keys of one agent from one snapshot.
func (m *Manager) BatchGet(ctx context.Context, agentID string, tks []TierKey, consistency string) (*BatchGetResult, error) {
	if err := m.checkOpen(); err != nil {
		return nil, err
	}
	if err := keys.ValidateAgentID(agentID); err != nil {
		return nil, invalid(err, -1)
	}
	if err := checkConsistency(consistency); err != nil {
		return nil, err
	}
	if len(tks) == 0 {
		return nil, &InvalidArgumentError{Field: "keys", Op: -1, Message: "keys must hold at least one key"}
	}
	if len(tks) > m.maxBatch {
		return nil, &InvalidArgumentError{Field: "keys", Op: -1, Message: fmt.Sprintf("a batch get reads at most %d keys; got %d", m.maxBatch, len(tks))}
	}
	p := auth.FromContext(ctx)
	sk := make([]store.Key, len(tks))
	for i, tk := range tks {
		k, err := checkKey(agentID, tk.Tier, tk.Key)
		if err != nil {
			return nil, withOp(err, i)
		}
		if err := m.authz.Authorize(ctx, p, auth.ActionRead, resource(k)); err != nil {
			return nil, err
		}
		sk[i] = k
	}
	found, err := m.st.BatchGet(ctx, sk, m.now())
	if err != nil {
		return nil, err
	}
	out := &BatchGetResult{Entries: make([]*Entry, 0, len(found)), Missing: []TierKey{}}
	for i, k := range sk {
		if e, ok := found[k]; ok && e != nil {
			out.Entries = append(out.Entries, e)
		} else {
			out.Missing = append(out.Missing, tks[i])
		}
	}
	return out, nil
}

// History lists a key's versions newest first, each with its diff against
// its parent when asked (API.md History).
func (m *Manager) History(ctx context.Context, req HistoryRequest) (*HistoryResult, error) {
	if err := m.checkOpen(); err != nil {
		return nil, err
	}
	k, err := checkKey(req.AgentID, req.Tier, req.Key)
	if err != nil {
		return nil, err
	}
	limit := req.Limit
	switch {
	case limit == 0:
		limit = DefaultHistoryLimit
	case limit < 0 || limit > MaxHistoryLimit:
		return nil, &InvalidArgumentError{Field: "limit", Op: -1, Message: fmt.Sprintf("limit must be between 1 and %d", MaxHistoryLimit)}
	}
	if req.BeforeVersion < 0 {
		return nil, &InvalidArgumentError{Field: "before_version", Op: -1, Message: "before_version must be an integer >= 1"}
	}
	if err := m.authz.Authorize(ctx, auth.FromContext(ctx), auth.ActionRead, resource(k)); err != nil {
		return nil, err
	}
	fetch := limit
	if req.IncludeDiff {
		fetch++ // the parent of the oldest version shown
	}
	h, err := m.st.History(ctx, store.HistoryRequest{Key: k, Limit: fetch, BeforeVersion: req.BeforeVersion})
	if err != nil {
		return nil, err
	}
	n := min(limit, len(h.Versions))
	out := &HistoryResult{CurrentVersion: h.CurrentVersion, Versions: make([]HistoryVersion, n)}
	for i := 0; i < n; i++ {
		v := &h.Versions[i]
		hv := HistoryVersion{
			Version: v.Version, ParentVersion: v.ParentVersion, Revision: v.Revision,
			ChangeType: v.ChangeType, CreatedAt: v.UpdatedAt, CreatedBy: v.CreatedBy,
			ChangeSummary: v.ChangeSummary, Checksum: v.Checksum, Chain: v.Chain,
		}
		if req.IncludeDiff {
			var parent *store.Version
			if i+1 < len(h.Versions) && h.Versions[i+1].Version == v.ParentVersion {
				parent = &h.Versions[i+1]
			}
			switch {
			case v.ParentVersion == 0:
				hv.Diff, err = diff.Compute(nil, v.Value)
			case parent != nil:
				hv.Diff, err = diff.Compute(parent.Value, v.Value)
			}
			if err != nil {
				return nil, fmt.Errorf("state: diff of version %d: %w", v.Version, err)
			}
		}
		out.Versions[i] = hv
	}
	return out, nil
}

// Diff compares two versions of a key, in both of API.md's formats.
func (m *Manager) Diff(ctx context.Context, req DiffRequest) (*DiffResult, error) {
	if err := m.checkOpen(); err != nil {
		return nil, err
	}
	k, err := checkKey(req.AgentID, req.Tier, req.Key)
	if err != nil {
		return nil, err
	}
	if req.From < 1 {
		return nil, &InvalidArgumentError{Field: "from", Op: -1, Message: "from must be a version >= 1"}
	}
	if req.To < 1 {
		return nil, &InvalidArgumentError{Field: "to", Op: -1, Message: "to must be a version >= 1"}
	}
	if err := m.authz.Authorize(ctx, auth.FromContext(ctx), auth.ActionRead, resource(k)); err != nil {
		return nil, err
	}
	from, err := m.st.Get(ctx, store.GetRequest{Key: k, Version: req.From, Now: m.now()})
	if err != nil {
		return nil, fmt.Errorf("version %d: %w", req.From, err)
	}
	to, err := m.st.Get(ctx, store.GetRequest{Key: k, Version: req.To, Now: m.now()})
	if err != nil {
		return nil, fmt.Errorf("version %d: %w", req.To, err)
	}
	c, err := diff.Compute(from.Value, to.Value)
	if err != nil {
		return nil, err
	}
	p, err := diff.Patch(from.Value, to.Value)
	if err != nil {
		return nil, err
	}
	return &DiffResult{Changes: c, JSONPatch: p}, nil
}

func checkConsistency(c string) error {
	switch c {
	case "", ConsistencyStrong, ConsistencyEventual:
		// Both read the store today: with no cache yet, eventual reads are
		// as fresh as strong ones.
		return nil
	}
	return &InvalidArgumentError{Field: "consistency", Op: -1, Message: fmt.Sprintf("consistency must be strong or eventual, not %q", c)}
}

// Cursors are the last key of the previous page, base64url-encoded so
// clients treat them as opaque.
func encodeCursor(lastKey string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(lastKey))
}

func decodeCursor(c string) (string, error) {
	if c == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil && keys.ValidateKey(string(b)) == nil {
		return string(b), nil
	}
	return "", &InvalidArgumentError{Field: "cursor", Op: -1, Message: "cursor is not one this server issued"}
}
