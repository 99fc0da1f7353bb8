package feed

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/agentstate/agentstate/store"
)

// FromNow as SubscribeRequest.FromRevision subscribes to the events the hub
// publishes from now on (those after its current revision, see
// Subscription.StartRevision), without reading history.
const FromNow int64 = -1

// CompactedPolicy says what a subscription does when the events after its
// revision were compacted.
type CompactedPolicy int

const (
	// CompactedFail ends the subscription with a *store.CompactedError.
	CompactedFail CompactedPolicy = iota
	// CompactedSnapshot sends the current state of every matching key, then
	// continues with events (see the package documentation).
	CompactedSnapshot
)

// SubscribeRequest describes a subscription.
type SubscribeRequest struct {
	Filter Filter
	// FromRevision: deliver every matching event with Revision >
	// FromRevision, from the store first, then live. FromNow: live only.
	FromRevision int64
	OnCompacted  CompactedPolicy
}

// Kind says what a Delivery carries.
type Kind uint8

const (
	// KindEvent: Event is a change.
	KindEvent Kind = iota
	// KindSnapshotBegin: a snapshot follows; discard the state built from
	// this subscription so far. Revision is the first scan page's revision.
	KindSnapshotBegin
	// KindSnapshotEntry: Entry is the current state of one matching key.
	KindSnapshotEntry
	// KindSnapshotEnd: the snapshot and the events delivered since make up
	// the exact state at Revision; a valid resume point.
	KindSnapshotEnd
)

