package state

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/agentstate/agentstate/auth"
	"github.com/agentstate/agentstate/jsonvalue"
	"github.com/agentstate/agentstate/keys"
	"github.com/agentstate/agentstate/store"
)

// The event store (API.md "Event streams"): append-only streams for event
// sourcing. The engine validates and authorizes; the StreamStore keeps
// appends atomic, ordered and durable.

// Limits of the event store.
const (
	MaxAppendEvents     = 1000
	DefaultReadMaxCount = 100
	MaxReadMaxCount     = 1000
)

// ErrNoStreams is returned when the Manager was built without a StreamStore.
var ErrNoStreams = fmt.Errorf("%w: this engine has no event store", ErrInvalidArgument)

// AppendStreamRequest appends events to a stream.
type AppendStreamRequest struct {
	StreamID        string
	Events          []store.NewStreamEvent
	ExpectedVersion *int64 // nil any, -1 no stream, N last version
}

// AppendStream appends events atomically.
func (m *Manager) AppendStream(ctx context.Context, req AppendStreamRequest) (*store.AppendResult, error) {
	if err := m.streamsOpen(); err != nil {
		return nil, err
	}
	if err := checkStreamID(req.StreamID); err != nil {
		return nil, err
	}
	if len(req.Events) == 0 {
		return nil, &InvalidArgumentError{Field: "events", Op: -1, Message: "events must hold at least one event"}
	}
	if len(req.Events) > MaxAppendEvents {
		return nil, &InvalidArgumentError{Field: "events", Op: -1, Message: fmt.Sprintf("an append holds at most %d events; got %d", MaxAppendEvents, len(req.Events))}
	}
	if e := req.ExpectedVersion; e != nil && *e < store.ExpectNoStream {
		return nil, &InvalidArgumentError{Field: "expected_version", Op: -1, Message: "expected_version must be -1 (no stream), a version >= 0, or null (any)"}
	}
	evs := make([]store.NewStreamEvent, len(req.Events))
	total := 0
	for i, e := range req.Events {
		if e.Type == "" {
			return nil, &InvalidArgumentError{Field: fmt.Sprintf("events[%d].event_type", i), Op: i, Message: fmt.Sprintf("events[%d]: event_type is required", i)}
		}
		if len(e.Type) > 256 {
			return nil, &InvalidArgumentError{Field: fmt.Sprintf("events[%d].event_type", i), Op: i, Message: fmt.Sprintf("events[%d]: event_type is longer than 256 bytes", i)}
		}
		if e.Data == nil {
			return nil, &InvalidArgumentError{Field: fmt.Sprintf("events[%d].event_data", i), Op: i, Message: fmt.Sprintf("events[%d]: event_data is required", i)}
		}
		data, err := jsonvalue.Check(e.Data, m.limits)
		if err != nil {
			return nil, fieldError(fmt.Errorf("events[%d].event_data: %w", i, err), fmt.Sprintf("events[%d].event_data", i), i)
		}
		meta, err := m.checkMetadata(e.Metadata, i)
		if err != nil {
			return nil, err
		}
		total += len(data)
		evs[i] = store.NewStreamEvent{EventID: e.EventID, Type: e.Type, Data: data, Metadata: meta}
	}
	if limit := 8 * m.limits.MaxBytes; total > limit {
		return nil, &TooLargeError{Message: fmt.Sprintf("events total %d bytes; the limit is %d", total, limit), Limit: limit, Actual: total, Op: -1}
	}
	p := auth.FromContext(ctx)
	if err := m.authz.Authorize(ctx, p, auth.ActionWrite, streamResource(req.StreamID)); err != nil {
		return nil, err
	}
	res, err := m.streams.Append(ctx, store.AppendRequest{StreamID: req.StreamID, Events: evs, ExpectedVersion: req.ExpectedVersion})
	if err != nil {
		return nil, err
	}
	m.auditOK(ctx, p, "stream_append", store.Key{AgentID: req.StreamID}, res.NextVersion, res.Position)
	return res, nil
}

