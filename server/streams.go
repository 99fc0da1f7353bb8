package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/agentstate/agentstate/state"
	"github.com/agentstate/agentstate/store"
)

// The event store's endpoints (API.md "Event streams").

type appendBody struct {
	Events          []json.RawMessage `json:"events"`
	ExpectedVersion json.RawMessage   `json:"expected_version"` // N, -1 or null
}

type newEventBody struct {
	EventID   string          `json:"event_id"`
	EventType string          `json:"event_type"`
	EventData json.RawMessage `json:"event_data"`
	Metadata  json.RawMessage `json:"metadata"`
}

type streamEventJSON struct {
	EventID   string          `json:"event_id"`
	EventType string          `json:"event_type"`
	EventData json.RawMessage `json:"event_data"`
	Version   int64           `json:"version"`
	Timestamp string          `json:"timestamp"`
	Metadata  json.RawMessage `json:"metadata"`
	// Set on subscriptions to every stream, where events of many streams mix.
	StreamID string `json:"stream_id,omitempty"`
	Position int64  `json:"position,omitempty"`
}

func streamEventOut(e *store.StreamEvent, withStream bool) streamEventJSON {
	out := streamEventJSON{
		EventID: e.EventID, EventType: e.Type, EventData: rawOrNull(e.Data), Version: e.Version,
		Timestamp: formatTime(e.Timestamp), Metadata: e.Metadata,
	}
	if out.Metadata == nil {
		out.Metadata = json.RawMessage("{}")
	}
	if withStream {
		out.StreamID, out.Position = e.StreamID, e.Position
	}
	return out
}

// appendEvents: POST /v1/streams/{stream_id}/events
func (s *Server) appendEvents(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r, s.batchLimit)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	var in appendBody
	if err := decodeObject(body, &in, "", -1); err != nil {
		s.fail(w, r, err, nil)
		return
	}
	var exp *int64
	if v := nullToNil(in.ExpectedVersion); v != nil {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || n < store.ExpectNoStream {
			s.fail(w, r, invalidArg("expected_version", "expected_version must be -1 (no stream), a version >= 0, or null (any); got %s", v), nil)
			return
		}
		exp = &n
	}
	evs := make([]store.NewStreamEvent, len(in.Events))
	for i, raw := range in.Events {
		var e newEventBody
		if err := decodeObject(raw, &e, "events["+strconv.Itoa(i)+"].", i); err != nil {
			s.fail(w, r, err, nil)
			return
		}
		evs[i] = store.NewStreamEvent{EventID: e.EventID, Type: e.EventType, Data: nullToNil(e.EventData), Metadata: nullToNil(e.Metadata)}
		if e.EventData != nil && evs[i].Data == nil {
			evs[i].Data = json.RawMessage("null")
		}
	}
	res, err := s.m.AppendStream(r.Context(), state.AppendStreamRequest{StreamID: r.PathValue("stream_id"), Events: evs, ExpectedVersion: exp})
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	s.writeJSON(w, r, http.StatusOK, map[string]int64{"next_version": res.NextVersion, "position": res.Position})
}

// readEvents: GET /v1/streams/{stream_id}/events
func (s *Server) readEvents(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	from, _, err := queryInt(q, "from_version", 0)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	maxCount, _, err := queryInt(q, "max_count", 1)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	id := r.PathValue("stream_id")
	evs, err := s.m.ReadStream(r.Context(), id, from, int(maxCount))
	if err != nil {
		s.fail(w, r, err, &errContext{notFound: "stream " + strconv.Quote(id) + " not found"})
		return
	}
	out := make([]streamEventJSON, len(evs))
	for i := range evs {
		out[i] = streamEventOut(&evs[i], false)
	}
	s.writeJSON(w, r, http.StatusOK, map[string]any{"events": out})
}

type snapshotBody struct {
	Version *int64          `json:"version"`
	State   json.RawMessage `json:"state"`
}

type snapshotJSON struct {
	StreamID  string          `json:"stream_id"`
	Version   int64           `json:"version"`
	State     json.RawMessage `json:"state,omitempty"`
	CreatedAt string          `json:"created_at"`
}

// putSnapshot: PUT /v1/streams/{stream_id}/snapshot
func (s *Server) putSnapshot(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r, s.singleLimit)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	var in snapshotBody
	if err := decodeObject(body, &in, "", -1); err != nil {
		s.fail(w, r, err, nil)
		return
	}
	if in.Version == nil {
		s.fail(w, r, invalidArg("version", "version is required"), nil)
		return
	}
	id := r.PathValue("stream_id")
	snap, err := s.m.SaveSnapshot(r.Context(), id, *in.Version, in.State)
	if err != nil {
		s.fail(w, r, err, &errContext{notFound: "stream " + strconv.Quote(id) + " has no version " + strconv.FormatInt(*in.Version, 10)})
		return
	}
	s.writeJSON(w, r, http.StatusOK, snapshotJSON{StreamID: snap.StreamID, Version: snap.Version, CreatedAt: formatTime(snap.CreatedAt)})
}

