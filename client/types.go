package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"
)

// Tiers (API.md, Conventions).
const (
	TierLocal      = "local"
	TierShared     = "shared"
	TierSession    = "session"
	TierPersistent = "persistent"
)

// Tiers lists the four tiers in a stable order.
var Tiers = []string{TierLocal, TierShared, TierSession, TierPersistent}

// Change types of history versions and change events.
const (
	ChangeCreate  = "create"
	ChangeUpdate  = "update"
	ChangeDelete  = "delete"
	ChangeExpire  = "expire"
	ChangeRestore = "restore"
)

// Consistency of a read (API.md, Reads and consistency). The zero value
// sends nothing: the server's default, strong.
type Consistency string

const (
	ConsistencyStrong   Consistency = "strong"
	ConsistencyEventual Consistency = "eventual"
)

// Strategy says what a write does when its expected_version is not current.
// The zero value sends nothing: the server's default, StrategyFail.
type Strategy string

const (
	StrategyFail            Strategy = "fail"
	StrategyLastWriterWins  Strategy = "last_writer_wins"
	StrategyFirstWriterWins Strategy = "first_writer_wins"
	StrategyMerge           Strategy = "merge"
	StrategyManual          Strategy = "manual"
)

// Version returns a pointer to v, for the ExpectedVersion fields:
// ExpectedVersion: client.Version(3) writes only if the key is at version 3,
// client.Version(0) only if the key does not exist.
func Version(v int64) *int64 { return &v }

// Entry is the state of one key, as the API answers it.
type Entry struct {
	AgentID string `json:"agent_id"`
	Tier    string `json:"tier"`
	Key     string `json:"key"`
	// Value is the value's JSON; nil when listed with KeysOnly.
	Value     json.RawMessage `json:"value,omitempty"`
	Version   int64           `json:"version"`
	Revision  int64           `json:"revision"`
	CreatedAt time.Time       `json:"created_at"` // when the key was first created
	UpdatedAt time.Time       `json:"updated_at"` // when this version was written
	ExpiresAt *time.Time      `json:"expires_at"` // nil: never
	CreatedBy string          `json:"created_by"`
	Checksum  string          `json:"checksum"`
	Metadata  map[string]any  `json:"metadata,omitempty"`
	// CRDT is set on keys written with the CRDT API.
	CRDT *CRDTState `json:"crdt,omitempty"`
}

// CRDTState is the "crdt" object of an entry whose key is a CRDT.
type CRDTState struct {
	Type  string          `json:"type"`
	State json.RawMessage `json:"state"`
}

// ErrNoValue is returned by DecodeValue for an entry listed without values.
var ErrNoValue = errors.New("client: entry has no value (listed with KeysOnly)")

// DecodeValue unmarshals the entry's value into v, like json.Unmarshal.
func (e *Entry) DecodeValue(v any) error {
	if len(e.Value) == 0 {
		return ErrNoValue
	}
	return json.Unmarshal(e.Value, v)
}

// ValueAs decodes an entry's value as a T:
//
//	prefs, err := client.ValueAs[Prefs](entry)
func ValueAs[T any](e *Entry) (T, error) {
	var v T
	err := e.DecodeValue(&v)
	return v, err
}

// KeyRef names a key of an agent.
type KeyRef struct {
	Tier string `json:"tier"`
	Key  string `json:"key"`
}

