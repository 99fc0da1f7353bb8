package feed

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/keys"
	"github.com/agentstate/agentstate/store"
)

// randomWrite writes 1-3 ops on a small key space: puts, deletes, restores.
func randomWrite(f *fakeSource, r *rand.Rand) int64 {
	n := 1 + r.IntN(3)
	seen := map[store.Key]bool{}
	var ops []fop
	for range n {
		agent := []string{"a1", "a2", "a3"}[r.IntN(3)]
		tier := keys.Tiers[r.IntN(len(keys.Tiers))]
		key := []string{"prefs/ui", "prefs/ui/theme", "tool-1/state", "notes", "s1/flow"}[r.IntN(5)]
		o := put(agent, tier, key, fmt.Sprint(r.Int()))
		switch r.IntN(6) {
		case 0:
			o = del(agent, tier, key)
		case 1:
			o.kind = store.ChangeRestore
		}
		if seen[o.key] {
			continue
		}
		seen[o.key] = true
		ops = append(ops, o)
	}
	return f.write(ops...)
}

// Every event written by concurrent writers reaches a subscriber from 0
// exactly once, in order.
func TestConcurrentWritersExactlyOnce(t *testing.T) {
	f := newFake()
	h := startHub(t, f, Options{PageSize: 16})
	sub := subscribe(t, h, SubscribeRequest{FromRevision: 0})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range 300 {
				randomWrite(f, r)
			}
		})
	}
	wg.Wait()
	expectExactly(t, sub, f.eventsAfter(0, Filter{}))
}

// The catch-up/live seam under races: writers commit while a subscription
// starts from a random revision, with tiny pages and a jittery store, so
// writes land between the catch-up read and the attach, and the store is
// sometimes ahead of the hub. Every run must deliver exactly the events
// after the start, once, in order.
func TestSeamRace(t *testing.T) {
	iterations := 200
	if testing.Short() {
		iterations = 30
	}
	for it := range iterations {
		r := rand.New(rand.NewPCG(uint64(it), 2))
		f := newFake()
		f.jitter.Store(true)
		for range r.IntN(30) {
			randomWrite(f, r)
		}
		opts := Options{PageSize: 1 + r.IntN(8), BufferSize: 1 << 16}
		h := NewHub(f, opts)
		runDone := make(chan error, 1)
		go func() { runDone <- h.Run(context.Background()) }()

		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := range 2 {
			wg.Go(func() {
				wr := rand.New(rand.NewPCG(uint64(it), uint64(w)+10))
				<-start
				for range 30 {
					randomWrite(f, wr)
					// Spread the writes over the catch-up, so commits land
					// between its last read and its attach.
					if wr.IntN(3) == 0 {
						time.Sleep(time.Duration(wr.IntN(100)) * time.Microsecond)
					}
				}
			})
		}
		from := r.Int64N(f.currentRev() + 1)
		var flt Filter
		if r.IntN(3) == 0 {
			flt = Filter{AgentIDs: []string{"a1", "a2"}}
		}
		close(start)
		sub, err := h.Subscribe(context.Background(), SubscribeRequest{FromRevision: from, Filter: flt})
		require.NoError(t, err)
		wg.Wait()
		want := f.eventsAfter(from, flt)
		got := make([]store.Event, 0, len(want))
		for len(got) < len(want) {
			d, err := next(t, sub)
			require.NoError(t, err, "iteration %d", it)
			got = append(got, *d.Event)
		}
		require.Equal(t, ids(want), ids(got), "iteration %d (from %d, page %d)", it, from, opts.PageSize)
		expectNothing(t, sub)
		require.NoError(t, sub.Close())
		require.NoError(t, h.Close())
		require.NoError(t, <-runDone)
	}
}

