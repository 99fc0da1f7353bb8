package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// FromNow starts a watch with the changes committed from now on, without
// history: Watch(ctx, f, client.FromNow).
const FromNow int64 = -1

// What a watch does when its start revision is older than the history the
// server keeps (WatchFilter.OnCompacted).
const (
	// OnCompactedFail ends the watch with an error matching ErrCompacted
	// (the server's default).
	OnCompactedFail = "fail"
	// OnCompactedSnapshot has the server send the current state of the
	// watched keys (events with Snapshot set) and the changes after it.
	OnCompactedSnapshot = "snapshot"
)

// ErrWatcherClosed is returned by Next after Close.
var ErrWatcherClosed = errors.New("client: watcher closed")

// WatchFilter selects the change events of a watch. An empty field
// matches everything; the zero value watches every change of the store.
type WatchFilter struct {
	AgentIDs    []string // agent ids (or shared spaces) to watch
	Tiers       []string
	Key         string   // a glob: * within a segment, ** across
	ChangeTypes []string // Change* constants
	// OnCompacted is OnCompactedFail, OnCompactedSnapshot or "" (the
	// server's default, fail).
	OnCompacted string
}

// Watcher delivers the change events of a watch in revision order,
// exactly once, across reconnections. Next is meant for one goroutine;
// Close may be called from any.
type Watcher struct{ s *subscription[Event] }

// Watch follows the change events matching f: GET /v1/events, as
// Server-Sent Events. fromRevision ≥ 0 delivers first every matching event
// with a revision > fromRevision (0: all the history the server keeps),
// then the live ones; FromNow only the live ones.
//
// Watch does not connect: the first Next does. When the connection is lost
// (a network error, a server restart, a server shedding a consumer that
// fell behind with an unavailable error), the watcher reconnects with
// jittered exponential backoff (WithReconnectBackoff, WithReconnectHook)
// and resumes after the last revision it delivered in full; events of a
// revision seen in part before are not delivered twice (they are told
// apart by event_id). Until it has seen an event, a watcher started
// FromNow has no position: changes committed while it reconnects are then
// not seen. Start from a known revision (Revision of a previous watcher,
// an Entry's Revision) for an unbroken sequence.
//
// A Timeout of the http.Client (WithHTTPClient) cuts long connections too;
// the watcher resumes after it like after any cut.
//
// A start revision older than the oldest kept one ends the watch with an
// error matching ErrCompacted (see (*Error).OldestRevision), unless
// f.OnCompacted is OnCompactedSnapshot: then the watch delivers an
// EventSnapshotBegin, an EventSnapshot per watched key (its current
// entry), the changes after the snapshot, and an EventSnapshotEnd. Answers such as
// permission_denied or invalid_argument end it too. The watch ends when
// ctx ends or Close is called.
func (c *Client) Watch(ctx context.Context, f WatchFilter, fromRevision int64) *Watcher {
	q := url.Values{}
	for _, a := range f.AgentIDs {
		q.Add("agent_id", a)
	}
	for _, t := range f.Tiers {
		q.Add("tier", t)
	}
	if f.Key != "" {
		q.Set("key", f.Key)
	}
	for _, ct := range f.ChangeTypes {
		q.Add("change_type", ct)
	}
	if f.OnCompacted != "" {
		q.Set("on_compacted", f.OnCompacted)
	}
	var err error
	switch f.OnCompacted {
	case "", OnCompactedFail, OnCompactedSnapshot:
	default:
		err = fmt.Errorf("client: invalid OnCompacted %q: want %q or %q", f.OnCompacted, OnCompactedFail, OnCompactedSnapshot)
	}
	start := max(fromRevision, FromNow)
	return &Watcher{newSubscription(ctx, c, "/v1/events", q, "from_revision", start, (&changeDecoder{}).decode, err)}
}

// Next returns the next event, waiting for it (and reconnecting as
// needed) until ctx ends. An error that ends the watch is returned by
// every later call; an error of ctx is not, and a later Next goes on.
func (w *Watcher) Next(ctx context.Context) (Event, error) { return w.s.next(ctx) }

// Revision is the last revision delivered in full: a new watch from there
// goes on where this one stopped. FromNow (-1) until it is known.
func (w *Watcher) Revision() int64 { return w.s.done.Load() }

