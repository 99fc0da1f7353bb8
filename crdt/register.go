package crdt

import (
	"encoding/json"
	"fmt"
	"slices"
)

// lwwEntry is one last-writer-wins write: a value, or for an lww_map
// delete a tombstone, with its timestamp.
type lwwEntry struct {
	ts      Timestamp
	value   string // canonical JSON; "" for a tombstone
	deleted bool
}

// compare orders writes; the greater wins. Timestamps of distinct actors
// never tie; equal ones come only from a client reusing a timestamp for
// different writes, and are broken on content (a delete over a value, then
// the greater value) so that every replica keeps the same write.
func (a lwwEntry) compare(b lwwEntry) int {
	if c := a.ts.Compare(b.ts); c != 0 {
		return c
	}
	if a.deleted != b.deleted {
		if a.deleted {
			return 1
		}
		return -1
	}
	return compareJSON(a.value, b.value)
}

// lwwWrite builds the entry of an assign, set or delete. latest is the
// greatest timestamp the replica holds, for ops that carry none.
func lwwWrite(typ string, op Op, latest Timestamp) (lwwEntry, error) {
	e := lwwEntry{ts: op.stamp(latest), deleted: op.Op == OpDelete}
	if r := e.ts.check(); r != "" {
		return e, &OpError{Type: typ, Op: op.Op, Field: "timestamp", Reason: r, Err: ErrInvalidOp}
	}
	if !e.deleted {
		v, err := canonical(op.Value)
		if err != nil {
			return e, &OpError{Type: typ, Op: op.Op, Field: "value", Reason: err.Error(), Err: ErrInvalidOp}
		}
		e.value = v
	}
	return e, nil
}

// lwwWire is a write in a state: {"timestamp": {…}, "value": v} or, for a
// tombstone, {"timestamp": {…}, "deleted": true}.
type lwwWire struct {
	Timestamp *Timestamp      `json:"timestamp,omitempty"`
	Value     json.RawMessage `json:"value,omitempty"`
	Deleted   bool            `json:"deleted,omitempty"`
}

func (e lwwEntry) wire() lwwWire {
	w := lwwWire{Timestamp: &e.ts, Deleted: e.deleted}
	if !e.deleted {
		w.Value = json.RawMessage(e.value)
	}
	return w
}

// decodeLWW validates a write from a state.
func decodeLWW(typ, path string, w lwwWire, allowDelete bool) (lwwEntry, error) {
	if w.Timestamp == nil {
		return lwwEntry{}, stateErr(typ, path, "missing timestamp")
	}
	if r := w.Timestamp.check(); r != "" {
		return lwwEntry{}, stateErr(typ, path+".timestamp", "%s", r)
	}
	e := lwwEntry{ts: *w.Timestamp, deleted: w.Deleted}
	switch {
	case w.Deleted && !allowDelete:
		return e, stateErr(typ, path, "unknown field \"deleted\"")
	case w.Deleted && w.Value != nil:
		return e, stateErr(typ, path, "a deleted field has no value")
	case w.Deleted:
		return e, nil
	case w.Value == nil:
		return e, stateErr(typ, path, "missing value")
	}
	v, err := canonical(w.Value)
	if err != nil {
		return e, stateErr(typ, path+".value", "%v", err)
	}
	e.value = v
	return e, nil
}

// LWWRegister is a last-writer-wins register: the write with the greatest
// hybrid-logical-clock timestamp wins. Empty, its value is null.
// State: {} or {"timestamp": {"physical", "logical", "actor"}, "value": v}.
type LWWRegister struct {
	set bool
	e   lwwEntry
}

// NewLWWRegister returns an empty register.
func NewLWWRegister() *LWWRegister { return &LWWRegister{} }

func (r *LWWRegister) Type() string { return TypeLWWRegister }

func (r *LWWRegister) Apply(op Op) error {
	_, err := r.apply(op, false)
	return err
}

func (r *LWWRegister) ApplyDelta(op Op) (CRDT, error) { return r.apply(op, true) }

