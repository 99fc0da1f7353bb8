package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agentstate/agentstate/store"
)

// memStore is an in-memory store.Store kept only as the test reference of
// the conformance suite: it implements the contract of package store as
// plainly as possible (one mutex, a slice of versions per key) so that the
// suite itself is tested against a known-correct store, independently of the
// real backends. It is not durable and not meant for any other use.
type memStore struct {
	mu     sync.Mutex
	rev    int64
	keys   map[store.Key]*memKey
	closed bool

	// The change feed: a plain log of every event with revision >= oldest
	// (the reference need not share storage with the versions).
	events []store.Event
	oldest int64
	commit chan struct{} // closed and replaced at every new revision
}

type memKey struct {
	versions []store.Version // kept versions, oldest first; the last is current
	pruned   bool            // some older versions were pruned
}

var (
	_ store.Store          = (*memStore)(nil)
	_ store.EventReader    = (*memStore)(nil)
	_ store.CommitWaiter   = (*memStore)(nil)
	_ store.EventCompactor = (*memStore)(nil)
	_ store.Scanner        = (*memStore)(nil)
)

func newMemStore() *memStore {
	return &memStore{keys: map[store.Key]*memKey{}, oldest: 1, commit: make(chan struct{})}
}

func (k *memKey) current() *store.Version {
	if k == nil || len(k.versions) == 0 {
		return nil
	}
	return &k.versions[len(k.versions)-1]
}

// live is the current version if it is neither a tombstone nor expired at now.
func (k *memKey) live(now time.Time) *store.Version {
	v := k.current()
	if v == nil || v.Deleted || (v.ExpiresAt != nil && !v.ExpiresAt.After(now)) {
		return nil
	}
	return v
}

// expiredUnreaped reports a current version that expired but has no tombstone.
func (k *memKey) expiredUnreaped(now time.Time) bool {
	v := k.current()
	return v != nil && !v.Deleted && v.ExpiresAt != nil && !v.ExpiresAt.After(now)
}

func copyEntry(e store.Entry) *store.Entry {
	e.Value = slices.Clone(e.Value)
	e.Metadata = slices.Clone(e.Metadata)
	if e.ExpiresAt != nil {
		t := *e.ExpiresAt
		e.ExpiresAt = &t
	}
	return &e
}

func copyVersion(v store.Version) store.Version {
	v.Entry = *copyEntry(v.Entry)
	return v
}

func (s *memStore) check(ctx context.Context) error {
	if s.closed {
		return store.ErrClosed
	}
	return ctx.Err()
}

func orNow(now time.Time) time.Time {
	if now.IsZero() {
		return time.Now()
	}
	return now
}

func (s *memStore) Get(ctx context.Context, req store.GetRequest) (*store.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if req.Version > 0 && req.AtRevision > 0 {
		return nil, fmt.Errorf("memstore: get %s: both Version and AtRevision: %w", req.Key, store.ErrInvalid)
	}
	notFound := fmt.Errorf("memstore: get %s: %w", req.Key, store.ErrNotFound)
	k := s.keys[req.Key]
	if k == nil {
		return nil, notFound
	}
	switch {
	case req.Version > 0:
		for _, v := range k.versions {
			if v.Version == req.Version && !v.Deleted {
				return copyEntry(v.Entry), nil
			}
		}
		return nil, notFound
	case req.AtRevision > 0:
		for i := len(k.versions) - 1; i >= 0; i-- {
			v := k.versions[i]
			if v.Revision <= req.AtRevision {
				if v.Deleted {
					return nil, notFound
				}
				return copyEntry(v.Entry), nil
			}
		}
		if k.pruned {
			return nil, fmt.Errorf("memstore: get %s at revision %d: %w", req.Key, req.AtRevision, store.ErrCompacted)
		}
		return nil, notFound
	default:
		v := k.live(orNow(req.Now))
		if v == nil {
			return nil, notFound
		}
		return copyEntry(v.Entry), nil
	}
}