func (k Kind) String() string {
	switch k {
	case KindEvent:
		return "event"
	case KindSnapshotBegin:
		return "snapshot_begin"
	case KindSnapshotEntry:
		return "snapshot_entry"
	case KindSnapshotEnd:
		return "snapshot_end"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Delivery is one item of a subscription. Event and Entry are shared with
// other subscriptions: read them, never modify them.
type Delivery struct {
	Kind Kind
	// Revision: the event's; the entry's (the revision of its version); the
	// snapshot's (Begin, End).
	Revision int64
	Event    *store.Event // KindEvent
	Entry    *store.Entry // KindSnapshotEntry
}

// Subscription receives the deliveries of one filter. Next is meant for one
// goroutine; Close may be called from any.
type Subscription struct {
	hub       *Hub
	filter    Filter
	policy    CompactedPolicy
	start     int64
	notify    chan struct{} // cap 1: "something changed"
	life      context.Context
	kill      context.CancelFunc // aborts a store read in flight when the subscription ends
	stopAfter func() bool        // unregisters the Subscribe context's AfterFunc

	liveIdx int  // index in hub.live, -1 when not attached; guarded by hub.mu
	pending bool // in hub.wakeList; guarded by hub.mu

	mu        sync.Mutex
	q         []Delivery // q[head:] is buffered
	head      int
	pos       int64 // last revision handled in full (see deliver for attached subscriptions)
	attached  bool
	err       error // terminal; returned once q is drained
	closedErr error // terminal; returned at once

	// Used by Next's goroutine only.
	snap       *snapState
	skip       map[store.Key]int64 // key -> version already sent in the snapshot
	skipUntil  int64               // the last scan page's revision
	endPending bool                // KindSnapshotEnd not sent yet
}

type snapState struct {
	after   store.Key
	started bool
	rev     int64 // revision of the first page: events resume after it
	maxRev  int64 // revision of the last page
	seen    map[store.Key]int64
}

// Subscribe opens a subscription. It waits until the hub knows its starting
// revision (Run has read it once). The subscription ends when ctx ends (Next
// then returns ctx's error), on Close, when the hub stops, when it lags, or
// with a CompactedError. With CompactedFail, Subscribe returns the
// *store.CompactedError itself if FromRevision is already compacted.
func (h *Hub) Subscribe(ctx context.Context, req SubscribeRequest) (*Subscription, error) {
	if err := req.Filter.Validate(); err != nil {
		return nil, err
	}
	if req.FromRevision < FromNow {
		return nil, fmt.Errorf("feed: %w: from_revision %d is negative", store.ErrInvalid, req.FromRevision)
	}
	if req.OnCompacted != CompactedFail && req.OnCompacted != CompactedSnapshot {
		return nil, fmt.Errorf("feed: %w: unknown compacted policy %d", store.ErrInvalid, req.OnCompacted)
	}
	select {
	case <-h.ready:
	case <-h.closedCh:
		return nil, ErrHubClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s := &Subscription{
		hub:     h,
		filter:  req.Filter,
		policy:  req.OnCompacted,
		notify:  make(chan struct{}, 1),
		liveIdx: -1,
	}
	s.life, s.kill = context.WithCancel(context.Background())
	if req.FromRevision >= 0 {
		oldest, err := h.src.OldestRevision(ctx)
		if err != nil {
			s.kill()
			return nil, err
		}
		if req.FromRevision < oldest-1 {
			if req.OnCompacted == CompactedFail {
				s.kill()
				return nil, &store.CompactedError{OldestRevision: oldest}
			}
			s.snap = &snapState{}
		}
		s.pos = req.FromRevision
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		s.kill()
		return nil, ErrHubClosed
	}
	h.all[s] = struct{}{}
	if req.FromRevision == FromNow {
		s.pos = h.pub
		s.attached = true
		h.addLive(s)
	}
	s.start = s.pos
	h.mu.Unlock()

	stop := context.AfterFunc(ctx, func() { s.terminate(ctx.Err()) })
	s.mu.Lock()
	s.stopAfter = stop
	s.mu.Unlock()
	return s, nil
}

// StartRevision is the revision the subscription started after: the
// request's FromRevision, or the hub's revision for FromNow.
func (s *Subscription) StartRevision() int64 { return s.start }

// Next returns the next delivery, in (Revision, Index) order. While the
// subscription catches up it reads the store in Next's goroutine, with ctx.
// A store error during catch-up is returned without ending the
// subscription (a later Next retries). When the subscription has ended, Next
// returns what was buffered and then the reason: *LaggedError,
// *store.CompactedError, ErrHubClosed; after Close (ErrClosed) or the end of
// Subscribe's context, the reason at once.
func (s *Subscription) Next(ctx context.Context) (Delivery, error) {
	for {
		s.mu.Lock()
		if s.closedErr != nil {
			err := s.closedErr
			s.mu.Unlock()
			return Delivery{}, err
		}
		if s.head < len(s.q) {
			d := s.q[s.head]
			s.q[s.head] = Delivery{}
			s.head++
			if s.head == len(s.q) {
				s.q = s.q[:0]
				s.head = 0
			}
			s.mu.Unlock()
			return d, nil
		}
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return Delivery{}, err
		}
		attached, pos := s.attached, s.pos
		s.mu.Unlock()

		if !attached {
			if err := s.advance(ctx, pos); err != nil {
				return Delivery{}, err
			}
			continue
		}
		select {
		case <-s.notify:
		case <-ctx.Done():
			return Delivery{}, ctx.Err()
		}
	}
}

// NextBatch is Next for many: it waits like Next for one delivery, then
// appends it and every other delivery buffered now to buf, and returns buf.
// On error it returns buf unchanged and the error, like Next.
func (s *Subscription) NextBatch(ctx context.Context, buf []Delivery) ([]Delivery, error) {
	d, err := s.Next(ctx)
	if err != nil {
		return buf, err
	}
	buf = append(buf, d)
	s.mu.Lock()
	if s.closedErr == nil && s.head < len(s.q) {
		buf = append(buf, s.q[s.head:]...)
		clear(s.q)
		s.q, s.head = s.q[:0], 0
	}
	s.mu.Unlock()
	return buf, nil
}

// Close ends the subscription; a Next in progress returns ErrClosed. It is
// idempotent.
func (s *Subscription) Close() error {
	s.terminate(ErrClosed)
	return nil
}

// terminate ends the subscription at once with err and leaves the hub.
func (s *Subscription) terminate(err error) {
	// Set the error before leaving the hub, so a concurrent attach sees it.
	s.end(err, true)
	h := s.hub
	h.mu.Lock()
	h.removeLive(s)
	delete(h.all, s)
	h.mu.Unlock()
}

// end records a terminal error; immediate drops the buffer too.
func (s *Subscription) end(err error, immediate bool) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	if immediate && s.closedErr == nil {
		s.closedErr = err
		clear(s.q)
		s.q, s.head = nil, 0
	}
	s.attached = false
	s.mu.Unlock()
	s.released()
}

// released frees what an ended subscription holds; s.mu must not be held.
func (s *Subscription) released() {
	s.kill()
	s.mu.Lock()
	stop := s.stopAfter
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	s.wake()
}

func (s *Subscription) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// deliver appends one revision's matching events; called by the hub with
// hub.mu held, for an attached subscription. prev is the hub's revision
// before rev: an attached subscription has handled every revision up to
// max(pos, prev). It reports false when the subscription has ended (lagged
// now, or earlier) and must leave the hub, and whether it added deliveries
// (the hub then wakes the consumer once the page is published).
func (s *Subscription) deliver(group []store.Event, rev, prev int64, limit int) (ok, added bool) {
	// pos is written only under hub.mu while attached, so this read is safe.
	if rev <= s.pos {
		return true, false // delivered by the catch-up read already
	}
	first := -1
	for i := range group {
		if s.filter.Match(&group[i]) {
			first = i
			break
		}
	}
	if first < 0 {
		return true, false
	}
	s.mu.Lock()
	if s.err != nil || s.closedErr != nil {
		s.mu.Unlock()
		return false, false
	}
	buffered := len(s.q) - s.head
	if s.head > 0 && len(s.q) == cap(s.q) && s.head >= len(s.q)/2 {
		// Reuse the consumed front instead of growing.
		n := copy(s.q, s.q[s.head:])
		clear(s.q[n:])
		s.q, s.head = s.q[:n], 0
	}
	base := len(s.q)
	for i := first; i < len(group); i++ {
		if i == first || s.filter.Match(&group[i]) {
			s.q = append(s.q, Delivery{Kind: KindEvent, Revision: rev, Event: &group[i]})
		}
	}
	if buffered > 0 && buffered+len(s.q)-base > limit {
		// Cut at the revision boundary: none of rev is delivered.
		clear(s.q[base:])
		s.q = s.q[:base]
		s.err = &LaggedError{ResumeFrom: max(s.pos, prev)}
		s.attached = false
		s.mu.Unlock()
		s.released()
		return false, false
	}
	s.pos = rev
	s.mu.Unlock()
	return true, true
}

// advance does one step of catching up: a page of events or of snapshot.
func (s *Subscription) advance(ctx context.Context, pos int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.life, cancel)
	defer func() {
		stop()
		cancel()
	}()
	var err error
	if s.snap != nil {
		err = s.scanPage(rctx)
	} else {
		err = s.readPage(rctx, pos)
	}
	if err != nil && s.life.Err() != nil {
		return nil // ended meanwhile; Next reports why
	}
	return err
}

