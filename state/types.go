package state

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/agentstate/agentstate/diff"
	"github.com/agentstate/agentstate/store"
)

// Entry is the state of one key at one version. It is the store's type: the
// engine adds no fields, so there is nothing to copy between layers.
type Entry = store.Entry

// Write strategies (API.md, Write).
const (
	StrategyFail            = "fail"
	StrategyLastWriterWins  = "last_writer_wins"
	StrategyFirstWriterWins = "first_writer_wins"
	StrategyMerge           = "merge"
	StrategyManual          = "manual"
)

// Read consistency levels (API.md, Reads and consistency).
const (
	ConsistencyStrong   = "strong"
	ConsistencyEventual = "eventual"
)

// PutRequest writes a value. Only AgentID, Tier, Key and Value are required.
type PutRequest struct {
	AgentID, Tier, Key string
	Value              json.RawMessage
	// ExpectedVersion: nil = unconditional, 0 = create only, N = must be current.
	ExpectedVersion *int64
	// TTL: nil = the tier's default; otherwise > 0.
	TTL           *time.Duration
	ChangeSummary string
	Metadata      json.RawMessage // a JSON object or nil
	Strategy      string          // "" = fail
	// LockID names a lock held by the caller; accepted now, enforced when
	// locks land.
	LockID string
}

// PutResult is the outcome of a write.
type PutResult struct {
	Entry *Entry
	// Created is true when the key did not exist (HTTP 201).
	Created bool
	// Conflict is set when first_writer_wins kept the current value; Entry is
	// then the current entry.
	Conflict *store.ConflictError
}

// GetRequest reads one key. Version and AtRevision are exclusive.
type GetRequest struct {
	AgentID, Tier, Key string
	Version            int64
	AtRevision         int64
	Consistency        string // "" = strong
}

// DeleteRequest deletes a key, keeping its history.
type DeleteRequest struct {
	AgentID, Tier, Key string
	ExpectedVersion    *int64
	ChangeSummary      string
	LockID             string
}

// DeleteResult names the tombstone written.
type DeleteResult struct {
	Version  int64
	Revision int64
}

// PatchRequest patches the current value. Exactly one of JSONPatch (RFC 6902,
// an array of ops) and MergePatch (RFC 7386) is set.
type PatchRequest struct {
	AgentID, Tier, Key string
	JSONPatch          json.RawMessage
	MergePatch         json.RawMessage
	ExpectedVersion    *int64
	ChangeSummary      string
	Metadata           json.RawMessage
	LockID             string
}

// ListRequest lists live keys of one agent and tier in byte order. At most
// one of Prefix and Pattern is set.
type ListRequest struct {
	AgentID, Tier string
	Prefix        string
	Pattern       string // glob: * within a segment, ** across
	Limit         int    // 0 = 100; max 1000
	Cursor        string // from a previous ListResult.NextCursor
	KeysOnly      bool   // values=false
	Consistency   string
}

// ListResult is one page. NextCursor is "" on the last page.
type ListResult struct {
	Entries    []*Entry
	NextCursor string
}

// TierKey names a key within an agent.
type TierKey struct {
	Tier string `json:"tier"`
	Key  string `json:"key"`
}

// BatchGetResult holds found entries in request order and the missing keys.
type BatchGetResult struct {
	Entries []*Entry
	Missing []TierKey
}

// Batch op kinds.
const (
	BatchPut    = "put"
	BatchDelete = "delete"
	BatchPatch  = "patch"
)

// BatchOp is one op of a BatchWriteRequest.
type BatchOp struct {
	Op              string // put, delete, patch
	Tier, Key       string
	Value           json.RawMessage // put
	JSONPatch       json.RawMessage // patch
	MergePatch      json.RawMessage // patch
	ExpectedVersion *int64
	TTL             *time.Duration
}

// BatchWriteRequest is an atomic multi-key write: all ops or none, one revision.
type BatchWriteRequest struct {
	AgentID       string
	Ops           []BatchOp
	ChangeSummary string
}

// BatchResult is one op's outcome.
type BatchResult struct {
	Tier    string `json:"tier"`
	Key     string `json:"key"`
	Version int64  `json:"version"`
}

// BatchWriteResult is the outcome of an atomic batch.
type BatchWriteResult struct {
	Revision int64
	Results  []BatchResult
}

// HistoryRequest lists a key's versions newest first.
type HistoryRequest struct {
	AgentID, Tier, Key string
	Limit              int   // 0 = 50; max 1000
	BeforeVersion      int64 // 0 = from the newest
	IncludeDiff        bool
}

// HistoryVersion is one version in a history answer.
type HistoryVersion struct {
	Version       int64
	ParentVersion int64
	Revision      int64
	ChangeType    string
	CreatedAt     time.Time // when this version was written
	CreatedBy     string
	ChangeSummary string
	Checksum      string
	Chain         string
	// Diff against the parent version; nil unless asked for, or when the
	// parent was pruned.
	Diff *Changes
}

// HistoryResult is a page of history, newest first.
type HistoryResult struct {
	CurrentVersion int64
	Versions       []HistoryVersion
}

// DiffRequest compares two versions of a key.
type DiffRequest struct {
	AgentID, Tier, Key string
	From, To           int64
}

// DiffResult holds both formats of API.md's diff.
type DiffResult struct {
	Changes   *Changes
	JSONPatch json.RawMessage // RFC 6902 from From to To
}

// Changes is the added/modified/removed form of a diff (package diff).
type Changes = diff.Changes

// Change is one modified path.
type Change = diff.Change

// RollbackRequest writes an older version's value as a new version.
type RollbackRequest struct {
	AgentID, Tier, Key string
	Version            int64
	ExpectedVersion    *int64
	ChangeSummary      string
}

// Errors of the engine. Store errors (store.ErrNotFound, *store.ConflictError,
// store.ErrCompacted, store.ErrUnavailable, ...) pass through unchanged;
// these are the engine's own.
var (
	// ErrInvalidArgument: a bad id, key, tier, parameter, value or patch.
	ErrInvalidArgument = errors.New("state: invalid argument")
	// ErrTooLarge: a value or request over its size limit.
	ErrTooLarge = errors.New("state: too large")
	// ErrClosed: the manager was closed.
	ErrClosed = errors.New("state: closed")
)

// InvalidArgumentError says which argument is wrong.
type InvalidArgumentError struct {
	Field   string
	Message string
	// Op is the index of the batch op at fault, or -1.
	Op int
}

func (e *InvalidArgumentError) Error() string { return e.Message }
func (e *InvalidArgumentError) Unwrap() error { return ErrInvalidArgument }

// TooLargeError says which limit was exceeded.
type TooLargeError struct {
	Message string
	Limit   int
	Actual  int
	// Op is the index of the batch op at fault, or -1 (0 in a zero value:
	// only batch answers report it).
	Op int
}

func (e *TooLargeError) Error() string { return e.Message }
func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// PatchTestFailedError is a JSON Patch "test" op that did not hold: the value
// is not what the caller expected, a version conflict in API.md's terms.
type PatchTestFailedError struct {
	Message string
	Current *Entry
}

func (e *PatchTestFailedError) Error() string { return e.Message }
func (e *PatchTestFailedError) Unwrap() error { return store.ErrVersionConflict }