// Close ends the watch and its connection; a blocked Next returns
// ErrWatcherClosed. It may be called more than once.
func (w *Watcher) Close() error { return w.s.close() }

// Kinds of the messages of a watch (Event.Type).
const (
	// EventChange is a change event.
	EventChange = "change"
	// EventSnapshotBegin starts a snapshot (OnCompactedSnapshot): what was
	// built from the watch so far is to be dropped, the current state of
	// the watched keys follows. It comes again if the snapshot has to start
	// over (after a reconnection in its middle, for one).
	EventSnapshotBegin = "snapshot_begin"
	// EventSnapshot is the current state of one watched key: Snapshot.
	EventSnapshot = "snapshot"
	// EventSnapshotEnd says that the snapshot and the changes delivered
	// since make up the state at Revision.
	EventSnapshotEnd = "snapshot_end"
)

// changeDecoder decodes the messages of /v1/events. During a snapshot it
// keeps the version sent of each key, and drops the change events of a key
// up to that version (they are already part of the snapshot): the server
// does so too, but not across a reconnection.
type changeDecoder struct {
	snapVersions map[string]int64 // key identity → version in the snapshot
}

func keyID(agentID, tier, key string) string { return agentID + "\x00" + tier + "\x00" + key }

func (d *changeDecoder) decode(m sseMessage) (item[Event], bool, error) {
	switch m.event {
	case "change":
		var e Event
		if err := json.Unmarshal([]byte(m.data), &e); err != nil {
			return item[Event]{}, false, fmt.Errorf("%w: decode change event: %w", ErrTransport, err)
		}
		e.Type, e.Raw = EventChange, json.RawMessage(m.data)
		k := keyID(e.AgentID, e.Tier, e.StateKey)
		if v, ok := d.snapVersions[k]; ok && e.Version <= v {
			return item[Event]{}, false, nil
		}
		dedup := "e:" + e.EventID
		if e.EventID == "" {
			dedup = "k:" + k + "\x00" + strconv.FormatInt(e.Version, 10)
		}
		return item[Event]{v: e, pos: e.Revision, dedup: dedup}, true, nil
	case "snapshot":
		var s struct {
			Type     string `json:"type"`
			Entry    *Entry `json:"entry"`
			Revision int64  `json:"revision"`
		}
		if err := json.Unmarshal([]byte(m.data), &s); err != nil {
			return item[Event]{}, false, fmt.Errorf("%w: decode snapshot message: %w", ErrTransport, err)
		}
		e := Event{Type: s.Type, Revision: s.Revision, Raw: json.RawMessage(m.data)}
		switch s.Type {
		case EventSnapshotBegin:
			d.snapVersions = map[string]int64{}
		case EventSnapshotEnd:
			d.snapVersions = nil
		case EventSnapshot, "":
			if s.Entry == nil {
				return item[Event]{}, false, fmt.Errorf("%w: decode snapshot message: no entry", ErrTransport)
			}
			e.Type, e.Snapshot = EventSnapshot, s.Entry
			if d.snapVersions == nil {
				d.snapVersions = map[string]int64{}
			}
			d.snapVersions[keyID(s.Entry.AgentID, s.Entry.Tier, s.Entry.Key)] = s.Entry.Version
		default:
			return item[Event]{}, false, nil // a kind this client does not know
		}
		return item[Event]{v: e, pos: s.Revision, unordered: true}, true, nil
	}
	return item[Event]{}, false, nil // another kind of message: not ours
}

// item is a decoded message of a subscription.
type item[T any] struct {
	v     T
	pos   int64  // its revision, position or version: the order of the stream
	dedup string // identity for deduplication; "" never deduplicated
	// unordered items (snapshot messages) are always delivered and say
	// nothing of the position: only their id lines do.
	unordered bool
}

// subscription is the reconnecting Server-Sent Events reader behind the
// watchers. Its position, done, is the last pos delivered in full: the
// server writes "id: <pos>" on the last message of each pos (the events of
// one revision, or one append, share it), and a message of a greater pos
// also completes the ones before (the stream is in order). A reconnection
// asks for what follows done (the query's posParam and Last-Event-ID), and
// items of a pos not yet complete that were already delivered are skipped
// by their dedup identity.
type subscription[T any] struct {
	c        *Client
	ctx      context.Context // the subscription's life; Close cancels it
	cancel   context.CancelFunc
	closed   atomic.Bool
	path     string
	query    url.Values
	posParam string
	decode   func(sseMessage) (item[T], bool, error)

	done   atomic.Int64     // -1: unknown
	seen   map[string]int64 // dedup → pos of items delivered with pos > done
	resume int64            // ≥ 0: where the next connection starts, from resume_from
	err    error            // terminal

	attempt  int   // consecutive failures, for the backoff
	lastErr  error // why the connection was lost, for the reconnect hook
	mu       sync.Mutex
	conn     *sseReader
	body     io.ReadCloser
	connStop context.CancelFunc // cancels the connection; guarded by mu
}

