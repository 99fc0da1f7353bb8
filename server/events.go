package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/agentstate/agentstate/feed"
	"github.com/agentstate/agentstate/store"
)

// The change feed over SSE (API.md "Change events").

// eventJSON is a change event on the wire.
type eventJSON struct {
	EventID    string          `json:"event_id"`
	Revision   int64           `json:"revision"`
	AgentID    string          `json:"agent_id"`
	Tier       string          `json:"tier"`
	StateKey   string          `json:"state_key"`
	ChangeType string          `json:"change_type"`
	OldValue   json.RawMessage `json:"old_value"`
	NewValue   json.RawMessage `json:"new_value"`
	Version    int64           `json:"version"`
	Timestamp  string          `json:"timestamp"`
	CreatedBy  string          `json:"created_by"`
	Metadata   json.RawMessage `json:"metadata"`
}

func eventOut(e *store.Event) *eventJSON {
	md := e.Metadata
	if md == nil {
		md = json.RawMessage("{}")
	}
	return &eventJSON{
		EventID: e.ID(), Revision: e.Revision, AgentID: e.Key.AgentID, Tier: e.Key.Tier, StateKey: e.Key.Key,
		ChangeType: e.ChangeType, OldValue: rawOrNull(e.OldValue), NewValue: rawOrNull(e.NewValue),
		Version: e.Version, Timestamp: formatTime(e.Timestamp), CreatedBy: e.CreatedBy, Metadata: md,
	}
}

// eventCache keeps the wire form of recently delivered events, so that an
// event fanned out to many subscribers is encoded once, not once per
// subscriber. Live subscribers share the hub's *store.Event, which is the
// key; a slot holds its event, so the address cannot be reused while cached.
// Direct-mapped and bounded: a collision only costs an encoding.
type eventCache struct {
	mu    sync.Mutex
	slots [4096]struct {
		e *store.Event
		b []byte
	}
}

func (c *eventCache) encode(e *store.Event) ([]byte, error) {
	i := (uint64(e.Revision)*64 + uint64(e.Index)) % uint64(len(c.slots))
	c.mu.Lock()
	if s := c.slots[i]; s.e == e {
		c.mu.Unlock()
		return s.b, nil
	}
	c.mu.Unlock()
	b, err := marshalNoEscape(eventOut(e))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.slots[i].e, c.slots[i].b = e, b
	c.mu.Unlock()
	return b, nil
}

// marshalNoEscape is json.Marshal without HTML escaping: values go out as
// stored.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// snapshotJSONMsg is a snapshot delivery (on_compacted=snapshot).
type snapshotMsgJSON struct {
	Type     string     `json:"type"` // snapshot_begin, snapshot, snapshot_end
	Revision int64      `json:"revision"`
	Entry    *entryJSON `json:"entry,omitempty"`
}

func snapshotOut(d *feed.Delivery) *snapshotMsgJSON {
	switch d.Kind {
	case feed.KindSnapshotBegin:
		return &snapshotMsgJSON{Type: "snapshot_begin", Revision: d.Revision}
	case feed.KindSnapshotEnd:
		return &snapshotMsgJSON{Type: "snapshot_end", Revision: d.Revision}
	}
	return &snapshotMsgJSON{Type: "snapshot", Revision: d.Revision, Entry: entryOut(d.Entry, true)}
}

// subscribeRequest reads a subscription from query parameters (SSE) — the
// same fields as a WebSocket subscribe message.
func subscribeRequest(q url.Values, lastID string) (feed.SubscribeRequest, error) {
	var req feed.SubscribeRequest
	f, err := feed.NewFilter(q["agent_id"], q["tier"], q.Get("key"), q["change_type"])
	if err != nil {
		return req, invalidArg("filter", "%s", unwrapInvalid(err))
	}
	req.Filter = f
	req.FromRevision = feed.FromNow
	if from, ok, err := queryInt(q, "from_revision", 0); err != nil {
		return req, err
	} else if ok {
		req.FromRevision = from
	}
	if lastID != "" {
		n, err := strconv.ParseInt(lastID, 10, 64)
		if err != nil || n < 0 {
			return req, invalidArg("Last-Event-ID", "Last-Event-ID must be a revision (an integer >= 0), not %q", lastID)
		}
		req.FromRevision = n
	}
	if req.OnCompacted, err = compactedPolicy(q.Get("on_compacted")); err != nil {
		return req, err
	}
	return req, nil
}