// The seam, made to happen on purpose.
func TestSeamDeterministic(t *testing.T) {
	t.Run("commit between the last catch-up read and the attach", func(t *testing.T) {
		f := newFake()
		for i := range 5 {
			f.write(put("a", "local", "k", fmt.Sprint(i)))
		}
		h := startHub(t, f, Options{PageSize: 2})
		var once sync.Once
		f.onSubRead = func(res *store.EventsResult) {
			if res.More {
				return
			}
			once.Do(func() {
				// The subscriber read everything; before it attaches, a
				// write commits and the hub publishes it.
				rev := f.write(put("a", "local", "k", "between"))
				require.Eventually(t, func() bool { return h.Stats().Revision >= rev }, 5*time.Second, time.Millisecond)
			})
		}
		sub := subscribe(t, h, SubscribeRequest{FromRevision: 1})
		for range 4 {
			_, err := next(t, sub)
			require.NoError(t, err)
		}
		f.mu.Lock()
		f.onSubRead = nil
		f.mu.Unlock()
		f.write(put("a", "local", "k", "after"))
		expectExactly(t, sub, f.eventsAfter(5, Filter{}))
	})
	t.Run("store ahead of the hub at the attach", func(t *testing.T) {
		f := newFake()
		f.write(put("a", "local", "k", "0"))
		h := startHub(t, f, Options{PageSize: 2})
		subscribe(t, h, SubscribeRequest{FromRevision: FromNow}) // the hub stands at 1
		gate := make(chan struct{})
		f.mu.Lock()
		f.hubGate = gate
		f.mu.Unlock()
		for i := range 6 {
			f.write(put("a", "local", "k", fmt.Sprint(i)))
		}
		// The subscriber reads revisions 2..7 from the store and attaches
		// while the hub still stands at 1.
		sub := subscribe(t, h, SubscribeRequest{FromRevision: 1})
		for range 6 {
			_, err := next(t, sub)
			require.NoError(t, err)
		}
		require.Equal(t, int64(1), h.Stats().Revision)
		require.Equal(t, 2, h.Stats().Live)
		f.mu.Lock()
		f.hubGate = nil
		f.mu.Unlock()
		close(gate)
		// The hub now publishes 2..7 (already delivered) and 8.
		f.write(put("a", "local", "k", "after"))
		expectExactly(t, sub, f.eventsAfter(7, Filter{}))
	})
}

// Filters select exactly the matching events.
func TestFilterSubscriptions(t *testing.T) {
	f := newFake()
	f.write(put("a1", "local", "prefs/ui", "1"), put("a2", "shared", "doc", "1"))
	f.write(put("a1", "local", "prefs/ui", "2"))
	f.write(put("a1", "session", "s1/tool-1/state", "x"), put("a1", "persistent", "prefs/ui/theme", "dark"))
	f.write(del("a1", "local", "prefs/ui"))
	f.write(put("a3", "local", "prefs", "p"))
	f.write(fop{kind: store.ChangeRestore, key: store.Key{AgentID: "a1", Tier: "local", Key: "prefs/ui"}, value: "1"})
	f.write(fop{kind: store.ChangeExpire, key: store.Key{AgentID: "a1", Tier: "session", Key: "s1/tool-1/state"}})
	h := startHub(t, f, Options{PageSize: 2})
	mustGlob := func(p string) *keys.Glob {
		g, err := keys.CompileGlob(p)
		require.NoError(t, err)
		return g
	}
	cases := []struct {
		name string
		flt  Filter
		want func(e *store.Event) bool // written independently of Filter.Match
	}{
		// The zero filter matches every event.
		{"all", Filter{}, func(*store.Event) bool { return true }},
		// One agent.
		{"agent a1", Filter{AgentIDs: []string{"a1"}}, func(e *store.Event) bool { return e.Key.AgentID == "a1" }},
		// Several agents: any of them.
		{"agents a2 a3", Filter{AgentIDs: []string{"a2", "a3"}}, func(e *store.Event) bool { return e.Key.AgentID != "a1" }},
		// Tiers, repeatable.
		{"tiers", Filter{Tiers: []string{"shared", "session"}}, func(e *store.Event) bool { return e.Key.Tier == "shared" || e.Key.Tier == "session" }},
		// "*" stays within a segment.
		{"glob prefs/*", Filter{Key: mustGlob("prefs/*")}, func(e *store.Event) bool { return e.Key.Key == "prefs/ui" }},
		// "**" spans segments, including none.
		{"glob prefs/**", Filter{Key: mustGlob("prefs/**")}, func(e *store.Event) bool {
			return e.Key.Key == "prefs" || e.Key.Key == "prefs/ui" || e.Key.Key == "prefs/ui/theme"
		}},
		{"glob **/state", Filter{Key: mustGlob("**/state")}, func(e *store.Event) bool { return e.Key.Key == "s1/tool-1/state" }},
		// Change types, repeatable.
		{"deletes and expires", Filter{ChangeTypes: []string{"delete", "expire"}}, func(e *store.Event) bool {
			return e.ChangeType == "delete" || e.ChangeType == "expire"
		}},
		// Every dimension at once: an AND across dimensions.
		{"combined", Filter{AgentIDs: []string{"a1"}, Tiers: []string{"local"}, Key: mustGlob("prefs/**"), ChangeTypes: []string{"update", "restore"}},
			func(e *store.Event) bool {
				return e.Key.AgentID == "a1" && e.Key.Tier == "local" && e.Key.Key == "prefs/ui" && (e.ChangeType == "update" || e.ChangeType == "restore")
			}},
		// Nothing matches.
		{"none", Filter{AgentIDs: []string{"nobody"}}, func(*store.Event) bool { return false }},
	}
	all := f.eventsAfter(0, Filter{}) // the writes above, replayed live below
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want []store.Event
			for _, e := range f.eventsAfter(0, Filter{}) {
				if tc.want(&e) {
					want = append(want, e)
				}
			}
			// From history...
			sub := subscribe(t, h, SubscribeRequest{Filter: tc.flt, FromRevision: 0})
			expectExactly(t, sub, want)
			// ...and live: the same writes again.
			live := subscribe(t, h, SubscribeRequest{Filter: tc.flt, FromRevision: FromNow})
			base := f.currentRev()
			for _, e := range all {
				o := fop{kind: "put", key: e.Key, value: string(e.NewValue)}
				if e.ChangeType == store.ChangeDelete || e.ChangeType == store.ChangeExpire {
					o.kind = e.ChangeType
				} else if e.ChangeType == store.ChangeRestore {
					o.kind = store.ChangeRestore
				}
				f.write(o)
			}
			var wantLive []store.Event
			for _, e := range f.eventsAfter(base, Filter{}) {
				if tc.want(&e) {
					wantLive = append(wantLive, e)
				}
			}
			expectExactly(t, live, wantLive)
		})
	}
}

