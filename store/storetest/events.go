package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
)

// feedStore is a store with the change feed (store/events.go).
type feedStore interface {
	store.Store
	store.EventReader
	store.CommitWaiter
	store.EventCompactor
	store.Scanner
}

// newFeedStore returns a fresh store, skipping the test when it has no feed.
func newFeedStore(t *testing.T, newStore factory) feedStore {
	t.Helper()
	s := newStore(t)
	fs, ok := s.(feedStore)
	if !ok {
		t.Skipf("%T does not implement the change feed (EventReader, CommitWaiter, EventCompactor, Scanner)", s)
	}
	return fs
}

// readEvents reads one page.
func readEvents(t testing.TB, s feedStore, after int64, limit int) *store.EventsResult {
	t.Helper()
	res, err := s.ReadEvents(t.Context(), store.EventsRequest{AfterRevision: after, Limit: limit})
	require.NoError(t, err, "ReadEvents after %d limit %d", after, limit)
	require.NotNil(t, res, "ReadEvents returned nil")
	return res
}

// allEvents reads every event after after, paging with limit, and checks
// the pages: whole revisions, (Revision, Index) order, More only when more
// follows.
func allEvents(t testing.TB, s feedStore, after int64, limit int) []store.Event {
	t.Helper()
	var out []store.Event
	for page := 0; ; page++ {
		require.Less(t, page, 100000, "paging does not end")
		res := readEvents(t, s, after, limit)
		for _, e := range res.Events {
			require.Greater(t, e.Revision, after, "event %s is not after %d", e.ID(), after)
			require.LessOrEqual(t, e.Revision, res.Revision, "event %s after the page's Revision %d", e.ID(), res.Revision)
		}
		out = append(out, res.Events...)
		if !res.More {
			break
		}
		require.NotEmpty(t, res.Events, "a page with More must hold events")
		after = res.Events[len(res.Events)-1].Revision
	}
	requireFeedOrder(t, out)
	return out
}

// requireFeedOrder checks (Revision, Index) order: Index 0, 1, 2, ... within
// a revision.
func requireFeedOrder(t testing.TB, evs []store.Event) {
	t.Helper()
	for i, e := range evs {
		if i > 0 && evs[i-1].Revision == e.Revision {
			require.Equal(t, evs[i-1].Index+1, e.Index, "Index within revision %d", e.Revision)
			continue
		}
		require.Equal(t, 0, e.Index, "first event of revision %d", e.Revision)
		if i > 0 {
			require.Greater(t, e.Revision, evs[i-1].Revision, "revisions in order")
		}
	}
}

// requireEvent checks an event against the OpResult of the op that wrote it.
func requireEvent(t testing.TB, e store.Event, r store.OpResult, old []byte, where string) {
	t.Helper()
	require.Equal(t, r.Entry.Key, e.Key, "%s: Key", where)
	require.Equal(t, r.Entry.Revision, e.Revision, "%s: Revision", where)
	require.Equal(t, r.ChangeType, e.ChangeType, "%s: ChangeType", where)
	require.Equal(t, r.Entry.Version, e.Version, "%s: Version", where)
	requireValue(t, r.Entry.Value, e.NewValue, where+": NewValue")
	requireValue(t, old, e.OldValue, where+": OldValue")
	require.Equal(t, r.Entry.CreatedBy, e.CreatedBy, "%s: CreatedBy", where)
	requireMetadata(t, r.Entry.Metadata, e.Metadata, where)
	requireTimeNear(t, r.Entry.UpdatedAt, e.Timestamp, where+": Timestamp")
	require.Equal(t, fmt.Sprintf("%d-%d", e.Revision, e.Index), e.ID(), "%s: ID", where)
}