func compactedPolicy(s string) (feed.CompactedPolicy, error) {
	switch s {
	case "", "fail":
		return feed.CompactedFail, nil
	case "snapshot":
		return feed.CompactedSnapshot, nil
	}
	return 0, invalidArg("on_compacted", "on_compacted must be fail or snapshot, not %q", s)
}

// unwrapInvalid drops the store's "store: invalid request: " prefix.
func unwrapInvalid(err error) string {
	msg := err.Error()
	if p := store.ErrInvalid.Error() + ": "; len(msg) > len(p) && msg[:len(p)] == p {
		return msg[len(p):]
	}
	return msg
}

// events: GET /v1/events — every matching change after from_revision (or
// Last-Event-ID), from the store first, then live. Events of one revision
// (a batch) go out in one write, and only the last of them carries the
// `id:` line, so a client that resumes from its last id never misses part of
// a batch (it may see a partly received batch again: event_id tells).
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	req, err := subscribeRequest(q, r.Header.Get("Last-Event-ID"))
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	ctx, cancel := s.streamContext(r)
	defer cancel()
	sub, err := s.m.Subscribe(ctx, req)
	var cpe *store.CompactedError
	if err != nil && !errors.As(err, &cpe) {
		s.fail(w, r, err, nil)
		return
	}
	sw := s.startSSE(w, r)
	if err != nil { // compacted: API.md says an error message, then the end
		sw.sendError(toAPIError(err, nil))
		return
	}
	defer sub.Close()
	var batch []feed.Delivery
	for {
		batch, err = nextBatch(ctx, sw, sub, batch[:0])
		if err != nil {
			s.endStream(sw, ctx, err)
			return
		}
		for i := range batch {
			d := &batch[i]
			if d.Kind != feed.KindEvent {
				id := ""
				if d.Kind == feed.KindSnapshotEnd {
					id = strconv.FormatInt(d.Revision, 10) // a valid resume point
				}
				if err := sw.event("snapshot", id, snapshotOut(d)); err != nil {
					return
				}
				continue
			}
			id := ""
			if i == len(batch)-1 || batch[i+1].Kind != feed.KindEvent || batch[i+1].Revision != d.Revision {
				id = strconv.FormatInt(d.Revision, 10)
			}
			b, err := s.eventWire.encode(d.Event)
			if err != nil {
				s.endStream(sw, ctx, err)
				return
			}
			sw.eventRaw("change", id, b)
		}
		if err := sw.flush(); err != nil {
			return
		}
	}
}

// nextBatch waits for deliveries, sending a heartbeat comment every
// heartbeat interval while there are none.
func nextBatch(ctx context.Context, sw *sseWriter, sub *feed.Subscription, buf []feed.Delivery) ([]feed.Delivery, error) {
	var out []feed.Delivery
	_, err := waitWithHeartbeat(ctx, sw, func(wctx context.Context) (int64, error) {
		b, err := sub.NextBatch(wctx, buf)
		out = b
		return 0, err
	})
	return out, err
}

// endStream ends an event stream: with an error message when the stream
// failed (a lagging consumer gets unavailable with details.resume_from),
// silently when the client left or the server is stopping.
func (s *Server) endStream(sw *sseWriter, ctx context.Context, err error) {
	if ctx.Err() != nil || errors.Is(err, feed.ErrClosed) {
		return
	}
	sw.sendError(toAPIError(err, nil))
}
