package client

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// PutOptions are the optional fields of a write. The zero value (or nil)
// is an unconditional write with the server's defaults.
type PutOptions struct {
	// ExpectedVersion makes the write conditional: nil writes whatever the
	// current version (last writer wins), Version(0) creates only
	// (ErrAlreadyExists if the key exists), Version(n) writes only if the
	// key is at version n (ErrVersionConflict otherwise, unless Strategy
	// says otherwise).
	ExpectedVersion *int64
	// TTL makes the entry expire; sent as ttl_seconds, rounded up to a
	// whole second. Zero sends nothing (the tier's default).
	TTL           time.Duration
	ChangeSummary string
	Metadata      map[string]any
	Strategy      Strategy
	LockID        string // the lock held on the key, if any
}

// PutResult is the answer of a write.
type PutResult struct {
	// Entry is the entry after the write: the new version, or the current
	// one kept by a first_writer_wins conflict. Nil when ConflictID is set.
	Entry *Entry
	// Created is true when the write created the key (HTTP 201).
	Created bool
	// Conflict is set when strategy first_writer_wins kept the current
	// value instead of writing.
	Conflict *ConflictDetails
	// ConflictID is set when strategy manual recorded a conflict instead of
	// writing (HTTP 202); resolve it with the conflicts API.
	ConflictID string
}

type putBody struct {
	Value           json.RawMessage `json:"value"`
	ExpectedVersion *int64          `json:"expected_version,omitempty"`
	TTLSeconds      int64           `json:"ttl_seconds,omitempty"`
	ChangeSummary   string          `json:"change_summary,omitempty"`
	Metadata        map[string]any  `json:"metadata,omitempty"`
	Strategy        Strategy        `json:"strategy,omitempty"`
	LockID          string          `json:"lock_id,omitempty"`
}

// ttlSeconds rounds a TTL up to whole seconds.
func ttlSeconds(d time.Duration) int64 {
	if d <= 0 {
		return int64(math.Floor(d.Seconds())) // negative stays negative: the server refuses it
	}
	return int64(math.Ceil(d.Seconds()))
}

// Put writes value (anything encoding/json can marshal; json.RawMessage is
// sent as is) as the new value of a key:
// PUT /v1/agents/{agentID}/state/{tier}/{key}.
func (c *Client) Put(ctx context.Context, agentID, tier, key string, value any, opts *PutOptions) (*PutResult, error) {
	p, err := statePath("state", agentID, tier, key)
	if err != nil {
		return nil, err
	}
	v, err := rawValue("value", value)
	if err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &PutOptions{}
	}
	body := putBody{
		Value:           v,
		ExpectedVersion: opts.ExpectedVersion,
		ChangeSummary:   opts.ChangeSummary,
		Metadata:        opts.Metadata,
		Strategy:        opts.Strategy,
		LockID:          opts.LockID,
	}
	if opts.TTL != 0 {
		body.TTLSeconds = ttlSeconds(opts.TTL)
	}
	// The answer is the entry, with a "conflict" member for
	// first_writer_wins, or {"conflict_id"} for manual. An entry wrapped as
	// {"entry": …, "conflict": …} is tolerated too.
	var out struct {
		Entry
		Conflict   *ConflictDetails `json:"conflict"`
		ConflictID string           `json:"conflict_id"`
		Wrapped    *Entry           `json:"entry"`
	}
	status, err := c.do(ctx, http.MethodPut, p, nil, body, &out)
	if err != nil {
		return nil, err
	}
	res := &PutResult{Created: status == http.StatusCreated, Conflict: out.Conflict, ConflictID: out.ConflictID}
	if status != http.StatusAccepted && out.ConflictID == "" {
		e := out.Entry
		if out.Wrapped != nil && e.Key == "" && e.Version == 0 {
			e = *out.Wrapped
		}
		res.Entry = &e
	}
	return res, nil
}

// GetOptions select what a read answers. The zero value reads the current
// version with strong consistency.
type GetOptions struct {
	Version     int64 // > 0: that version of the key (?version=N)
	AtRevision  int64 // > 0: the key as it was at that store revision (?at_revision=R)
	Consistency Consistency
}

