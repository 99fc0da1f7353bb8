package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
)

// rowCount counts the stored version rows (hidden or not) of key, or of the
// whole store when key is nil.
func rowCount(t testing.TB, s *Store, key *store.Key) int {
	t.Helper()
	var n int
	var err error
	if key == nil {
		err = s.rdb.QueryRow(`SELECT count(*) FROM state_versions`).Scan(&n)
	} else {
		err = s.rdb.QueryRow(`SELECT count(*) FROM state_versions WHERE key_id =
			(SELECT id FROM agent_states WHERE agent_id = ? AND tier = ? AND key = ?)`,
			key.AgentID, key.Tier, key.Key).Scan(&n)
	}
	require.NoError(t, err)
	return n
}

func keepN(n int) func(*store.WriteOp) { return func(o *store.WriteOp) { o.HistoryLimit = n } }

func readAllEvents(t testing.TB, s *Store, after int64) []store.Event {
	t.Helper()
	var out []store.Event
	for {
		res, err := s.ReadEvents(context.Background(), store.EventsRequest{AfterRevision: after, Limit: 500})
		require.NoError(t, err)
		out = append(out, res.Events...)
		if !res.More {
			return out
		}
		after = res.Events[len(res.Events)-1].Revision
	}
}

// TestCompactionFreesRows: history pruning hides versions at once; their
// rows go when the feed is compacted past them, in several cleanup
// transactions, and writes after a compaction delete what they may.
func TestCompactionFreesRows(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	const keys, versions = 20, 30 // 600 revisions: more than two cleanup chunks
	for v := 1; v <= versions; v++ {
		for i := range keys {
			mustWrite(t, s, with(put(k(fmt.Sprint(i)), fmt.Sprintf(`{"v":%d}`, v)), keepN(5)))
		}
	}
	require.Equal(t, keys*versions, rowCount(t, s, nil), "rows stay until the feed is compacted")
	require.Len(t, mustHistory(t, s, k("0")).Versions, 5, "but history is pruned at once")
	cur := s.committed.Load()

	require.NoError(t, s.CompactEvents(ctx, cur))
	require.Equal(t, keys*5, rowCount(t, s, nil), "after compacting everything, only the visible versions stay")
	require.EqualValues(t, cur+1, s.w.purge, "cleanup caught up")

	// New writes: hidden versions stay while kept events need them.
	for v := versions + 1; v <= versions+10; v++ {
		for i := range keys {
			mustWrite(t, s, with(put(k(fmt.Sprint(i)), fmt.Sprintf(`{"v":%d}`, v)), keepN(5)))
		}
	}
	// Of versions 26..40 of each key, 31..40 are kept events and 30 is the
	// old value of event 31; 26..29 are hidden and their successors are
	// compacted, so the writes deleted them.
	require.Equal(t, keys*11, rowCount(t, s, nil), "version 30 (old value of event 31) and 31..40")
	evs := readAllEvents(t, s, cur)
	require.Len(t, evs, keys*10)
	for _, e := range evs {
		require.Equal(t, fmt.Sprintf(`{"v":%d}`, e.Version-1), string(e.OldValue), "event %s keeps its old value", e.ID())
	}
	require.NoError(t, s.CompactEvents(ctx, s.committed.Load()))
	require.Equal(t, keys*5, rowCount(t, s, nil))

	// A key whose history limit shrinks after a compaction: the write deletes
	// the rows no view needs (rows 1..9: row 10 is the old value of event 11).
	a := k("a")
	for v := 1; v <= 10; v++ {
		mustWrite(t, s, put(a, fmt.Sprint(v)))
	}
	require.NoError(t, s.CompactEvents(ctx, s.committed.Load()))
	require.Equal(t, 10, rowCount(t, s, &a), "visible versions are never deleted")
	mustWrite(t, s, with(put(a, `11`), keepN(2)))
	require.Equal(t, 2, rowCount(t, s, &a), "the write deleted the rows in neither view")
	mustWrite(t, s, with(put(a, `12`), keepN(2)))
	require.Equal(t, 3, rowCount(t, s, &a), "row 10 is the old value of event 11")
	evs = readAllEvents(t, s, s.committed.Load()-2)
	require.Len(t, evs, 2)
	require.Equal(t, "10", string(evs[0].OldValue))
	require.Equal(t, "11", string(evs[1].OldValue))
}

