package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
	"github.com/agentstate/agentstate/store/streamtest"
)

// newStreamStore opens a fresh event store in a temporary directory, closed
// at cleanup. (goleak runs in TestMain.)
func newStreamStore(t testing.TB) store.StreamStore {
	return openStreams(t, t.TempDir())
}

func openStreams(t testing.TB, dir string) *StreamStore {
	t.Helper()
	s, err := OpenStreams(context.Background(), dir, StreamOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// TestStreamConformance runs the event store contract's conformance suite.
func TestStreamConformance(t *testing.T) {
	streamtest.Run(t, newStreamStore)
}

func streamAppendN(t testing.TB, s *StreamStore, stream string, n int) *store.AppendResult {
	t.Helper()
	events := make([]store.NewStreamEvent, n)
	for i := range events {
		events[i] = store.NewStreamEvent{Type: "t", Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}
	}
	res, err := s.Append(context.Background(), store.AppendRequest{StreamID: stream, Events: events})
	require.NoError(t, err)
	return res
}

// TestStreamReopen: positions, versions, event ids and snapshots survive a
// close and reopen; the migrations run once.
func TestStreamReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStreams(t.Context(), dir, StreamOptions{})
	require.NoError(t, err)
	streamAppendN(t, s, "a", 2)
	streamAppendN(t, s, "b", 1)
	_, err = s.Append(t.Context(), store.AppendRequest{StreamID: "a",
		Events: []store.NewStreamEvent{{EventID: "keep-me", Type: "t", Data: []byte(`1`)}}})
	require.NoError(t, err)
	require.NoError(t, s.SaveSnapshot(t.Context(), store.Snapshot{StreamID: "a", Version: 1, State: []byte(`{"s":1}`)}))
	require.NoError(t, s.Close())

	s = openStreams(t, dir)
	pos, err := s.Position(t.Context())
	require.NoError(t, err)
	require.Equal(t, int64(3), pos, "the position is reloaded")
	res := streamAppendN(t, s, "a", 1)
	require.Equal(t, int64(4), res.Position, "positions continue")
	require.Equal(t, int64(3), res.NextVersion, "versions continue")
	snap, err := s.LoadSnapshot(t.Context(), "a")
	require.NoError(t, err)
	require.Equal(t, int64(1), snap.Version)
	require.False(t, snap.CreatedAt.IsZero(), "a zero CreatedAt is set to the commit time")
	_, err = s.Append(t.Context(), store.AppendRequest{StreamID: "b",
		Events: []store.NewStreamEvent{{EventID: "keep-me", Type: "t", Data: []byte(`1`)}}})
	require.ErrorIs(t, err, store.ErrInvalid, "event ids stay unique across a reopen")

	var n int
	require.NoError(t, s.rdb.QueryRow(`SELECT count(*) FROM `+streamsGooseTable+` WHERE version_id > 0`).Scan(&n))
	require.Equal(t, 1, n, "one migration applied, once")
}

// TestStreamDirectoryLock: a second event store on one directory is
// refused; the key/value store beside it is not affected.
func TestStreamDirectoryLock(t *testing.T) {
	dir := t.TempDir()
	openStreams(t, dir)
	_, err := OpenStreams(t.Context(), dir, StreamOptions{})
	require.ErrorIs(t, err, store.ErrUnavailable, "second OpenStreams on one directory")

	kv, err := Open(t.Context(), dir, Options{})
	require.NoError(t, err, "the key/value store opens beside the event store")
	require.NoError(t, kv.Close())
}

// TestStreamGroupCommit: concurrent appends share transactions.
func TestStreamGroupCommit(t *testing.T) {
	s := openStreams(t, t.TempDir())
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for range 10 {
				streamAppendN(t, s, fmt.Sprintf("g-%d", g%4), 1)
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	require.Equal(t, int64(320), st.Appends)
	require.Less(t, st.Batches, st.Appends, "appends were grouped: %+v", st)
}

// TestStreamCommitFailure: a failed COMMIT fails every append of its batch
// with ErrUnavailable, writes nothing and gives back its positions.
func TestStreamCommitFailure(t *testing.T) {
	s := openStreams(t, t.TempDir())
	streamAppendN(t, s, "a", 1)
	var fail atomic.Bool
	fail.Store(true)
	s.w.beforeCommit = func() error { // read by the writer goroutine only after the append below is queued
		if fail.Load() {
			return errors.New("injected commit failure")
		}
		return nil
	}
	_, err := s.Append(t.Context(), store.AppendRequest{StreamID: "a",
		Events: []store.NewStreamEvent{{Type: "t", Data: []byte(`1`)}}})
	require.ErrorIs(t, err, store.ErrUnavailable)
	fail.Store(false)
	res := streamAppendN(t, s, "a", 1)
	require.Equal(t, int64(2), res.Position, "the failed batch's position is reused")
	require.Equal(t, int64(1), res.NextVersion)
	got, err := s.ReadAll(t.Context(), "", 0, 100)
	require.NoError(t, err)
	require.Len(t, got, 2)
}

// TestStreamQueryPlans: every read uses an index; ReadAll walks positions
// without sorting, whatever the prefix.
func TestStreamQueryPlans(t *testing.T) {
	s := openStreams(t, t.TempDir())
	for _, q := range []string{sqlReadStream, sqlReadAll + sqlReadAllOrder, sqlReadPrefix, sqlLoadStreamSnapshot,
		sqlLoadStreamPos, sqlStreamEventExists, sqlSelStream} {
		rows, err := s.rdb.Query("EXPLAIN QUERY PLAN "+q, "a", 1, "b")
		require.NoError(t, err)
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
			plan = append(plan, detail)
		}
		require.NoError(t, rows.Err())
		rows.Close()
		text := strings.Join(plan, "; ")
		require.NotContains(t, text, "TEMP B-TREE", "%s\nplan: %s", q, text)
		for _, p := range plan {
			require.False(t, strings.HasPrefix(p, "SCAN ") && !strings.HasPrefix(p, "SCAN CONSTANT"),
				"%s\nplan: %s", q, text)
		}
	}
}

// streamBenchData is a ~400 B JSON event, the size of a typical agent state value.
var streamBenchData = []byte(`{"role":"assistant","step":42,"tools":["search","calc"],"notes":"` +
	strings.Repeat("x", 300) + `","done":false}`)

// BenchmarkStreamAppend: 1 or 64 concurrent appenders (on 2 cores:
// parallelism 32), each appending one ~400 B event at a time to its own
// stream with an expected version (optimistic concurrency), durable
// (synchronous=FULL).
func BenchmarkStreamAppend(b *testing.B) {
	for _, appenders := range []int{1, 64} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			s, err := OpenStreams(context.Background(), b.TempDir(), StreamOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var next atomic.Int64
			before := s.Stats()
			b.SetBytes(int64(len(streamBenchData)))
			b.SetParallelism(max(1, appenders/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				stream := fmt.Sprintf("bench-%d", next.Add(1))
				expected := store.ExpectNoStream
				for pb.Next() {
					res, err := s.Append(context.Background(), store.AppendRequest{StreamID: stream, ExpectedVersion: &expected,
						Events: []store.NewStreamEvent{{Type: "Stepped", Data: streamBenchData}}})
					if err != nil {
						b.Error(err)
						return
					}
					expected = res.NextVersion
				}
			})
			b.StopTimer()
			st := s.Stats()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			if n := st.Batches - before.Batches; n > 0 {
				b.ReportMetric(float64(st.Appends-before.Appends)/float64(n), "appends/txn")
			}
		})
	}
}