func (s *memStore) BatchGet(ctx context.Context, keys []store.Key, now time.Time) (map[store.Key]*store.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	now = orNow(now)
	out := make(map[store.Key]*store.Entry, len(keys))
	for _, key := range keys {
		if v := s.keys[key].live(now); v != nil {
			out[key] = copyEntry(v.Entry)
		}
	}
	return out, nil
}

func (s *memStore) List(ctx context.Context, req store.ListRequest) (*store.ListResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if req.Limit <= 0 {
		return nil, fmt.Errorf("memstore: list limit %d: %w", req.Limit, store.ErrInvalid)
	}
	now := orNow(req.Now)
	var entries []store.Entry
	for key, k := range s.keys {
		if key.AgentID != req.AgentID || key.Tier != req.Tier || !strings.HasPrefix(key.Key, req.Prefix) || key.Key <= req.After {
			continue
		}
		if v := k.live(now); v != nil {
			e := copyEntry(v.Entry)
			if req.KeysOnly {
				e.Value = nil
			}
			entries = append(entries, *e)
		}
	}
	slices.SortFunc(entries, func(a, b store.Entry) int { return strings.Compare(a.Key.Key, b.Key.Key) })
	res := &store.ListResult{Entries: entries}
	if len(entries) > req.Limit {
		res.Entries, res.More = entries[:req.Limit], true
	}
	return res, nil
}

func (s *memStore) History(ctx context.Context, req store.HistoryRequest) (*store.HistoryResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if req.Limit <= 0 {
		return nil, fmt.Errorf("memstore: history limit %d: %w", req.Limit, store.ErrInvalid)
	}
	k := s.keys[req.Key]
	if k == nil {
		return nil, fmt.Errorf("memstore: history %s: %w", req.Key, store.ErrNotFound)
	}
	res := &store.HistoryResult{CurrentVersion: k.current().Version, Versions: []store.Version{}}
	for i := len(k.versions) - 1; i >= 0 && len(res.Versions) < req.Limit; i-- {
		v := k.versions[i]
		if req.BeforeVersion > 0 && v.Version >= req.BeforeVersion {
			continue
		}
		res.Versions = append(res.Versions, copyVersion(v))
	}
	return res, nil
}

func (s *memStore) ExpiredKeys(ctx context.Context, now time.Time, limit int) ([]store.Expired, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var found []store.Version
	for _, k := range s.keys {
		if k.expiredUnreaped(now) {
			found = append(found, *k.current())
		}
	}
	slices.SortFunc(found, func(a, b store.Version) int { return a.ExpiresAt.Compare(*b.ExpiresAt) })
	out := []store.Expired{}
	for _, v := range found {
		if limit > 0 && len(out) >= limit {
			break
		}
		out = append(out, store.Expired{Key: v.Key, Version: v.Version})
	}
	return out, nil
}

func (s *memStore) CurrentRevision(ctx context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	return s.rev, nil
}

func (s *memStore) Ping(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.check(ctx)
}

