package state_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/agentstate/agentstate/audit"
	"github.com/agentstate/agentstate/auth"
	"github.com/agentstate/agentstate/jsonvalue"
	"github.com/agentstate/agentstate/state"
	"github.com/agentstate/agentstate/store"
	"github.com/agentstate/agentstate/store/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newManager(t testing.TB, opts state.Options) *state.Manager {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
	require.NoError(t, err)
	if opts.ReapInterval == 0 {
		opts.ReapInterval = -1 // tests reap explicitly
	}
	m, err := state.New(st, opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	return m
}

func i64(v int64) *int64 { return &v }

var bg = context.Background()

func put(t testing.TB, m *state.Manager, tier, key, value string) *state.PutResult {
	t.Helper()
	r, err := m.Put(bg, state.PutRequest{AgentID: "a1", Tier: tier, Key: key, Value: json.RawMessage(value)})
	require.NoError(t, err)
	return r
}

func TestPutGetBasics(t *testing.T) {
	m := newManager(t, state.Options{})
	ctx := auth.WithPrincipal(bg, auth.Principal{ID: "agent-7"})
	r, err := m.Put(ctx, state.PutRequest{AgentID: "a1", Tier: "local", Key: "k", Value: json.RawMessage(`{ "b": 1, "a": 2 }`), Metadata: json.RawMessage(`{"src":"t"}`)})
	require.NoError(t, err)
	require.True(t, r.Created)
	require.EqualValues(t, 1, r.Entry.Version)
	require.Equal(t, "agent-7", r.Entry.CreatedBy)
	require.JSONEq(t, `{"a":2,"b":1}`, string(r.Entry.Value))
	sum, _ := jsonvalue.Checksum(json.RawMessage(`{"a":2,"b":1}`))
	require.Equal(t, sum, r.Entry.Checksum)

	r2 := put(t, m, "local", "k", `{"a":3}`)
	require.False(t, r2.Created)
	require.EqualValues(t, 2, r2.Entry.Version)
	require.Greater(t, r2.Entry.Revision, r.Entry.Revision)
	require.Equal(t, "anonymous", r2.Entry.CreatedBy, "no principal in ctx acts as anonymous")

	e, err := m.Get(bg, state.GetRequest{AgentID: "a1", Tier: "local", Key: "k"})
	require.NoError(t, err)
	require.JSONEq(t, `{"a":3}`, string(e.Value))
	e, err = m.Get(bg, state.GetRequest{AgentID: "a1", Tier: "local", Key: "k", Version: 1})
	require.NoError(t, err)
	require.JSONEq(t, `{"src":"t"}`, string(e.Metadata))
	e, err = m.Get(bg, state.GetRequest{AgentID: "a1", Tier: "local", Key: "k", AtRevision: r.Entry.Revision})
	require.NoError(t, err)
	require.EqualValues(t, 1, e.Version)

	_, err = m.Get(bg, state.GetRequest{AgentID: "a1", Tier: "local", Key: "k", AtRevision: r2.Entry.Revision + 10})
	require.ErrorIs(t, err, state.ErrInvalidArgument, "a future revision is a bad argument")
	_, err = m.Get(bg, state.GetRequest{AgentID: "a1", Tier: "shared", Key: "k"})
	require.ErrorIs(t, err, store.ErrNotFound, "tiers are separate")
}

