package client

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestEndpoints checks, per method, that the request is formed exactly as
// API.md says (method, escaped path, query, body) and that the answer
// decodes.
func TestEndpoints(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		exs   []exchange
		call  func(c *Client) (any, error)
		check func(t *testing.T, res any, err error)
	}{
		{
			// An unconditional put sends only the value and reports 201 as created.
			name: "put/created",
			exs: []exchange{{method: "PUT", path: "/v1/agents/agent-1/state/local/prefs/ui",
				body: `{"value":{"theme":"dark"}}`, status: 201, reply: entryJSON}},
			call: func(c *Client) (any, error) {
				return c.Put(ctx, "agent-1", TierLocal, "prefs/ui", map[string]string{"theme": "dark"}, nil)
			},
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				r := res.(*PutResult)
				require.True(t, r.Created)
				require.Nil(t, r.Conflict)
				e := r.Entry
				require.Equal(t, "agent-1", e.AgentID)
				require.Equal(t, "local", e.Tier)
				require.Equal(t, "prefs/ui", e.Key)
				require.JSONEq(t, `{"theme":"dark"}`, string(e.Value))
				require.EqualValues(t, 3, e.Version)
				require.EqualValues(t, 1042, e.Revision)
				require.Equal(t, time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC), e.CreatedAt)
				require.Equal(t, time.Date(2025, 1, 3, 3, 4, 5, 500000000, time.UTC), e.UpdatedAt)
				require.Nil(t, e.ExpiresAt)
				require.Equal(t, "anonymous", e.CreatedBy)
				require.Equal(t, "sha256:abc", e.Checksum)
				require.Equal(t, map[string]any{"source": "test"}, e.Metadata)
				v, err := ValueAs[map[string]string](e)
				require.NoError(t, err)
				require.Equal(t, "dark", v["theme"])
			},
		},
		{
			// expected_version 0 is sent (create only), not dropped as a zero value.
			name: "put/create-only",
			exs: []exchange{{method: "PUT", path: "/v1/agents/agent-1/state/session/s1/step",
				body: `{"value":1,"expected_version":0}`, status: 201, reply: entryJSON}},
			call: func(c *Client) (any, error) {
				return c.Put(ctx, "agent-1", TierSession, "s1/step", 1, &PutOptions{ExpectedVersion: Version(0)})
			},
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				require.True(t, res.(*PutResult).Created)
			},
		},
		{
			// Every body field; TTL rounds up to whole seconds; 200 means updated.
			name: "put/all-fields",
			exs: []exchange{{method: "PUT", path: "/v1/agents/agent-1/state/shared/doc",
				body: `{"value":"<b>&","expected_version":3,"ttl_seconds":2,"change_summary":"edit",
					"metadata":{"k":"v"},"strategy":"merge","lock_id":"L1"}`,
				status: 200, reply: entryJSON}},
			call: func(c *Client) (any, error) {
				return c.Put(ctx, "agent-1", TierShared, "doc", json.RawMessage(`"<b>&"`), &PutOptions{
					ExpectedVersion: Version(3), TTL: 1500 * time.Millisecond, ChangeSummary: "edit",
					Metadata: map[string]any{"k": "v"}, Strategy: StrategyMerge, LockID: "L1",
				})
			},
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				require.False(t, res.(*PutResult).Created)
			},
		},
		{
			// A nil value is written as JSON null.
			name: "put/null",
			exs: []exchange{{method: "PUT", path: "/v1/agents/a/state/local/k",
				body: `{"value":null,"ttl_seconds":600}`, status: 201, reply: entryJSON}},
			call: func(c *Client) (any, error) {
				return c.Put(ctx, "a", TierLocal, "k", nil, &PutOptions{TTL: 10 * time.Minute})
			},
			check: func(t *testing.T, _ any, err error) { require.NoError(t, err) },
		},
		{
			// first_writer_wins answers 200 with the current entry and a conflict object.
			name: "put/first-writer-wins",
			exs: []exchange{{method: "PUT", path: "/v1/agents/agent-1/state/local/prefs/ui",
				body:  `{"value":{"theme":"light"},"expected_version":2,"strategy":"first_writer_wins"}`,
				reply: entryJSON[:len(entryJSON)-1] + `,"conflict":{"state_key":"prefs/ui","local_version":2,"remote_version":3,"local_value":{"theme":"light"},"remote_value":{"theme":"dark"},"conflict_type":"concurrent_modification"}}`}},
			call: func(c *Client) (any, error) {
				return c.Put(ctx, "agent-1", TierLocal, "prefs/ui", json.RawMessage(`{"theme":"light"}`),
					&PutOptions{ExpectedVersion: Version(2), Strategy: StrategyFirstWriterWins})
			},
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				r := res.(*PutResult)
				require.False(t, r.Created)
				require.EqualValues(t, 3, r.Entry.Version)
				require.NotNil(t, r.Conflict)
				require.EqualValues(t, 2, r.Conflict.LocalVersion)
				require.EqualValues(t, 3, r.Conflict.RemoteVersion)
				require.Equal(t, ConflictConcurrentModification, r.Conflict.ConflictType)
				require.JSONEq(t, `{"theme":"dark"}`, string(r.Conflict.RemoteValue))
			},
		},
		{
			// The same answer wrapped as {"entry", "conflict"} is tolerated.
			name: "put/first-writer-wins-wrapped",
			exs: []exchange{{method: "PUT", path: "/v1/agents/agent-1/state/local/prefs/ui",
				body:  `{"value":1,"expected_version":2,"strategy":"first_writer_wins"}`,
				reply: `{"entry":` + entryJSON + `,"conflict":{"local_version":2,"remote_version":3}}`}},
			call: func(c *Client) (any, error) {
				return c.Put(ctx, "agent-1", TierLocal, "prefs/ui", 1,
					&PutOptions{ExpectedVersion: Version(2), Strategy: StrategyFirstWriterWins})
			},
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				r := res.(*PutResult)
				require.Equal(t, "prefs/ui", r.Entry.Key)
				require.EqualValues(t, 3, r.Entry.Version)
				require.EqualValues(t, 3, r.Conflict.RemoteVersion)
			},
		},
		{
			// manual answers 202 with a conflict id and no entry.
			name: "put/manual",
			exs: []exchange{{method: "PUT", path: "/v1/agents/agent-1/state/local/k",
				body: `{"value":1,"expected_version":1,"strategy":"manual"}`, status: 202, reply: `{"conflict_id":"c-1"}`}},
			call: func(c *Client) (any, error) {
				return c.Put(ctx, "agent-1", TierLocal, "k", 1, &PutOptions{ExpectedVersion: Version(1), Strategy: StrategyManual})
			},
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				r := res.(*PutResult)
				require.Equal(t, "c-1", r.ConflictID)
				require.Nil(t, r.Entry)
			},
		},
		{
			// Each key segment and the agent id are escaped; slashes between segments stay.
			name: "put/escaping",
			exs: []exchange{{method: "PUT", path: "/v1/agents/team%20a:1/state/local/notes/2024%20q1/x%3Fy@z:w",
				body: `{"value":true}`, status: 201, reply: entryJSON}},
			call: func(c *Client) (any, error) {
				return c.Put(ctx, "team a:1", TierLocal, "notes/2024 q1/x?y@z:w", true, nil)
			},
			check: func(t *testing.T, _ any, err error) { require.NoError(t, err) },
		},
		{
			// A version conflict is an *Error matching ErrVersionConflict, with decodable details.
			name: "put/version-conflict",
			exs: []exchange{{method: "PUT", path: "/v1/agents/agent-1/state/local/k",
				body: `{"value":{"n":2},"expected_version":1}`, status: 409,
				reply: apiError("version_conflict", "expected version 1, current 4",
					`{"state_key":"k","local_version":1,"remote_version":4,"local_value":{"n":2},"remote_value":{"n":9},"conflict_type":"concurrent_modification"}`)}},
			call: func(c *Client) (any, error) {
				return c.Put(ctx, "agent-1", TierLocal, "k", map[string]int{"n": 2}, &PutOptions{ExpectedVersion: Version(1)})
			},
			check: func(t *testing.T, _ any, err error) {
				require.ErrorIs(t, err, ErrVersionConflict)
				require.NotErrorIs(t, err, ErrAlreadyExists)
				require.NotErrorIs(t, err, ErrTransport)
				var e *Error
				require.ErrorAs(t, err, &e)
				require.Equal(t, 409, e.Status)
				require.Equal(t, "expected version 1, current 4", e.Message)
				d, ok := e.Conflict()
				require.True(t, ok)
				require.Equal(t, ConflictDetails{StateKey: "k", LocalVersion: 1, RemoteVersion: 4,
					LocalValue: json.RawMessage(`{"n":2}`), RemoteValue: json.RawMessage(`{"n":9}`),
					ConflictType: ConflictConcurrentModification}, *d)
			},
		},
		{
			// A merge conflict names the overlapping paths.
			name: "put/merge-conflict",
			exs: []exchange{{method: "PUT", path: "/v1/agents/a/state/shared/doc",
				body: `{"value":{"t":"x"},"expected_version":1,"strategy":"merge"}`, status: 409,
				reply: apiError("version_conflict", "overlapping changes", `{"state_key":"doc","local_version":1,"remote_version":2,"conflicts":["/t"],"conflict_type":"concurrent_modification"}`)}},
			call: func(c *Client) (any, error) {
				return c.Put(ctx, "a", TierShared, "doc", map[string]string{"t": "x"}, &PutOptions{ExpectedVersion: Version(1), Strategy: StrategyMerge})
			},
			check: func(t *testing.T, _ any, err error) {
				var e *Error
				require.ErrorAs(t, err, &e)
				d, ok := e.Conflict()
				require.True(t, ok)
				require.Equal(t, []string{"/t"}, d.Conflicts)
				require.Nil(t, d.Op)
			},
		},
		{
			// Create-only on an existing key is already_exists.
			name: "put/already-exists",
			exs: []exchange{{method: "PUT", path: "/v1/agents/a/state/local/k",
				body: `{"value":1,"expected_version":0}`, status: 409, reply: apiError("already_exists", "key exists", "")}},
			call: func(c *Client) (any, error) {
				return c.Put(ctx, "a", TierLocal, "k", 1, &PutOptions{ExpectedVersion: Version(0)})
			},
			check: func(t *testing.T, _ any, err error) {
				require.ErrorIs(t, err, ErrAlreadyExists)
				require.NotErrorIs(t, err, ErrVersionConflict)
			},
		},
		{
			// Get sends version, at_revision and consistency.
			name: "get/options",
			exs: []exchange{{method: "GET", path: "/v1/agents/agent-1/state/persistent/cfg/model",
				query: "version=2&at_revision=900&consistency=eventual", reply: entryJSON}},
			call: func(c *Client) (any, error) {
				return c.Get(ctx, "agent-1", TierPersistent, "cfg/model", &GetOptions{Version: 2, AtRevision: 900, Consistency: ConsistencyEventual})
			},
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				require.EqualValues(t, 3, res.(*Entry).Version)
			},
		},
		{
			// An entry that expires has ExpiresAt set.
			name: "get/expires",
			exs: []exchange{{method: "GET", path: "/v1/agents/a/state/session/s/k",
				reply: `{"agent_id":"a","tier":"session","key":"s/k","value":null,"version":1,"revision":5,
					"created_at":"2025-01-02T03:04:05Z","updated_at":"2025-01-02T03:04:05Z","expires_at":"2025-01-02T04:04:05Z","created_by":"x","checksum":"c","metadata":{}}`}},
			call: func(c *Client) (any, error) { return c.Get(ctx, "a", TierSession, "s/k", nil) },
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				e := res.(*Entry)
				require.NotNil(t, e.ExpiresAt)
				require.Equal(t, time.Date(2025, 1, 2, 4, 4, 5, 0, time.UTC), *e.ExpiresAt)
				require.Equal(t, "null", string(e.Value))
				var v any = "unset"
				require.NoError(t, e.DecodeValue(&v))
				require.Nil(t, v)
			},
		},
		{
			// A missing key is ErrNotFound.
			name: "get/not-found",
			exs: []exchange{{method: "GET", path: "/v1/agents/a/state/local/nope", status: 404,
				reply: apiError("not_found", "no such key", "")}},
			call: func(c *Client) (any, error) { return c.Get(ctx, "a", TierLocal, "nope", nil) },
			check: func(t *testing.T, _ any, err error) {
				require.ErrorIs(t, err, ErrNotFound)
				require.EqualError(t, err, "agentstate: not_found: no such key (HTTP 404)")
			},
		},
		{
			// Delete sends expected_version in the query and decodes the tombstone.
			name: "delete/expected-version",
			exs: []exchange{{method: "DELETE", path: "/v1/agents/a/state/local/k", query: "expected_version=4",
				reply: `{"version":5,"revision":77}`}},
			call: func(c *Client) (any, error) {
				return c.Delete(ctx, "a", TierLocal, "k", &DeleteOptions{ExpectedVersion: Version(4)})
			},
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				require.Equal(t, &DeleteResult{Version: 5, Revision: 77}, res)
			},
		},
		{
			// An unconditional delete has no query.
			name: "delete/plain",
			exs:  []exchange{{method: "DELETE", path: "/v1/agents/a/state/local/k", reply: `{"version":2,"revision":8}`}},
			call: func(c *Client) (any, error) { return c.Delete(ctx, "a", TierLocal, "k", nil) },
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				require.EqualValues(t, 2, res.(*DeleteResult).Version)
			},
		},
		{
			// A JSON Patch with every option.
			name: "patch/json-patch",
			exs: []exchange{{method: "PATCH", path: "/v1/agents/a/state/local/k",
				body: `{"json_patch":[{"op":"test","path":"/n","value":1},{"op":"replace","path":"/n","value":2},{"op":"remove","path":"/old"},{"op":"move","from":"/a","path":"/b"}],
					"expected_version":7,"change_summary":"bump","metadata":{"m":1},"lock_id":"L"}`,
				reply: entryJSON}},
			call: func(c *Client) (any, error) {
				return c.Patch(ctx, "a", TierLocal, "k", Patch{JSONPatch: []PatchOp{
					{Op: "test", Path: "/n", Value: json.RawMessage(`1`)},
					{Op: "replace", Path: "/n", Value: json.RawMessage(`2`)},
					{Op: "remove", Path: "/old"},
					{Op: "move", From: "/a", Path: "/b"},
				}}, &PatchOptions{ExpectedVersion: Version(7), ChangeSummary: "bump", Metadata: map[string]any{"m": 1}, LockID: "L"})
			},
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				require.EqualValues(t, 3, res.(*Entry).Version)
			},
		},
		{
			// A merge patch, with a null member (RFC 7386 removal).
			name: "patch/merge-patch",
			exs: []exchange{{method: "PATCH", path: "/v1/agents/a/state/local/k",
				body: `{"merge_patch":{"theme":"light","font":null}}`, reply: entryJSON}},
			call: func(c *Client) (any, error) {
				return c.Patch(ctx, "a", TierLocal, "k", Patch{MergePatch: map[string]any{"theme": "light", "font": nil}}, nil)
			},
			check: func(t *testing.T, _ any, err error) { require.NoError(t, err) },
		},
		{
			// A failing test op is a version conflict.
			name: "patch/test-failed",
			exs: []exchange{{method: "PATCH", path: "/v1/agents/a/state/local/k",
				body: `{"json_patch":[{"op":"test","path":"/n","value":1}]}`, status: 409, reply: apiError("version_conflict", "test failed", "")}},
			call: func(c *Client) (any, error) {
				return c.Patch(ctx, "a", TierLocal, "k", Patch{JSONPatch: []PatchOp{{Op: "test", Path: "/n", Value: json.RawMessage(`1`)}}}, nil)
			},
			check: func(t *testing.T, _ any, err error) { require.ErrorIs(t, err, ErrVersionConflict) },
		},
		{
			// List sends every filter and decodes the page.
			name: "list/options",
			exs: []exchange{{method: "GET", path: "/v1/agents/a/state/local",
				query: "prefix=prefs/&pattern=prefs/*&limit=10&cursor=c1&values=false&consistency=strong",
				reply: `{"entries":[{"agent_id":"a","tier":"local","key":"prefs/ui","version":1,"revision":2,"created_at":"2025-01-02T03:04:05Z","updated_at":"2025-01-02T03:04:05Z","expires_at":null,"created_by":"x","checksum":"c","metadata":{}}],"next_cursor":"c2"}`}},
			call: func(c *Client) (any, error) {
				return c.List(ctx, "a", TierLocal, &ListOptions{Prefix: "prefs/", Pattern: "prefs/*", Limit: 10, Cursor: "c1", KeysOnly: true, Consistency: ConsistencyStrong})
			},
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				r := res.(*ListResult)
				require.Len(t, r.Entries, 1)
				require.Equal(t, "prefs/ui", r.Entries[0].Key)
				require.Nil(t, r.Entries[0].Value)
				require.ErrorIs(t, r.Entries[0].DecodeValue(new(any)), ErrNoValue)
				require.Equal(t, "c2", r.NextCursor)
			},
		},
		{
			// A last page has next_cursor null.
			name: "list/last-page",
			exs:  []exchange{{method: "GET", path: "/v1/agents/a/state/shared", reply: `{"entries":[],"next_cursor":null}`}},
			call: func(c *Client) (any, error) { return c.List(ctx, "a", TierShared, nil) },
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				require.Empty(t, res.(*ListResult).NextCursor)
			},
		},
		{
			// Batch get sends the keys and decodes entries and missing.
			name: "batch/get",
			exs: []exchange{{method: "POST", path: "/v1/agents/a/batch/get", query: "consistency=eventual",
				body:  `{"keys":[{"tier":"local","key":"prefs/ui"},{"tier":"shared","key":"x"}]}`,
				reply: `{"entries":[` + entryJSON + `],"missing":[{"tier":"shared","key":"x"}]}`}},
			call: func(c *Client) (any, error) {
				return c.BatchGet(ctx, "a", []KeyRef{{TierLocal, "prefs/ui"}, {TierShared, "x"}}, &BatchGetOptions{Consistency: ConsistencyEventual})
			},
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				r := res.(*BatchGetResult)
				require.Len(t, r.Entries, 1)
				require.Equal(t, []KeyRef{{TierShared, "x"}}, r.Missing)
			},
		},
		{
			// Batch write encodes each op kind with only its fields.
			name: "batch/write",
			exs: []exchange{{method: "POST", path: "/v1/agents/a/batch/write",
				body: `{"ops":[
					{"op":"put","tier":"local","key":"a","value":{"x":1},"expected_version":0,"ttl_seconds":60},
					{"op":"put","tier":"local","key":"n","value":null},
					{"op":"delete","tier":"local","key":"b","expected_version":2},
					{"op":"patch","tier":"shared","key":"c","json_patch":[{"op":"add","path":"/y","value":2}]},
					{"op":"patch","tier":"shared","key":"d","merge_patch":{"z":null}}],
					"change_summary":"batch"}`,
				reply: `{"revision":99,"results":[{"tier":"local","key":"a","version":1},{"tier":"local","key":"n","version":1},{"tier":"local","key":"b","version":3},{"tier":"shared","key":"c","version":4},{"tier":"shared","key":"d","version":2}]}`}},
			call: func(c *Client) (any, error) {
				return c.BatchWrite(ctx, "a", []BatchOp{
					{Op: OpPut, Tier: TierLocal, Key: "a", Value: map[string]int{"x": 1}, ExpectedVersion: Version(0), TTL: time.Minute},
					{Op: OpPut, Tier: TierLocal, Key: "n"},
					{Op: OpDelete, Tier: TierLocal, Key: "b", ExpectedVersion: Version(2)},
					{Op: OpPatch, Tier: TierShared, Key: "c", JSONPatch: []PatchOp{{Op: "add", Path: "/y", Value: json.RawMessage(`2`)}}},
					{Op: OpPatch, Tier: TierShared, Key: "d", MergePatch: json.RawMessage(`{"z":null}`)},
				}, &BatchWriteOptions{ChangeSummary: "batch"})
			},
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				r := res.(*BatchWriteResult)
				require.EqualValues(t, 99, r.Revision)
				require.Len(t, r.Results, 5)
				require.Equal(t, BatchResult{Tier: "shared", Key: "c", Version: 4}, r.Results[3])
			},
		},
		{
			// A batch conflict names the failing op (index 0 is a real index).
			name: "batch/conflict",
			exs: []exchange{{method: "POST", path: "/v1/agents/a/batch/write",
				body: `{"ops":[{"op":"delete","tier":"local","key":"b"}]}`, status: 409,
				reply: apiError("version_conflict", "op 0 conflicts", `{"op":0,"state_key":"b","local_version":1,"remote_version":2,"conflict_type":"concurrent_modification"}`)}},
			call: func(c *Client) (any, error) {
				return c.BatchWrite(ctx, "a", []BatchOp{{Op: OpDelete, Tier: TierLocal, Key: "b"}}, nil)
			},
			check: func(t *testing.T, _ any, err error) {
				var e *Error
				require.ErrorAs(t, err, &e)
				d, ok := e.Conflict()
				require.True(t, ok)
				require.NotNil(t, d.Op)
				require.Equal(t, 0, *d.Op)
			},
		},
		{
			// History sends limit, before_version and include_diff and decodes versions.
			name: "history",
			exs: []exchange{{method: "GET", path: "/v1/agents/a/history/local/prefs/ui",
				query: "limit=2&before_version=5&include_diff=true",
				reply: `{"current_version":5,"versions":[
					{"version":4,"parent_version":3,"revision":40,"change_type":"update","created_at":"2025-01-02T03:04:05Z","created_by":"u","change_summary":"s","diff":{"added":{},"modified":{"/a":{"old":1,"new":2}},"removed":[]}},
					{"version":3,"parent_version":null,"revision":30,"change_type":"restore","created_at":"2025-01-01T03:04:05Z","created_by":"u","change_summary":null}],
					"branches":[]}`}},
			call: func(c *Client) (any, error) {
				return c.History(ctx, "a", TierLocal, "prefs/ui", &HistoryOptions{Limit: 2, BeforeVersion: 5, IncludeDiff: true})
			},
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				h := res.(*History)
				require.EqualValues(t, 5, h.CurrentVersion)
				require.Len(t, h.Versions, 2)
				require.Equal(t, ChangeUpdate, h.Versions[0].ChangeType)
				require.EqualValues(t, 3, h.Versions[0].ParentVersion)
				require.NotEmpty(t, h.Versions[0].Diff)
				require.Equal(t, ChangeRestore, h.Versions[1].ChangeType)
				require.Zero(t, h.Versions[1].ParentVersion)
				require.Empty(t, h.Versions[1].ChangeSummary)
			},
		},
		{
			// History older than the kept revisions is compacted.
			name: "history/compacted",
			exs: []exchange{{method: "GET", path: "/v1/agents/a/history/local/k", status: 410,
				reply: apiError("compacted", "too old", `{"oldest_revision":10}`)}},
			call:  func(c *Client) (any, error) { return c.History(ctx, "a", TierLocal, "k", nil) },
			check: func(t *testing.T, _ any, err error) { require.ErrorIs(t, err, ErrCompacted) },
		},
		{
			// Diff decodes added, modified and removed.
			name: "diff/object",
			exs: []exchange{{method: "GET", path: "/v1/agents/a/diff/local/k", query: "from=2&to=5",
				reply: `{"added":{"/b":true},"modified":{"/a":{"old":1,"new":2}},"removed":["/c"]}`}},
			call: func(c *Client) (any, error) { return c.Diff(ctx, "a", TierLocal, "k", &DiffOptions{From: 2, To: 5}) },
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				d := res.(*Diff)
				require.False(t, d.Empty())
				require.Equal(t, "true", string(d.Added["/b"]))
				require.Equal(t, ValueChange{Old: json.RawMessage(`1`), New: json.RawMessage(`2`)}, d.Modified["/a"])
				require.Equal(t, []string{"/c"}, d.Removed)
			},
		},
		{
			// format=json-patch answers an RFC 6902 array.
			name: "diff/json-patch",
			exs: []exchange{{method: "GET", path: "/v1/agents/a/diff/local/k", query: "from=1&to=2&format=json-patch",
				reply: `[{"op":"replace","path":"/a","value":2},{"op":"remove","path":"/c"}]`}},
			call: func(c *Client) (any, error) {
				return c.DiffJSONPatch(ctx, "a", TierLocal, "k", &DiffOptions{From: 1, To: 2})
			},
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				require.Equal(t, []PatchOp{{Op: "replace", Path: "/a", Value: json.RawMessage(`2`)}, {Op: "remove", Path: "/c"}}, res)
			},
		},
		{
			// A json-patch answer wrapped in an object is tolerated.
			name: "diff/json-patch-wrapped",
			exs: []exchange{{method: "GET", path: "/v1/agents/a/diff/local/k", query: "format=json-patch",
				reply: `{"json_patch":[{"op":"add","path":"/x","value":"y"}]}`}},
			call: func(c *Client) (any, error) { return c.DiffJSONPatch(ctx, "a", TierLocal, "k", nil) },
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				require.Len(t, res, 1)
			},
		},
		{
			// Rollback posts the version and answers the new entry.
			name: "rollback",
			exs:  []exchange{{method: "POST", path: "/v1/agents/a/rollback/local/prefs/ui", body: `{"version":2}`, reply: entryJSON}},
			call: func(c *Client) (any, error) { return c.Rollback(ctx, "a", TierLocal, "prefs/ui", 2) },
			check: func(t *testing.T, res any, err error) {
				require.NoError(t, err)
				require.EqualValues(t, 3, res.(*Entry).Version)
			},
		},
		{
			// healthz is outside /v1 and may answer plain text.
			name: "healthz",
			exs:  []exchange{{method: "GET", path: "/healthz", reply: "ok", ctype: "text/plain"}},
			call: func(c *Client) (any, error) { return nil, c.Healthz(ctx) },
			check: func(t *testing.T, _ any, err error) {
				require.NoError(t, err)
			},
		},
		{
			// readyz answering 503 in plain text is ErrUnavailable.
			name: "readyz/unavailable",
			exs:  []exchange{{method: "GET", path: "/readyz", status: 503, reply: "starting\n", ctype: "text/plain"}},
			call: func(c *Client) (any, error) { return nil, c.Readyz(ctx) },
			check: func(t *testing.T, _ any, err error) {
				require.ErrorIs(t, err, ErrUnavailable)
				var e *Error
				require.ErrorAs(t, err, &e)
				require.Equal(t, "starting", e.Message)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.exs...)
			res, err := tt.call(f.client(t))
			tt.check(t, res, err)
		})
	}
}

