package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Event is one committed change of one key: the unit of the change feed.
// Every version a store writes is an event, in the same transaction, so the
// feed is read from the store and live delivery is only an optimisation.
//
// Events are ordered by (Revision, Index): a request's ops share its
// revision and are numbered by Index in op order; the expire tombstones a
// request writes first have their own (earlier) revision.
type Event struct {
	Revision   int64
	Index      int
	Key        Key
	ChangeType string          // create, update, delete, expire, restore
	Version    int64           // the version this change wrote
	OldValue   json.RawMessage // the value before (nil when the key was absent)
	NewValue   json.RawMessage // the value after (nil for delete and expire)
	Timestamp  time.Time       // when the change was committed
	CreatedBy  string
	Metadata   json.RawMessage
}

// ID is the event's stable identifier, "<revision>-<index>": equal on every
// read and every node, so a consumer can deduplicate by it.
func (e *Event) ID() string { return fmt.Sprintf("%d-%d", e.Revision, e.Index) }

// EventsRequest reads the feed.
type EventsRequest struct {
	// AfterRevision: only events with Revision > AfterRevision.
	AfterRevision int64
	// Limit bounds the events returned (> 0). A page holds whole revisions
	// only: it may exceed Limit to finish the last revision it started.
	Limit int
}

// EventsResult is one page of the feed, in (Revision, Index) order.
type EventsResult struct {
	Events []Event
	// More is true when events after the page exist (at the time of reading).
	More bool
	// Revision is the store's current revision when the page was read.
	Revision int64
}

// CompactedError says the feed no longer holds the asked-for revisions.
// It unwraps to ErrCompacted.
type CompactedError struct {
	// OldestRevision is the oldest revision whose events are still kept; a
	// reader may resume from any AfterRevision >= OldestRevision-1.
	OldestRevision int64
}

func (e *CompactedError) Error() string {
	return fmt.Sprintf("store: events before revision %d were compacted", e.OldestRevision)
}

func (e *CompactedError) Unwrap() error { return ErrCompacted }

// EventReader reads the change feed.
type EventReader interface {
	// ReadEvents returns events after req.AfterRevision. If events the
	// request needs were compacted (AfterRevision < OldestRevision-1), it
	// returns a *CompactedError.
	ReadEvents(ctx context.Context, req EventsRequest) (*EventsResult, error)
	// OldestRevision is the oldest revision whose events are kept (1 when
	// nothing was ever compacted).
	OldestRevision(ctx context.Context) (int64, error)
}

// CommitWaiter lets a reader wait for new commits without polling.
type CommitWaiter interface {
	// WaitCommit blocks until the store's current revision is greater than
	// after, or ctx ends, and returns the current revision.
	WaitCommit(ctx context.Context, after int64) (int64, error)
}

// EventCompactor bounds the feed. Compaction and history pruning are two
// views of the same version rows: a version is visible in History/Get while
// it is within its key's HistoryLimit, and in the feed while its revision is
// at or after OldestRevision. A store removes a version row from storage
// only when it is in neither view and no kept event needs it as its OldValue
// (i.e. the key's next version is compacted too). So pruning beyond the
// HistoryLimit hides versions from History at once, and frees their storage
// once the feed has compacted past them.
type EventCompactor interface {
	// CompactEvents drops the feed's events with Revision <= through
	// (clamped to the current revision); OldestRevision becomes through+1.
	// It is idempotent and never moves OldestRevision backwards.
	CompactEvents(ctx context.Context, through int64) error
}

// ScanRequest pages through the live entries of the whole store.
type ScanRequest struct {
	// After: only keys strictly after this one in (AgentID, Tier, Key) order;
	// the zero Key starts at the beginning.
	After Key
	Limit int // > 0
	Now   time.Time
}

// ScanResult is one page of live entries, read from one snapshot taken at
// Revision.
type ScanResult struct {
	Entries  []Entry
	More     bool
	Revision int64
}

// Scanner reads the current state of every key, for consumers that need a
// snapshot (a feed subscriber whose revision was compacted).
type Scanner interface {
	Scan(ctx context.Context, req ScanRequest) (*ScanResult, error)
}