func (r *LWWRegister) apply(op Op, wantDelta bool) (CRDT, error) {
	if err := checkOp(TypeLWWRegister, op); err != nil {
		return nil, err
	}
	if op.Op == OpMerge {
		return applyMerge(r, op)
	}
	latest, _ := r.Latest()
	e, err := lwwWrite(TypeLWWRegister, op, latest)
	if err != nil {
		return nil, err
	}
	// A write with an older timestamp than the register's loses, here as
	// at every other replica.
	r.put(e)
	if !wantDelta {
		return nil, nil
	}
	return &LWWRegister{set: true, e: e}, nil
}

func (r *LWWRegister) put(e lwwEntry) {
	if !r.set || e.compare(r.e) > 0 {
		r.set, r.e = true, e
	}
}

func (r *LWWRegister) Merge(other CRDT) error {
	o, ok := other.(*LWWRegister)
	if !ok || o == nil {
		return mismatch(r, other)
	}
	if o.set {
		r.put(o.e)
	}
	return nil
}

// Latest is the timestamp of the current value.
func (r *LWWRegister) Latest() (Timestamp, bool) { return r.e.ts, r.set }

func (r *LWWRegister) Value() json.RawMessage {
	if !r.set {
		return json.RawMessage("null")
	}
	return json.RawMessage(r.e.value)
}

type lwwRegisterWire struct {
	Timestamp *Timestamp      `json:"timestamp,omitempty"`
	Value     json.RawMessage `json:"value,omitempty"`
}

func (r *LWWRegister) State() json.RawMessage {
	if !r.set {
		return json.RawMessage("{}")
	}
	return mustMarshal(r.e.wire())
}

func (r *LWWRegister) decodeState(data []byte) error {
	var w lwwRegisterWire
	if err := strictUnmarshal(data, &w); err != nil {
		return stateErr(TypeLWWRegister, "", "%s", jsonErr(err))
	}
	if w.Timestamp == nil && w.Value == nil {
		*r = LWWRegister{}
		return nil
	}
	e, err := decodeLWW(TypeLWWRegister, "", lwwWire{Timestamp: w.Timestamp, Value: w.Value}, false)
	if err != nil {
		return err
	}
	*r = LWWRegister{set: true, e: e}
	return nil
}

func (r *LWWRegister) Clone() CRDT { c := *r; return &c }

// MVRegister is a multi-value register: an assign overwrites the values
// its replica has seen, and concurrent assigns are all kept, for a reader
// (or a later assign) to resolve. Each value carries the dot of its assign;
// the causal context covers every dot seen, exactly as in ORSet: a value is
// dropped by a merge when the other side has seen its dot and overwritten
// it. Its value is the array of current values, deduplicated and sorted.
// Timestamps are ignored: the order is causal, not temporal.
//
// State: {"vv": {…}, "cloud": [dots], "entries": [{"dot": ["actor", n],
// "value": v}]}, entries sorted by dot, "cloud" omitted when empty.
type MVRegister struct {
	ctx causalContext
	// entries is sorted by dot, and replaced rather than modified.
	entries []mvEntry
}

type mvEntry struct {
	dot   Dot
	value string // canonical JSON
}

// NewMVRegister returns an empty register; its value is [].
func NewMVRegister() *MVRegister { return &MVRegister{ctx: newContext()} }

func (r *MVRegister) Type() string { return TypeMVRegister }

func (r *MVRegister) Apply(op Op) error {
	_, err := r.apply(op, false)
	return err
}

func (r *MVRegister) ApplyDelta(op Op) (CRDT, error) { return r.apply(op, true) }

func (r *MVRegister) apply(op Op, wantDelta bool) (CRDT, error) {
	if err := checkOp(TypeMVRegister, op); err != nil {
		return nil, err
	}
	if op.Op == OpMerge {
		return applyMerge(r, op)
	}
	v, err := canonical(op.Value)
	if err != nil {
		return nil, &OpError{Type: TypeMVRegister, Op: op.Op, Field: "value", Reason: err.Error(), Err: ErrInvalidOp}
	}
	d, ok := r.ctx.next(op.ActorID)
	if !ok {
		return nil, &OpError{Type: TypeMVRegister, Op: op.Op, Field: "actor_id", Reason: fmt.Sprintf("actor %q has no dots left", op.ActorID), Err: ErrInvalidOp}
	}
	var delta *MVRegister
	if wantDelta {
		// The delta's context is the overwritten dots and the new one.
		delta = NewMVRegister()
		for _, e := range r.entries {
			delta.ctx.insert(e.dot)
		}
		delta.ctx.insert(d)
		delta.entries = []mvEntry{{dot: d, value: v}}
	}
	r.ctx.insert(d)
	r.entries = []mvEntry{{dot: d, value: v}}
	if delta == nil {
		return nil, nil
	}
	return delta, nil
}

