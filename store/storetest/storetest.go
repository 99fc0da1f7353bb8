// Package storetest is the conformance suite of the store contract: every
// store.Store implementation (the embedded SQLite store, PostgreSQL, ...) runs
// it unchanged from its own tests, in the manner of Dapr's
// tests/conformance/state:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t testing.TB) store.Store {
//			s, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
//			require.NoError(t, err)
//			t.Cleanup(func() { require.NoError(t, s.Close()) })
//			return s
//		})
//	}
//
// Run covers the lifecycle (Ping, cancelled context, ErrClosed), versions,
// revisions, compare-and-set, concurrency, tombstones, TTL, batches, listing,
// history and its limits, at-revision reads, and the change feed (events,
// compaction, commit waiting, scans; skipped for a store without it); every group is a subtest,
// table-driven where it fits, and every case gets a fresh store from newStore
// (only read-only tables share the store of their setup). Nothing runs in
// parallel.
// RunBenchmarks holds the benchmarks every store shares.
//
// The suite treats checksums as opaque strings (the engine computes them), so
// it stores sha256 over the value's bytes; durability across a crash cannot be
// checked generically and is left to each store's own tests.
package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
)

// Run runs the whole conformance suite. newStore must return a fresh, empty
// store and register its own cleanup (t.Cleanup) to close it; it is called
// once per test case. One case (Lifecycle/Closed) closes its store itself, so
// the cleanup's Close must accept an already closed store.
func Run(t *testing.T, newStore func(t testing.TB) store.Store) {
	f := factory(newStore)
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, f) })
	t.Run("Versions", func(t *testing.T) { testVersions(t, f) })
	t.Run("Revisions", func(t *testing.T) { testRevisions(t, f) })
	t.Run("CAS", func(t *testing.T) { testCAS(t, f) })
	t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, f) })
	t.Run("Tombstones", func(t *testing.T) { testTombstones(t, f) })
	t.Run("TTL", func(t *testing.T) { testTTL(t, f) })
	t.Run("Batches", func(t *testing.T) { testBatches(t, f) })
	t.Run("List", func(t *testing.T) { testList(t, f) })
	t.Run("History", func(t *testing.T) { testHistory(t, f) })
	t.Run("AtRevision", func(t *testing.T) { testAtRevision(t, f) })
	t.Run("Events", func(t *testing.T) { testEvents(t, f) })
}

type factory func(t testing.TB) store.Store

// Namespaces used by the suite. otherAgent starts with agent on purpose: a
// store that scans by a raw agent prefix would leak its keys.
const (
	agent      = "agent-1"
	otherAgent = "agent-10"
	tier       = "local"
	otherTier  = "persistent"
)

// timeSlack is how far a stored timestamp may be from the instant it records
// (stores may keep only milliseconds or microseconds).
const timeSlack = time.Millisecond

// shortTTL is the TTL of keys a test lets expire on the real clock.
const shortTTL = 50 * time.Millisecond

// key names an entry of the suite's default agent and tier.
func key(name string) store.Key { return store.Key{AgentID: agent, Tier: tier, Key: name} }

// ver returns a pointer for WriteOp.ExpectedVersion.
func ver(n int64) *int64 { return &n }

