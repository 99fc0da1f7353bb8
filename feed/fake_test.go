package feed

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentstate/agentstate/store"
)

// fakeSource is an in-memory event log for the hub's tests: writes append
// events under one lock and broadcast, with compaction, Scan and injected
// failures. It earns its place because the hub must be tested under races
// a real store makes hard to provoke (compaction while the hub lags, errors).
type fakeSource struct {
	mu     sync.Mutex
	rev    int64
	oldest int64
	events []store.Event
	all    []store.Event              // every event ever, never compacted: the tests' oracle
	cur    map[store.Key]*store.Entry // newest version of every key, tombstones included
	commit chan struct{}              // closed and replaced at each commit

	failCalls atomic.Int32  // the next n calls fail with ErrUnavailable
	hubGate   chan struct{} // when non-nil, the hub's reads wait for it to close
	jitter    atomic.Bool   // random short pauses in ReadEvents, to widen races
	// onSubRead, when set, runs after each ReadEvents that is not the hub's.
	onSubRead func(*store.EventsResult)
}

type hubCtxKey struct{}

func newFake() *fakeSource {
	return &fakeSource{oldest: 1, cur: make(map[store.Key]*store.Entry), commit: make(chan struct{})}
}

// fop is one op of a fake write.
type fop struct {
	kind  string // store.Change* (create and update are both "put")
	key   store.Key
	value string
}

func put(agent, tier, key, value string) fop {
	return fop{kind: "put", key: store.Key{AgentID: agent, Tier: tier, Key: key}, value: value}
}

func del(agent, tier, key string) fop {
	return fop{kind: store.ChangeDelete, key: store.Key{AgentID: agent, Tier: tier, Key: key}}
}

// write commits ops as one revision and returns it (0 if every op was a
// no-op: a delete of an absent key).
func (f *fakeSource) write(ops ...fop) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	rev := f.rev + 1
	var evs []store.Event
	for _, o := range ops {
		prev := f.cur[o.key]
		live := prev != nil && !prev.Deleted
		var ver int64 = 1
		if prev != nil {
			ver = prev.Version + 1
		}
		e := store.Event{Revision: rev, Index: len(evs), Key: o.key, Version: ver, Timestamp: now, CreatedBy: "test"}
		if live {
			e.OldValue = prev.Value
		}
		next := &store.Entry{Key: o.key, Version: ver, Revision: rev, UpdatedAt: now, CreatedAt: now}
		switch o.kind {
		case "put", store.ChangeRestore:
			e.ChangeType = store.ChangeCreate
			if live {
				e.ChangeType = store.ChangeUpdate
				next.CreatedAt = prev.CreatedAt
			}
			if o.kind == store.ChangeRestore {
				e.ChangeType = store.ChangeRestore
			}
			e.NewValue = json.RawMessage(fmt.Sprintf("%q", o.value))
			next.Value = e.NewValue
		case store.ChangeDelete, store.ChangeExpire:
			if !live {
				continue
			}
			e.ChangeType = o.kind
			next.Deleted = true
		default:
			panic("fake: bad op " + o.kind)
		}
		f.cur[o.key] = next
		evs = append(evs, e)
	}
	if len(evs) == 0 {
		return 0
	}
	f.rev = rev
	f.events = append(f.events, evs...)
	f.all = append(f.all, evs...)
	close(f.commit)
	f.commit = make(chan struct{})
	return rev
}

func (f *fakeSource) fail() error {
	for {
		n := f.failCalls.Load()
		if n <= 0 {
			return nil
		}
		if f.failCalls.CompareAndSwap(n, n-1) {
			return fmt.Errorf("fake: %w", store.ErrUnavailable)
		}
	}
}

func (f *fakeSource) pause() {
	if n := rand.IntN(4); n == 0 {
		time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
	} else if n == 1 {
		runtime.Gosched()
	}
}