func newSubscription[T any](ctx context.Context, c *Client, path string, q url.Values, posParam string, start int64, decode func(sseMessage) (item[T], bool, error), err error) *subscription[T] {
	if ctx == nil {
		ctx = context.Background()
	}
	s := &subscription[T]{c: c, path: path, query: q, posParam: posParam, decode: decode,
		seen: map[string]int64{}, resume: -1, err: err}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.done.Store(start)
	return s
}

func (s *subscription[T]) close() error {
	s.closed.Store(true)
	s.cancel() // stops the connection, whose context derives from s.ctx
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.body != nil {
		s.body.Close() // unblocks a read at once
	}
	return nil
}

// ended returns the error that ends the subscription, if it has ended.
func (s *subscription[T]) ended() error {
	if s.err != nil {
		return s.err
	}
	if s.ctx.Err() != nil {
		s.disconnect()
		if s.closed.Load() {
			s.err = ErrWatcherClosed
		} else {
			s.err = context.Cause(s.ctx)
		}
		return s.err
	}
	return nil
}

func (s *subscription[T]) next(ctx context.Context) (T, error) {
	var zero T
	if err := s.ended(); err != nil {
		return zero, err
	}
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	// ctx ending interrupts a wait or a read; the connection is dropped and
	// a later next reconnects from the position.
	call, cancelCall := context.WithCancel(s.ctx)
	defer cancelCall()
	stop := context.AfterFunc(ctx, func() {
		cancelCall()
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.connStop != nil {
			s.connStop()
		}
	})
	defer stop()
	// interrupted returns the error of an ended subscription or call.
	interrupted := func() error {
		if err := s.ended(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			s.disconnect()
			return err
		}
		return nil
	}
	for {
		if s.conn == nil {
			if s.lastErr != nil {
				d := s.c.backoff(s.attempt)
				s.attempt++
				if s.c.onReconnect != nil {
					s.c.onReconnect(s.lastErr, d)
				}
				s.lastErr = nil
				if s.c.sleep(call, d) != nil {
					if err := interrupted(); err != nil {
						return zero, err
					}
				}
			}
			if err := s.connect(ctx); err != nil {
				if err := interrupted(); err != nil {
					return zero, err
				}
				var apiErr *Error
				if errors.As(err, &apiErr) && !retryable(apiErr) || errors.Is(err, errNotEventStream) {
					s.err = err
					return zero, err
				}
				s.lastErr = err
				continue
			}
		}
		m, err := s.conn.next()
		if err != nil {
			if err := interrupted(); err != nil {
				return zero, err
			}
			s.disconnect()
			if errors.Is(err, errSSELineTooLong) {
				s.err = fmt.Errorf("%w: %w", ErrTransport, err)
				return zero, s.err
			}
			if err == io.EOF {
				err = errors.New("the server ended the event stream")
			}
			s.lastErr = fmt.Errorf("%w: %s: %w", ErrTransport, s.path, err)
			continue
		}
		if m.comment {
			s.attempt = 0 // the server is well: the next failure starts the backoff over
			continue
		}
		if m.event == "error" {
			e := streamError(m.data)
			s.disconnect()
			if e.Code == CodeUnavailable {
				if r, ok := e.ResumeFrom(); ok && r >= 0 {
					s.resume = r
					if d := s.done.Load(); d >= 0 {
						s.resume = min(d, r)
					}
				}
				s.lastErr = e
				continue
			}
			s.err = e
			return zero, e
		}
		s.attempt = 0
		it, deliver := item[T]{}, false
		if m.data != "" {
			var ok bool
			it, ok, err = s.decode(m)
			if err != nil {
				s.disconnect()
				s.err = err
				return zero, err
			}
			if ok {
				deliver = s.admit(it)
			}
		}
		if m.hasID {
			if n, err := strconv.ParseInt(m.id, 10, 64); err == nil {
				s.advance(n)
			}
		}
		if deliver {
			return it.v, nil
		}
	}
}