// checksum is the checksum the suite stores for value: sha256 over its bytes.
func checksum(value string) string {
	sum := sha256.Sum256([]byte(value))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// opt modifies a WriteOp built by putOp, deleteOp, restoreOp.
type opt func(*store.WriteOp)

func expect(v int64) opt             { return func(op *store.WriteOp) { op.ExpectedVersion = ver(v) } }
func withTTL(d time.Duration) opt    { return func(op *store.WriteOp) { op.TTL = d } }
func withExpiresAt(t time.Time) opt  { return func(op *store.WriteOp) { op.ExpiresAt = &t } }
func by(principal string) opt        { return func(op *store.WriteOp) { op.CreatedBy = principal } }
func keep(n int) opt                 { return func(op *store.WriteOp) { op.HistoryLimit = n } }
func withMeta(m string) opt          { return func(op *store.WriteOp) { op.Metadata = []byte(m) } }
func withSummary(summary string) opt { return func(op *store.WriteOp) { op.ChangeSummary = summary } }

func apply(op store.WriteOp, opts []opt) store.WriteOp {
	for _, o := range opts {
		o(&op)
	}
	return op
}

func putOp(k store.Key, value string, opts ...opt) store.WriteOp {
	return apply(store.WriteOp{Kind: store.OpPut, Key: k, Value: []byte(value), Checksum: checksum(value), CreatedBy: "suite"}, opts)
}

func restoreOp(k store.Key, value string, opts ...opt) store.WriteOp {
	return apply(store.WriteOp{Kind: store.OpRestore, Key: k, Value: []byte(value), Checksum: checksum(value), CreatedBy: "suite"}, opts)
}

func deleteOp(k store.Key, opts ...opt) store.WriteOp {
	return apply(store.WriteOp{Kind: store.OpDelete, Key: k, CreatedBy: "suite"}, opts)
}

func expireOp(k store.Key, expected int64) store.WriteOp {
	return store.WriteOp{Kind: store.OpExpire, Key: k, ExpectedVersion: ver(expected), CreatedBy: "reaper"}
}

// describe renders ops for failure messages.
func describe(ops []store.WriteOp) string {
	parts := make([]string, len(ops))
	for i, op := range ops {
		kind := map[store.OpKind]string{store.OpPut: "put", store.OpDelete: "delete", store.OpExpire: "expire", store.OpRestore: "restore"}[op.Kind]
		s := fmt.Sprintf("#%d %s %s", i, kind, op.Key)
		if op.ExpectedVersion != nil {
			s += fmt.Sprintf(" expected=%d", *op.ExpectedVersion)
		}
		if op.TTL > 0 {
			s += fmt.Sprintf(" ttl=%s", op.TTL)
		}
		if op.HistoryLimit > 0 {
			s += fmt.Sprintf(" keep=%d", op.HistoryLimit)
		}
		parts[i] = s
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

func write(t testing.TB, s store.Store, ops ...store.WriteOp) (*store.WriteResult, error) {
	t.Helper()
	return s.Write(t.Context(), store.WriteRequest{Ops: ops})
}

// mustWrite commits ops as one request and checks the result's shape.
func mustWrite(t testing.TB, s store.Store, ops ...store.WriteOp) *store.WriteResult {
	t.Helper()
	res, err := write(t, s, ops...)
	require.NoError(t, err, "Write %s", describe(ops))
	require.NotNil(t, res, "Write %s returned a nil result", describe(ops))
	require.Len(t, res.Results, len(ops), "Write %s: one OpResult per op", describe(ops))
	return res
}

func mustPut(t testing.TB, s store.Store, k store.Key, value string, opts ...opt) store.OpResult {
	t.Helper()
	return mustWrite(t, s, putOp(k, value, opts...)).Results[0]
}

func mustDelete(t testing.TB, s store.Store, k store.Key, opts ...opt) store.OpResult {
	t.Helper()
	return mustWrite(t, s, deleteOp(k, opts...)).Results[0]
}

func get(t testing.TB, s store.Store, req store.GetRequest) (*store.Entry, error) {
	t.Helper()
	return s.Get(t.Context(), req)
}

// mustGet reads the live entry of k.
func mustGet(t testing.TB, s store.Store, k store.Key) *store.Entry {
	t.Helper()
	e, err := get(t, s, store.GetRequest{Key: k})
	require.NoError(t, err, "Get %s", k)
	require.NotNil(t, e, "Get %s returned a nil entry", k)
	return e
}

// requireGetNotFound checks that req reads as absent (store.ErrNotFound).
func requireGetNotFound(t testing.TB, s store.Store, req store.GetRequest, why string) {
	t.Helper()
	e, err := get(t, s, req)
	require.ErrorIs(t, err, store.ErrNotFound, "%s: Get %+v: want ErrNotFound, got entry %+v", why, req, e)
}

func currentRevision(t testing.TB, s store.Store) int64 {
	t.Helper()
	rev, err := s.CurrentRevision(t.Context())
	require.NoError(t, err, "CurrentRevision")
	return rev
}

// history returns every version of k, newest first.
func history(t testing.TB, s store.Store, k store.Key) *store.HistoryResult {
	t.Helper()
	h, err := s.History(t.Context(), store.HistoryRequest{Key: k, Limit: 100000})
	require.NoError(t, err, "History %s", k)
	require.NotNil(t, h, "History %s returned nil", k)
	return h
}

// oldestFirst returns versions in ascending order (History gives newest first).
func oldestFirst(vs []store.Version) []store.Version {
	out := make([]store.Version, len(vs))
	for i, v := range vs {
		out[len(vs)-1-i] = v
	}
	return out
}

func versionNumbers(vs []store.Version) []int64 {
	out := make([]int64, len(vs))
	for i, v := range vs {
		out[i] = v.Version
	}
	return out
}

// list returns one page.
func list(t testing.TB, s store.Store, req store.ListRequest) *store.ListResult {
	t.Helper()
	res, err := s.List(t.Context(), req)
	require.NoError(t, err, "List %+v", req)
	require.NotNil(t, res, "List %+v returned nil", req)
	return res
}

func listKeys(entries []store.Entry) []string {
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Key.Key)
	}
	return out
}

// requireChain recomputes the chain of consecutive versions given oldest
// first. When vs starts at version 1 the chain is recomputed from "";
// otherwise (older versions pruned) the first version's Chain is taken as the
// anchor and every later link is checked.
func requireChain(t testing.TB, vs []store.Version) {
	t.Helper()
	require.NotEmpty(t, vs, "no versions to check the chain of")
	parent := ""
	for i, v := range vs {
		if i > 0 {
			require.Equal(t, vs[i-1].Version+1, v.Version, "versions must be consecutive: %v", versionNumbers(vs))
		}
		require.Equal(t, v.Version-1, v.ParentVersion, "ParentVersion of %s version %d", v.Key, v.Version)
		if i == 0 && v.Version != 1 {
			parent = v.Chain
			continue
		}
		want := store.ChainHash(parent, v.Version, v.ChangeType, v.Checksum)
		require.Equal(t, want, v.Chain, "Chain of %s version %d (%s) != ChainHash(parent chain, %d, %q, %q)",
			v.Key, v.Version, v.ChangeType, v.Version, v.ChangeType, v.Checksum)
		parent = v.Chain
	}
}

// requireTimeNear checks got is within timeSlack of want.
func requireTimeNear(t testing.TB, want, got time.Time, what string) {
	t.Helper()
	d := got.Sub(want)
	require.True(t, d >= -timeSlack && d <= timeSlack, "%s: got %s, want %s (±%s)", what, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano), timeSlack)
}

