// Package audit owns the audit trail's contract: the record of who did what
// and the Sink the engine hands one to after every state change. The
// tamper-evident store-backed sink comes with the audit issue; until then Nop
// keeps the call site in place so the engine's write path need not change.
package audit

import (
	"context"
	"time"
)

// Record describes one action on state.
type Record struct {
	Time      time.Time
	Principal string
	Action    string // "put", "delete", "patch", "rollback", "batch", "expire"
	AgentID   string
	Tier      string
	Key       string
	Version   int64
	Revision  int64
	Outcome   string // "ok" or an error code
}

// Sink receives audit records. Record must not block for long: the engine
// calls it on the request path.
type Sink interface {
	Record(ctx context.Context, r Record)
}

// Nop discards records.
type Nop struct{}

// Record does nothing.
func (Nop) Record(context.Context, Record) {}