// TestListAll checks that the iterator follows next_cursor, stops when the
// consumer stops, and yields an error once.
func TestListAll(t *testing.T) {
	ctx := context.Background()
	page := func(keys []string, next string) string {
		var es []map[string]any
		for _, k := range keys {
			es = append(es, map[string]any{"agent_id": "a", "tier": "local", "key": k, "value": 1, "version": 1, "revision": 1,
				"created_at": "2025-01-02T03:04:05Z", "updated_at": "2025-01-02T03:04:05Z"})
		}
		b, _ := json.Marshal(map[string]any{"entries": es, "next_cursor": next})
		if next == "" {
			b, _ = json.Marshal(map[string]any{"entries": es, "next_cursor": nil})
		}
		return string(b)
	}
	tests := []struct {
		name     string
		exs      []exchange
		stop     int // stop after this many entries; 0: never
		wantKeys []string
		wantErr  error
	}{
		{
			// Three pages, the options repeated with each cursor.
			name: "all-pages",
			exs: []exchange{
				{method: "GET", path: "/v1/agents/a/state/local", query: "prefix=p/&limit=2", reply: page([]string{"p/1", "p/2"}, "c1")},
				{method: "GET", path: "/v1/agents/a/state/local", query: "prefix=p/&limit=2&cursor=c1", reply: page([]string{"p/3", "p/4"}, "c2")},
				{method: "GET", path: "/v1/agents/a/state/local", query: "prefix=p/&limit=2&cursor=c2", reply: page([]string{"p/5"}, "")},
			},
			wantKeys: []string{"p/1", "p/2", "p/3", "p/4", "p/5"},
		},
		{
			// Breaking out of the loop sends no further request.
			name: "early-stop",
			exs: []exchange{
				{method: "GET", path: "/v1/agents/a/state/local", query: "prefix=p/&limit=2", reply: page([]string{"p/1", "p/2"}, "c1")},
			},
			stop:     1,
			wantKeys: []string{"p/1"},
		},
		{
			// An error on the second page ends the iteration.
			name: "error",
			exs: []exchange{
				{method: "GET", path: "/v1/agents/a/state/local", query: "prefix=p/&limit=2", reply: page([]string{"p/1", "p/2"}, "c1")},
				{method: "GET", path: "/v1/agents/a/state/local", query: "prefix=p/&limit=2&cursor=c1", status: 403, reply: apiError("permission_denied", "no", "")},
			},
			wantKeys: []string{"p/1", "p/2"},
			wantErr:  ErrPermissionDenied,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFake(t, tt.exs...).client(t)
			var keys []string
			var errs []error
			for e, err := range c.ListAll(ctx, "a", TierLocal, &ListOptions{Prefix: "p/", Limit: 2}) {
				if err != nil {
					errs = append(errs, err)
					continue
				}
				keys = append(keys, e.Key)
				if tt.stop > 0 && len(keys) == tt.stop {
					break
				}
			}
			require.Equal(t, tt.wantKeys, keys)
			if tt.wantErr == nil {
				require.Empty(t, errs)
			} else {
				require.Len(t, errs, 1)
				require.ErrorIs(t, errs[0], tt.wantErr)
			}
		})
	}
}