func (r *MVRegister) Merge(other CRDT) error {
	o, ok := other.(*MVRegister)
	if !ok || o == nil {
		return mismatch(r, other)
	}
	if o == r {
		return nil
	}
	// The causal join of joinDots, over dots that carry values.
	out := make([]mvEntry, 0, len(r.entries)+len(o.entries))
	a, b := r.entries, o.entries
	for len(a) > 0 || len(b) > 0 {
		var c int
		switch {
		case len(b) == 0:
			c = -1
		case len(a) == 0:
			c = 1
		default:
			c = a[0].dot.compare(b[0].dot)
		}
		switch {
		case c == 0:
			// One dot, one assign: the values are equal unless a
			// hostile state says otherwise; keep the greater so the
			// join stays deterministic.
			e := a[0]
			if compareJSON(b[0].value, e.value) > 0 {
				e = b[0]
			}
			out = append(out, e)
			a, b = a[1:], b[1:]
		case c < 0:
			if !o.ctx.has(a[0].dot) {
				out = append(out, a[0])
			}
			a = a[1:]
		default:
			if !r.ctx.has(b[0].dot) {
				out = append(out, b[0])
			}
			b = b[1:]
		}
	}
	r.entries = out
	r.ctx.join(&o.ctx)
	return nil
}

func (r *MVRegister) Value() json.RawMessage {
	vals := make([]string, len(r.entries))
	for i, e := range r.entries {
		vals[i] = e.value
	}
	return sortedArray(vals)
}

type mvRegisterWire struct {
	VV      map[string]uint64 `json:"vv"`
	Cloud   []Dot             `json:"cloud,omitempty"`
	Entries []mvWireEntry     `json:"entries"`
}

type mvWireEntry struct {
	Dot   *Dot            `json:"dot"`
	Value json.RawMessage `json:"value"`
}

func (r *MVRegister) State() json.RawMessage {
	b := appendContext(make([]byte, 0, 64), &r.ctx)
	b = append(b, `,"entries":[`...)
	for i, e := range r.entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"dot":`...)
		b = e.dot.appendJSON(b)
		b = append(b, `,"value":`...)
		b = append(b, e.value...)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

func (r *MVRegister) decodeState(data []byte) error {
	var w mvRegisterWire
	if err := strictUnmarshal(data, &w); err != nil {
		return stateErr(TypeMVRegister, "", "%s", jsonErr(err))
	}
	ctx, err := decodeContext(TypeMVRegister, w.VV, w.Cloud)
	if err != nil {
		return err
	}
	entries := make([]mvEntry, 0, len(w.Entries))
	for i, e := range w.Entries {
		path := fmt.Sprintf("entries[%d]", i)
		if e.Dot == nil {
			return stateErr(TypeMVRegister, path, "missing dot")
		}
		if r := checkDot(*e.Dot); r != "" {
			return stateErr(TypeMVRegister, path+".dot", "%s", r)
		}
		if !ctx.has(*e.Dot) {
			return stateErr(TypeMVRegister, path+".dot", "dot %v is not covered by vv or cloud", *e.Dot)
		}
		if e.Value == nil {
			return stateErr(TypeMVRegister, path, "missing value")
		}
		v, err := canonical(e.Value)
		if err != nil {
			return stateErr(TypeMVRegister, path+".value", "%v", err)
		}
		entries = append(entries, mvEntry{dot: *e.Dot, value: v})
	}
	slices.SortFunc(entries, func(a, b mvEntry) int { return a.dot.compare(b.dot) })
	for i := 1; i < len(entries); i++ {
		if entries[i].dot == entries[i-1].dot {
			return stateErr(TypeMVRegister, "entries", "duplicate dot %v", entries[i].dot)
		}
	}
	r.ctx, r.entries = ctx, entries
	return nil
}

func (r *MVRegister) Clone() CRDT {
	return &MVRegister{ctx: r.ctx.clone(), entries: slices.Clone(r.entries)}
}