// getSnapshot: GET /v1/streams/{stream_id}/snapshot
func (s *Server) getSnapshot(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("stream_id")
	snap, err := s.m.LoadSnapshot(r.Context(), id)
	if err != nil {
		s.fail(w, r, err, &errContext{notFound: "stream " + strconv.Quote(id) + " has no snapshot"})
		return
	}
	s.writeJSON(w, r, http.StatusOK, snapshotJSON{StreamID: snap.StreamID, Version: snap.Version, State: snap.State, CreatedAt: formatTime(snap.CreatedAt)})
}

// subscribeStream: GET /v1/streams/{stream_id}/subscribe?from_version=V —
// SSE catch-up subscription to one stream: every event with version >= V
// from the store, then each new one as it is appended. `id:` is the version.
func (s *Server) subscribeStream(w http.ResponseWriter, r *http.Request) {
	_, next, last, err := streamStart(r, "from_version")
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	if last != nil {
		next = *last + 1 // the id is the last version received
	}
	id := r.PathValue("stream_id")
	ctx, cancel := s.streamContext(r)
	defer cancel()
	// Validate (and authorize) before the stream starts, so bad input is a
	// plain 4xx answer rather than an error message inside a 200 stream.
	if _, err := s.m.ReadStream(ctx, id, 0, 1); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, err, nil)
		return
	}
	sw := s.startSSE(w, r)
	var pos int64
	for {
		evs, err := s.m.ReadStream(ctx, id, next, state.MaxReadMaxCount)
		switch {
		case errors.Is(err, store.ErrNotFound):
			evs = nil // the stream may be created later
		case err != nil:
			s.streamFailed(sw, ctx, err)
			return
		}
		for i := range evs {
			if err := sw.event("stream_event", strconv.FormatInt(evs[i].Version, 10), streamEventOut(&evs[i], false)); err != nil {
				return
			}
			next = evs[i].Version + 1
		}
		if err := sw.flush(); err != nil {
			return
		}
		if len(evs) == state.MaxReadMaxCount {
			continue // more to catch up on
		}
		if pos, err = s.waitStreams(ctx, sw, pos); err != nil {
			return
		}
	}
}

// subscribeAll: GET /v1/streams/events?prefix=p&from_position=P — SSE
// catch-up subscription to every stream whose id starts with prefix, in
// append order. `id:` is the position, written on the last event of each
// append so a resuming client never misses part of one.
func (s *Server) subscribeAll(w http.ResponseWriter, r *http.Request) {
	q, after, last, err := streamStart(r, "from_position")
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	if last != nil {
		after = *last // the id is the last position received
	}
	prefix := q.Get("prefix")
	ctx, cancel := s.streamContext(r)
	defer cancel()
	if _, err := s.m.ReadAllStreams(ctx, prefix, after, 1); err != nil {
		s.fail(w, r, err, nil)
		return
	}
	sw := s.startSSE(w, r)
	var pos int64
	for {
		evs, err := s.m.ReadAllStreams(ctx, prefix, after, state.MaxReadMaxCount)
		if err != nil {
			s.streamFailed(sw, ctx, err)
			return
		}
		for i := range evs {
			id := ""
			if i == len(evs)-1 || evs[i+1].Position != evs[i].Position {
				id = strconv.FormatInt(evs[i].Position, 10)
			}
			if err := sw.event("stream_event", id, streamEventOut(&evs[i], true)); err != nil {
				return
			}
			after = evs[i].Position
		}
		if err := sw.flush(); err != nil {
			return
		}
		if len(evs) >= state.MaxReadMaxCount {
			continue
		}
		if pos < after {
			pos = after
		}
		if pos, err = s.waitStreams(ctx, sw, pos); err != nil {
			return
		}
	}
}

// streamStart reads what both stream subscriptions start from: the query,
// the integer parameter param (0 when absent) and Last-Event-ID, if sent.
func streamStart(r *http.Request, param string) (url.Values, int64, *int64, error) {
	q, err := parseQuery(r)
	if err != nil {
		return nil, 0, nil, err
	}
	from, _, err := queryInt(q, param, 0)
	if err != nil {
		return nil, 0, nil, err
	}
	last, ok, err := lastEventID(r)
	if err != nil || !ok {
		return q, from, nil, err
	}
	return q, from, &last, nil
}

// waitStreams waits for an append after pos, sending heartbeats meanwhile.
func (s *Server) waitStreams(ctx context.Context, sw *sseWriter, pos int64) (int64, error) {
	return waitWithHeartbeat(ctx, sw, func(ctx context.Context) (int64, error) { return s.m.WaitStreams(ctx, pos) })
}

// waitWithHeartbeat runs wait, and each time the heartbeat interval passes
// without an answer, sends a comment line and waits again.
func waitWithHeartbeat(ctx context.Context, sw *sseWriter, wait func(context.Context) (int64, error)) (int64, error) {
	for {
		wctx, cancel := context.WithTimeout(ctx, sw.heartbeat)
		p, err := wait(wctx)
		cancel()
		switch {
		case err == nil:
			return p, nil
		case ctx.Err() != nil:
			return 0, ctx.Err()
		case !errors.Is(err, context.DeadlineExceeded):
			return 0, err
		}
		sw.comment("ping")
		if err := sw.flush(); err != nil {
			return 0, err
		}
	}
}

// streamFailed ends a stream with an error message.
func (s *Server) streamFailed(sw *sseWriter, ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // the client left, or the server is stopping
	}
	sw.sendError(toAPIError(err, nil))
}
