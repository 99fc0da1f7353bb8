package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// NoStream is the expected version of an append that creates its stream:
// AppendEvents(ctx, id, events, client.Version(client.NoStream)) fails
// with ErrWrongExpectedVersion if the stream exists. It is also the
// CurrentVersion of a stream that does not exist.
const NoStream int64 = -1

// streamPath is /v1/streams/{streamID}.
func streamPath(streamID string) (string, error) {
	if err := checkSegment("stream id", streamID); err != nil {
		return "", err
	}
	return "/v1/streams/" + url.PathEscape(streamID), nil
}

// AppendEvents appends events to a stream, atomically:
// POST /v1/streams/{streamID}/events. expectedVersion nil appends whatever
// the stream's version; Version(NoStream) only if the stream does not
// exist; Version(n) only if the stream's last event has version n. It
// answers the version of the last event appended, the expectedVersion of
// the next append. A failed expectation is ErrWrongExpectedVersion, whose
// (*Error).CurrentVersion is the stream's version.
func (c *Client) AppendEvents(ctx context.Context, streamID string, events []NewEvent, expectedVersion *int64) (nextVersion int64, err error) {
	p, err := streamPath(streamID)
	if err != nil {
		return 0, err
	}
	if events == nil {
		events = []NewEvent{}
	}
	body := struct {
		Events          []NewEvent `json:"events"`
		ExpectedVersion *int64     `json:"expected_version"` // null: any
	}{events, expectedVersion}
	var out struct {
		NextVersion int64 `json:"next_version"`
	}
	if _, err := c.do(ctx, http.MethodPost, p+"/events", nil, body, &out); err != nil {
		return 0, err
	}
	return out.NextVersion, nil
}

// ReadStream reads up to maxCount events of a stream with a version ≥
// fromVersion, in version order: GET /v1/streams/{streamID}/events.
// maxCount 0 leaves the page size to the server (100). A stream that does
// not exist is ErrNotFound.
func (c *Client) ReadStream(ctx context.Context, streamID string, fromVersion int64, maxCount int) ([]StreamEvent, error) {
	p, err := streamPath(streamID)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("from_version", strconv.FormatInt(max(fromVersion, 0), 10))
	if maxCount > 0 {
		q.Set("max_count", strconv.Itoa(maxCount))
	}
	var out struct {
		Events []StreamEvent `json:"events"`
	}
	if _, err := c.do(ctx, http.MethodGet, p+"/events", q, nil, &out); err != nil {
		return nil, err
	}
	if out.Events == nil {
		out.Events = []StreamEvent{}
	}
	return out.Events, nil
}

// SaveSnapshot saves the state of a stream at a version (anything
// encoding/json can marshal; json.RawMessage is sent as is):
// PUT /v1/streams/{streamID}/snapshot. The answer has no State.
func (c *Client) SaveSnapshot(ctx context.Context, streamID string, version int64, state any) (*StreamSnapshot, error) {
	p, err := streamPath(streamID)
	if err != nil {
		return nil, err
	}
	st, err := rawValue("state", state)
	if err != nil {
		return nil, err
	}
	body := struct {
		Version int64           `json:"version"`
		State   json.RawMessage `json:"state"`
	}{version, st}
	var out StreamSnapshot
	if _, err := c.do(ctx, http.MethodPut, p+"/snapshot", nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// LoadSnapshot reads the latest snapshot of a stream:
// GET /v1/streams/{streamID}/snapshot. None is ErrNotFound.
func (c *Client) LoadSnapshot(ctx context.Context, streamID string) (*StreamSnapshot, error) {
	p, err := streamPath(streamID)
	if err != nil {
		return nil, err
	}
	var out StreamSnapshot
	if _, err := c.do(ctx, http.MethodGet, p+"/snapshot", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// StreamWatcher delivers the events of a stream subscription in order,
// exactly once, across reconnections, like Watcher. Next is meant for one
// goroutine; Close may be called from any.
type StreamWatcher struct{ s *subscription[StreamEvent] }

// SubscribeStream follows one stream, its events from version fromVersion
// (sent as from_version; 0 is the first event), then the ones appended
// later: GET /v1/streams/{streamID}/subscribe, as Server-Sent Events. A
// negative fromVersion leaves the start to the server. Reconnection and
// resumption are Watch's: the position is the stream version.
func (c *Client) SubscribeStream(ctx context.Context, streamID string, fromVersion int64) *StreamWatcher {
	p, err := streamPath(streamID)
	q := url.Values{}
	if fromVersion >= 0 {
		q.Set("from_version", strconv.FormatInt(fromVersion, 10))
	}
	return &StreamWatcher{newSubscription(ctx, c, p+"/subscribe", q, "from_version", -1, decodeStreamEvent(streamID, false), err)}
}

// SubscribeAll follows every stream whose id starts with prefix ("" for
// all), in the store-wide order of appends, from position fromPosition
// (sent as from_position), then live: GET /v1/streams/events, as
// Server-Sent Events. A negative fromPosition leaves the start to the
// server. Reconnection and resumption are Watch's: the position is the
// append's Position, shared by its events.
func (c *Client) SubscribeAll(ctx context.Context, prefix string, fromPosition int64) *StreamWatcher {
	q := url.Values{}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	if fromPosition >= 0 {
		q.Set("from_position", strconv.FormatInt(fromPosition, 10))
	}
	return &StreamWatcher{newSubscription(ctx, c, "/v1/streams/events", q, "from_position", -1, decodeStreamEvent("", true), nil)}
}

// Next returns the next event, waiting for it (and reconnecting as
// needed) until ctx ends. An error that ends the subscription is returned
// by every later call; an error of ctx is not, and a later Next goes on.
func (w *StreamWatcher) Next(ctx context.Context) (StreamEvent, error) { return w.s.next(ctx) }

// Position is the last stream version (SubscribeStream) or store-wide
// position (SubscribeAll) delivered in full; -1 until known.
func (w *StreamWatcher) Position() int64 { return w.s.done.Load() }

// Close ends the subscription and its connection; a blocked Next returns
// ErrWatcherClosed. It may be called more than once.
func (w *StreamWatcher) Close() error { return w.s.close() }

// decodeStreamEvent decodes the messages of the stream subscriptions:
// "stream_event", or unnamed ("message"). byPosition orders by the
// store-wide position (SubscribeAll), else by version.
func decodeStreamEvent(streamID string, byPosition bool) func(sseMessage) (item[StreamEvent], bool, error) {
	return func(m sseMessage) (item[StreamEvent], bool, error) {
		if m.event != "stream_event" && m.event != "message" {
			return item[StreamEvent]{}, false, nil
		}
		var e StreamEvent
		if err := json.Unmarshal([]byte(m.data), &e); err != nil {
			return item[StreamEvent]{}, false, fmt.Errorf("%w: decode stream event: %w", ErrTransport, err)
		}
		e.Raw = json.RawMessage(m.data)
		if e.StreamID == "" {
			e.StreamID = streamID
		}
		pos := e.Version
		if byPosition {
			pos = e.Position
		}
		dedup := "e:" + e.EventID
		if e.EventID == "" {
			dedup = "v:" + e.StreamID + "\x00" + strconv.FormatInt(e.Version, 10)
		}
		return item[StreamEvent]{v: e, pos: pos, dedup: dedup}, true, nil
	}
}