func (s *Subscription) readPage(ctx context.Context, pos int64) error {
	h := s.hub
	res, err := h.src.ReadEvents(ctx, store.EventsRequest{AfterRevision: pos, Limit: h.opts.PageSize})
	if err != nil {
		var ce *store.CompactedError
		if !errors.As(err, &ce) {
			return err
		}
		if s.policy == CompactedSnapshot {
			s.snap = &snapState{}
			s.skip, s.endPending = nil, false
			return nil
		}
		s.terminateLater(err)
		return nil
	}
	s.mu.Lock()
	if s.err != nil || s.closedErr != nil {
		s.mu.Unlock()
		return nil
	}
	for i := range res.Events {
		e := &res.Events[i]
		if s.endPending && e.Revision > s.skipUntil {
			s.snapshotEnd()
		}
		if !s.filter.Match(e) {
			continue
		}
		if v, ok := s.skip[e.Key]; ok && e.Version <= v {
			continue // the snapshot sent this version or a newer one
		}
		s.q = append(s.q, Delivery{Kind: KindEvent, Revision: e.Revision, Event: e})
	}
	if n := len(res.Events); n > 0 {
		s.pos = max(s.pos, res.Events[n-1].Revision)
	} else if !res.More {
		s.pos = max(s.pos, res.Revision)
	}
	if s.endPending && s.pos >= s.skipUntil {
		s.snapshotEnd()
	}
	s.mu.Unlock()
	if res.More {
		return nil
	}
	s.attach()
	return nil
}

// terminateLater ends the subscription with err after its buffer drains.
func (s *Subscription) terminateLater(err error) {
	s.end(err, false)
	h := s.hub
	h.mu.Lock()
	h.removeLive(s)
	delete(h.all, s)
	h.mu.Unlock()
}

// attach switches to live delivery if the hub has published nothing after
// the subscription's position; otherwise the next advance reads on.
func (s *Subscription) attach() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.closedErr != nil {
		return
	}
	if h.closed {
		s.err = ErrHubClosed
		return
	}
	if h.pub > s.pos {
		return
	}
	if s.endPending {
		s.snapshotEnd()
	}
	s.skip = nil
	s.attached = true
	h.addLive(s)
}

// snapshotEnd sends KindSnapshotEnd; s.mu held.
func (s *Subscription) snapshotEnd() {
	s.q = append(s.q, Delivery{Kind: KindSnapshotEnd, Revision: s.skipUntil})
	s.endPending = false
	s.skip = nil
}

// scanPage reads one page of the current state.
func (s *Subscription) scanPage(ctx context.Context) error {
	h := s.hub
	sn := s.snap
	res, err := h.src.Scan(ctx, store.ScanRequest{After: sn.after, Limit: h.opts.PageSize, Now: time.Now()})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.closedErr != nil {
		return nil
	}
	if !sn.started {
		sn.started = true
		sn.rev = res.Revision
		sn.seen = make(map[store.Key]int64)
		s.q = append(s.q, Delivery{Kind: KindSnapshotBegin, Revision: res.Revision})
	}
	sn.maxRev = max(sn.maxRev, res.Revision)
	for i := range res.Entries {
		e := &res.Entries[i]
		if e.Deleted || !s.filter.MatchKey(e.Key) {
			continue
		}
		s.q = append(s.q, Delivery{Kind: KindSnapshotEntry, Revision: e.Revision, Entry: e})
		if e.Revision > sn.rev {
			// Written after the first page: its events after sn.rev up to
			// this version are already in this entry.
			sn.seen[e.Key] = e.Version
		}
	}
	if n := len(res.Entries); n > 0 {
		sn.after = res.Entries[n-1].Key
	}
	if !res.More || len(res.Entries) == 0 {
		s.snap = nil
		s.pos = sn.rev
		s.skip = sn.seen
		s.skipUntil = sn.maxRev
		s.endPending = true
		if s.pos >= s.skipUntil {
			s.snapshotEnd()
		}
	}
	return nil
}