// ReadStream reads a stream's events from a version.
func (m *Manager) ReadStream(ctx context.Context, streamID string, fromVersion int64, maxCount int) ([]store.StreamEvent, error) {
	if err := m.streamsOpen(); err != nil {
		return nil, err
	}
	if err := checkStreamID(streamID); err != nil {
		return nil, err
	}
	if fromVersion < 0 {
		return nil, &InvalidArgumentError{Field: "from_version", Op: -1, Message: "from_version must be an integer >= 0"}
	}
	switch {
	case maxCount == 0:
		maxCount = DefaultReadMaxCount
	case maxCount < 0 || maxCount > MaxReadMaxCount:
		return nil, &InvalidArgumentError{Field: "max_count", Op: -1, Message: fmt.Sprintf("max_count must be between 1 and %d", MaxReadMaxCount)}
	}
	if err := m.authz.Authorize(ctx, auth.FromContext(ctx), auth.ActionRead, streamResource(streamID)); err != nil {
		return nil, err
	}
	return m.streams.ReadStream(ctx, streamID, fromVersion, maxCount)
}

// ReadAllStreams reads every stream whose id starts with prefix, after a
// store-wide position, in append order (for catch-up subscriptions).
func (m *Manager) ReadAllStreams(ctx context.Context, prefix string, afterPosition int64, limit int) ([]store.StreamEvent, error) {
	if err := m.streamsOpen(); err != nil {
		return nil, err
	}
	if prefix != "" {
		// A prefix of a stream id has the id's syntax.
		if err := keys.ValidateAgentID(prefix); err != nil {
			return nil, &InvalidArgumentError{Field: "prefix", Op: -1, Message: "prefix: " + err.Error()}
		}
	}
	if afterPosition < 0 {
		return nil, &InvalidArgumentError{Field: "from_position", Op: -1, Message: "from_position must be an integer >= 0"}
	}
	if limit <= 0 || limit > MaxReadMaxCount {
		limit = MaxReadMaxCount
	}
	if err := m.authz.Authorize(ctx, auth.FromContext(ctx), auth.ActionRead, streamResource(prefix)); err != nil {
		return nil, err
	}
	return m.streams.ReadAll(ctx, prefix, afterPosition, limit)
}

// WaitStreams blocks until the event store's position passes after.
func (m *Manager) WaitStreams(ctx context.Context, after int64) (int64, error) {
	if err := m.streamsOpen(); err != nil {
		return 0, err
	}
	return m.streams.WaitAppend(ctx, after)
}

// SaveSnapshot stores a stream's state at a version.
func (m *Manager) SaveSnapshot(ctx context.Context, streamID string, version int64, state json.RawMessage) (*store.Snapshot, error) {
	if err := m.streamsOpen(); err != nil {
		return nil, err
	}
	if err := checkStreamID(streamID); err != nil {
		return nil, err
	}
	if version < 0 {
		return nil, &InvalidArgumentError{Field: "version", Op: -1, Message: "version must be an integer >= 0"}
	}
	if state == nil {
		return nil, &InvalidArgumentError{Field: "state", Op: -1, Message: "state is required"}
	}
	st, err := jsonvalue.Check(state, m.limits)
	if err != nil {
		return nil, fieldError(fmt.Errorf("state: %w", err), "state", -1)
	}
	p := auth.FromContext(ctx)
	if err := m.authz.Authorize(ctx, p, auth.ActionWrite, streamResource(streamID)); err != nil {
		return nil, err
	}
	snap := store.Snapshot{StreamID: streamID, Version: version, State: st, CreatedAt: m.now().UTC()}
	if err := m.streams.SaveSnapshot(ctx, snap); err != nil {
		return nil, err
	}
	return &snap, nil
}

// LoadSnapshot returns a stream's latest snapshot.
func (m *Manager) LoadSnapshot(ctx context.Context, streamID string) (*store.Snapshot, error) {
	if err := m.streamsOpen(); err != nil {
		return nil, err
	}
	if err := checkStreamID(streamID); err != nil {
		return nil, err
	}
	if err := m.authz.Authorize(ctx, auth.FromContext(ctx), auth.ActionRead, streamResource(streamID)); err != nil {
		return nil, err
	}
	return m.streams.LoadSnapshot(ctx, streamID)
}

func (m *Manager) streamsOpen() error {
	if err := m.checkOpen(); err != nil {
		return err
	}
	if m.streams == nil {
		return ErrNoStreams
	}
	return nil
}

func checkStreamID(id string) error {
	if err := keys.ValidateAgentID(id); err != nil {
		return &InvalidArgumentError{Field: "stream_id", Op: -1, Message: "stream_id: " + err.Error()}
	}
	return nil
}

// streamResource names a stream (or a prefix of streams) for the authorizer.
func streamResource(id string) auth.Resource {
	return auth.Resource{AgentID: id, Tier: "streams"}
}