func TestInvalidArguments(t *testing.T) {
	m := newManager(t, state.Options{})
	tests := []struct {
		name string
		req  state.PutRequest
		want error
	}{
		{"bad agent id", state.PutRequest{AgentID: "a/b", Tier: "local", Key: "k", Value: json.RawMessage(`1`)}, state.ErrInvalidArgument},
		{"unknown tier", state.PutRequest{AgentID: "a", Tier: "global", Key: "k", Value: json.RawMessage(`1`)}, state.ErrInvalidArgument},
		{"dotdot key", state.PutRequest{AgentID: "a", Tier: "local", Key: "a/../b", Value: json.RawMessage(`1`)}, state.ErrInvalidArgument},
		{"missing value", state.PutRequest{AgentID: "a", Tier: "local", Key: "k"}, state.ErrInvalidArgument},
		{"not JSON", state.PutRequest{AgentID: "a", Tier: "local", Key: "k", Value: json.RawMessage(`{"a":`)}, state.ErrInvalidArgument},
		{"too deep", state.PutRequest{AgentID: "a", Tier: "local", Key: "k", Value: json.RawMessage(deep(65))}, state.ErrInvalidArgument},
		{"too large", state.PutRequest{AgentID: "a", Tier: "local", Key: "k", Value: json.RawMessage(`"` + string(make([]byte, 0)) + big(2<<20) + `"`)}, state.ErrTooLarge},
		{"negative expected", state.PutRequest{AgentID: "a", Tier: "local", Key: "k", Value: json.RawMessage(`1`), ExpectedVersion: i64(-1)}, state.ErrInvalidArgument},
		{"zero ttl", state.PutRequest{AgentID: "a", Tier: "local", Key: "k", Value: json.RawMessage(`1`), TTL: new(time.Duration)}, state.ErrInvalidArgument},
		{"metadata not an object", state.PutRequest{AgentID: "a", Tier: "local", Key: "k", Value: json.RawMessage(`1`), Metadata: json.RawMessage(`[1]`)}, state.ErrInvalidArgument},
		{"merge strategy not yet", state.PutRequest{AgentID: "a", Tier: "local", Key: "k", Value: json.RawMessage(`1`), Strategy: "merge"}, state.ErrInvalidArgument},
		{"manual strategy not yet", state.PutRequest{AgentID: "a", Tier: "local", Key: "k", Value: json.RawMessage(`1`), Strategy: "manual"}, state.ErrInvalidArgument},
		{"unknown strategy", state.PutRequest{AgentID: "a", Tier: "local", Key: "k", Value: json.RawMessage(`1`), Strategy: "yolo"}, state.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Put(bg, tc.req)
			require.ErrorIs(t, err, tc.want)
			rev, err := m.Revision(bg)
			require.NoError(t, err)
			require.Zero(t, rev, "a failed request writes nothing")
		})
	}
}

func deep(n int) string {
	b := make([]byte, 0, 2*n)
	for i := 0; i < n; i++ {
		b = append(b, '[')
	}
	for i := 0; i < n; i++ {
		b = append(b, ']')
	}
	return string(b)
}

func big(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'x'
	}
	return string(b)
}

func TestStrategies(t *testing.T) {
	m := newManager(t, state.Options{})
	put(t, m, "shared", "doc", `{"v":1}`)
	put(t, m, "shared", "doc", `{"v":2}`)

	// fail (default): stale expected_version is a conflict with details.
	_, err := m.Put(bg, state.PutRequest{AgentID: "a1", Tier: "shared", Key: "doc", Value: json.RawMessage(`{"v":3}`), ExpectedVersion: i64(1)})
	var ce *store.ConflictError
	require.ErrorAs(t, err, &ce)
	require.ErrorIs(t, err, store.ErrVersionConflict)
	require.EqualValues(t, 1, ce.Expected)
	require.EqualValues(t, 2, ce.Current)
	require.JSONEq(t, `{"v":2}`, string(ce.CurrentEntry.Value))

	// last_writer_wins writes anyway.
	r, err := m.Put(bg, state.PutRequest{AgentID: "a1", Tier: "shared", Key: "doc", Value: json.RawMessage(`{"v":"lww"}`), ExpectedVersion: i64(1), Strategy: state.StrategyLastWriterWins})
	require.NoError(t, err)
	require.EqualValues(t, 3, r.Entry.Version)

	// first_writer_wins keeps the current value and reports the conflict.
	r, err = m.Put(bg, state.PutRequest{AgentID: "a1", Tier: "shared", Key: "doc", Value: json.RawMessage(`{"v":"fww"}`), ExpectedVersion: i64(1), Strategy: state.StrategyFirstWriterWins})
	require.NoError(t, err)
	require.NotNil(t, r.Conflict)
	require.EqualValues(t, 3, r.Entry.Version)
	require.JSONEq(t, `{"v":"lww"}`, string(r.Entry.Value))

	// create-only on an existing key.
	_, err = m.Put(bg, state.PutRequest{AgentID: "a1", Tier: "shared", Key: "doc", Value: json.RawMessage(`1`), ExpectedVersion: i64(0)})
	require.ErrorIs(t, err, store.ErrAlreadyExists)
}