func TestNewFilter(t *testing.T) {
	cases := []struct {
		name               string
		agents, tiers, cts []string
		glob               string
		wantErr            bool
	}{
		// Nothing given: everything.
		{name: "empty"},
		// Valid values in every dimension.
		{name: "valid", agents: []string{"a1", "team.x"}, tiers: []string{"local", "persistent"}, cts: []string{"create", "expire"}, glob: "prefs/**"},
		// An unknown tier.
		{name: "bad tier", tiers: []string{"global"}, wantErr: true},
		// An unknown change type.
		{name: "bad change type", cts: []string{"upsert"}, wantErr: true},
		// A malformed agent id.
		{name: "bad agent", agents: []string{"a b"}, wantErr: true},
		// A malformed glob.
		{name: "bad glob", glob: "a//b", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			flt, err := NewFilter(tc.agents, tc.tiers, tc.glob, tc.cts)
			if tc.wantErr {
				require.ErrorIs(t, err, store.ErrInvalid)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.glob != "", flt.Key != nil)
		})
	}
	// Subscribe validates hand-built filters too.
	f := newFake()
	h := startHub(t, f, Options{})
	_, err := h.Subscribe(context.Background(), SubscribeRequest{Filter: Filter{Tiers: []string{"nope"}}})
	require.ErrorIs(t, err, store.ErrInvalid)
	_, err = h.Subscribe(context.Background(), SubscribeRequest{FromRevision: -2})
	require.ErrorIs(t, err, store.ErrInvalid)
}

// FromNow delivers only what is published after Subscribe.
func TestFromNow(t *testing.T) {
	f := newFake()
	f.write(put("a", "local", "k", "1"))
	f.write(put("a", "local", "k", "2"))
	h := startHub(t, f, Options{})
	sub := subscribe(t, h, SubscribeRequest{FromRevision: FromNow})
	require.Equal(t, int64(2), sub.StartRevision())
	f.write(put("a", "local", "k", "3"))
	expectExactly(t, sub, f.eventsAfter(2, Filter{}))
}