// admit decides whether an item is delivered, and moves the position by
// what its arrival proves complete.
func (s *subscription[T]) admit(it item[T]) bool {
	if it.unordered {
		return true
	}
	// In order: every pos before this one is complete.
	s.advance(it.pos - 1)
	if d := s.done.Load(); d >= 0 && it.pos <= d {
		return false // delivered before the reconnection
	}
	if it.dedup != "" {
		if _, dup := s.seen[it.dedup]; dup {
			return false
		}
		s.seen[it.dedup] = it.pos
	}
	return true
}

// advance moves the position to pos (never back) and forgets the
// identities of the items it completes.
func (s *subscription[T]) advance(pos int64) {
	if pos <= s.done.Load() {
		return
	}
	s.done.Store(pos)
	for k, p := range s.seen {
		if p <= pos {
			delete(s.seen, k)
		}
	}
}

// errNotEventStream is a 200 answer that is not text/event-stream (the
// URL of something else than an agentstate server).
var errNotEventStream = errors.New("client: answer is not an event stream")

// connect opens the event stream from the position. The connection
// outlives the call; call, the context of the Next that connects, only
// interrupts the connecting.
func (s *subscription[T]) connect(call context.Context) error {
	q := url.Values{}
	for k, v := range s.query {
		q[k] = v
	}
	pos := s.done.Load()
	if s.resume >= 0 {
		pos, s.resume = s.resume, -1
	}
	if pos >= 0 {
		q.Set(s.posParam, strconv.FormatInt(pos, 10))
	}
	u := s.c.base + s.path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	ctx, stop := context.WithCancel(s.ctx)
	s.mu.Lock()
	s.connStop = stop // from now on, call ending stops the connection (see next)
	s.mu.Unlock()
	if err := call.Err(); err != nil {
		s.disconnect()
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		s.disconnect()
		return fmt.Errorf("client: GET %s: %w", s.path, err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if pos >= 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(pos, 10))
	}
	if s.c.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.c.token)
	}
	if s.c.userAgent != "" {
		req.Header.Set("User-Agent", s.c.userAgent)
	}
	resp, err := s.c.hc.Do(req)
	if err != nil {
		s.disconnect()
		return fmt.Errorf("%w: %w", ErrTransport, err)
	}
	if resp.StatusCode != http.StatusOK {
		data, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		s.disconnect()
		if s.c.hook != nil {
			s.c.hook(resp, data)
		}
		if rerr != nil {
			return fmt.Errorf("%w: GET %s: read answer: %w", ErrTransport, s.path, rerr)
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return fmt.Errorf("%w: %w (HTTP %d)", ErrTransport, errNotEventStream, resp.StatusCode)
		}
		return newError(resp.StatusCode, data)
	}
	if s.c.hook != nil {
		s.c.hook(resp, nil)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		resp.Body.Close()
		s.disconnect()
		return fmt.Errorf("%w: %w (Content-Type %q)", ErrTransport, errNotEventStream, resp.Header.Get("Content-Type"))
	}
	s.mu.Lock()
	s.body = resp.Body
	s.mu.Unlock()
	s.conn = newSSEReader(resp.Body, maxSSELine)
	return nil
}

// disconnect drops the connection, if any.
func (s *subscription[T]) disconnect() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.connStop != nil {
		s.connStop()
		s.connStop = nil
	}
	if s.body != nil {
		s.body.Close()
		s.body = nil
	}
	s.conn = nil
}

// retryable reports whether an answer to a subscription is worth a retry:
// the server or a proxy in front of it is overloaded or restarting.
func retryable(e *Error) bool {
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// streamError decodes the data of an "event: error" message.
func streamError(data string) *Error {
	e := newError(0, []byte(data))
	if e.Code == CodeUnknown {
		e.Code = CodeInternal
	}
	return e
}

// backoff is the delay before the retry after attempt failures in a row.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.backoffMax
	if attempt < 32 {
		if b := c.backoffMin << attempt; b > 0 && b < d {
			d = b
		}
	}
	return c.jitter(d)
}

// halfJitter picks a delay between d/2 and d, so that clients cut off
// together do not come back together.
func halfJitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