// PatchOp is one RFC 6902 operation. Value is omitted when nil; for a JSON
// null value, use json.RawMessage("null").
type PatchOp struct {
	Op    string          `json:"op"` // add, remove, replace, move, copy, test
	Path  string          `json:"path"`
	From  string          `json:"from,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
}

// Patch is a change to apply to a value: set exactly one of JSONPatch
// (RFC 6902) or MergePatch (RFC 7386, any value encoding/json can marshal;
// json.RawMessage is sent as is).
type Patch struct {
	JSONPatch  []PatchOp
	MergePatch any
}

// HistoryVersion is one version of a key's history.
type HistoryVersion struct {
	Version       int64     `json:"version"`
	ParentVersion int64     `json:"parent_version"` // 0: none
	Revision      int64     `json:"revision"`
	ChangeType    string    `json:"change_type"` // one of the Change* constants
	CreatedAt     time.Time `json:"created_at"`
	CreatedBy     string    `json:"created_by"`
	ChangeSummary string    `json:"change_summary,omitempty"`
	// Diff is the change from the parent version, when asked for with
	// IncludeDiff; its shape is the server's (see Diff).
	Diff json.RawMessage `json:"diff,omitempty"`
}

// History is the answer of Client.History.
type History struct {
	CurrentVersion int64            `json:"current_version"`
	Versions       []HistoryVersion `json:"versions"` // newest first
	Branches       json.RawMessage  `json:"branches,omitempty"`
}

// Diff is the difference between two versions of a value. Keys of Added and
// Modified, and items of Removed, are JSON Pointers (RFC 6901).
type Diff struct {
	Added    map[string]json.RawMessage `json:"added"`
	Modified map[string]ValueChange     `json:"modified"`
	Removed  []string                   `json:"removed"`
}

// Empty reports whether the diff has no change.
func (d *Diff) Empty() bool {
	return len(d.Added) == 0 && len(d.Modified) == 0 && len(d.Removed) == 0
}

// ValueChange is a modified value of a Diff.
type ValueChange struct {
	Old json.RawMessage `json:"old"`
	New json.RawMessage `json:"new"`
}

// isNull reports whether b is absent or JSON null.
func isNull(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) == 0 || bytes.Equal(b, []byte("null"))
}

// Event is a change event (API.md, Change events), or a snapshot message
// of a watch that asked for OnCompactedSnapshot.
type Event struct {
	// Type is EventChange, or for a snapshot message EventSnapshotBegin,
	// EventSnapshot or EventSnapshotEnd; only Revision, Raw and, for
	// EventSnapshot, Snapshot are set on snapshot messages.
	Type string `json:"-"`

	EventID    string          `json:"event_id"`
	Revision   int64           `json:"revision"`
	AgentID    string          `json:"agent_id"`
	Tier       string          `json:"tier"`
	StateKey   string          `json:"state_key"`
	ChangeType string          `json:"change_type"` // one of the Change* constants
	OldValue   json.RawMessage `json:"old_value"`   // JSON null when none (create)
	NewValue   json.RawMessage `json:"new_value"`   // JSON null when none (delete, expire)
	Version    int64           `json:"version"`
	Timestamp  time.Time       `json:"timestamp"`
	CreatedBy  string          `json:"created_by"`
	Metadata   map[string]any  `json:"metadata,omitempty"`

	// Snapshot is the current state of a key, sent in place of history
	// that was compacted (Type EventSnapshot). A snapshot's entries come
	// first, then the change events after the snapshot's first revision.
	Snapshot *Entry `json:"-"`
	// Raw is the message's data as the server sent it: the event JSON, or
	// a snapshot message such as {"type":"snapshot","revision":S,"entry":…}.
	Raw json.RawMessage `json:"-"`
}

// NewEvent is an event to append to a stream.
type NewEvent struct {
	EventType string
	// EventData is anything encoding/json can marshal (json.RawMessage is
	// sent as is); nil is sent as JSON null.
	EventData any
	Metadata  map[string]any
	// EventID makes the event idempotent; empty: the server assigns one.
	EventID string
}

// MarshalJSON encodes the event as the API's append body item.
func (e NewEvent) MarshalJSON() ([]byte, error) {
	data, err := marshal(e.EventData)
	if err != nil {
		return nil, err
	}
	return marshal(struct {
		EventType string          `json:"event_type"`
		EventData json.RawMessage `json:"event_data"`
		Metadata  map[string]any  `json:"metadata,omitempty"`
		EventID   string          `json:"event_id,omitempty"`
	}{e.EventType, data, e.Metadata, e.EventID})
}

// StreamEvent is an event of a stream, as read or delivered by a
// subscription.
type StreamEvent struct {
	EventID   string          `json:"event_id"`
	EventType string          `json:"event_type"`
	EventData json.RawMessage `json:"event_data"`
	Version   int64           `json:"version"` // dense within the stream, from 0
	Timestamp time.Time       `json:"timestamp"`
	Metadata  map[string]any  `json:"metadata,omitempty"`
	// StreamID is set by subscriptions.
	StreamID string `json:"stream_id,omitempty"`
	// Position is set by SubscribeAll: the store-wide order of appends,
	// shared by the events of one append.
	Position int64 `json:"position,omitempty"`
	// Raw is the event's JSON as the server sent it, for subscriptions.
	Raw json.RawMessage `json:"-"`
}

// StreamSnapshot is the saved state of a stream at a version.
type StreamSnapshot struct {
	StreamID  string          `json:"stream_id"`
	Version   int64           `json:"version"`
	State     json.RawMessage `json:"state,omitempty"` // absent in SaveSnapshot's answer
	CreatedAt time.Time       `json:"created_at"`
}
