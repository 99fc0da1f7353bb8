// Package store defines the storage contract of agentstate: small, role-split
// interfaces that every backend (the embedded SQLite store, PostgreSQL) implements,
// the request and record types that cross them, and the typed errors they return.
//
// The engine (package state) validates input, enforces policy and computes
// checksums; a store is responsible for atomicity, durability, ordering
// (revisions in commit order), dense per-key versions, compare-and-set and
// history pruning. Every behaviour a store must have is exercised by the
// conformance suite in store/storetest, which every implementation runs
// unchanged.
//
// Semantics every store implements:
//
//   - A key is (AgentID, Tier, Key). Its versions are dense: 1, 2, 3, ...
//     Deleting a key writes a tombstone version (ChangeDelete or ChangeExpire)
//     and keeps the numbering, so a later write continues at tombstone+1 and is
//     a ChangeCreate again (with a fresh CreatedAt).
//   - Revision is a store-wide counter that grows by one for each committed
//     WriteRequest (a batch of several ops takes ONE revision shared by all of
//     its versions), in commit order. The first revision is 1.
//   - A key whose ExpiresAt is at or before "now" reads as absent (Get, List,
//     BatchGet, CAS checks) even before the reaper has written its expire
//     tombstone. A write to such a key first writes the ChangeExpire tombstone
//     and then proceeds as if the key were absent. The expire tombstones one
//     request needs share one revision, taken just before the request's own.
//     Reads by Version or AtRevision read history and ignore expiry.
//   - A WriteRequest is all or nothing: if any op fails its precondition, the
//     store returns a *ConflictError (or ErrNotFound for deleting an absent key)
//     naming the op index and nothing is written, not even expire tombstones.
//   - Every version row keeps the value, checksum, chain hash, parent version,
//     change type, summary, metadata, creator and revision. After each write,
//     versions of that key older than the newest HistoryLimit versions are pruned
//     (HistoryLimit 0 = keep all). The current row is never pruned.
//   - Chain = ChainHash(parent chain, version, change type, checksum), computed
//     by the store inside the transaction because only there is the parent known.
//   - Malformed requests (no ops, an unknown op kind, empty key parts, negative
//     numbers, Version and AtRevision both set, a limit <= 0 for List or
//     History) fail with ErrInvalid. Close is idempotent; every call after it
//     fails with ErrClosed.
//   - An AtRevision read from before the key's first version is ErrNotFound
//     even when later versions were pruned; ErrCompacted means the answer
//     itself was pruned.
package store

import (
	"context"
	"encoding/json"
	"time"
)

// Change types of a version, as in the API's change_type.
const (
	ChangeCreate  = "create"
	ChangeUpdate  = "update"
	ChangeDelete  = "delete"
	ChangeExpire  = "expire"
	ChangeRestore = "restore"
)

// Key names one entry.
type Key struct {
	AgentID string
	Tier    string
	Key     string
}

func (k Key) String() string { return k.AgentID + "/" + k.Tier + "/" + k.Key }

// Entry is the state of one key at one version, as read.
type Entry struct {
	Key
	Value     json.RawMessage // compact JSON; nil for a tombstone
	Version   int64
	Revision  int64
	CreatedAt time.Time // when the key was (last) created
	UpdatedAt time.Time // when this version was written
	ExpiresAt *time.Time
	CreatedBy string          // principal that wrote this version
	Checksum  string          // "sha256:<hex>" of the RFC 8785 canonical value
	Metadata  json.RawMessage // JSON object or nil
	// Deleted is true when this version is a tombstone (delete or expire).
	Deleted bool
}

// Version is one row of a key's history.
type Version struct {
	Entry
	ParentVersion int64 // 0 for the first version
	ChangeType    string
	ChangeSummary string
	Chain         string // "sha256:<hex>" chained hash, see ChainHash
}

// OpKind says what a WriteOp does.
type OpKind int

const (
	// OpPut writes Value as a new version (create or update).
	OpPut OpKind = iota + 1
	// OpDelete writes a delete tombstone. Deleting an absent (or expired) key
	// fails with ErrNotFound, or with a ConflictError (deleted_modified) when
	// an ExpectedVersion > 0 was given: the precondition is checked first.
	OpDelete
	// OpExpire writes an expire tombstone; used by the reaper. It applies only
	// if the key's current version is still ExpectedVersion and it is expired
	// at commit time; otherwise the op is skipped (not an error), and the
	// result reports Skipped with only Entry.Key set. A nil ExpectedVersion
	// expires whatever version is current.
	OpExpire
	// OpRestore writes Value as a new version with change type restore
	// (rollback). Otherwise like OpPut.
	OpRestore
)

