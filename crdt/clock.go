package crdt

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxPhysical bounds Timestamp.Physical: 2^53-1 ms, the largest integer a
// JSON number carries exactly in every client (about 285,000 years).
const MaxPhysical = 1<<53 - 1

// Timestamp is a hybrid logical clock reading: physical time in Unix
// milliseconds, a logical counter that orders readings within one
// millisecond (or while physical time lags a timestamp already seen), and
// the actor that took it. The actor breaks ties, so timestamps of distinct
// actors never compare equal and last-writer-wins is deterministic.
//
// In a state it is {"physical": ms, "logical": n, "actor": "id"}. In an op
// it may also be a number (Unix ms) or an RFC 3339 string, with logical 0;
// an op's timestamp without an actor takes the op's actor_id.
type Timestamp struct {
	Physical int64  `json:"physical"`
	Logical  uint32 `json:"logical"`
	Actor    string `json:"actor"`
}

// Compare orders timestamps by physical time, then logical counter, then
// actor id (byte order).
func (t Timestamp) Compare(u Timestamp) int {
	if c := cmp.Compare(t.Physical, u.Physical); c != 0 {
		return c
	}
	if c := cmp.Compare(t.Logical, u.Logical); c != 0 {
		return c
	}
	return strings.Compare(t.Actor, u.Actor)
}

// IsZero reports whether t is the zero Timestamp.
func (t Timestamp) IsZero() bool { return t == Timestamp{} }

// Time is the physical part as a time.Time.
func (t Timestamp) Time() time.Time { return time.UnixMilli(t.Physical).UTC() }

func (t Timestamp) String() string {
	return fmt.Sprintf("%d.%d@%s", t.Physical, t.Logical, t.Actor)
}

// successor is the smallest reading after t's (physical, logical), taken
// by actor: what a replica stamps an op with when the caller gave neither a
// timestamp nor a Clock reading (HLC with the physical clock read as 0).
func (t Timestamp) successor(actor string) Timestamp {
	if t.Logical == math.MaxUint32 {
		return Timestamp{Physical: t.Physical + 1, Actor: actor}
	}
	return Timestamp{Physical: t.Physical, Logical: t.Logical + 1, Actor: actor}
}

// check says what is wrong with t as a stored timestamp, or "".
func (t Timestamp) check() string {
	if t.Physical < 0 || t.Physical > MaxPhysical {
		return fmt.Sprintf("physical %d out of range [0, %d]", t.Physical, int64(MaxPhysical))
	}
	if r := validActor(t.Actor); r != "" {
		return "actor " + r
	}
	return ""
}

// UnmarshalJSON accepts the object form, a number of Unix milliseconds, or
// an RFC 3339 string. Unknown object fields are refused.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return errors.New("timestamp: empty")
	}
	var ts Timestamp
	switch c := b[0]; {
	case c == '{':
		var w struct {
			Physical json.RawMessage `json:"physical"`
			Logical  uint32          `json:"logical"`
			Actor    string          `json:"actor"`
		}
		if err := strictUnmarshal(b, &w); err != nil {
			return fmt.Errorf("timestamp: %s", jsonErr(err))
		}
		if isNull(w.Physical) {
			return errors.New("timestamp: missing physical")
		}
		p, err := parseMillis(string(w.Physical))
		if err != nil {
			return err
		}
		ts = Timestamp{Physical: p, Logical: w.Logical, Actor: w.Actor}
	case c == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("timestamp: %s", jsonErr(err))
		}
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("timestamp: not RFC 3339: %q", s)
		}
		ts = Timestamp{Physical: tm.UnixMilli()}
	case c == '-' || (c >= '0' && c <= '9'):
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("timestamp: %s", jsonErr(err))
		}
		p, err := parseMillis(string(n))
		if err != nil {
			return err
		}
		ts = Timestamp{Physical: p}
	default:
		return errors.New("timestamp: must be an object, a number of Unix milliseconds or an RFC 3339 string")
	}
	if ts.Physical < 0 || ts.Physical > MaxPhysical {
		return fmt.Errorf("timestamp: physical %d out of range [0, %d]", ts.Physical, int64(MaxPhysical))
	}
	*t = ts
	return nil
}

// parseMillis reads a JSON number of milliseconds; it must be an integer
// (1.7e12 is accepted when it is one).
func parseMillis(s string) (int64, error) {
	if s == "" || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) {
		return 0, fmt.Errorf("timestamp: physical must be a number, got %s", truncate([]byte(s)))
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || f < 0 || f > MaxPhysical {
		return 0, fmt.Errorf("timestamp: physical must be an integer in [0, %d], got %s", int64(MaxPhysical), s)
	}
	return int64(f), nil
}

// Clock is a hybrid logical clock (Kulkarni et al., 2014): its readings
// follow physical time when that moves forward and never go backwards or
// repeat when it does not, and every reading orders after each timestamp
// the clock has observed. A server keeps one and stamps last-writer-wins
// ops that carry no timestamp, so a write orders after everything the
// server has seen even when clocks disagree. The physical time is an
// argument, so a Clock is deterministic under test. Safe for concurrent
// use; the zero value is ready.
type Clock struct {
	mu       sync.Mutex
	physical int64
	logical  uint32
}

// Now returns the next reading for actorID at the given physical time.
func (c *Clock) Now(actorID string, physical time.Time) Timestamp {
	pt := min(max(physical.UnixMilli(), 0), MaxPhysical)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case pt > c.physical:
		c.physical, c.logical = pt, 0
	case c.logical == math.MaxUint32:
		// 2^32 readings in one millisecond: borrow the next one.
		c.physical, c.logical = c.physical+1, 0
	default:
		c.logical++
	}
	return Timestamp{Physical: c.physical, Logical: c.logical, Actor: actorID}
}

// Observe makes every later reading order after ts. Timestamps outside the
// valid range are ignored.
func (c *Clock) Observe(ts Timestamp) {
	if ts.Physical < 0 || ts.Physical > MaxPhysical {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ts.Physical > c.physical || (ts.Physical == c.physical && ts.Logical > c.logical) {
		c.physical, c.logical = ts.Physical, ts.Logical
	}
}

// Stamp prepares an op for Apply: an assign, set or delete without a
// timestamp gets the clock's next reading for its actor; one with a
// timestamp has it observed. Other ops are left alone.
func (c *Clock) Stamp(op *Op, physical time.Time) {
	switch op.Op {
	case OpAssign, OpSet, OpDelete:
	default:
		return
	}
	if op.Timestamp == nil {
		ts := c.Now(op.ActorID, physical)
		op.Timestamp = &ts
		return
	}
	c.Observe(*op.Timestamp)
}
