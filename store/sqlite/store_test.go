package sqlite

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/agentstate/agentstate/store"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(kill9Env); dir != "" {
		kill9Child(dir) // never returns: the parent kills this process
	}
	goleak.VerifyTestMain(m)
}

const kill9Env = "AGENTSTATE_SQLITE_KILL9_DIR"

// kill9Child writes from 8 goroutines forever and prints each acknowledged
// write as "key version revision".
func kill9Child(dir string) {
	s, err := Open(context.Background(), dir, Options{})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	for g := range 8 {
		go func() {
			for i := 0; ; i++ {
				key := k(fmt.Sprintf("g%d/%d", g, i%10))
				res, err := write(s, put(key, fmt.Sprintf(`{"i":%d}`, i)))
				if err != nil {
					fmt.Println("write:", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Printf("%s %d %d\n", key.Key, res.Results[0].Entry.Version, res.Revision)
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestKill9 kills a writing process with SIGKILL and checks that every write
// it acknowledged is in the store after reopening.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), kill9Env+"="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	acked := map[string]int64{}
	var maxRev int64
	sc := bufio.NewScanner(out)
	for len(acked) < 80 || maxRev < 2000 {
		require.True(t, sc.Scan(), "child output ended: %v", sc.Err())
		var key string
		var ver, rev int64
		_, err := fmt.Sscanf(sc.Text(), "%s %d %d", &key, &ver, &rev)
		require.NoError(t, err, "child said %q", sc.Text())
		acked[key] = max(acked[key], ver)
		maxRev = max(maxRev, rev)
	}
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()

	s, err := Open(context.Background(), dir, Options{})
	require.NoError(t, err)
	defer s.Close()
	rev, err := s.CurrentRevision(context.Background())
	require.NoError(t, err)
	require.GreaterOrEqual(t, rev, maxRev, "revision of the last acknowledged write")
	for key, ver := range acked {
		e, err := s.Get(context.Background(), store.GetRequest{Key: k(key)})
		require.NoError(t, err, key)
		require.GreaterOrEqual(t, e.Version, ver, "%s: acknowledged version lost", key)
		requireChain(t, mustHistory(t, s, k(key)))
	}
	// The store goes on from where it stopped.
	r := mustWrite(t, s, put(k("after"), `1`))
	require.Equal(t, rev+1, r.Revision)
}

// fakeClock is a settable clock shared by the writer (Options.Now) and reads.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openTest opens a store in a fresh directory and closes it at cleanup.
func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), t.TempDir(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func k(name string) store.Key { return store.Key{AgentID: "agent-1", Tier: "local", Key: name} }

func ptr(v int64) *int64 { return &v }

func sum(v string) string {
	h := sha256.Sum256([]byte(v))
	return "sha256:" + hex.EncodeToString(h[:])
}

func put(key store.Key, v string) store.WriteOp {
	return store.WriteOp{Kind: store.OpPut, Key: key, Value: []byte(v), Checksum: sum(v), CreatedBy: "tester"}
}

func del(key store.Key) store.WriteOp {
	return store.WriteOp{Kind: store.OpDelete, Key: key, CreatedBy: "tester"}
}

func with(op store.WriteOp, f func(*store.WriteOp)) store.WriteOp { f(&op); return op }

func mustWrite(t testing.TB, s store.Store, ops ...store.WriteOp) *store.WriteResult {
	t.Helper()
	res, err := s.Write(context.Background(), store.WriteRequest{Ops: ops})
	require.NoError(t, err)
	require.Len(t, res.Results, len(ops))
	return res
}

func write(s store.Store, ops ...store.WriteOp) (*store.WriteResult, error) {
	return s.Write(context.Background(), store.WriteRequest{Ops: ops})
}

func mustHistory(t testing.TB, s store.Store, key store.Key) *store.HistoryResult {
	t.Helper()
	h, err := s.History(context.Background(), store.HistoryRequest{Key: key, Limit: 1000})
	require.NoError(t, err)
	return h
}

func requireChain(t testing.TB, h *store.HistoryResult) {
	t.Helper()
	parent := ""
	for i := len(h.Versions) - 1; i >= 0; i-- {
		v := h.Versions[i]
		require.Equal(t, v.Version-1, v.ParentVersion)
		if i == len(h.Versions)-1 && v.Version != 1 {
			parent = v.Chain
			continue
		}
		require.Equal(t, store.ChainHash(parent, v.Version, v.ChangeType, v.Checksum), v.Chain, "version %d", v.Version)
		parent = v.Chain
	}
}

func TestLifecycle(t *testing.T) {
	clock := newFakeClock()
	s := openTest(t, Options{Now: clock.Now})
	ctx := context.Background()
	a := k("a")

	// Create: version 1, revision 1, change type create.
	r1 := mustWrite(t, s, with(put(a, `{"n":1}`), func(o *store.WriteOp) { o.Metadata = []byte(`{"m":1}`) }))
	require.EqualValues(t, 1, r1.Revision)
	require.Equal(t, store.ChangeCreate, r1.Results[0].ChangeType)
	require.Nil(t, r1.Results[0].Previous)
	e1 := r1.Results[0].Entry
	require.EqualValues(t, 1, e1.Version)
	require.Equal(t, clock.Now(), e1.CreatedAt)
	require.Equal(t, clock.Now(), e1.UpdatedAt)

	got, err := s.Get(ctx, store.GetRequest{Key: a, Now: clock.Now()})
	require.NoError(t, err)
	require.Equal(t, e1, *got, "Get returns exactly what Write reported")

	// Update keeps CreatedAt, moves UpdatedAt; Previous is the replaced entry.
	clock.Advance(time.Second)
	r2 := mustWrite(t, s, put(a, `{"n":2}`))
	require.EqualValues(t, 2, r2.Revision)
	require.Equal(t, store.ChangeUpdate, r2.Results[0].ChangeType)
	require.Equal(t, &e1, r2.Results[0].Previous)
	require.Equal(t, e1.CreatedAt, r2.Results[0].Entry.CreatedAt)
	require.Equal(t, clock.Now(), r2.Results[0].Entry.UpdatedAt)

	// Delete writes a tombstone version 3.
	clock.Advance(time.Second)
	r3 := mustWrite(t, s, del(a))
	require.Equal(t, store.ChangeDelete, r3.Results[0].ChangeType)
	require.True(t, r3.Results[0].Entry.Deleted)
	require.EqualValues(t, 3, r3.Results[0].Entry.Version)
	_, err = s.Get(ctx, store.GetRequest{Key: a})
	require.ErrorIs(t, err, store.ErrNotFound)

	// Deleting again: not found, naming the op.
	_, err = write(s, del(a))
	var oe *store.OpError
	require.ErrorAs(t, err, &oe)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Equal(t, 0, oe.Op)

	// Recreate: version 4, create again, fresh CreatedAt.
	clock.Advance(time.Second)
	r4 := mustWrite(t, s, put(a, `{"n":4}`))
	require.Equal(t, store.ChangeCreate, r4.Results[0].ChangeType)
	require.EqualValues(t, 4, r4.Results[0].Entry.Version)
	require.Equal(t, clock.Now(), r4.Results[0].Entry.CreatedAt)
	require.Nil(t, r4.Results[0].Previous)

	// Restore: change type restore.
	r5 := mustWrite(t, s, with(put(a, `{"n":1}`), func(o *store.WriteOp) { o.Kind = store.OpRestore }))
	require.Equal(t, store.ChangeRestore, r5.Results[0].ChangeType)
	require.EqualValues(t, 5, r5.Results[0].Entry.Version)

	h := mustHistory(t, s, a)
	require.EqualValues(t, 5, h.CurrentVersion)
	require.Len(t, h.Versions, 5)
	types := []string{}
	for _, v := range h.Versions {
		types = append(types, v.ChangeType)
	}
	require.Equal(t, []string{"restore", "create", "delete", "update", "create"}, types)
	require.Nil(t, h.Versions[2].Value)
	require.True(t, h.Versions[2].Deleted)
	require.Equal(t, `{"m":1}`, string(h.Versions[4].Metadata))
	requireChain(t, h)

	// Version reads: tombstone and never-written are not found.
	v2, err := s.Get(ctx, store.GetRequest{Key: a, Version: 2})
	require.NoError(t, err)
	require.Equal(t, `{"n":2}`, string(v2.Value))
	for _, v := range []int64{3, 6} {
		_, err = s.Get(ctx, store.GetRequest{Key: a, Version: v})
		require.ErrorIs(t, err, store.ErrNotFound, "version %d", v)
	}

	// At-revision reads.
	at, err := s.Get(ctx, store.GetRequest{Key: a, AtRevision: 2})
	require.NoError(t, err)
	require.EqualValues(t, 2, at.Version)
	_, err = s.Get(ctx, store.GetRequest{Key: a, AtRevision: 3})
	require.ErrorIs(t, err, store.ErrNotFound, "tombstone at revision 3")
	rev, err := s.CurrentRevision(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 5, rev)
}

func TestCAS(t *testing.T) {
	s := openTest(t, Options{})
	a, b := k("a"), k("b")
	e := mustWrite(t, s, put(a, `1`)).Results[0].Entry

	tests := []struct {
		name     string
		op       store.WriteOp
		sentinel error
		current  int64
		typ      string
		entry    bool
	}{
		// Expected 0 on a live key: already exists.
		{"create-existing", with(put(a, `2`), func(o *store.WriteOp) { o.ExpectedVersion = ptr(0) }),
			store.ErrAlreadyExists, 1, store.ConflictConcurrentModification, true},
		// Wrong version on a live key.
		{"stale", with(put(a, `2`), func(o *store.WriteOp) { o.ExpectedVersion = ptr(7) }),
			store.ErrVersionConflict, 1, store.ConflictConcurrentModification, true},
		// Version expected on an absent key: deleted_modified.
		{"absent", with(put(b, `2`), func(o *store.WriteOp) { o.ExpectedVersion = ptr(1) }),
			store.ErrVersionConflict, 0, store.ConflictDeletedModified, false},
		// Delete with a stale version.
		{"delete-stale", with(del(a), func(o *store.WriteOp) { o.ExpectedVersion = ptr(2) }),
			store.ErrVersionConflict, 1, store.ConflictConcurrentModification, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := write(s, put(k("other-"+tc.name), `0`), tc.op)
			require.ErrorIs(t, err, tc.sentinel)
			var ce *store.ConflictError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, 1, ce.Op)
			require.Equal(t, tc.op.Key, ce.Key)
			require.Equal(t, tc.current, ce.Current)
			require.Equal(t, tc.typ, ce.Type)
			if tc.entry {
				require.Equal(t, &e, ce.CurrentEntry)
			} else {
				require.Nil(t, ce.CurrentEntry)
			}
			// All or nothing: op 0 was not written either.
			_, err = s.Get(context.Background(), store.GetRequest{Key: k("other-" + tc.name)})
			require.ErrorIs(t, err, store.ErrNotFound)
		})
	}
	rev, _ := s.CurrentRevision(context.Background())
	require.EqualValues(t, 1, rev, "failed requests take no revision")

	// Matching versions succeed.
	mustWrite(t, s, with(put(a, `2`), func(o *store.WriteOp) { o.ExpectedVersion = ptr(1) }),
		with(put(b, `1`), func(o *store.WriteOp) { o.ExpectedVersion = ptr(0) }))
}

func TestInvalid(t *testing.T) {
	s := openTest(t, Options{})
	tests := []struct {
		name string
		req  store.WriteRequest
	}{
		{"no ops", store.WriteRequest{}},
		{"same key twice", store.WriteRequest{Ops: []store.WriteOp{put(k("a"), `1`), del(k("a"))}}},
		{"unknown kind", store.WriteRequest{Ops: []store.WriteOp{{Kind: 99, Key: k("a")}}}},
		{"empty value", store.WriteRequest{Ops: []store.WriteOp{put(k("a"), ``)}}},
		{"empty key", store.WriteRequest{Ops: []store.WriteOp{put(k(""), `1`)}}},
		{"negative expected", store.WriteRequest{Ops: []store.WriteOp{with(put(k("a"), `1`), func(o *store.WriteOp) { o.ExpectedVersion = ptr(-1) })}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Write(context.Background(), tc.req)
			require.ErrorIs(t, err, store.ErrInvalid)
		})
	}
	many := make([]store.WriteOp, 40)
	for i := range many {
		many[i] = put(k(fmt.Sprint(i%39)), `1`)
	}
	_, err := write(s, many...)
	require.ErrorIs(t, err, store.ErrInvalid, "duplicate among many ops")
}

func TestExpiry(t *testing.T) {
	clock := newFakeClock()
	s := openTest(t, Options{Now: clock.Now})
	ctx := context.Background()
	a, b := k("a"), k("b")
	ttl := func(o *store.WriteOp) { o.TTL = time.Minute }

	r := mustWrite(t, s, with(put(a, `1`), ttl), with(put(b, `1`), ttl))
	require.Equal(t, clock.Now().Add(time.Minute), *r.Results[0].Entry.ExpiresAt)
	ea := r.Results[0].Entry

	clock.Advance(time.Minute) // expires_at == now: expired
	now := clock.Now()
	_, err := s.Get(ctx, store.GetRequest{Key: a, Now: now})
	require.ErrorIs(t, err, store.ErrNotFound)
	m, err := s.BatchGet(ctx, []store.Key{a, b}, now)
	require.NoError(t, err)
	require.Empty(t, m)
	l, err := s.List(ctx, store.ListRequest{AgentID: "agent-1", Tier: "local", Limit: 10, Now: now})
	require.NoError(t, err)
	require.Empty(t, l.Entries)
	exp, err := s.ExpiredKeys(ctx, now, 10)
	require.NoError(t, err)
	require.Equal(t, []store.Expired{{Key: a, Version: 1}, {Key: b, Version: 1}}, exp)

	// Deleting an expired key: not found, nothing written.
	_, err = write(s, del(a))
	require.ErrorIs(t, err, store.ErrNotFound)
	// CAS on an expired key: it is absent.
	_, err = write(s, with(put(a, `2`), func(o *store.WriteOp) { o.ExpectedVersion = ptr(1) }))
	var ce *store.ConflictError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, store.ConflictDeletedModified, ce.Type)
	require.Zero(t, ce.Current)
	rev, _ := s.CurrentRevision(ctx)
	require.EqualValues(t, 1, rev)

	// A write to the expired key: expire tombstone at revision 2, the put at 3.
	clock.Advance(time.Second)
	w := mustWrite(t, s, with(put(a, `2`), func(o *store.WriteOp) { o.ExpectedVersion = ptr(0) }))
	require.EqualValues(t, 3, w.Revision)
	res := w.Results[0]
	require.Equal(t, store.ChangeCreate, res.ChangeType)
	require.Nil(t, res.Previous)
	require.EqualValues(t, 3, res.Entry.Version)
	require.Equal(t, clock.Now(), res.Entry.CreatedAt)
	require.Nil(t, res.Entry.ExpiresAt)
	h := mustHistory(t, s, a)
	require.Len(t, h.Versions, 3)
	require.Equal(t, store.ChangeExpire, h.Versions[1].ChangeType)
	require.EqualValues(t, 2, h.Versions[1].Revision)
	require.True(t, h.Versions[1].Deleted)
	require.Equal(t, ea.CreatedAt, h.Versions[1].CreatedAt)
	requireChain(t, h)

	// The reaper: a stale expected version is skipped, the right one applies.
	sk := mustWrite(t, s, store.WriteOp{Kind: store.OpExpire, Key: b, ExpectedVersion: ptr(5), CreatedBy: "reaper"})
	require.True(t, sk.Results[0].Skipped)
	require.Zero(t, sk.Revision)
	ex := mustWrite(t, s, store.WriteOp{Kind: store.OpExpire, Key: b, ExpectedVersion: ptr(1), CreatedBy: "reaper"})
	require.False(t, ex.Results[0].Skipped)
	require.EqualValues(t, 4, ex.Revision)
	require.Equal(t, store.ChangeExpire, ex.Results[0].ChangeType)
	require.True(t, ex.Results[0].Entry.Deleted)
	require.Equal(t, "reaper", ex.Results[0].Entry.CreatedBy)
	require.EqualValues(t, 1, ex.Results[0].Previous.Version)
	// A live, not expired key is not expired by the reaper.
	nx := mustWrite(t, s, store.WriteOp{Kind: store.OpExpire, Key: a, ExpectedVersion: ptr(3)})
	require.True(t, nx.Results[0].Skipped)
	exp, err = s.ExpiredKeys(ctx, clock.Now(), 10)
	require.NoError(t, err)
	require.Empty(t, exp)
}

func TestHistoryPruning(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	a := k("a")
	keep3 := func(o *store.WriteOp) { o.HistoryLimit = 3 }
	// Another key first, so that key a's first revision is 2.
	mustWrite(t, s, put(k("z"), `0`))
	for i := 1; i <= 6; i++ {
		mustWrite(t, s, with(put(a, fmt.Sprint(i)), keep3)) // revisions 2..7
	}
	h := mustHistory(t, s, a)
	require.EqualValues(t, 6, h.CurrentVersion)
	require.Equal(t, []int64{6, 5, 4}, []int64{h.Versions[0].Version, h.Versions[1].Version, h.Versions[2].Version})
	require.Len(t, h.Versions, 3)
	requireChain(t, h)

	_, err := s.Get(ctx, store.GetRequest{Key: a, Version: 3})
	require.ErrorIs(t, err, store.ErrNotFound, "pruned version")
	_, err = s.Get(ctx, store.GetRequest{Key: a, AtRevision: 3})
	require.ErrorIs(t, err, store.ErrCompacted, "revision 3 answered by pruned version 2")
	_, err = s.Get(ctx, store.GetRequest{Key: a, AtRevision: 1})
	require.ErrorIs(t, err, store.ErrNotFound, "before the key existed")
	e, err := s.Get(ctx, store.GetRequest{Key: a, AtRevision: 5})
	require.NoError(t, err)
	require.EqualValues(t, 4, e.Version)

	// Paging history.
	p, err := s.History(ctx, store.HistoryRequest{Key: a, Limit: 1, BeforeVersion: 6})
	require.NoError(t, err)
	require.Len(t, p.Versions, 1)
	require.EqualValues(t, 5, p.Versions[0].Version)
	_, err = s.History(ctx, store.HistoryRequest{Key: k("never"), Limit: 1})
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestList(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	for _, name := range []string{"a/1", "a/2", "a/3", "a0", "b", "a/deleted"} {
		mustWrite(t, s, put(k(name), `"`+name+`"`))
	}
	mustWrite(t, s, del(k("a/deleted")))
	mustWrite(t, s, put(store.Key{AgentID: "agent-10", Tier: "local", Key: "a/9"}, `1`))

	keys := func(r *store.ListResult) []string {
		var out []string
		for _, e := range r.Entries {
			out = append(out, e.Key.Key)
		}
		return out
	}
	r, err := s.List(ctx, store.ListRequest{AgentID: "agent-1", Tier: "local", Prefix: "a/", Limit: 2})
	require.NoError(t, err)
	require.Equal(t, []string{"a/1", "a/2"}, keys(r))
	require.True(t, r.More)
	require.Equal(t, `"a/1"`, string(r.Entries[0].Value))
	r, err = s.List(ctx, store.ListRequest{AgentID: "agent-1", Tier: "local", Prefix: "a/", After: "a/2", Limit: 2, KeysOnly: true})
	require.NoError(t, err)
	require.Equal(t, []string{"a/3"}, keys(r))
	require.False(t, r.More)
	require.Nil(t, r.Entries[0].Value)
	r, err = s.List(ctx, store.ListRequest{AgentID: "agent-1", Tier: "local", Limit: 10})
	require.NoError(t, err)
	require.Equal(t, []string{"a/1", "a/2", "a/3", "a0", "b"}, keys(r))
	_, err = s.List(ctx, store.ListRequest{AgentID: "agent-1", Tier: "local"})
	require.ErrorIs(t, err, store.ErrInvalid)
}

// stallWriter makes the writer block before the commit of every batch until
// release is called, and reports each stall on stalled.
type stall struct {
	stalled chan struct{}
	release chan struct{}
	fail    atomic.Pointer[error]
}

func stallWriter(s *Store) *stall {
	st := &stall{stalled: make(chan struct{}, 100), release: make(chan struct{}, 100)}
	s.w.beforeCommit = func() error {
		st.stalled <- struct{}{}
		<-st.release
		if p := st.fail.Load(); p != nil {
			return *p
		}
		return nil
	}
	return st
}

// waitQueued waits until n requests sit in the queue.
func waitQueued(t testing.TB, s *Store, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return len(s.queue) == n }, 5*time.Second, time.Millisecond)
}

type outcome struct {
	res *store.WriteResult
	err error
}

func goWrite(ctx context.Context, s *Store, ops ...store.WriteOp) chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		res, err := s.Write(ctx, store.WriteRequest{Ops: ops})
		ch <- outcome{res, err}
	}()
	return ch
}