// A subscriber that does not read is ended with a LaggedError after its
// buffer; it first gets every buffered delivery, cut at a revision
// boundary, and resuming from ResumeFrom continues without gap or
// duplicate.
func TestSlowConsumer(t *testing.T) {
	cases := []struct {
		name       string
		perRev     int // events per revision
		revs       int
		filter     Filter
		buffer     int
		wantBuffer int // deliveries received before the error
	}{
		// One event per revision: exactly BufferSize fit.
		{name: "single", perRev: 1, revs: 30, buffer: 10, wantBuffer: 10},
		// Three per revision: three revisions (9 events) fit, the fourth is cut whole.
		{name: "batches", perRev: 3, revs: 10, buffer: 10, wantBuffer: 9},
		// A filter: only agent "b" (every other revision) counts against the
		// buffer; ResumeFrom skips the unmatched revision after the last delivered one.
		{name: "filtered", perRev: 1, revs: 30, buffer: 5, wantBuffer: 5, filter: Filter{AgentIDs: []string{"b"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.write(put("a", "local", "seed", "0"))
			h := startHub(t, f, Options{BufferSize: tc.buffer, PageSize: 4})
			sub := subscribe(t, h, SubscribeRequest{FromRevision: FromNow, Filter: tc.filter})
			start := sub.StartRevision()
			for r := range tc.revs {
				var ops []fop
				agent := []string{"a", "b"}[r%2]
				for i := range tc.perRev {
					ops = append(ops, put(agent, "local", fmt.Sprintf("k%d", i), fmt.Sprint(r)))
				}
				f.write(ops...)
			}
			require.Eventually(t, func() bool { return h.Stats().Lagged == 1 }, 5*time.Second, time.Millisecond)

			var got []store.Event
			var lag *LaggedError
			for {
				d, err := next(t, sub)
				if err != nil {
					require.ErrorAs(t, err, &lag)
					require.ErrorIs(t, err, store.ErrUnavailable)
					break
				}
				got = append(got, *d.Event)
			}
			require.Len(t, got, tc.wantBuffer)
			all := f.eventsAfter(start, tc.filter)
			require.Equal(t, ids(all[:len(got)]), ids(got))
			// ResumeFrom: the last revision whose events are all delivered;
			// the next matching event is after it.
			lastGot := got[len(got)-1].Revision
			require.GreaterOrEqual(t, lag.ResumeFrom, lastGot)
			require.Less(t, lag.ResumeFrom, all[len(got)].Revision)

			again := subscribe(t, h, SubscribeRequest{FromRevision: lag.ResumeFrom, Filter: tc.filter})
			expectExactly(t, again, all[len(got):])
		})
	}
}

// Compacted revisions with OnCompacted = Fail: Subscribe says so at once, and
// a subscription overtaken by compaction while catching up ends with it.
func TestCompactedFail(t *testing.T) {
	f := newFake()
	for i := range 10 {
		f.write(put("a", "local", "k", fmt.Sprint(i)))
	}
	f.compact(5)
	h := startHub(t, f, Options{PageSize: 2})

	_, err := h.Subscribe(context.Background(), SubscribeRequest{FromRevision: 3})
	var ce *store.CompactedError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, int64(6), ce.OldestRevision)
	require.ErrorIs(t, err, store.ErrCompacted)

	// From OldestRevision-1 is fine.
	sub := subscribe(t, h, SubscribeRequest{FromRevision: 5})
	expectExactly(t, sub, f.eventsAfter(5, Filter{}))

	// Compaction between Subscribe and the first read.
	late := subscribe(t, h, SubscribeRequest{FromRevision: 6})
	f.compact(8)
	_, err = next(t, late)
	require.ErrorAs(t, err, &ce)
	require.Equal(t, int64(9), ce.OldestRevision)
}

// stateBuilder applies deliveries the way a consumer keeping a replica does.
type stateBuilder struct {
	state   map[store.Key]string
	lastEv  string // the last event's id, for order checks
	lastRev int64
	begins  int
	inSnap  bool // a snapshot began and has not ended
	// With src set: at each snapshot end, the state must be the store's
	// state at its revision, and the events after the last end are recorded.
	src    *fakeSource
	flt    Filter
	endRev int64
	tail   []store.Event
}