// TestCompactionResumesAfterReopen: the cleanup's progress is stored; a
// store reopened with cleanup left to do finishes it in the background.
func TestCompactionResumesAfterReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, dir, Options{})
	require.NoError(t, err)
	for v := 1; v <= 300; v++ {
		mustWrite(t, s, with(put(k("a"), fmt.Sprint(v)), keepN(3)))
	}
	require.NoError(t, s.Close())

	// As if the process died right after moving the oldest revision.
	db, err := sql.Open("sqlite", dsn(dir+"/"+FileName, nil))
	require.NoError(t, err)
	_, err = db.Exec(`UPDATE store_meta SET oldest_revision = 301`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	s, err = Open(ctx, dir, Options{})
	require.NoError(t, err)
	defer s.Close()
	oldest, err := s.OldestRevision(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 301, oldest)
	require.Eventually(t, func() bool { return rowCount(t, s, nil) == 3 }, 5*time.Second, 5*time.Millisecond,
		"the cleanup resumes")
	_, err = s.ReadEvents(ctx, store.EventsRequest{AfterRevision: 299, Limit: 1})
	var ce *store.CompactedError
	require.ErrorAs(t, err, &ce)
	require.EqualValues(t, 301, ce.OldestRevision)
	require.Equal(t, []int64{300, 299, 298}, versionsOf(mustHistory(t, s, k("a"))))
}

func versionsOf(h *store.HistoryResult) []int64 {
	out := make([]int64, len(h.Versions))
	for i, v := range h.Versions {
		out[i] = v.Version
	}
	return out
}

// TestCompactionUnderConcurrentWrites: compactions interleaved with
// writers never lose an old value of a kept event nor a visible version.
func TestCompactionUnderConcurrentWrites(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := k(fmt.Sprintf("g%d/%d", g, i%5))
				if _, err := write(s, with(put(key, fmt.Sprintf(`{"i":%d}`, i)), keepN(1+i%4))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 30 {
		time.Sleep(3 * time.Millisecond)
		rev := s.committed.Load()
		require.NoError(t, s.CompactEvents(ctx, max(0, rev-20)))
	}
	close(stop)
	wg.Wait()

	oldest, err := s.OldestRevision(ctx)
	require.NoError(t, err)
	evs := readAllEvents(t, s, oldest-1)
	require.NotEmpty(t, evs)
	last := map[store.Key]store.Event{}
	for _, e := range evs {
		if e.Version > 1 {
			require.NotNil(t, e.OldValue, "event %s (%s v%d) lost its old value", e.ID(), e.Key, e.Version)
		}
		if p, ok := last[e.Key]; ok {
			require.Equal(t, p.Version+1, e.Version, "versions of %s in the feed are dense", e.Key)
			require.Equal(t, string(p.NewValue), string(e.OldValue), "old value of %s is the previous new value", e.ID())
		}
		last[e.Key] = e
	}
	for g := range 4 {
		for i := range 5 {
			h := mustHistory(t, s, k(fmt.Sprintf("g%d/%d", g, i)))
			for j, v := range h.Versions {
				require.Equal(t, h.CurrentVersion-int64(j), v.Version, "visible versions are dense")
			}
		}
	}
}

// TestWaitCommitClose: Close wakes waiters.
func TestWaitCommitClose(t *testing.T) {
	s, err := Open(context.Background(), t.TempDir(), Options{})
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() {
		_, err := s.WaitCommit(context.Background(), 0)
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	require.NoError(t, s.Close())
	select {
	case err := <-errc:
		require.ErrorIs(t, err, store.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("WaitCommit not woken by Close")
	}
	_, err = s.ReadEvents(context.Background(), store.EventsRequest{Limit: 1})
	require.ErrorIs(t, err, store.ErrClosed)
	require.ErrorIs(t, s.CompactEvents(context.Background(), 0), store.ErrClosed)
}