// TestLocalValidation checks the arguments refused before any request.
func TestLocalValidation(t *testing.T) {
	ctx := context.Background()
	c := newFake(t).client(t) // any request fails the test
	tests := []struct {
		name string
		call func() error
	}{
		// Keys whose segments a server mux would clean away.
		{"empty key", func() error { _, err := c.Get(ctx, "a", TierLocal, "", nil); return err }},
		{"empty segment", func() error { _, err := c.Get(ctx, "a", TierLocal, "a//b", nil); return err }},
		{"leading slash", func() error { _, err := c.Get(ctx, "a", TierLocal, "/a", nil); return err }},
		{"trailing slash", func() error { _, err := c.Get(ctx, "a", TierLocal, "a/", nil); return err }},
		{"dot segment", func() error { _, err := c.Get(ctx, "a", TierLocal, "a/./b", nil); return err }},
		{"dot-dot segment", func() error { _, err := c.Delete(ctx, "a", TierLocal, "a/../b", nil); return err }},
		// Empty identifiers.
		{"empty agent", func() error { _, err := c.Get(ctx, "", TierLocal, "k", nil); return err }},
		{"dot-dot agent", func() error { _, err := c.List(ctx, "..", TierLocal, nil); return err }},
		{"empty tier", func() error { _, err := c.List(ctx, "a", "", nil); return err }},
		// A patch must set exactly one kind.
		{"patch neither", func() error { _, err := c.Patch(ctx, "a", TierLocal, "k", Patch{}, nil); return err }},
		{"patch both", func() error {
			_, err := c.Patch(ctx, "a", TierLocal, "k", Patch{JSONPatch: []PatchOp{}, MergePatch: map[string]any{}}, nil)
			return err
		}},
		// A value encoding/json refuses.
		{"bad value", func() error { _, err := c.Put(ctx, "a", TierLocal, "k", make(chan int), nil); return err }},
		{"bad raw value", func() error { _, err := c.Put(ctx, "a", TierLocal, "k", json.RawMessage(`{nope`), nil); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			require.Error(t, err)
			var e *Error
			require.False(t, errors.As(err, &e), "local errors are not API errors: %v", err)
			require.NotErrorIs(t, err, ErrTransport)
		})
	}
}