// WriteOp is one operation of a WriteRequest.
type WriteOp struct {
	Kind OpKind
	Key  Key
	// Value is compact, valid JSON (OpPut, OpRestore).
	Value json.RawMessage
	// Checksum of Value, computed by the caller (see package jsonvalue).
	Checksum string
	// ExpectedVersion: nil = unconditional; 0 = the key must be absent
	// (never written, deleted or expired); N = the current live version must be N.
	ExpectedVersion *int64
	// TTL > 0 sets ExpiresAt = commit time + TTL. 0 = no expiry.
	TTL time.Duration
	// ExpiresAt, when set, is the version's expiry as an absolute time and
	// overrides TTL (a patch keeps the key's expiry exactly).
	ExpiresAt     *time.Time
	ChangeSummary string
	Metadata      json.RawMessage
	CreatedBy     string
	// HistoryLimit is how many versions of this key to keep (0 = all).
	HistoryLimit int
}

// WriteRequest is one atomic transaction of one or more ops. Ops on the same
// key within one request are not allowed (ErrInvalid).
type WriteRequest struct {
	Ops []WriteOp
}

// OpResult is what one op wrote.
type OpResult struct {
	Entry      Entry  // the new version (a tombstone for delete/expire)
	ChangeType string // create, update, delete, expire, restore
	// Previous is the live entry this op replaced (nil when the key was absent).
	Previous *Entry
	// Skipped is set for an OpExpire whose precondition no longer held.
	Skipped bool
}

// WriteResult is the outcome of a committed WriteRequest.
type WriteResult struct {
	Revision int64 // the revision of this request (0 if every op was skipped)
	Results  []OpResult
}

// GetRequest reads one key. At most one of Version and AtRevision is set.
type GetRequest struct {
	Key Key
	// Version > 0 reads that version (ErrNotFound if pruned, never written
	// or a tombstone).
	Version int64
	// AtRevision > 0 reads the key as it was at that revision: the newest
	// version with Revision <= AtRevision. ErrNotFound if that is a tombstone
	// or none exists and nothing was pruned; ErrCompacted if versions that
	// could answer were pruned.
	AtRevision int64
	// Now is the time against which ExpiresAt is checked (zero: time.Now()).
	Now time.Time
}

// ListRequest lists the live keys of one agent and tier in byte order.
type ListRequest struct {
	AgentID string
	Tier    string
	Prefix  string // only keys starting with Prefix
	After   string // only keys strictly greater than After (paging)
	Limit   int    // max entries returned (> 0)
	// KeysOnly leaves Entry.Value nil (values=false).
	KeysOnly bool
	Now      time.Time // expiry reference (zero: time.Now())
}

// ListResult is one page. More is true when keys beyond the page exist.
type ListResult struct {
	Entries []Entry
	More    bool
}

// HistoryRequest lists versions of one key, newest first.
type HistoryRequest struct {
	Key           Key
	Limit         int   // max versions (> 0)
	BeforeVersion int64 // only versions < BeforeVersion (0: no bound)
}

// HistoryResult holds versions newest first. CurrentVersion is the key's
// newest version number (including tombstones); ErrNotFound if the key was
// never written.
type HistoryResult struct {
	CurrentVersion int64
	Versions       []Version
}

// Expired names a key found expired by ExpiredKeys.
type Expired struct {
	Key     Key
	Version int64
}

// Reader reads current and past state.
type Reader interface {
	Get(ctx context.Context, req GetRequest) (*Entry, error)
	// BatchGet reads the live entries of keys; absent keys are left out of the
	// map. It reads one consistent snapshot.
	BatchGet(ctx context.Context, keys []Key, now time.Time) (map[Key]*Entry, error)
	List(ctx context.Context, req ListRequest) (*ListResult, error)
}

// Writer commits write requests atomically and durably: when Write returns
// nil, the request is on stable storage.
type Writer interface {
	Write(ctx context.Context, req WriteRequest) (*WriteResult, error)
}

// HistoryReader reads the versions of a key.
type HistoryReader interface {
	History(ctx context.Context, req HistoryRequest) (*HistoryResult, error)
}

// Expirer finds keys whose TTL has passed, for the reaper.
type Expirer interface {
	ExpiredKeys(ctx context.Context, now time.Time, limit int) ([]Expired, error)
}

// Revisions reports the store's revision counter.
type Revisions interface {
	// CurrentRevision is the revision of the latest committed request (0 if none).
	CurrentRevision(ctx context.Context) (int64, error)
}

// Store is the whole contract.
type Store interface {
	Reader
	Writer
	HistoryReader
	Expirer
	Revisions
	// Ping checks the store can serve (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}