// Get reads a key: GET /v1/agents/{agentID}/state/{tier}/{key}. A missing
// (or expired, or deleted) key is ErrNotFound.
func (c *Client) Get(ctx context.Context, agentID, tier, key string, opts *GetOptions) (*Entry, error) {
	p, err := statePath("state", agentID, tier, key)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if opts != nil {
		if opts.Version > 0 {
			q.Set("version", strconv.FormatInt(opts.Version, 10))
		}
		if opts.AtRevision > 0 {
			q.Set("at_revision", strconv.FormatInt(opts.AtRevision, 10))
		}
		if opts.Consistency != "" {
			q.Set("consistency", string(opts.Consistency))
		}
	}
	var e Entry
	if _, err := c.do(ctx, http.MethodGet, p, q, nil, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// DeleteOptions are the optional fields of a delete.
type DeleteOptions struct {
	// ExpectedVersion deletes only if the key is at that version.
	ExpectedVersion *int64
}

// DeleteResult is the answer of a delete.
type DeleteResult struct {
	Version  int64 `json:"version"` // the tombstone's version
	Revision int64 `json:"revision"`
}

// Delete deletes a key, keeping its history:
// DELETE /v1/agents/{agentID}/state/{tier}/{key}. A missing key is
// ErrNotFound.
func (c *Client) Delete(ctx context.Context, agentID, tier, key string, opts *DeleteOptions) (*DeleteResult, error) {
	p, err := statePath("state", agentID, tier, key)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if opts != nil && opts.ExpectedVersion != nil {
		q.Set("expected_version", strconv.FormatInt(*opts.ExpectedVersion, 10))
	}
	var out DeleteResult
	if _, err := c.do(ctx, http.MethodDelete, p, q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PatchOptions are the optional fields of a patch.
type PatchOptions struct {
	ExpectedVersion *int64
	ChangeSummary   string
	Metadata        map[string]any
	LockID          string
}

type patchBody struct {
	JSONPatch       []PatchOp       `json:"json_patch,omitempty"`
	MergePatch      json.RawMessage `json:"merge_patch,omitempty"`
	ExpectedVersion *int64          `json:"expected_version,omitempty"`
	ChangeSummary   string          `json:"change_summary,omitempty"`
	Metadata        map[string]any  `json:"metadata,omitempty"`
	LockID          string          `json:"lock_id,omitempty"`
}

// errPatch is returned for a Patch that does not set exactly one kind.
var errPatch = errors.New("client: a patch sets exactly one of JSONPatch and MergePatch")

// Patch applies a JSON Patch or a JSON merge patch atomically to a key's
// current value: PATCH /v1/agents/{agentID}/state/{tier}/{key}. A failing
// "test" op is ErrVersionConflict, a bad path ErrInvalidArgument.
func (c *Client) Patch(ctx context.Context, agentID, tier, key string, patch Patch, opts *PatchOptions) (*Entry, error) {
	p, err := statePath("state", agentID, tier, key)
	if err != nil {
		return nil, err
	}
	if (patch.JSONPatch == nil) == (patch.MergePatch == nil) {
		return nil, errPatch
	}
	body := patchBody{JSONPatch: patch.JSONPatch}
	if patch.MergePatch != nil {
		if body.MergePatch, err = rawValue("merge patch", patch.MergePatch); err != nil {
			return nil, err
		}
	}
	if opts != nil {
		body.ExpectedVersion = opts.ExpectedVersion
		body.ChangeSummary = opts.ChangeSummary
		body.Metadata = opts.Metadata
		body.LockID = opts.LockID
	}
	var e Entry
	if _, err := c.do(ctx, http.MethodPatch, p, nil, body, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// ListOptions select the entries of a list. The zero value lists the first
// page (the server's default size, 100) of every key of the tier.
type ListOptions struct {
	Prefix  string // keys starting with Prefix
	Pattern string // keys matching a glob: * within a segment, ** across
	Limit   int    // entries per page, at most 1000; 0: the server's default
	Cursor  string // the NextCursor of the previous page
	// KeysOnly leaves values out of the answer (?values=false).
	KeysOnly    bool
	Consistency Consistency
}

// ListResult is one page of a list.
type ListResult struct {
	Entries []Entry `json:"entries"` // in byte order of keys
	// NextCursor continues the list; empty on the last page.
	NextCursor string `json:"next_cursor"`
}

func (o *ListOptions) query() url.Values {
	q := url.Values{}
	if o == nil {
		return q
	}
	if o.Prefix != "" {
		q.Set("prefix", o.Prefix)
	}
	if o.Pattern != "" {
		q.Set("pattern", o.Pattern)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	if o.KeysOnly {
		q.Set("values", "false")
	}
	if o.Consistency != "" {
		q.Set("consistency", string(o.Consistency))
	}
	return q
}

// List reads one page of a tier's entries:
// GET /v1/agents/{agentID}/state/{tier}.
func (c *Client) List(ctx context.Context, agentID, tier string, opts *ListOptions) (*ListResult, error) {
	a, err := agentPath(agentID)
	if err != nil {
		return nil, err
	}
	if err := checkSegment("tier", tier); err != nil {
		return nil, err
	}
	var out ListResult
	if _, err := c.do(ctx, http.MethodGet, a+"/state/"+url.PathEscape(tier), opts.query(), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListAll iterates over every entry of a tier matching opts, following
// NextCursor from page to page (opts.Limit is the page size). An error
// ends the iteration after being yielded once:
//
//	for e, err := range c.ListAll(ctx, "agent-1", client.TierLocal, nil) {
//		if err != nil { return err }
//		…
//	}
func (c *Client) ListAll(ctx context.Context, agentID, tier string, opts *ListOptions) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		o := ListOptions{}
		if opts != nil {
			o = *opts
		}
		for {
			page, err := c.List(ctx, agentID, tier, &o)
			if err != nil {
				yield(Entry{}, err)
				return
			}
			for _, e := range page.Entries {
				if !yield(e, nil) {
					return
				}
			}
			if page.NextCursor == "" || page.NextCursor == o.Cursor {
				return
			}
			o.Cursor = page.NextCursor
		}
	}
}

// BatchGetOptions are the optional fields of a batch read.
type BatchGetOptions struct {
	Consistency Consistency
}

// BatchGetResult is the answer of a batch read.
type BatchGetResult struct {
	Entries []Entry  `json:"entries"`
	Missing []KeyRef `json:"missing"`
}

// BatchGet reads many keys of an agent at once:
// POST /v1/agents/{agentID}/batch/get.
func (c *Client) BatchGet(ctx context.Context, agentID string, keys []KeyRef, opts *BatchGetOptions) (*BatchGetResult, error) {
	a, err := agentPath(agentID)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if opts != nil && opts.Consistency != "" {
		q.Set("consistency", string(opts.Consistency))
	}
	if keys == nil {
		keys = []KeyRef{}
	}
	body := struct {
		Keys []KeyRef `json:"keys"`
	}{keys}
	var out BatchGetResult
	if _, err := c.do(ctx, http.MethodPost, a+"/batch/get", q, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Batch op kinds.
const (
	OpPut    = "put"
	OpDelete = "delete"
	OpPatch  = "patch"
)

// BatchOp is one write of a batch.
type BatchOp struct {
	Op   string // OpPut, OpDelete or OpPatch
	Tier string
	Key  string
	// Value is the value of a put (sent as JSON null when nil).
	Value any
	// JSONPatch or MergePatch is the change of a patch.
	JSONPatch  []PatchOp
	MergePatch any
	// ExpectedVersion makes the op conditional, as in PutOptions.
	ExpectedVersion *int64
	// TTL of a put, rounded up to whole seconds; zero sends nothing.
	TTL time.Duration
}

// MarshalJSON encodes the op as the API's batch op object.
func (o BatchOp) MarshalJSON() ([]byte, error) {
	w := struct {
		Op              string          `json:"op"`
		Tier            string          `json:"tier"`
		Key             string          `json:"key"`
		Value           json.RawMessage `json:"value,omitempty"`
		JSONPatch       []PatchOp       `json:"json_patch,omitempty"`
		MergePatch      json.RawMessage `json:"merge_patch,omitempty"`
		ExpectedVersion *int64          `json:"expected_version,omitempty"`
		TTLSeconds      int64           `json:"ttl_seconds,omitempty"`
	}{Op: o.Op, Tier: o.Tier, Key: o.Key, JSONPatch: o.JSONPatch, ExpectedVersion: o.ExpectedVersion}
	var err error
	if o.Value != nil || o.Op == OpPut {
		if w.Value, err = marshal(o.Value); err != nil {
			return nil, err
		}
	}
	if o.MergePatch != nil {
		if w.MergePatch, err = marshal(o.MergePatch); err != nil {
			return nil, err
		}
	}
	if o.TTL != 0 {
		w.TTLSeconds = ttlSeconds(o.TTL)
	}
	return marshal(w)
}

// BatchWriteOptions are the optional fields of a batch write.
type BatchWriteOptions struct {
	ChangeSummary string
}

// BatchWriteResult is the answer of a batch write.
type BatchWriteResult struct {
	Revision int64         `json:"revision"` // the one revision of the whole batch
	Results  []BatchResult `json:"results"`  // one per op, in order
}

// BatchResult is the outcome of one op of a batch write.
type BatchResult struct {
	Tier    string `json:"tier"`
	Key     string `json:"key"`
	Version int64  `json:"version"`
}

// BatchWrite applies ops all or nothing, as one revision:
// POST /v1/agents/{agentID}/batch/write. On a conflict the *Error's
// Conflict().Op names the failing op.
func (c *Client) BatchWrite(ctx context.Context, agentID string, ops []BatchOp, opts *BatchWriteOptions) (*BatchWriteResult, error) {
	a, err := agentPath(agentID)
	if err != nil {
		return nil, err
	}
	if ops == nil {
		ops = []BatchOp{}
	}
	body := struct {
		Ops           []BatchOp `json:"ops"`
		ChangeSummary string    `json:"change_summary,omitempty"`
	}{Ops: ops}
	if opts != nil {
		body.ChangeSummary = opts.ChangeSummary
	}
	var out BatchWriteResult
	if _, err := c.do(ctx, http.MethodPost, a+"/batch/write", nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