func TestBatchIsolation(t *testing.T) {
	s := openTest(t, Options{})
	st := stallWriter(s)

	// Batch 1 (stalled) holds the writer while batch 2 queues.
	first := goWrite(context.Background(), s, put(k("x"), `0`))
	<-st.stalled

	ok1 := goWrite(context.Background(), s, put(k("a"), `1`))
	waitQueued(t, s, 1)
	conflict := goWrite(context.Background(), s, with(put(k("x"), `1`), func(o *store.WriteOp) { o.ExpectedVersion = ptr(9) }))
	waitQueued(t, s, 2)
	missing := goWrite(context.Background(), s, put(k("y"), `1`), del(k("nothing")))
	waitQueued(t, s, 3)
	ok2 := goWrite(context.Background(), s, put(k("b"), `1`), put(k("x"), `2`))
	waitQueued(t, s, 4)

	st.release <- struct{}{} // commit batch 1
	o := <-first
	require.NoError(t, o.err)
	before := s.Stats()
	<-st.stalled // batch 2 reached its commit
	st.release <- struct{}{}

	o1, oc, om, o2 := <-ok1, <-conflict, <-missing, <-ok2
	require.NoError(t, o1.err)
	require.NoError(t, o2.err)
	require.EqualValues(t, 2, o1.res.Revision)
	require.EqualValues(t, 3, o2.res.Revision, "failed requests take no revision")
	require.ErrorIs(t, oc.err, store.ErrVersionConflict)
	require.ErrorIs(t, om.err, store.ErrNotFound)
	after := s.Stats()
	require.Equal(t, before.Batches+1, after.Batches, "one transaction for batch 2")
	require.Equal(t, before.Requests+2, after.Requests)
	_, err := s.Get(context.Background(), store.GetRequest{Key: k("y")})
	require.ErrorIs(t, err, store.ErrNotFound)
	e, err := s.Get(context.Background(), store.GetRequest{Key: k("x")})
	require.NoError(t, err)
	require.EqualValues(t, 2, e.Version)
}

