package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
)

// Sized for a 2-core machine: enough goroutines to interleave, few enough
// writes to stay quick on a store that syncs every commit.
const (
	workers          = 8
	writesPerWorker  = 25
	maxAttemptsTotal = 20000 // bound on read-modify-write attempts, against livelock
)

func testConcurrency(t *testing.T, newStore factory) {
	t.Run("ReadModifyWriteLosesNoUpdate", func(t *testing.T) {
		s := newStore(t)
		k := key("counter")
		mustPut(t, s, k, `0`)
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			errs     []error
			attempts int
		)
		fail := func(err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
		start := make(chan struct{})
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for done := 0; done < writesPerWorker; {
					mu.Lock()
					attempts++
					tooMany := attempts > maxAttemptsTotal
					mu.Unlock()
					if tooMany {
						fail(fmt.Errorf("worker %d: more than %d attempts in all: livelock?", w, maxAttemptsTotal))
						return
					}
					e, err := s.Get(t.Context(), store.GetRequest{Key: k})
					if err != nil {
						fail(fmt.Errorf("worker %d: Get: %w", w, err))
						return
					}
					n, err := strconv.Atoi(string(e.Value))
					if err != nil {
						fail(fmt.Errorf("worker %d: value %q is not a number", w, e.Value))
						return
					}
					next := strconv.Itoa(n + 1)
					_, err = s.Write(t.Context(), store.WriteRequest{Ops: []store.WriteOp{putOp(k, next, expect(e.Version), by(fmt.Sprintf("w%d", w)))}})
					switch {
					case err == nil:
						done++
					case errors.Is(err, store.ErrVersionConflict):
						// Lost the race: read again and retry.
					default:
						fail(fmt.Errorf("worker %d: Write expected=%d: %w", w, e.Version, err))
						return
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		require.Empty(t, errs, "workers failed")

		const n = workers * writesPerWorker
		got := mustGet(t, s, k)
		require.Equal(t, strconv.Itoa(n), string(got.Value), "counter after %d conditional increments", n)
		require.Equal(t, int64(n+1), got.Version, "version after %d increments of version 1", n)

		// Every version holds the increment of the one before: dense, no gaps, no lost update.
		h := oldestFirst(history(t, s, k).Versions)
		require.Len(t, h, n+1, "history length")
		for i, v := range h {
			require.Equal(t, int64(i+1), v.Version, "version numbers are dense")
			require.Equal(t, strconv.Itoa(i), string(v.Value), "value of version %d", v.Version)
			if i > 0 {
				require.Greater(t, v.Revision, h[i-1].Revision, "revisions grow with versions (version %d)", v.Version)
			}
		}
		requireChain(t, h)
		require.Equal(t, int64(n+1), currentRevision(t, s), "CurrentRevision: failed attempts take no revision")
		t.Logf("%d increments took %d attempts", n, attempts)
	})

	t.Run("CreateOnlyRaceHasOneWinner", func(t *testing.T) {
		s := newStore(t)
		k := key("race")
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners []int
			others  []error
		)
		start := make(chan struct{})
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := s.Write(t.Context(), store.WriteRequest{Ops: []store.WriteOp{putOp(k, strconv.Itoa(w), expect(0))}})
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					winners = append(winners, w)
				} else {
					others = append(others, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		require.Len(t, winners, 1, "exactly one create-only write wins; losers: %v", others)
		for _, err := range others {
			ce := conflictOf(t, err, store.ErrAlreadyExists, 0, k)
			require.Equal(t, int64(1), ce.Current, "losers see the winner's version")
		}
		got := mustGet(t, s, k)
		require.Equal(t, strconv.Itoa(winners[0]), string(got.Value), "the winner's value is stored")
		require.Equal(t, int64(1), got.Version)
		require.Equal(t, int64(1), currentRevision(t, s), "only the winner took a revision")
	})

	t.Run("IndependentWritersAllSucceed", func(t *testing.T) {
		s := newStore(t)
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
			revs []int64
		)
		start := make(chan struct{})
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := range writesPerWorker {
					k := key(fmt.Sprintf("w%d/k%02d", w, i))
					res, err := s.Write(t.Context(), store.WriteRequest{Ops: []store.WriteOp{putOp(k, fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))}})
					mu.Lock()
					if err != nil {
						errs = append(errs, fmt.Errorf("Write %s: %w", k, err))
					} else {
						revs = append(revs, res.Revision)
					}
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		require.Empty(t, errs, "unconditional writes to distinct keys must all succeed")

		const n = workers * writesPerWorker
		// Each committed request took its own revision; together they are 1..n.
		slices.Sort(revs)
		want := make([]int64, n)
		for i := range want {
			want[i] = int64(i + 1)
		}
		require.Equal(t, want, revs, "revisions of %d concurrent requests", n)
		require.Equal(t, int64(n), currentRevision(t, s), "CurrentRevision")

		keys := make([]store.Key, 0, n)
		for w := range workers {
			for i := range writesPerWorker {
				keys = append(keys, key(fmt.Sprintf("w%d/k%02d", w, i)))
			}
		}
		m, err := s.BatchGet(t.Context(), keys, time.Now())
		require.NoError(t, err, "BatchGet")
		require.Len(t, m, n, "every key is stored")
		for w := range workers {
			for i := range writesPerWorker {
				k := key(fmt.Sprintf("w%d/k%02d", w, i))
				require.Contains(t, m, k)
				require.Equal(t, fmt.Sprintf(`{"w":%d,"i":%d}`, w, i), string(m[k].Value), "value of %s", k)
				require.Equal(t, int64(1), m[k].Version, "version of %s", k)
			}
		}
	})

	t.Run("ReadersSeeWholeBatches", func(t *testing.T) {
		// A writer commits batches setting a, b and c to the same value while
		// readers check that BatchGet and List never see part of a batch.
		s := newStore(t)
		a, b, c := key("a"), key("b"), key("c")
		keys := []store.Key{a, b, c}
		batch := func(n int) []store.WriteOp {
			v := strconv.Itoa(n)
			return []store.WriteOp{putOp(a, v), putOp(b, v), putOp(c, v)}
		}
		mustWrite(t, s, batch(0)...)
		const batches, readers = 100, 2
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
		)
		fail := func(err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
		done := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done)
			for n := 1; n <= batches; n++ {
				if _, err := s.Write(t.Context(), store.WriteRequest{Ops: batch(n)}); err != nil {
					fail(fmt.Errorf("writer: batch %d: %w", n, err))
					return
				}
			}
		}()
		for r := range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for reads := 0; ; reads++ {
					select {
					case <-done:
						if reads > 0 {
							return
						}
					default:
					}
					m, err := s.BatchGet(t.Context(), keys, time.Now())
					if err != nil {
						fail(fmt.Errorf("reader %d: BatchGet: %w", r, err))
						return
					}
					if len(m) != 3 || string(m[a].Value) != string(m[b].Value) || string(m[b].Value) != string(m[c].Value) ||
						m[a].Revision != m[b].Revision || m[b].Revision != m[c].Revision {
						fail(fmt.Errorf("reader %d: BatchGet saw part of a batch: %v", r, batchGetValues(m, keys)))
						return
					}
					l, err := s.List(t.Context(), store.ListRequest{AgentID: agent, Tier: tier, Limit: 10})
					if err != nil {
						fail(fmt.Errorf("reader %d: List: %w", r, err))
						return
					}
					if len(l.Entries) != 3 || string(l.Entries[0].Value) != string(l.Entries[1].Value) ||
						string(l.Entries[1].Value) != string(l.Entries[2].Value) {
						fail(fmt.Errorf("reader %d: List saw part of a batch: %d entries, %v", r, len(l.Entries), listValues(l.Entries)))
						return
					}
				}
			}()
		}
		wg.Wait()
		require.Empty(t, errs)
		require.Equal(t, strconv.Itoa(batches), string(mustGet(t, s, c).Value), "final value")
	})
}

func batchGetValues(m map[store.Key]*store.Entry, keys []store.Key) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		if e := m[k]; e != nil {
			out[i] = fmt.Sprintf("%s=%s@%d", k.Key, e.Value, e.Revision)
		} else {
			out[i] = k.Key + " missing"
		}
	}
	return out
}

func listValues(entries []store.Entry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = fmt.Sprintf("%s=%s", e.Key.Key, e.Value)
	}
	return out
}