// requireTimeBetween checks lo-timeSlack <= got <= hi+timeSlack.
func requireTimeBetween(t testing.TB, got, lo, hi time.Time, what string) {
	t.Helper()
	require.False(t, got.IsZero(), "%s is zero", what)
	require.True(t, !got.Before(lo.Add(-timeSlack)) && !got.After(hi.Add(timeSlack)),
		"%s: got %s, want between %s and %s", what, got.Format(time.RFC3339Nano), lo.Format(time.RFC3339Nano), hi.Format(time.RFC3339Nano))
}

// requireSameEntry checks that got describes the same version as want
// (timestamps within timeSlack, metadata as JSON).
func requireSameEntry(t testing.TB, want, got store.Entry, where string) {
	t.Helper()
	require.Equal(t, want.Key, got.Key, "%s: Key", where)
	require.Equal(t, want.Version, got.Version, "%s: Version", where)
	require.Equal(t, want.Revision, got.Revision, "%s: Revision", where)
	require.Equal(t, want.Deleted, got.Deleted, "%s: Deleted", where)
	requireValue(t, want.Value, got.Value, where)
	require.Equal(t, want.Checksum, got.Checksum, "%s: Checksum", where)
	require.Equal(t, want.CreatedBy, got.CreatedBy, "%s: CreatedBy", where)
	requireMetadata(t, want.Metadata, got.Metadata, where)
	requireTimeNear(t, want.CreatedAt, got.CreatedAt, where+": CreatedAt")
	requireTimeNear(t, want.UpdatedAt, got.UpdatedAt, where+": UpdatedAt")
	if want.ExpiresAt == nil {
		require.Nil(t, got.ExpiresAt, "%s: ExpiresAt", where)
	} else {
		require.NotNil(t, got.ExpiresAt, "%s: ExpiresAt", where)
		requireTimeNear(t, *want.ExpiresAt, *got.ExpiresAt, where+": ExpiresAt")
	}
}

// requireValue checks a value byte for byte, and that a nil value (tombstone)
// stays nil and a non-nil one (even the JSON literal null) stays non-nil.
func requireValue(t testing.TB, want, got []byte, where string) {
	t.Helper()
	if want == nil {
		require.Nil(t, got, "%s: Value must be nil, got %q", where, got)
		return
	}
	require.NotNil(t, got, "%s: Value is nil, want %q", where, want)
	require.Equal(t, string(want), string(got), "%s: Value must round-trip byte for byte", where)
}