func testEvents(t *testing.T, newStore factory) {
	t.Run("EmptyFeed", func(t *testing.T) {
		s := newFeedStore(t, newStore)
		res := readEvents(t, s, 0, 10)
		require.Empty(t, res.Events, "no events in an empty store")
		require.False(t, res.More, "More")
		require.Equal(t, int64(0), res.Revision, "Revision")
		oldest, err := s.OldestRevision(t.Context())
		require.NoError(t, err, "OldestRevision")
		require.Equal(t, int64(1), oldest, "OldestRevision when never compacted")
		for _, req := range []store.EventsRequest{{Limit: 0}, {Limit: -1}, {AfterRevision: -1, Limit: 1}} {
			_, err := s.ReadEvents(t.Context(), req)
			require.ErrorIs(t, err, store.ErrInvalid, "ReadEvents %+v", req)
		}
	})

	t.Run("OneEventPerChange", func(t *testing.T) {
		s := newFeedStore(t, newStore)
		k := key("doc")
		var rs []store.OpResult
		rs = append(rs, mustPut(t, s, k, `{"v":1}`, by("alice"), withMeta(`{"source":"ui"}`)))
		tick()
		rs = append(rs, mustPut(t, s, k, `{"v":2}`, by("bob")))
		rs = append(rs, mustDelete(t, s, k, by("carol"), withMeta(`{"why":"done"}`)))
		rs = append(rs, mustPut(t, s, k, `null`, by("dave")))
		rs = append(rs, mustWrite(t, s, restoreOp(k, `{"v":1}`, by("erin"))).Results[0])
		olds := []string{"", `{"v":1}`, `{"v":2}`, "", `null`}
		wantTypes := []string{store.ChangeCreate, store.ChangeUpdate, store.ChangeDelete, store.ChangeCreate, store.ChangeRestore}

		evs := allEvents(t, s, 0, 100)
		require.Len(t, evs, len(rs), "one event per change")
		for i, e := range evs {
			var old []byte
			if olds[i] != "" {
				old = []byte(olds[i])
			}
			require.Equal(t, wantTypes[i], e.ChangeType, "event %d ChangeType", i)
			requireEvent(t, e, rs[i], old, fmt.Sprintf("event %d (%s)", i, wantTypes[i]))
			require.Equal(t, int64(i+1), e.Revision, "one revision per request")
			require.Equal(t, 0, e.Index, "a single-op request's event has Index 0")
		}
		require.Nil(t, evs[2].NewValue, "a delete has no new value")
		require.NotNil(t, evs[4].OldValue, "the JSON literal null is an old value, not an absent one")

		// The reaper's expire.
		e := mustPut(t, s, key("temp"), `"t"`, withTTL(shortTTL), by("frank"))
		waitExpired(t, e.Entry)
		x := mustWrite(t, s, expireOp(key("temp"), e.Entry.Version)).Results[0]
		require.False(t, x.Skipped, "expire of an expired key applies")
		evs = allEvents(t, s, e.Entry.Revision-1, 100)
		require.Len(t, evs, 2, "the put and the expire")
		requireEvent(t, evs[0], e, nil, "put with TTL")
		requireEvent(t, evs[1], x, []byte(`"t"`), "reaper expire")
		require.Equal(t, store.ChangeExpire, evs[1].ChangeType)
		require.Nil(t, evs[1].NewValue, "an expire has no new value")
	})

	t.Run("BatchSharesRevision", func(t *testing.T) {
		s := newFeedStore(t, newStore)
		a, b, c := key("a"), key("b"), key("c")
		mustPut(t, s, b, `"b1"`)
		mustPut(t, s, c, `"c1"`)
		res := mustWrite(t, s, putOp(c, `"c2"`, by("x")), putOp(a, `"a1"`, by("y")), deleteOp(b, by("z")))
		evs := allEvents(t, s, res.Revision-1, 1)
		require.Len(t, evs, 3, "one event per op of the batch")
		olds := []string{`"c1"`, "", `"b1"`}
		for i, e := range evs {
			require.Equal(t, res.Revision, e.Revision, "the batch's events share its revision")
			require.Equal(t, i, e.Index, "Index is the op order")
			var old []byte
			if olds[i] != "" {
				old = []byte(olds[i])
			}
			requireEvent(t, e, res.Results[i], old, fmt.Sprintf("batch op %d", i))
		}
	})

	t.Run("ImplicitExpireTombstones", func(t *testing.T) {
		s := newFeedStore(t, newStore)
		a, b, c := key("a"), key("b"), key("c")
		ra := mustPut(t, s, a, `"a1"`, withTTL(shortTTL))
		rb := mustPut(t, s, b, `"b1"`, withTTL(shortTTL))
		waitExpired(t, ra.Entry, rb.Entry)
		before := currentRevision(t, s)
		res := mustWrite(t, s, putOp(a, `"a2"`), putOp(c, `"c1"`), putOp(b, `"b2"`))
		require.Equal(t, before+2, res.Revision, "the expire tombstones take one revision before the request's")
		evs := allEvents(t, s, before, 100)
		require.Len(t, evs, 5, "two expire tombstones, then the three ops")
		for i, k := range []store.Key{a, b} {
			e := evs[i]
			require.Equal(t, before+1, e.Revision, "tombstone of %s", k)
			require.Equal(t, i, e.Index, "tombstones in op order")
			require.Equal(t, k, e.Key)
			require.Equal(t, store.ChangeExpire, e.ChangeType)
			require.Equal(t, int64(2), e.Version, "the tombstone is version 2 of %s", k)
			require.Nil(t, e.NewValue)
			requireValue(t, []byte(fmt.Sprintf(`"%s1"`, k.Key)), e.OldValue, "the tombstone's old value")
		}
		for i := range 3 {
			e := evs[2+i]
			require.Equal(t, res.Revision, e.Revision)
			require.Equal(t, i, e.Index)
			require.Equal(t, store.ChangeCreate, e.ChangeType, "a write after expiry creates")
			requireEvent(t, e, res.Results[i], nil, fmt.Sprintf("op %d after expiry", i))
		}
	})

	t.Run("FailedWritesWriteNoEvents", func(t *testing.T) {
		s := newFeedStore(t, newStore)
		a := key("a")
		mustPut(t, s, a, `1`)
		rev := currentRevision(t, s)
		_, err := write(t, s, putOp(a, `2`, expect(5)))
		require.Error(t, err, "conflict")
		_, err = write(t, s, putOp(key("b"), `1`), deleteOp(key("absent")))
		require.Error(t, err, "delete of an absent key fails the batch")
		_, err = write(t, s, putOp(key("c"), `1`), putOp(a, `3`, expect(0)))
		require.Error(t, err, "conflict on the second op")
		skipped := mustWrite(t, s, expireOp(a, 1))
		require.Equal(t, int64(0), skipped.Revision, "a skipped expire takes no revision")
		res := readEvents(t, s, rev, 100)
		require.Empty(t, res.Events, "failed and skipped requests write no events")
		require.False(t, res.More)
		require.Equal(t, rev, res.Revision)
		require.Len(t, allEvents(t, s, 0, 100), 1, "only the first put")
	})

	t.Run("ConcurrentWritersNoGaps", func(t *testing.T) {
		s := newFeedStore(t, newStore)
		const writers, perWriter = 8, 25
		type written struct {
			rev  int64
			keys []store.Key
		}
		var mu sync.Mutex
		var all []written
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for g := range writers {
			wg.Go(func() {
				for i := range perWriter {
					ops := []store.WriteOp{putOp(key(fmt.Sprintf("g%d/k%d", g, i%4)), fmt.Sprintf(`%d`, i))}
					if i%5 == 0 {
						ops = append(ops, putOp(key(fmt.Sprintf("g%d/batch%d", g, i)), `"b"`),
							putOp(key(fmt.Sprintf("shared/g%d/%d", g, i)), `"s"`))
					}
					res, err := s.Write(context.Background(), store.WriteRequest{Ops: ops})
					if err != nil {
						errs <- err
						return
					}
					w := written{rev: res.Revision}
					for _, op := range ops {
						w.keys = append(w.keys, op.Key)
					}
					mu.Lock()
					all = append(all, w)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err, "concurrent write")
		}
		cur := currentRevision(t, s)
		require.Equal(t, int64(writers*perWriter), cur, "one revision per request")
		evs := allEvents(t, s, 0, 7)
		byRev := map[int64][]store.Key{}
		for _, e := range evs {
			byRev[e.Revision] = append(byRev[e.Revision], e.Key)
		}
		for r := int64(1); r <= cur; r++ {
			require.Contains(t, byRev, r, "revision %d is missing from the feed", r)
		}
		require.Len(t, byRev, int(cur), "no revision beyond the current one")
		for _, w := range all {
			require.Equal(t, w.keys, byRev[w.rev], "the events of revision %d are its request's ops, in order, once", w.rev)
		}
	})

	t.Run("PagingKeepsRevisionsWhole", func(t *testing.T) {
		s := newFeedStore(t, newStore)
		sizes := []int{1, 3, 2, 4, 1, 1, 5}
		for r, n := range sizes {
			ops := make([]store.WriteOp, n)
			for i := range ops {
				ops[i] = putOp(key(fmt.Sprintf("r%d/%d", r, i)), `1`)
			}
			mustWrite(t, s, ops...)
		}
		want := allEvents(t, s, 0, 1000)
		require.Len(t, want, 17)
		for _, limit := range []int{1, 2, 3, 4, 6} {
			t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
				got := allEvents(t, s, 0, limit)
				require.Equal(t, want, got, "paging with limit %d reads the same feed", limit)
				after := int64(0)
				for {
					res := readEvents(t, s, after, limit)
					require.Equal(t, int64(len(sizes)), res.Revision, "Revision is the current revision")
					if len(res.Events) == 0 {
						require.False(t, res.More, "an empty page has no More")
						break
					}
					last := res.Events[len(res.Events)-1].Revision
					require.Equal(t, sizes[last-1], countRev(res.Events, last), "page ends with the whole of revision %d", last)
					first := res.Events[0].Revision
					require.Equal(t, sizes[first-1], countRev(res.Events, first), "page starts with the whole of revision %d", first)
					if len(res.Events) > limit {
						require.Less(t, len(res.Events)-countRev(res.Events, last), limit,
							"a page exceeds Limit only to finish the last revision it started")
					}
					require.Equal(t, last < int64(len(sizes)), res.More, "More after revision %d", last)
					after = last
				}
			})
		}
		// Starting mid-feed.
		res := readEvents(t, s, 3, 1)
		require.Len(t, res.Events, 4, "revision 4 has 4 events: the page holds all of them")
		require.True(t, res.More)
		res = readEvents(t, s, int64(len(sizes)), 10)
		require.Empty(t, res.Events, "nothing after the current revision")
		require.False(t, res.More)
		res = readEvents(t, s, 100, 10)
		require.Empty(t, res.Events, "nothing after a future revision")
	})

	t.Run("PrunedHistoryStaysInFeed", func(t *testing.T) {
		s := newFeedStore(t, newStore)
		k := key("session/tool")
		writes := putVersions(t, s, k, 10, keep(3))
		require.Equal(t, []int64{10, 9, 8}, versionNumbers(history(t, s, k).Versions), "History is pruned")
		evs := allEvents(t, s, 0, 4)
		require.Len(t, evs, 10, "every version is an event until the feed is compacted")
		for i, e := range evs {
			var old []byte
			if i > 0 {
				old = []byte(fmt.Sprintf(`{"v":%d}`, i))
			}
			requireEvent(t, e, writes[i], old, fmt.Sprintf("event of version %d", i+1))
		}
	})

	t.Run("Compaction", func(t *testing.T) {
		s := newFeedStore(t, newStore)
		k, all := key("pruned"), key("all")
		// Revisions 1..10: versions 1..10 of k (keep 2); 11..14: versions of all (keep all).
		writes := putVersions(t, s, k, 10, keep(2))
		allWrites := putVersions(t, s, all, 4)
		require.NoError(t, s.CompactEvents(t.Context(), 6), "CompactEvents")
		oldest, err := s.OldestRevision(t.Context())
		require.NoError(t, err)
		require.Equal(t, int64(7), oldest, "OldestRevision = through + 1")

		for _, after := range []int64{0, 3, 5} {
			_, err := s.ReadEvents(t.Context(), store.EventsRequest{AfterRevision: after, Limit: 10})
			require.ErrorIs(t, err, store.ErrCompacted, "ReadEvents after %d", after)
			var ce *store.CompactedError
			require.True(t, errors.As(err, &ce), "want *store.CompactedError, got %T", err)
			require.Equal(t, int64(7), ce.OldestRevision, "CompactedError.OldestRevision")
		}
		evs := allEvents(t, s, 6, 3)
		require.Len(t, evs, 8, "revisions 7..14 are kept")
		require.Equal(t, int64(7), evs[0].Revision)
		requireEvent(t, evs[0], writes[6], []byte(`{"v":6}`), "the first kept event keeps its old value")

		// History and Get are unchanged for versions within their limit.
		require.Equal(t, []int64{10, 9}, versionNumbers(history(t, s, k).Versions))
		require.Equal(t, []int64{4, 3, 2, 1}, versionNumbers(history(t, s, all).Versions), "compaction does not prune history")
		for v := int64(1); v <= 4; v++ {
			e, err := get(t, s, store.GetRequest{Key: all, Version: v})
			require.NoError(t, err, "Get %s version %d after compaction", all, v)
			requireSameEntry(t, allWrites[v-1].Entry, *e, "version read after compaction")
		}
		e, err := get(t, s, store.GetRequest{Key: all, AtRevision: 11})
		require.NoError(t, err, "Get AtRevision before the oldest kept revision")
		require.Equal(t, int64(1), e.Version)
		requireGetNotFound(t, s, store.GetRequest{Key: k, Version: 8}, "hidden version")
		_, err = get(t, s, store.GetRequest{Key: k, AtRevision: 3})
		require.ErrorIs(t, err, store.ErrCompacted, "AtRevision answered by a pruned version")
		_, err = get(t, s, store.GetRequest{Key: k, AtRevision: 8})
		require.ErrorIs(t, err, store.ErrCompacted, "AtRevision answered by a hidden version the feed keeps")

		// A write after compaction may free storage; kept events keep their old values.
		w11 := mustPut(t, s, k, `{"v":11}`, keep(2))
		evs = allEvents(t, s, 6, 100)
		require.Len(t, evs, 9)
		for i, v := range []int64{7, 8, 9, 10} {
			requireEvent(t, evs[i], writes[v-1], []byte(fmt.Sprintf(`{"v":%d}`, v-1)), fmt.Sprintf("kept event of version %d", v))
		}
		requireEvent(t, evs[8], w11, []byte(`{"v":10}`), "event after compaction")
		require.Equal(t, []int64{11, 10}, versionNumbers(history(t, s, k).Versions))

		// Never backwards; idempotent; clamped to the current revision.
		require.NoError(t, s.CompactEvents(t.Context(), 3))
		require.NoError(t, s.CompactEvents(t.Context(), 6))
		oldest, err = s.OldestRevision(t.Context())
		require.NoError(t, err)
		require.Equal(t, int64(7), oldest, "CompactEvents never moves OldestRevision backwards")
		require.NoError(t, s.CompactEvents(t.Context(), 12))
		evs = allEvents(t, s, 12, 100)
		require.Len(t, evs, 3, "revisions 13..15")
		requireEvent(t, evs[0], allWrites[2], []byte(`{"v":2}`), "first event after the second compaction")
		require.NoError(t, s.CompactEvents(t.Context(), 1000))
		cur := currentRevision(t, s)
		oldest, err = s.OldestRevision(t.Context())
		require.NoError(t, err)
		require.Equal(t, cur+1, oldest, "compaction is clamped to the current revision")
		res := readEvents(t, s, cur, 10)
		require.Empty(t, res.Events, "reading from OldestRevision-1 works")
		w := mustPut(t, s, all, `{"v":5}`)
		evs = allEvents(t, s, cur, 10)
		require.Len(t, evs, 1)
		requireEvent(t, evs[0], w, []byte(`{"v":4}`), "a write after compacting everything")
		require.Equal(t, []int64{5, 4, 3, 2, 1}, versionNumbers(history(t, s, all).Versions), "history kept in full")
		require.Equal(t, []int64{11, 10}, versionNumbers(history(t, s, k).Versions), "history within the limit")
		e, err = get(t, s, store.GetRequest{Key: k, Version: 10})
		require.NoError(t, err, "a version within the limit stays readable")
		requireSameEntry(t, writes[9].Entry, *e, "version 10")

		_, err = s.ReadEvents(t.Context(), store.EventsRequest{AfterRevision: cur - 1, Limit: 1})
		require.ErrorIs(t, err, store.ErrCompacted)
		require.ErrorIs(t, s.CompactEvents(t.Context(), -1), store.ErrInvalid, "negative through")
	})

	t.Run("WaitCommit", func(t *testing.T) {
		s := newFeedStore(t, newStore)
		mustPut(t, s, key("a"), `1`)
		rev := currentRevision(t, s)
		got, err := s.WaitCommit(t.Context(), rev-1)
		require.NoError(t, err, "WaitCommit for a committed revision")
		require.Equal(t, rev, got, "returns at once")

		done := make(chan int64, 1)
		errc := make(chan error, 1)
		go func() {
			r, err := s.WaitCommit(t.Context(), rev)
			errc <- err
			done <- r
		}()
		select {
		case <-done:
			t.Fatal("WaitCommit returned before a new commit")
		case <-time.After(30 * time.Millisecond):
		}
		mustPut(t, s, key("b"), `1`)
		select {
		case err := <-errc:
			require.NoError(t, err, "WaitCommit after a commit")
			require.Equal(t, rev+1, <-done, "the new revision")
		case <-time.After(5 * time.Second):
			t.Fatal("WaitCommit did not wake on a commit")
		}

		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		_, err = s.WaitCommit(ctx, rev+1)
		require.ErrorIs(t, err, context.DeadlineExceeded, "WaitCommit honours the context's deadline")
		ctx, cancel = context.WithCancel(t.Context())
		cancel()
		_, err = s.WaitCommit(ctx, rev+1)
		require.ErrorIs(t, err, context.Canceled, "WaitCommit with a cancelled context")

		// Many waiters all wake.
		var wg sync.WaitGroup
		woke := make(chan int64, 10)
		for range 10 {
			wg.Go(func() {
				r, err := s.WaitCommit(t.Context(), rev+1)
				if err == nil {
					woke <- r
				}
			})
		}
		time.Sleep(10 * time.Millisecond)
		mustPut(t, s, key("c"), `1`)
		wg.Wait()
		close(woke)
		n := 0
		for r := range woke {
			require.Equal(t, rev+2, r)
			n++
		}
		require.Equal(t, 10, n, "every waiter wakes")
	})

	t.Run("Scan", func(t *testing.T) {
		s := newFeedStore(t, newStore)
		now := time.Now()
		// Agents and tiers that sort in interesting ways (agent-1 < agent-10 < agent-2).
		var want []store.Key
		for _, ag := range []string{"agent-2", agent, otherAgent} {
			for _, tr := range []string{otherTier, tier} {
				for _, name := range []string{"b", "a", "a/b", "c"} {
					k := store.Key{AgentID: ag, Tier: tr, Key: name}
					mustPut(t, s, k, fmt.Sprintf(`"%s"`, k))
					want = append(want, k)
				}
			}
		}
		gone := store.Key{AgentID: agent, Tier: tier, Key: "deleted"}
		mustPut(t, s, gone, `1`)
		mustDelete(t, s, gone)
		ttl := store.Key{AgentID: otherAgent, Tier: tier, Key: "expiring"}
		mustPut(t, s, ttl, `1`, withTTL(time.Hour))
		slices.SortFunc(want, compareKeys)
		cur := currentRevision(t, s)

		for _, limit := range []int{1, 3, 100} {
			var got []store.Key
			var after store.Key
			for page := 0; ; page++ {
				require.Less(t, page, 100, "scan does not end")
				res, err := s.Scan(t.Context(), store.ScanRequest{After: after, Limit: limit, Now: now.Add(2 * time.Hour)})
				require.NoError(t, err, "Scan")
				require.LessOrEqual(t, len(res.Entries), limit, "Scan exceeds Limit")
				require.Equal(t, cur, res.Revision, "Scan's Revision")
				for _, e := range res.Entries {
					got = append(got, e.Key)
					requireValue(t, []byte(fmt.Sprintf(`"%s"`, e.Key)), e.Value, "Scan value")
					requireSameEntry(t, *mustGet(t, s, e.Key), e, "Scan entry")
				}
				if !res.More {
					break
				}
				after = res.Entries[len(res.Entries)-1].Key
			}
			require.Equal(t, want, got, "Scan with limit %d: live keys in (agent, tier, key) order, no deleted or expired", limit)
		}
		res, err := s.Scan(t.Context(), store.ScanRequest{Limit: 1000, Now: now})
		require.NoError(t, err)
		keys := make([]store.Key, 0, len(res.Entries))
		for _, e := range res.Entries {
			keys = append(keys, e.Key)
		}
		require.Contains(t, keys, ttl, "a key whose TTL has not passed is live")
		require.NotContains(t, keys, gone, "a deleted key is not scanned")
		res, err = s.Scan(t.Context(), store.ScanRequest{After: store.Key{AgentID: otherAgent, Tier: tier, Key: "zzz"}, Limit: 10})
		require.NoError(t, err)
		require.Equal(t, want[12:22], scanKeys(res), "after agent-10/local come agent-10/persistent, then agent-2")
		_, err = s.Scan(t.Context(), store.ScanRequest{Limit: 0})
		require.ErrorIs(t, err, store.ErrInvalid, "Scan limit 0")
	})
}

func scanKeys(res *store.ScanResult) []store.Key {
	out := make([]store.Key, 0, len(res.Entries))
	for _, e := range res.Entries {
		out = append(out, e.Key)
	}
	return out
}

func countRev(evs []store.Event, rev int64) int {
	n := 0
	for _, e := range evs {
		if e.Revision == rev {
			n++
		}
	}
	return n
}

// compareKeys orders keys by (AgentID, Tier, Key), as Scan does.
func compareKeys(a, b store.Key) int {
	if a.AgentID != b.AgentID {
		if a.AgentID < b.AgentID {
			return -1
		}
		return 1
	}
	if a.Tier != b.Tier {
		if a.Tier < b.Tier {
			return -1
		}
		return 1
	}
	switch {
	case a.Key < b.Key:
		return -1
	case a.Key > b.Key:
		return 1
	}
	return 0
}