// TestErrorAnswers checks how non-2xx answers become *Error, with or
// without the contract's envelope.
func TestErrorAnswers(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		status   int
		ctype    string
		body     string
		wantCode string
		wantMsg  string
		sentinel error
		check    func(t *testing.T, e *Error)
	}{
		// The envelope's code and message are used as they are.
		{name: "envelope", status: 400, body: apiError("invalid_argument", "bad key", `{"field":"key"}`),
			wantCode: CodeInvalidArgument, wantMsg: "bad key", sentinel: ErrInvalidArgument,
			check: func(t *testing.T, e *Error) { require.JSONEq(t, `{"field":"key"}`, string(e.Details)) }},
		// validation_failed details decode into ValidationErrors.
		{name: "validation", status: 422, body: apiError("validation_failed", "schema", `{"errors":[{"path":"/a","message":"must be a string"}]}`),
			wantCode: CodeValidationFailed, wantMsg: "schema", sentinel: ErrValidationFailed,
			check: func(t *testing.T, e *Error) {
				require.Equal(t, []ValidationError{{Path: "/a", Message: "must be a string"}}, e.ValidationErrors())
				_, ok := e.Conflict()
				require.False(t, ok)
			}},
		// Each remaining contract code maps to its sentinel.
		{name: "unauthenticated", status: 401, body: apiError("unauthenticated", "m", ""), wantCode: CodeUnauthenticated, wantMsg: "m", sentinel: ErrUnauthenticated},
		{name: "rule", status: 422, body: apiError("rule_violation", "m", `{"rule":"r"}`), wantCode: CodeRuleViolation, wantMsg: "m", sentinel: ErrRuleViolation},
		{name: "locked", status: 423, body: apiError("locked", "m", `{"lock":{"id":"l"}}`), wantCode: CodeLocked, wantMsg: "m", sentinel: ErrLocked},
		{name: "too large", status: 413, body: apiError("too_large", "m", ""), wantCode: CodeTooLarge, wantMsg: "m", sentinel: ErrTooLarge},
		{name: "rate limited", status: 429, body: apiError("rate_limited", "m", ""), wantCode: CodeRateLimited, wantMsg: "m", sentinel: ErrRateLimited},
		{name: "wrong expected version", status: 409, body: apiError("wrong_expected_version", "m", `{"current_version":3}`), wantCode: CodeWrongExpectedVersion, wantMsg: "m", sentinel: ErrWrongExpectedVersion},
		// An envelope without a code gets one from the status; null details stay nil.
		{name: "envelope without code", status: 404, body: `{"error":{"message":"gone","details":null}}`,
			wantCode: CodeNotFound, wantMsg: "gone", sentinel: ErrNotFound,
			check: func(t *testing.T, e *Error) { require.Nil(t, e.Details) }},
		// A proxy's HTML page: code from the status, message from the body.
		{name: "proxy 502", status: 502, ctype: "text/html", body: "<html>\n<body>Bad   gateway</body></html>",
			wantCode: CodeUnavailable, wantMsg: "<html> <body>Bad gateway</body></html>", sentinel: ErrUnavailable},
		// An empty 500: internal, with the status text.
		{name: "empty 500", status: 500, body: "", wantCode: CodeInternal, wantMsg: "Internal Server Error"},
		// JSON that is not the envelope.
		{name: "other json 403", status: 403, body: `{"message":"denied by gateway"}`,
			wantCode: CodePermissionDenied, wantMsg: `{"message":"denied by gateway"}`, sentinel: ErrPermissionDenied},
		// A status outside the contract.
		{name: "teapot", status: 418, body: "", wantCode: CodeUnknown, wantMsg: "I'm a teapot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFake(t, exchange{method: "GET", path: "/v1/agents/a/state/local/k",
				status: tt.status, reply: tt.body, ctype: tt.ctype}).client(t)
			_, err := c.Get(ctx, "a", TierLocal, "k", nil)
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tt.status, e.Status)
			require.Equal(t, tt.wantCode, e.Code)
			require.Equal(t, tt.wantMsg, e.Message)
			if tt.sentinel != nil {
				require.ErrorIs(t, err, tt.sentinel)
				require.ErrorIs(t, fmtWrap(err), tt.sentinel, "wrapped errors still match")
			}
			require.NotErrorIs(t, err, ErrTransport)
			if tt.check != nil {
				tt.check(t, e)
			}
		})
	}
}

func fmtWrap(err error) error { return errors.Join(errors.New("context"), err) }

func TestErrorIs(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		// Same code, different status and message: a match.
		{"same code", &Error{Status: 404, Code: CodeNotFound, Message: "x"}, ErrNotFound, true},
		// Different codes never match.
		{"other code", &Error{Status: 409, Code: CodeAlreadyExists}, ErrVersionConflict, false},
		// A sentinel matches itself.
		{"sentinel", ErrLocked, ErrLocked, true},
		// Non-*Error targets do not match.
		{"plain target", &Error{Code: CodeNotFound}, errors.New("not_found"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, errors.Is(tt.err, tt.target))
		})
	}
}