func TestPatch(t *testing.T) {
	m := newManager(t, state.Options{})
	put(t, m, "local", "p", `{"a":1,"list":[1]}`)
	tests := []struct {
		name    string
		req     state.PatchRequest
		want    string
		wantErr error
	}{
		{"merge patch", state.PatchRequest{MergePatch: json.RawMessage(`{"a":null,"b":2}`)}, `{"b":2,"list":[1]}`, nil},
		{"json patch", state.PatchRequest{JSONPatch: json.RawMessage(`[{"op":"add","path":"/list/-","value":2}]`)}, `{"b":2,"list":[1,2]}`, nil},
		{"test op holds", state.PatchRequest{JSONPatch: json.RawMessage(`[{"op":"test","path":"/b","value":2},{"op":"replace","path":"/b","value":3}]`)}, `{"b":3,"list":[1,2]}`, nil},
		{"test op fails", state.PatchRequest{JSONPatch: json.RawMessage(`[{"op":"test","path":"/b","value":99}]`)}, "", store.ErrVersionConflict},
		{"bad path", state.PatchRequest{JSONPatch: json.RawMessage(`[{"op":"replace","path":"/nope/x","value":1}]`)}, "", state.ErrInvalidArgument},
		{"unknown op", state.PatchRequest{JSONPatch: json.RawMessage(`[{"op":"frobnicate","path":"/a"}]`)}, "", state.ErrInvalidArgument},
		{"not an array", state.PatchRequest{JSONPatch: json.RawMessage(`{"op":"add"}`)}, "", state.ErrInvalidArgument},
		{"both kinds", state.PatchRequest{JSONPatch: json.RawMessage(`[]`), MergePatch: json.RawMessage(`{}`)}, "", state.ErrInvalidArgument},
		{"neither kind", state.PatchRequest{}, "", state.ErrInvalidArgument},
		{"stale expected", state.PatchRequest{MergePatch: json.RawMessage(`{"x":1}`), ExpectedVersion: i64(1)}, "", store.ErrVersionConflict},
		{"root replace", state.PatchRequest{JSONPatch: json.RawMessage(`[{"op":"replace","path":"","value":"scalar"}]`)}, `"scalar"`, nil},
		{"patch a scalar", state.PatchRequest{JSONPatch: json.RawMessage(`[{"op":"replace","path":"","value":{"back":true}}]`)}, `{"back":true}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := m.Revision(bg)
			tc.req.AgentID, tc.req.Tier, tc.req.Key = "a1", "local", "p"
			r, err := m.Patch(bg, tc.req)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				after, _ := m.Revision(bg)
				require.Equal(t, before, after, "a failed patch writes nothing")
				return
			}
			require.NoError(t, err)
			require.JSONEq(t, tc.want, string(r.Entry.Value))
		})
	}
	_, err := m.Patch(bg, state.PatchRequest{AgentID: "a1", Tier: "local", Key: "absent", MergePatch: json.RawMessage(`{}`)})
	require.ErrorIs(t, err, store.ErrNotFound)
}

// Concurrent patches without expected_version retry internally and lose no
// update: every appended element is there exactly once.
func TestConcurrentPatchesLoseNothing(t *testing.T) {
	m := newManager(t, state.Options{})
	put(t, m, "shared", "log", `[]`)
	const workers, each = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				_, err := m.Patch(bg, state.PatchRequest{AgentID: "a1", Tier: "shared", Key: "log",
					JSONPatch: json.RawMessage(fmt.Sprintf(`[{"op":"add","path":"/-","value":"%d-%d"}]`, w, i))})
				if err != nil {
					errs <- err
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	e, err := m.Get(bg, state.GetRequest{AgentID: "a1", Tier: "shared", Key: "log"})
	require.NoError(t, err)
	var got []string
	require.NoError(t, json.Unmarshal(e.Value, &got))
	require.Len(t, got, workers*each)
	seen := map[string]bool{}
	for _, s := range got {
		require.False(t, seen[s], "duplicate %s", s)
		seen[s] = true
	}
	require.EqualValues(t, workers*each+1, e.Version)
}

func TestHistoryDiffRollback(t *testing.T) {
	m := newManager(t, state.Options{})
	put(t, m, "persistent", "cfg", `{"a":1}`)
	put(t, m, "persistent", "cfg", `{"a":2,"b":true}`)
	_, err := m.Delete(bg, state.DeleteRequest{AgentID: "a1", Tier: "persistent", Key: "cfg"})
	require.NoError(t, err)
	r := put(t, m, "persistent", "cfg", `{"c":3}`)
	require.True(t, r.Created, "a write after a delete creates again")
	require.EqualValues(t, 4, r.Entry.Version, "numbering continues past the tombstone")

	h, err := m.History(bg, state.HistoryRequest{AgentID: "a1", Tier: "persistent", Key: "cfg", IncludeDiff: true})
	require.NoError(t, err)
	require.EqualValues(t, 4, h.CurrentVersion)
	types := []string{}
	for _, v := range h.Versions {
		types = append(types, v.ChangeType)
		require.NotNil(t, v.Diff, "version %d has a diff", v.Version)
	}
	require.Equal(t, []string{"create", "delete", "update", "create"}, types)
	require.Equal(t, []string{""}, h.Versions[1].Diff.Removed, "the delete removes the whole value")
	require.JSONEq(t, `{"old":1,"new":2}`, mustJSON(t, h.Versions[2].Diff.Modified["/a"]))

	h, err = m.History(bg, state.HistoryRequest{AgentID: "a1", Tier: "persistent", Key: "cfg", Limit: 1, BeforeVersion: 3})
	require.NoError(t, err)
	require.Len(t, h.Versions, 1)
	require.EqualValues(t, 2, h.Versions[0].Version)

	d, err := m.Diff(bg, state.DiffRequest{AgentID: "a1", Tier: "persistent", Key: "cfg", From: 1, To: 2})
	require.NoError(t, err)
	require.Contains(t, d.Changes.Added, "/b")
	require.JSONEq(t, `[{"op":"replace","path":"/a","value":2},{"op":"add","path":"/b","value":true}]`, string(d.JSONPatch))

	e, err := m.Rollback(bg, state.RollbackRequest{AgentID: "a1", Tier: "persistent", Key: "cfg", Version: 1})
	require.NoError(t, err)
	require.EqualValues(t, 5, e.Version)
	require.JSONEq(t, `{"a":1}`, string(e.Value))
	h, _ = m.History(bg, state.HistoryRequest{AgentID: "a1", Tier: "persistent", Key: "cfg", Limit: 1})
	require.Equal(t, "restore", h.Versions[0].ChangeType)

	_, err = m.Rollback(bg, state.RollbackRequest{AgentID: "a1", Tier: "persistent", Key: "cfg", Version: 3})
	require.ErrorIs(t, err, store.ErrNotFound, "a tombstone has no value to restore")
}

func mustJSON(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestTierHistoryLimits(t *testing.T) {
	m := newManager(t, state.Options{Tiers: map[string]state.TierPolicy{"persistent": {HistoryLimit: 3}}})
	for i := 1; i <= 25; i++ {
		put(t, m, "local", "k", fmt.Sprint(i))
		put(t, m, "session", "s1/k", fmt.Sprint(i))
		put(t, m, "persistent", "k", fmt.Sprint(i))
		put(t, m, "shared", "k", fmt.Sprint(i))
	}
	for tier, want := range map[string]int{"local": 20, "session": 5, "persistent": 3, "shared": 25} {
		key := "k"
		if tier == "session" {
			key = "s1/k"
		}
		h, err := m.History(bg, state.HistoryRequest{AgentID: "a1", Tier: tier, Key: key, Limit: 100})
		require.NoError(t, err)
		require.Len(t, h.Versions, want, tier)
		require.EqualValues(t, 25, h.Versions[0].Version, tier)
	}
	_, err := m.Get(bg, state.GetRequest{AgentID: "a1", Tier: "local", Key: "k", Version: 1})
	require.ErrorIs(t, err, store.ErrNotFound, "pruned versions are gone")
}

func TestSessionDefaultTTLAndReaper(t *testing.T) {
	m := newManager(t, state.Options{Tiers: map[string]state.TierPolicy{"session": {DefaultTTL: 50 * time.Millisecond, HistoryLimit: 5}}})
	r := put(t, m, "session", "s1/tool", `{"x":1}`)
	require.NotNil(t, r.Entry.ExpiresAt, "the session tier has a default TTL")
	long := time.Hour
	_, err := m.Put(bg, state.PutRequest{AgentID: "a1", Tier: "session", Key: "s1/keep", Value: json.RawMessage(`1`), TTL: &long})
	require.NoError(t, err)
	local := put(t, m, "local", "k", `1`)
	require.Nil(t, local.Entry.ExpiresAt, "other tiers have no TTL by default")

	time.Sleep(80 * time.Millisecond)
	_, err = m.Get(bg, state.GetRequest{AgentID: "a1", Tier: "session", Key: "s1/tool"})
	require.ErrorIs(t, err, store.ErrNotFound, "expired entries read as absent at once")
	n, err := m.Reap(bg)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	h, err := m.History(bg, state.HistoryRequest{AgentID: "a1", Tier: "session", Key: "s1/tool"})
	require.NoError(t, err)
	require.Equal(t, "expire", h.Versions[0].ChangeType)
	_, err = m.Get(bg, state.GetRequest{AgentID: "a1", Tier: "session", Key: "s1/keep"})
	require.NoError(t, err)
}

func TestListPatternAndPaging(t *testing.T) {
	m := newManager(t, state.Options{})
	for _, k := range []string{"tools/a/state", "tools/b/state", "tools/b/cfg", "prefs/ui", "prefs/lang", "z"} {
		put(t, m, "local", k, `1`)
	}
	keysOf := func(r *state.ListResult) []string {
		out := []string{}
		for _, e := range r.Entries {
			out = append(out, e.Key.Key)
		}
		return out
	}
	r, err := m.List(bg, state.ListRequest{AgentID: "a1", Tier: "local", Pattern: "tools/*/state"})
	require.NoError(t, err)
	require.Equal(t, []string{"tools/a/state", "tools/b/state"}, keysOf(r))
	require.Empty(t, r.NextCursor)

	r, err = m.List(bg, state.ListRequest{AgentID: "a1", Tier: "local", Prefix: "prefs/"})
	require.NoError(t, err)
	require.Equal(t, []string{"prefs/lang", "prefs/ui"}, keysOf(r))

	var all []string
	cursor := ""
	for {
		r, err := m.List(bg, state.ListRequest{AgentID: "a1", Tier: "local", Limit: 2, Cursor: cursor, KeysOnly: true})
		require.NoError(t, err)
		for _, e := range r.Entries {
			require.Nil(t, e.Value)
		}
		all = append(all, keysOf(r)...)
		if r.NextCursor == "" {
			break
		}
		cursor = r.NextCursor
	}
	require.Equal(t, []string{"prefs/lang", "prefs/ui", "tools/a/state", "tools/b/cfg", "tools/b/state", "z"}, all)

	r, err = m.List(bg, state.ListRequest{AgentID: "a1", Tier: "local", Pattern: "**", Limit: 5})
	require.NoError(t, err)
	require.Len(t, r.Entries, 5)
	require.NotEmpty(t, r.NextCursor)

	for _, bad := range []state.ListRequest{
		{AgentID: "a1", Tier: "local", Cursor: "!!!"},
		{AgentID: "a1", Tier: "local", Limit: 1001},
		{AgentID: "a1", Tier: "local", Pattern: "a//b"},
		{AgentID: "a1", Tier: "local", Prefix: "a", Pattern: "b"},
		{AgentID: "a1", Tier: "nope"},
	} {
		_, err := m.List(bg, bad)
		require.ErrorIs(t, err, state.ErrInvalidArgument, "%+v", bad)
	}
}

func TestBatch(t *testing.T) {
	m := newManager(t, state.Options{})
	put(t, m, "local", "x", `{"n":1}`)
	res, err := m.BatchWrite(bg, state.BatchWriteRequest{AgentID: "a1", Ops: []state.BatchOp{
		{Op: "put", Tier: "local", Key: "y", Value: json.RawMessage(`2`)},
		{Op: "patch", Tier: "local", Key: "x", MergePatch: json.RawMessage(`{"n":2}`)},
		{Op: "put", Tier: "shared", Key: "z", Value: json.RawMessage(`3`), ExpectedVersion: i64(0)},
	}})
	require.NoError(t, err)
	require.Len(t, res.Results, 3)
	require.EqualValues(t, 2, res.Results[1].Version)

	before, _ := m.Revision(bg)
	_, err = m.BatchWrite(bg, state.BatchWriteRequest{AgentID: "a1", Ops: []state.BatchOp{
		{Op: "put", Tier: "local", Key: "new", Value: json.RawMessage(`1`)},
		{Op: "delete", Tier: "local", Key: "y", ExpectedVersion: i64(9)},
	}})
	var ce *store.ConflictError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, 1, ce.Op)
	after, _ := m.Revision(bg)
	require.Equal(t, before, after, "all or nothing")
	_, err = m.Get(bg, state.GetRequest{AgentID: "a1", Tier: "local", Key: "new"})
	require.ErrorIs(t, err, store.ErrNotFound)

	_, err = m.BatchWrite(bg, state.BatchWriteRequest{AgentID: "a1", Ops: []state.BatchOp{
		{Op: "put", Tier: "local", Key: "d", Value: json.RawMessage(`1`)},
		{Op: "delete", Tier: "local", Key: "d"},
	}})
	var ia *state.InvalidArgumentError
	require.ErrorAs(t, err, &ia)
	require.Equal(t, 1, ia.Op)

	_, err = m.BatchWrite(bg, state.BatchWriteRequest{AgentID: "a1", Ops: []state.BatchOp{{Op: "delete", Tier: "local", Key: "absent"}}})
	require.ErrorIs(t, err, store.ErrNotFound)

	g, err := m.BatchGet(bg, "a1", []state.TierKey{{Tier: "local", Key: "x"}, {Tier: "local", Key: "nope"}, {Tier: "shared", Key: "z"}}, "")
	require.NoError(t, err)
	require.Len(t, g.Entries, 2)
	require.Equal(t, []state.TierKey{{Tier: "local", Key: "nope"}}, g.Missing)
}

type denyWrites struct{}

func (denyWrites) Authorize(_ context.Context, _ auth.Principal, a auth.Action, _ auth.Resource) error {
	if a == auth.ActionRead {
		return nil
	}
	return auth.ErrPermissionDenied
}

type recordingSink struct {
	mu   sync.Mutex
	recs []audit.Record
}

func (s *recordingSink) Record(_ context.Context, r audit.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, r)
}

func TestAuthorizerAndAudit(t *testing.T) {
	sink := &recordingSink{}
	m := newManager(t, state.Options{Authorizer: denyWrites{}, Audit: sink})
	_, err := m.Put(bg, state.PutRequest{AgentID: "a1", Tier: "local", Key: "k", Value: json.RawMessage(`1`)})
	require.ErrorIs(t, err, auth.ErrPermissionDenied)
	rev, _ := m.Revision(bg)
	require.Zero(t, rev)

	sink2 := &recordingSink{}
	m2 := newManager(t, state.Options{Audit: sink2})
	ctx := auth.WithPrincipal(bg, auth.Principal{ID: "bob"})
	_, err = m2.Put(ctx, state.PutRequest{AgentID: "a1", Tier: "local", Key: "k", Value: json.RawMessage(`1`)})
	require.NoError(t, err)
	require.Len(t, sink2.recs, 1)
	require.Equal(t, "bob", sink2.recs[0].Principal)
	require.Equal(t, "put", sink2.recs[0].Action)
}

func TestClosed(t *testing.T) {
	st, err := sqlite.Open(bg, t.TempDir(), sqlite.Options{})
	require.NoError(t, err)
	m, err := state.New(st, state.Options{})
	require.NoError(t, err)
	require.NoError(t, m.Close())
	require.NoError(t, m.Close(), "Close is idempotent")
	_, err = m.Put(bg, state.PutRequest{AgentID: "a", Tier: "local", Key: "k", Value: json.RawMessage(`1`)})
	require.True(t, errors.Is(err, state.ErrClosed))
}

// A patch keeps the key's expiry to the nanosecond (it must not drift later
// with each patch), and a put without ttl_seconds takes the tier default.
func TestPatchKeepsExpiry(t *testing.T) {
	m := newManager(t, state.Options{})
	ttl := time.Hour
	r, err := m.Put(bg, state.PutRequest{AgentID: "a1", Tier: "local", Key: "k", Value: json.RawMessage(`{"a":1}`), TTL: &ttl})
	require.NoError(t, err)
	at := *r.Entry.ExpiresAt
	for i := 0; i < 3; i++ {
		p, err := m.Patch(bg, state.PatchRequest{AgentID: "a1", Tier: "local", Key: "k", MergePatch: json.RawMessage(fmt.Sprintf(`{"b":%d}`, i))})
		require.NoError(t, err)
		require.True(t, p.Entry.ExpiresAt.Equal(at), "patch %d moved the expiry from %v to %v", i, at, p.Entry.ExpiresAt)
	}
	r = put(t, m, "local", "k", `1`)
	require.Nil(t, r.Entry.ExpiresAt, "a put without a TTL takes the tier's default (none on local)")
}