func (f *fakeSource) gate(ctx context.Context) error {
	if ctx.Value(hubCtxKey{}) == nil {
		return nil
	}
	f.mu.Lock()
	g := f.hubGate
	f.mu.Unlock()
	if g == nil {
		return nil
	}
	select {
	case <-g:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeSource) ReadEvents(ctx context.Context, req store.EventsRequest) (res *store.EventsResult, err error) {
	if err := f.gate(ctx); err != nil {
		return nil, err
	}
	if err := f.fail(); err != nil {
		return nil, err
	}
	if ctx.Value(hubCtxKey{}) == nil {
		f.mu.Lock()
		hook := f.onSubRead
		f.mu.Unlock()
		if hook != nil {
			defer func() {
				if res != nil {
					hook(res)
				}
			}()
		}
	}
	if f.jitter.Load() {
		// Before the read and after it: the gap between a subscriber's
		// last catch-up read and its attach is where the seam bugs live.
		f.pause()
		defer f.pause()
	}
	if req.Limit <= 0 || req.AfterRevision < 0 {
		return nil, store.ErrInvalid
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.AfterRevision < f.oldest-1 {
		return nil, &store.CompactedError{OldestRevision: f.oldest}
	}
	i := sort.Search(len(f.events), func(i int) bool { return f.events[i].Revision > req.AfterRevision })
	end := min(i+req.Limit, len(f.events))
	for end > i && end < len(f.events) && f.events[end].Revision == f.events[end-1].Revision {
		end++
	}
	return &store.EventsResult{Events: slices.Clone(f.events[i:end]), More: end < len(f.events), Revision: f.rev}, nil
}

func (f *fakeSource) OldestRevision(ctx context.Context) (int64, error) {
	if err := f.fail(); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.oldest, nil
}

func (f *fakeSource) CurrentRevision(ctx context.Context) (int64, error) {
	if err := f.fail(); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rev, nil
}

func (f *fakeSource) WaitCommit(ctx context.Context, after int64) (int64, error) {
	if err := f.fail(); err != nil {
		return 0, err
	}
	for {
		f.mu.Lock()
		rev, ch := f.rev, f.commit
		f.mu.Unlock()
		if rev > after {
			return rev, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func keyLess(a, b store.Key) int {
	return cmp.Or(cmp.Compare(a.AgentID, b.AgentID), cmp.Compare(a.Tier, b.Tier), cmp.Compare(a.Key, b.Key))
}

func (f *fakeSource) Scan(ctx context.Context, req store.ScanRequest) (*store.ScanResult, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var live []store.Key
	for k, e := range f.cur {
		if !e.Deleted && (req.After == store.Key{} || keyLess(k, req.After) > 0) {
			live = append(live, k)
		}
	}
	slices.SortFunc(live, keyLess)
	res := &store.ScanResult{Revision: f.rev, More: len(live) > req.Limit}
	for _, k := range live[:min(len(live), req.Limit)] {
		res.Entries = append(res.Entries, *f.cur[k])
	}
	return res, nil
}

// compact drops the events with Revision <= through.
func (f *fakeSource) compact(through int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	through = min(through, f.rev)
	if through+1 <= f.oldest {
		return
	}
	i := sort.Search(len(f.events), func(i int) bool { return f.events[i].Revision > through })
	f.events = slices.Clone(f.events[i:])
	f.oldest = through + 1
}

func (f *fakeSource) currentRev() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rev
}

// eventsAfter returns the kept events after rev that match flt.
func (f *fakeSource) eventsAfter(rev int64, flt Filter) []store.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Event
	for i := range f.events {
		if f.events[i].Revision > rev && flt.Match(&f.events[i]) {
			out = append(out, f.events[i])
		}
	}
	return out
}

// state returns the live values of the keys flt selects.
func (f *fakeSource) state(flt Filter) map[store.Key]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := make(map[store.Key]string)
	for k, e := range f.cur {
		if !e.Deleted && flt.MatchKey(k) {
			m[k] = string(e.Value)
		}
	}
	return m
}

// stateAt replays the whole history up to rev: the live values of the keys
// flt selects at that revision.
func (f *fakeSource) stateAt(rev int64, flt Filter) map[store.Key]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := make(map[store.Key]string)
	for _, e := range f.all {
		if e.Revision > rev {
			break
		}
		if !flt.MatchKey(e.Key) {
			continue
		}
		if e.NewValue == nil {
			delete(m, e.Key)
		} else {
			m[e.Key] = string(e.NewValue)
		}
	}
	return m
}

// historyAfter is every event after rev (compacted or not) that flt selects.
func (f *fakeSource) historyAfter(rev int64, flt Filter) []store.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Event
	for i := range f.all {
		if f.all[i].Revision > rev && flt.Match(&f.all[i]) {
			out = append(out, f.all[i])
		}
	}
	return out
}

var _ Source = (*fakeSource)(nil)