// TestSavepointRollback fails one request in the middle of its writes (a
// trigger raises on the agent_states insert of its second key, after its
// first key was written) and checks only that request is undone.
func TestSavepointRollback(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), dir, Options{})
	require.NoError(t, err)
	defer s.Close()
	db, err := sql.Open("sqlite", s.Path())
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TRIGGER poison BEFORE INSERT ON agent_states WHEN NEW.key = 'poison'
		BEGIN SELECT RAISE(ABORT, 'poisoned'); END`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	st := stallWriter(s)
	first := goWrite(context.Background(), s, put(k("x"), `0`))
	<-st.stalled
	a := goWrite(context.Background(), s, put(k("a"), `1`))
	waitQueued(t, s, 1)
	p := goWrite(context.Background(), s, put(k("b"), `1`), put(k("poison"), `1`))
	waitQueued(t, s, 2)
	c := goWrite(context.Background(), s, put(k("c"), `1`))
	waitQueued(t, s, 3)
	st.release <- struct{}{}
	require.NoError(t, (<-first).err)
	<-st.stalled
	st.release <- struct{}{}

	oa, op, oc := <-a, <-p, <-c
	require.NoError(t, oa.err)
	require.ErrorIs(t, op.err, store.ErrUnavailable)
	require.NoError(t, oc.err)
	require.EqualValues(t, 2, oa.res.Revision)
	require.EqualValues(t, 3, oc.res.Revision)
	for _, name := range []string{"b", "poison"} {
		_, err := s.History(context.Background(), store.HistoryRequest{Key: k(name), Limit: 10})
		require.ErrorIs(t, err, store.ErrNotFound, name)
	}

	// Alone in its batch, it fails without a savepoint, and the store goes on.
	st.fail.Store(nil)
	s.w.beforeCommit = nil
	_, err = write(s, put(k("poison"), `1`))
	require.ErrorIs(t, err, store.ErrUnavailable)
	r := mustWrite(t, s, put(k("d"), `1`))
	require.EqualValues(t, 4, r.Revision)
	// The rolled-back request left no trace in the writer's row cache.
	r = mustWrite(t, s, put(k("b"), `2`))
	require.Equal(t, store.ChangeCreate, r.Results[0].ChangeType)
	require.EqualValues(t, 1, r.Results[0].Entry.Version)
}

func TestCommitFailure(t *testing.T) {
	s := openTest(t, Options{})
	mustWrite(t, s, put(k("a"), `1`))
	st := stallWriter(s)

	first := goWrite(context.Background(), s, put(k("x"), `0`))
	<-st.stalled
	a := goWrite(context.Background(), s, put(k("a"), `2`))
	waitQueued(t, s, 1)
	b := goWrite(context.Background(), s, put(k("b"), `1`))
	waitQueued(t, s, 2)
	st.release <- struct{}{}
	require.NoError(t, (<-first).err)
	<-st.stalled
	boom := errors.New("disk on fire")
	st.fail.Store(&boom)
	st.release <- struct{}{}
	oa, ob := <-a, <-b
	require.ErrorIs(t, oa.err, store.ErrUnavailable)
	require.ErrorIs(t, ob.err, store.ErrUnavailable)
	rev, _ := s.CurrentRevision(context.Background())
	require.EqualValues(t, 2, rev)

	st.fail.Store(nil)
	c := goWrite(context.Background(), s, put(k("b"), `1`))
	<-st.stalled
	st.release <- struct{}{}
	oc := <-c
	require.NoError(t, oc.err)
	require.EqualValues(t, 3, oc.res.Revision, "the counter was restored")
	e, err := s.Get(context.Background(), store.GetRequest{Key: k("a")})
	require.NoError(t, err)
	require.EqualValues(t, 1, e.Version)

	// The writer's row cache forgot the failed batch.
	s.w.beforeCommit = nil
	r := mustWrite(t, s, put(k("a"), `3`))
	require.EqualValues(t, 2, r.Results[0].Entry.Version)
	require.Equal(t, `1`, string(r.Results[0].Previous.Value))
}

func TestCancelBeforePickup(t *testing.T) {
	s := openTest(t, Options{})
	st := stallWriter(s)
	first := goWrite(context.Background(), s, put(k("x"), `0`))
	<-st.stalled

	ctx, cancel := context.WithCancel(context.Background())
	c := goWrite(ctx, s, put(k("cancelled"), `1`))
	waitQueued(t, s, 1)
	cancel()
	oc := <-c
	require.ErrorIs(t, oc.err, context.Canceled)

	st.release <- struct{}{}
	require.NoError(t, (<-first).err)
	s.w.beforeCommit = nil // the writer is idle: the next batch runs without the hook
	r := mustWrite(t, s, put(k("after"), `1`))
	require.EqualValues(t, 2, r.Revision)
	_, err := s.History(context.Background(), store.HistoryRequest{Key: k("cancelled"), Limit: 1})
	require.ErrorIs(t, err, store.ErrNotFound, "a request cancelled before pickup is never applied")

	// A context that is already done never enqueues.
	_, err = s.Write(ctx, store.WriteRequest{Ops: []store.WriteOp{put(k("late"), `1`)}})
	require.ErrorIs(t, err, context.Canceled)
}

func TestClose(t *testing.T) {
	s, err := Open(context.Background(), t.TempDir(), Options{})
	require.NoError(t, err)
	st := stallWriter(s)
	first := goWrite(context.Background(), s, put(k("x"), `0`))
	<-st.stalled
	pending := goWrite(context.Background(), s, put(k("pending"), `1`))
	waitQueued(t, s, 1)

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	require.Eventually(t, func() bool { return s.closed.Load() }, time.Second, time.Millisecond)
	st.release <- struct{}{} // the batch in flight completes
	require.NoError(t, (<-first).err)
	require.ErrorIs(t, (<-pending).err, store.ErrClosed)
	require.NoError(t, <-closed)
	require.NoError(t, s.Close(), "Close twice")

	_, err = write(s, put(k("y"), `1`))
	require.ErrorIs(t, err, store.ErrClosed)
	_, err = s.Get(context.Background(), store.GetRequest{Key: k("x")})
	require.ErrorIs(t, err, store.ErrClosed)
	require.ErrorIs(t, s.Ping(context.Background()), store.ErrClosed)
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, dir, Options{})
	require.NoError(t, err)
	mustWrite(t, s, put(k("a"), `1`))
	mustWrite(t, s, put(k("a"), `2`), put(k("b"), `1`))
	mustWrite(t, s, del(k("b")))
	require.NoError(t, s.Close())

	s, err = Open(ctx, dir, Options{Synchronous: "normal"})
	require.NoError(t, err)
	defer s.Close()
	_, err = Open(ctx, dir, Options{})
	require.ErrorIs(t, err, store.ErrUnavailable, "a second open store on the same directory")
	rev, err := s.CurrentRevision(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, rev)
	e, err := s.Get(ctx, store.GetRequest{Key: k("a")})
	require.NoError(t, err)
	require.Equal(t, `2`, string(e.Value))
	r := mustWrite(t, s, put(k("b"), `2`))
	require.EqualValues(t, 4, r.Revision)
	require.EqualValues(t, 3, r.Results[0].Entry.Version)
	require.NoError(t, s.Ping(ctx))

	_, err = Open(ctx, t.TempDir(), Options{Synchronous: "sometimes"})
	require.ErrorIs(t, err, store.ErrInvalid)
}

// TestGroupCommit checks that concurrent writers share transactions, and
// that concurrent read-modify-write with ExpectedVersion loses no update.
func TestGroupCommit(t *testing.T) {
	s := openTest(t, Options{})
	const writers, each = 64, 20
	value := `{"payload":"` + fmt.Sprintf("%0380d", 0) + `"}`
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				_, err := write(s, put(k(fmt.Sprintf("w%02d/%03d", g, i)), value))
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	require.EqualValues(t, writers*each, st.Requests)
	t.Logf("%d writes in %d transactions (%.1f per transaction)", st.Requests, st.Batches, float64(st.Requests)/float64(st.Batches))
	require.Less(t, st.Batches, st.Requests/4, "group commit must batch concurrent writers")
	rev, _ := s.CurrentRevision(context.Background())
	require.EqualValues(t, writers*each, rev)
}

func TestConcurrentCAS(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	c := k("counter")
	mustWrite(t, s, put(c, `0`))
	const workers, incs = 16, 10
	var wg sync.WaitGroup
	var conflicts atomic.Int64
	for range workers {
		wg.Go(func() {
			for done := 0; done < incs; {
				e, err := s.Get(ctx, store.GetRequest{Key: c})
				if err != nil {
					t.Error(err)
					return
				}
				var n int
				fmt.Sscan(string(e.Value), &n)
				_, err = write(s, with(put(c, fmt.Sprint(n+1)), func(o *store.WriteOp) { o.ExpectedVersion = ptr(e.Version) }))
				switch {
				case errors.Is(err, store.ErrVersionConflict):
					conflicts.Add(1)
				case err != nil:
					t.Error(err)
					return
				default:
					done++
				}
			}
		})
	}
	// Readers alongside the writers.
	stop := make(chan struct{})
	var rg sync.WaitGroup
	for range 4 {
		rg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.List(ctx, store.ListRequest{AgentID: "agent-1", Tier: "local", Limit: 5}); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.BatchGet(ctx, []store.Key{c, k("x")}, time.Time{}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	rg.Wait()
	e, err := s.Get(ctx, store.GetRequest{Key: c})
	require.NoError(t, err)
	require.Equal(t, fmt.Sprint(workers*incs), string(e.Value))
	require.EqualValues(t, workers*incs+1, e.Version)
	t.Logf("%d conflicts", conflicts.Load())
	requireChain(t, mustHistory(t, s, c))
}

func TestPragmas(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	var mode string
	var queryOnly int
	require.NoError(t, s.rdb.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode))
	require.Equal(t, "wal", mode)
	require.NoError(t, s.rdb.QueryRowContext(ctx, "PRAGMA query_only").Scan(&queryOnly))
	require.Equal(t, 1, queryOnly, "readers are query_only")

	// The writer's own connection, inspected from the writer goroutine.
	var sync, busy int
	var wmode string
	s.w.beforeCommit = func() error {
		c := s.w.conn
		return errors.Join(c.QueryRowContext(bg, "PRAGMA synchronous").Scan(&sync),
			c.QueryRowContext(bg, "PRAGMA busy_timeout").Scan(&busy),
			c.QueryRowContext(bg, "PRAGMA journal_mode").Scan(&wmode))
	}
	mustWrite(t, s, put(k("a"), `1`))
	require.Equal(t, 2, sync, "synchronous=FULL")
	require.Equal(t, 5000, busy)
	require.Equal(t, "wal", wmode)
}

func TestRowCacheEviction(t *testing.T) {
	s := openTest(t, Options{RowCacheBytes: 16 << 10})
	ctx := context.Background()
	for round := 1; round <= 3; round++ {
		for i := range 200 {
			r := mustWrite(t, s, put(k(fmt.Sprint(i)), fmt.Sprintf(`{"round":%d}`, round)))
			require.EqualValues(t, round, r.Results[0].Entry.Version)
			if round > 1 {
				require.Equal(t, fmt.Sprintf(`{"round":%d}`, round-1), string(r.Results[0].Previous.Value))
			}
		}
	}
	// Read the budget from the writer goroutine's side: it is idle now, and
	// the reply of the last write ordered its updates before this read.
	require.LessOrEqual(t, s.w.cache.bytes, 16<<10)
	require.Positive(t, s.w.cache.len())
	e, err := s.Get(ctx, store.GetRequest{Key: k("7")})
	require.NoError(t, err)
	require.EqualValues(t, 3, e.Version)
}

func TestCheckpoint(t *testing.T) {
	s := openTest(t, Options{CheckpointInterval: time.Millisecond})
	for i := range 50 {
		mustWrite(t, s, put(k(fmt.Sprint(i)), `1`))
	}
	require.Eventually(t, func() bool { return s.Stats().Checkpoints > 0 }, 5*time.Second, time.Millisecond,
		"commits kick the background checkpointer")
	mustWrite(t, s, put(k("last"), `1`))
	// The background checkpointer may be running at the same moment (then
	// this one reports busy); with no writer active, one attempt soon copies
	// every frame.
	require.Eventually(t, func() bool {
		busy, logFrames, done, err := s.checkpoint(context.Background())
		require.NoError(t, err)
		return busy == 0 && logFrames == done
	}, 5*time.Second, 5*time.Millisecond, "a PASSIVE checkpoint on a reader connection copies every frame")
}