func (b *stateBuilder) apply(t testing.TB, d Delivery) {
	t.Helper()
	switch d.Kind {
	case KindSnapshotBegin:
		b.state = map[store.Key]string{}
		b.begins++
		b.inSnap = true
		b.lastRev = 0
	case KindSnapshotEntry:
		require.True(t, b.inSnap, "entry outside a snapshot")
		b.state[d.Entry.Key] = string(d.Entry.Value)
	case KindSnapshotEnd:
		require.True(t, b.inSnap, "end without begin")
		b.inSnap = false
		if b.src != nil {
			require.Equal(t, b.src.stateAt(d.Revision, b.flt), b.state, "state at snapshot end %d", d.Revision)
			b.endRev, b.tail = d.Revision, nil
		}
	case KindEvent:
		e := d.Event
		if b.lastRev > 0 {
			// Strictly increasing (Revision, Index): no duplicate, in order.
			require.True(t, e.Revision > b.lastRev || e.Revision == b.lastRev, "order: %s after %s", e.ID(), b.lastEv)
		}
		require.NotEqual(t, b.lastEv, e.ID(), "duplicate event")
		b.lastEv, b.lastRev = e.ID(), e.Revision
		if !b.inSnap {
			b.tail = append(b.tail, *e)
		}
		switch e.ChangeType {
		case store.ChangeDelete, store.ChangeExpire:
			delete(b.state, e.Key)
		default:
			b.state[e.Key] = string(e.NewValue)
		}
	}
}

// until applies deliveries until the state reflects revision end: its event,
// or the end of a snapshot at or after it.
func (b *stateBuilder) until(t testing.TB, s *Subscription, end int64) {
	t.Helper()
	for {
		d, err := next(t, s)
		require.NoError(t, err)
		b.apply(t, d)
		if (d.Kind == KindEvent || d.Kind == KindSnapshotEnd) && d.Revision >= end {
			return
		}
	}
}

// OnCompacted = Snapshot: a subscriber whose revision was compacted, while
// writers and compaction run, builds exactly the store's state from the
// snapshot and the events that follow.
func TestCompactedSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name string
		flt  Filter
		page int
	}{
		// Everything, pages small enough that the scan spans many revisions.
		{"all", Filter{}, 3},
		// A filter applies to the snapshot's keys too.
		{"agent a1 tier local", Filter{AgentIDs: []string{"a1"}, Tiers: []string{"local", "shared"}}, 2},
		// One page.
		{"big pages", Filter{}, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			r := rand.New(rand.NewPCG(7, 7))
			for range 200 {
				randomWrite(f, r)
			}
			f.compact(150)
			h := startHub(t, f, Options{PageSize: tc.page})

			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() {
				wr := rand.New(rand.NewPCG(8, 8))
				for i := 0; ctx.Err() == nil && i < 2000; i++ {
					randomWrite(f, wr)
					if i%50 == 49 {
						f.compact(f.currentRev() - 5)
					}
					if i%8 == 0 {
						time.Sleep(50 * time.Microsecond)
					}
				}
			})
			sub := subscribe(t, h, SubscribeRequest{FromRevision: 10, OnCompacted: CompactedSnapshot, Filter: tc.flt})
			b := stateBuilder{src: f, flt: tc.flt}
			// Consume while the writer runs.
			for range 300 {
				d, err := next(t, sub)
				require.NoError(t, err)
				b.apply(t, d)
			}
			cancel()
			wg.Wait()
			// A sentinel write every filter matches marks the end.
			end := f.write(put("a1", "local", "zz-sentinel", "end"))
			b.until(t, sub, end)
			require.GreaterOrEqual(t, b.begins, 1)
			require.False(t, b.inSnap, "the last snapshot ended")
			// After the last snapshot: every event, once, in order.
			require.Equal(t, ids(f.historyAfter(b.endRev, tc.flt)), ids(b.tail))
			t.Logf("%d snapshot(s)", b.begins)
			require.Equal(t, f.state(tc.flt), b.state)
			expectNothing(t, sub)
		})
	}
}