func requireMetadata(t testing.TB, want, got []byte, where string) {
	t.Helper()
	if len(want) == 0 {
		require.Empty(t, got, "%s: Metadata", where)
		return
	}
	require.JSONEq(t, string(want), string(got), "%s: Metadata", where)
}

// conflictOf checks err is a *store.ConflictError for op index op and key k
// that unwraps to sentinel, and returns it.
func conflictOf(t testing.TB, err error, sentinel error, op int, k store.Key) *store.ConflictError {
	t.Helper()
	require.Error(t, err, "want a conflict on op %d (%s)", op, k)
	require.ErrorIs(t, err, sentinel, "conflict on op %d (%s): errors.Is(%v)", op, k, sentinel)
	var ce *store.ConflictError
	require.True(t, errors.As(err, &ce), "want errors.As(*store.ConflictError), got %T: %v", err, err)
	require.Equal(t, op, ce.Op, "ConflictError.Op")
	require.Equal(t, k, ce.Key, "ConflictError.Key")
	return ce
}

// notFoundOp checks err is ErrNotFound naming op index op (*store.OpError).
func notFoundOp(t testing.TB, err error, op int) {
	t.Helper()
	require.ErrorIs(t, err, store.ErrNotFound, "want ErrNotFound for op %d", op)
	var oe *store.OpError
	require.True(t, errors.As(err, &oe), "want errors.As(*store.OpError), got %T: %v", err, err)
	require.Equal(t, op, oe.Op, "OpError.Op")
}

// snapshot records what a failed write must leave untouched: the revision
// and the whole history of some keys (nil when a key was never written).
type snapshot struct {
	revision int64
	history  map[store.Key]*store.HistoryResult
}

func takeSnapshot(t testing.TB, s store.Store, keys ...store.Key) snapshot {
	t.Helper()
	snap := snapshot{revision: currentRevision(t, s), history: map[store.Key]*store.HistoryResult{}}
	for _, k := range keys {
		h, err := s.History(t.Context(), store.HistoryRequest{Key: k, Limit: 100000})
		if errors.Is(err, store.ErrNotFound) {
			snap.history[k] = nil
			continue
		}
		require.NoError(t, err, "History %s", k)
		snap.history[k] = h
	}
	return snap
}

// requireUnchanged checks the store still matches before.
func requireUnchanged(t testing.TB, s store.Store, before snapshot, why string) {
	t.Helper()
	keys := make([]store.Key, 0, len(before.history))
	for k := range before.history {
		keys = append(keys, k)
	}
	after := takeSnapshot(t, s, keys...)
	require.Equal(t, before.revision, after.revision, "%s: CurrentRevision changed", why)
	for _, k := range keys {
		b, a := before.history[k], after.history[k]
		if b == nil {
			require.Nil(t, a, "%s: %s was written (history %v)", why, k, historyVersions(a))
			continue
		}
		require.NotNil(t, a, "%s: history of %s vanished", why, k)
		require.Equal(t, b.CurrentVersion, a.CurrentVersion, "%s: CurrentVersion of %s", why, k)
		require.Equal(t, versionNumbers(b.Versions), versionNumbers(a.Versions), "%s: versions of %s", why, k)
		for i := range b.Versions {
			requireSameEntry(t, b.Versions[i].Entry, a.Versions[i].Entry, fmt.Sprintf("%s: %s version %d", why, k, b.Versions[i].Version))
		}
	}
}

func historyVersions(h *store.HistoryResult) []int64 {
	if h == nil {
		return nil
	}
	return versionNumbers(h.Versions)
}

// waitExpired sleeps until every given ExpiresAt has passed on the real clock.
func waitExpired(t testing.TB, entries ...store.Entry) {
	t.Helper()
	var last time.Time
	for _, e := range entries {
		require.NotNil(t, e.ExpiresAt, "%s version %d has no ExpiresAt", e.Key, e.Version)
		if e.ExpiresAt.After(last) {
			last = *e.ExpiresAt
		}
	}
	time.Sleep(time.Until(last.Add(5 * time.Millisecond)))
}

// tick lets the clock move visibly (beyond stored timestamp precision).
func tick() { time.Sleep(5 * time.Millisecond) }
