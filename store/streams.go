package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The event store: append-only streams for event sourcing, apart from the
// key/value state. A stream is named by an id (agent-id syntax); its events
// are numbered densely from 0. Every append is atomic and takes the next
// position of a store-wide sequence, so all streams can be read in one
// total order (for a subscription to every stream with a prefix).

// ErrWrongExpectedVersion is returned (wrapped in *WrongExpectedVersionError)
// when an append's expectation about the stream's version does not hold.
var ErrWrongExpectedVersion = errors.New("store: wrong expected version")

// Expected versions of an append besides a version number.
const (
	// ExpectNoStream: the stream must not exist (API.md: -1).
	ExpectNoStream int64 = -1
)

// NewStreamEvent is an event to append.
type NewStreamEvent struct {
	EventID  string // unique; the store assigns one (UUIDv7) when empty
	Type     string
	Data     json.RawMessage
	Metadata json.RawMessage
}

// StreamEvent is a stored event.
type StreamEvent struct {
	StreamID  string
	Version   int64 // dense within the stream, from 0
	Position  int64 // store-wide order of appends, from 1; dense per append, shared by its events
	Index     int   // order within its append
	EventID   string
	Type      string
	Data      json.RawMessage
	Metadata  json.RawMessage
	Timestamp time.Time
}

// AppendRequest appends events to one stream, atomically.
type AppendRequest struct {
	StreamID string
	Events   []NewStreamEvent // at least one
	// ExpectedVersion: nil = any; ExpectNoStream = the stream must not
	// exist; N >= 0 = the stream's last event must have version N.
	ExpectedVersion *int64
}

// AppendResult says where the events went.
type AppendResult struct {
	// NextVersion is the expected version for the next append: the version
	// of the last event appended (API.md's next_version; pass it back as
	// expected_version to append right after these events).
	NextVersion int64
	Position    int64
}

// WrongExpectedVersionError carries the stream's actual version (-1 when the
// stream does not exist).
type WrongExpectedVersionError struct {
	StreamID       string
	Expected       int64
	CurrentVersion int64
}

func (e *WrongExpectedVersionError) Error() string {
	return fmt.Sprintf("store: stream %s: expected version %d, current version %d", e.StreamID, e.Expected, e.CurrentVersion)
}

func (e *WrongExpectedVersionError) Unwrap() error { return ErrWrongExpectedVersion }

// Snapshot is the saved state of a stream at a version.
type Snapshot struct {
	StreamID  string
	Version   int64
	State     json.RawMessage
	CreatedAt time.Time
}

// StreamStore is the event store's contract.
type StreamStore interface {
	// Append adds events atomically; *WrongExpectedVersionError on a failed
	// expectation (and nothing is written).
	Append(ctx context.Context, req AppendRequest) (*AppendResult, error)
	// ReadStream returns up to maxCount events of a stream with version >=
	// fromVersion, in version order; ErrNotFound when the stream does not exist.
	ReadStream(ctx context.Context, streamID string, fromVersion int64, maxCount int) ([]StreamEvent, error)
	// ReadAll returns up to limit events of every stream whose id starts with
	// prefix ("" = all), with Position > afterPosition, in (Position, Index)
	// order; whole appends only.
	ReadAll(ctx context.Context, prefix string, afterPosition int64, limit int) ([]StreamEvent, error)
	// WaitAppend blocks until the store-wide position is > after or ctx
	// ends, and returns the current position.
	WaitAppend(ctx context.Context, after int64) (int64, error)
	// SaveSnapshot stores a stream's state at a version (which must exist);
	// LoadSnapshot returns the latest saved (ErrNotFound when none).
	SaveSnapshot(ctx context.Context, s Snapshot) error
	LoadSnapshot(ctx context.Context, streamID string) (*Snapshot, error)
}