// The snapshot's end marker: state built up to it equals the state at its
// revision. Checked without concurrency by comparing with a replay.
func TestSnapshotEndMarker(t *testing.T) {
	f := newFake()
	r := rand.New(rand.NewPCG(3, 3))
	for range 50 {
		randomWrite(f, r)
	}
	f.compact(40)
	h := startHub(t, f, Options{})
	sub := subscribe(t, h, SubscribeRequest{FromRevision: 0, OnCompacted: CompactedSnapshot})
	var b stateBuilder
	kinds := []Kind{}
	for {
		d, err := next(t, sub)
		require.NoError(t, err)
		b.apply(t, d)
		kinds = append(kinds, d.Kind)
		if d.Kind == KindSnapshotEnd {
			require.Equal(t, f.currentRev(), d.Revision)
			break
		}
	}
	require.Equal(t, KindSnapshotBegin, kinds[0])
	require.Equal(t, f.state(Filter{}), b.state)
	// Then live.
	rev := randomWrite(f, r)
	for rev == 0 {
		rev = randomWrite(f, r)
	}
	expectExactly(t, sub, f.eventsAfter(rev-1, Filter{}))
}

// The hub itself falls behind compaction (its reads are held while the
// writes are compacted away): attached subscriptions go back to catching up
// and apply their policy.
func TestHubBehindCompaction(t *testing.T) {
	f := newFake()
	f.write(put("a", "local", "k", "0"))
	h := startHub(t, f, Options{PageSize: 4})
	snap := subscribe(t, h, SubscribeRequest{FromRevision: FromNow, OnCompacted: CompactedSnapshot})
	fail := subscribe(t, h, SubscribeRequest{FromRevision: FromNow})

	gate := make(chan struct{})
	f.mu.Lock()
	f.hubGate = gate
	f.mu.Unlock()
	r := rand.New(rand.NewPCG(5, 5))
	for range 40 {
		randomWrite(f, r)
	}
	f.compact(f.currentRev() - 3)
	f.mu.Lock()
	f.hubGate = nil
	f.mu.Unlock()
	close(gate)

	_, err := next(t, fail)
	var ce *store.CompactedError
	require.ErrorAs(t, err, &ce)

	end := f.write(put("a1", "local", "zz-sentinel", "end"))
	b := stateBuilder{src: f}
	b.until(t, snap, end)
	require.Equal(t, 1, b.begins)
	require.Equal(t, f.state(Filter{}), b.state)
	require.Equal(t, 2, h.Stats().Subscribers+1) // fail left; snap remains
}