func (s *memStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func (s *memStore) Write(ctx context.Context, req store.WriteRequest) (*store.WriteResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if len(req.Ops) == 0 {
		return nil, fmt.Errorf("memstore: write without ops: %w", store.ErrInvalid)
	}
	seen := map[store.Key]bool{}
	for i, op := range req.Ops {
		if op.Kind < store.OpPut || op.Kind > store.OpRestore {
			return nil, &store.OpError{Op: i, Err: fmt.Errorf("memstore: op kind %d: %w", op.Kind, store.ErrInvalid)}
		}
		if seen[op.Key] {
			return nil, &store.OpError{Op: i, Err: fmt.Errorf("memstore: key %s twice in one request: %w", op.Key, store.ErrInvalid)}
		}
		seen[op.Key] = true
	}

	now := time.Now()
	// Check every precondition before writing anything (all or nothing).
	skip := make([]bool, len(req.Ops))
	for i, op := range req.Ops {
		k := s.keys[op.Key]
		live := k.live(now)
		if op.Kind == store.OpExpire {
			cur := k.current()
			skip[i] = !k.expiredUnreaped(now) || (op.ExpectedVersion != nil && cur.Version != *op.ExpectedVersion)
			continue
		}
		if op.ExpectedVersion != nil {
			var current int64
			var currentEntry *store.Entry
			if live != nil {
				current, currentEntry = live.Version, copyEntry(live.Entry)
			}
			if *op.ExpectedVersion != current {
				typ := store.ConflictConcurrentModification
				if current == 0 && *op.ExpectedVersion > 0 {
					typ = store.ConflictDeletedModified
				}
				return nil, &store.ConflictError{Op: i, Key: op.Key, Expected: *op.ExpectedVersion, Current: current, CurrentEntry: currentEntry, Type: typ}
			}
		}
		if op.Kind == store.OpDelete && live == nil {
			return nil, &store.OpError{Op: i, Err: fmt.Errorf("memstore: delete %s: %w", op.Key, store.ErrNotFound)}
		}
	}
	if !slices.Contains(skip, false) {
		res := &store.WriteResult{Results: make([]store.OpResult, len(req.Ops))}
		for i := range res.Results {
			res.Results[i].Skipped = true
		}
		return res, nil // every op skipped: nothing written, no revision
	}

	// Expire tombstones of expired keys this request writes to share one
	// revision, just before the request's own.
	defer s.notify()
	expRev := false
	for i, op := range req.Ops {
		if op.Kind != store.OpExpire && s.keys[op.Key].expiredUnreaped(now) {
			if !expRev {
				s.rev++
				expRev = true
			}
			s.append(op.Key, store.WriteOp{Kind: store.OpExpire, Key: op.Key, HistoryLimit: req.Ops[i].HistoryLimit}, store.ChangeExpire, now)
		}
	}
	s.rev++
	res := &store.WriteResult{Revision: s.rev, Results: make([]store.OpResult, len(req.Ops))}
	for i, op := range req.Ops {
		if skip[i] {
			res.Results[i].Skipped = true
			continue
		}
		k := s.keys[op.Key]
		var prev *store.Entry
		if cur := k.current(); cur != nil && !cur.Deleted {
			prev = copyEntry(cur.Entry) // live: tombstones were written above
		}
		var change string
		switch op.Kind {
		case store.OpPut:
			change = store.ChangeCreate
			if prev != nil {
				change = store.ChangeUpdate
			}
		case store.OpRestore:
			change = store.ChangeRestore
		case store.OpDelete:
			change = store.ChangeDelete
		case store.OpExpire:
			change = store.ChangeExpire
		}
		v := s.append(op.Key, op, change, now)
		res.Results[i] = store.OpResult{Entry: *copyEntry(v.Entry), ChangeType: change, Previous: prev}
	}
	return res, nil
}

// append writes the next version of key at the current revision and prunes.
func (s *memStore) append(key store.Key, op store.WriteOp, change string, now time.Time) store.Version {
	k := s.keys[key]
	if k == nil {
		k = &memKey{}
		s.keys[key] = k
	}
	parent := k.current()
	ev := store.Event{Revision: s.rev, Key: key, ChangeType: change, Timestamp: now, CreatedBy: op.CreatedBy,
		Metadata: slices.Clone(op.Metadata)}
	if n := len(s.events); n > 0 && s.events[n-1].Revision == s.rev {
		ev.Index = s.events[n-1].Index + 1
	}
	if parent != nil && !parent.Deleted {
		ev.OldValue = slices.Clone(parent.Value)
	}
	v := store.Version{
		Entry: store.Entry{
			Key:       key,
			Version:   1,
			Revision:  s.rev,
			CreatedAt: now,
			UpdatedAt: now,
			CreatedBy: op.CreatedBy,
			Metadata:  slices.Clone(op.Metadata),
		},
		ChangeType:    change,
		ChangeSummary: op.ChangeSummary,
	}
	parentChain := ""
	if parent != nil {
		v.Version, v.ParentVersion, parentChain = parent.Version+1, parent.Version, parent.Chain
		if !parent.Deleted && change != store.ChangeExpire {
			v.CreatedAt = parent.CreatedAt
		}
	}
	tombstone := change == store.ChangeDelete || change == store.ChangeExpire
	if tombstone {
		v.Deleted = true
	} else {
		v.Value, v.Checksum = slices.Clone(op.Value), op.Checksum
		if op.TTL > 0 {
			exp := now.Add(op.TTL)
			v.ExpiresAt = &exp
		}
		if op.ExpiresAt != nil {
			exp := *op.ExpiresAt
			v.ExpiresAt = &exp
		}
	}
	v.Chain = store.ChainHash(parentChain, v.Version, change, v.Checksum)
	ev.Version, ev.NewValue = v.Version, slices.Clone(v.Value)
	s.events = append(s.events, ev)
	k.versions = append(k.versions, v)
	if op.HistoryLimit > 0 && len(k.versions) > op.HistoryLimit {
		k.versions = slices.Clone(k.versions[len(k.versions)-op.HistoryLimit:])
		k.pruned = true
	}
	return v
}

// notify wakes WaitCommit callers (s.mu held).
func (s *memStore) notify() {
	close(s.commit)
	s.commit = make(chan struct{})
}

func copyEvent(e store.Event) store.Event {
	e.OldValue = slices.Clone(e.OldValue)
	e.NewValue = slices.Clone(e.NewValue)
	e.Metadata = slices.Clone(e.Metadata)
	return e
}

func (s *memStore) ReadEvents(ctx context.Context, req store.EventsRequest) (*store.EventsResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if req.Limit <= 0 || req.AfterRevision < 0 {
		return nil, fmt.Errorf("memstore: read events limit %d after %d: %w", req.Limit, req.AfterRevision, store.ErrInvalid)
	}
	if req.AfterRevision < s.oldest-1 {
		return nil, &store.CompactedError{OldestRevision: s.oldest}
	}
	res := &store.EventsResult{Revision: s.rev}
	for _, e := range s.events {
		if e.Revision <= req.AfterRevision {
			continue
		}
		if n := len(res.Events); n >= req.Limit && res.Events[n-1].Revision != e.Revision {
			res.More = true
			break
		}
		res.Events = append(res.Events, copyEvent(e))
	}
	return res, nil
}

func (s *memStore) OldestRevision(ctx context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	return s.oldest, nil
}

func (s *memStore) CompactEvents(ctx context.Context, through int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	if through < 0 {
		return fmt.Errorf("memstore: compact through %d: %w", through, store.ErrInvalid)
	}
	s.oldest = max(s.oldest, min(through, s.rev)+1)
	i := 0
	for i < len(s.events) && s.events[i].Revision < s.oldest {
		i++
	}
	s.events = slices.Clone(s.events[i:])
	return nil
}

func (s *memStore) WaitCommit(ctx context.Context, after int64) (int64, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return 0, store.ErrClosed
		}
		rev, ch := s.rev, s.commit
		s.mu.Unlock()
		if rev > after {
			return rev, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return rev, ctx.Err()
		}
	}
}

func (s *memStore) Scan(ctx context.Context, req store.ScanRequest) (*store.ScanResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if req.Limit <= 0 {
		return nil, fmt.Errorf("memstore: scan limit %d: %w", req.Limit, store.ErrInvalid)
	}
	now := orNow(req.Now)
	var entries []store.Entry
	for key, k := range s.keys {
		if compareKeys(key, req.After) <= 0 {
			continue
		}
		if v := k.live(now); v != nil {
			entries = append(entries, *copyEntry(v.Entry))
		}
	}
	slices.SortFunc(entries, func(a, b store.Entry) int { return compareKeys(a.Key, b.Key) })
	res := &store.ScanResult{Entries: entries, Revision: s.rev}
	if len(entries) > req.Limit {
		res.Entries, res.More = entries[:req.Limit], true
	}
	return res, nil
}