// Close, the end of a context and the end of the hub all end Next promptly.
func TestEnding(t *testing.T) {
	t.Run("Close wakes a blocked Next", func(t *testing.T) {
		f := newFake()
		h := startHub(t, f, Options{})
		sub := subscribe(t, h, SubscribeRequest{FromRevision: FromNow})
		errc := make(chan error, 1)
		go func() {
			_, err := sub.Next(context.Background())
			errc <- err
		}()
		time.Sleep(5 * time.Millisecond)
		require.NoError(t, sub.Close())
		select {
		case err := <-errc:
			require.ErrorIs(t, err, ErrClosed)
		case <-time.After(2 * time.Second):
			t.Fatal("Next did not return after Close")
		}
		require.NoError(t, sub.Close(), "idempotent")
		require.Equal(t, 0, h.Stats().Subscribers)
	})
	t.Run("NextBatch", func(t *testing.T) {
		f := newFake()
		h := startHub(t, f, Options{})
		sub := subscribe(t, h, SubscribeRequest{FromRevision: FromNow})
		for i := range 5 {
			f.write(put("a", "local", "k", fmt.Sprint(i)))
		}
		require.Eventually(t, func() bool { return h.Stats().Buffered == 5 }, time.Second, time.Millisecond)
		got, err := sub.NextBatch(context.Background(), nil)
		require.NoError(t, err)
		require.Len(t, got, 5)
		require.Equal(t, int64(5), got[4].Revision)
		require.NoError(t, sub.Close())
		got, err = sub.NextBatch(context.Background(), got[:0])
		require.ErrorIs(t, err, ErrClosed)
		require.Empty(t, got)
	})
	t.Run("Next's context", func(t *testing.T) {
		f := newFake()
		h := startHub(t, f, Options{})
		sub := subscribe(t, h, SubscribeRequest{FromRevision: FromNow})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		defer cancel()
		_, err := sub.Next(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		// The subscription lives on.
		f.write(put("a", "local", "k", "1"))
		expectExactly(t, sub, f.eventsAfter(0, Filter{}))
	})
	t.Run("Subscribe's context", func(t *testing.T) {
		f := newFake()
		h := startHub(t, f, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		sub, err := h.Subscribe(ctx, SubscribeRequest{FromRevision: FromNow})
		require.NoError(t, err)
		errc := make(chan error, 1)
		go func() {
			_, err := sub.Next(context.Background())
			errc <- err
		}()
		cancel()
		select {
		case err := <-errc:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(2 * time.Second):
			t.Fatal("Next did not return after the context ended")
		}
		require.Eventually(t, func() bool { return h.Stats().Subscribers == 0 }, time.Second, time.Millisecond)
	})
	t.Run("hub Close with live and catching-up subscribers", func(t *testing.T) {
		f := newFake()
		for i := range 20 {
			f.write(put("a", "local", "k", fmt.Sprint(i)))
		}
		h := NewHub(f, Options{PageSize: 2})
		runDone := make(chan error, 1)
		go func() { runDone <- h.Run(context.Background()) }()
		live := subscribe(t, h, SubscribeRequest{FromRevision: FromNow})
		catching := subscribe(t, h, SubscribeRequest{FromRevision: 0})
		f.write(put("a", "local", "k", "live"))
		require.Eventually(t, func() bool { return h.Stats().Buffered == 1 }, time.Second, time.Millisecond)
		d, err := next(t, catching) // reads a first page
		require.NoError(t, err)
		require.Equal(t, int64(1), d.Revision)

		require.NoError(t, h.Close())
		require.NoError(t, <-runDone)
		// Buffered deliveries first, then ErrHubClosed.
		d, err = next(t, live)
		require.NoError(t, err)
		require.Equal(t, int64(21), d.Revision)
		_, err = next(t, live)
		require.ErrorIs(t, err, ErrHubClosed)
		for {
			if _, err = next(t, catching); err != nil {
				break
			}
		}
		require.ErrorIs(t, err, ErrHubClosed)
		_, err = h.Subscribe(context.Background(), SubscribeRequest{})
		require.ErrorIs(t, err, ErrHubClosed)
		require.NoError(t, h.Close(), "idempotent")
	})
	t.Run("Run's context", func(t *testing.T) {
		f := newFake()
		h := NewHub(f, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		runDone := make(chan error, 1)
		go func() { runDone <- h.Run(ctx) }()
		sub := subscribe(t, h, SubscribeRequest{FromRevision: FromNow})
		cancel()
		require.ErrorIs(t, <-runDone, context.Canceled)
		_, err := next(t, sub)
		require.ErrorIs(t, err, ErrHubClosed)
		require.ErrorIs(t, h.Run(context.Background()), ErrHubClosed)
		require.NoError(t, h.Close())
	})
	t.Run("Subscribe waits for Run", func(t *testing.T) {
		f := newFake()
		h := NewHub(f, Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		_, err := h.Subscribe(ctx, SubscribeRequest{})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.NoError(t, h.Close())
	})
}

// Store errors are retried with backoff; nothing is lost.
func TestStoreErrorsRetried(t *testing.T) {
	f := newFake()
	f.failCalls.Store(3) // CurrentRevision and the next calls fail
	h := startHub(t, f, Options{RetryMin: time.Millisecond, RetryMax: 4 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := h.Subscribe(ctx, SubscribeRequest{FromRevision: FromNow})
	require.NoError(t, err)
	defer sub.Close()
	for i := range 20 {
		f.write(put("a", "local", "k", fmt.Sprint(i)))
		if i%5 == 0 {
			f.failCalls.Store(2)
		}
	}
	// A catch-up read error reaches Next without ending the subscription.
	f.failCalls.Store(0)
	want := f.eventsAfter(0, Filter{})
	got := []store.Event{}
	for len(got) < len(want) {
		d, err := sub.Next(ctx)
		if errors.Is(err, store.ErrUnavailable) {
			continue
		}
		require.NoError(t, err)
		got = append(got, *d.Event)
	}
	require.Equal(t, ids(want), ids(got))
	require.NotZero(t, h.Stats().TailErrors)

	catching, err := h.Subscribe(ctx, SubscribeRequest{FromRevision: 0})
	require.NoError(t, err)
	defer catching.Close()
	f.failCalls.Store(1)
	_, err = catching.Next(ctx)
	if err != nil {
		require.ErrorIs(t, err, store.ErrUnavailable)
	}
}
