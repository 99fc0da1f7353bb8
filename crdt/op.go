package crdt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Op is one operation on a CRDT, with the fields of API.md's CRDT request
// body. Which fields matter depends on Op:
//
//	increment, decrement  ActorID, Amount
//	add, remove           ActorID, Element
//	assign                ActorID, Value, Timestamp (lww_register only)
//	set                   ActorID, Field, Value, Timestamp
//	delete                ActorID, Field, Timestamp
//	merge                 State
//
// Fields an op does not use are ignored.
type Op struct {
	// Type is the CRDT type the op is meant for; empty means "whatever the
	// CRDT is". Set, it must match the CRDT's type (ErrTypeMismatch).
	Type string `json:"type,omitempty"`
	Op   string `json:"op"`
	// ActorID names the replica (agent) making the op: the owner of a
	// counter's count and of an add's dot, and an LWW timestamp's tie-break.
	ActorID string `json:"actor_id,omitempty"`
	// Amount of an increment or decrement; 0 means the default, 1.
	Amount int64 `json:"amount,omitempty"`
	// Element to add or remove: any JSON value, identified by its canonical
	// form. JSON null is an element; nil is "missing".
	Element json.RawMessage `json:"element,omitempty"`
	// Value to assign or set: any JSON value; nil is "missing".
	Value json.RawMessage `json:"value,omitempty"`
	// Timestamp of an LWW write; nil means "stamp it" (see Clock.Stamp).
	// mv_register ignores it: its order is causal, not temporal.
	Timestamp *Timestamp `json:"timestamp,omitempty"`
	// Field of an lww_map set or delete; must not be empty.
	Field string `json:"field,omitempty"`
	// State to merge: a replica's full state, as State answers it.
	State json.RawMessage `json:"state,omitempty"`
}

// ParseOp decodes an op from a request body and validates it (Validate).
// Errors are *OpError. Fields other than Op's are ignored.
func ParseOp(data []byte) (Op, error) {
	var op Op
	if err := op.UnmarshalJSON(data); err != nil {
		return Op{}, err
	}
	if err := op.Validate(); err != nil {
		return Op{}, err
	}
	return op, nil
}

// UnmarshalJSON decodes the request body form, checking each field's JSON
// type so that errors name the field: a string where an amount belongs is
// "amount: must be an integer ≥ 1", not a decoder message. It does not
// validate the op against its type; Validate does. Errors are *OpError.
func (o *Op) UnmarshalJSON(data []byte) error {
	if !isObject(data) {
		return &OpError{Reason: "must be a JSON object", Err: ErrInvalidOp}
	}
	var w struct {
		Type      json.RawMessage `json:"type"`
		Op        json.RawMessage `json:"op"`
		ActorID   json.RawMessage `json:"actor_id"`
		Amount    json.RawMessage `json:"amount"`
		Element   json.RawMessage `json:"element"`
		Value     json.RawMessage `json:"value"`
		Timestamp json.RawMessage `json:"timestamp"`
		Field     json.RawMessage `json:"field"`
		State     json.RawMessage `json:"state"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return &OpError{Reason: "not valid JSON: " + jsonErr(err), Err: ErrInvalidOp}
	}
	var op Op
	var err error
	str := func(field string, raw json.RawMessage, dst *string) {
		if err != nil || isNull(raw) {
			return
		}
		if e := json.Unmarshal(raw, dst); e != nil {
			err = &OpError{Field: field, Reason: "must be a string", Err: ErrInvalidOp}
		}
	}
	str("type", w.Type, &op.Type)
	str("op", w.Op, &op.Op)
	str("actor_id", w.ActorID, &op.ActorID)
	str("field", w.Field, &op.Field)
	if err != nil {
		e := err.(*OpError)
		e.Type, e.Op = op.Type, op.Op
		return e
	}
	fail := func(field, reason string) error {
		return &OpError{Type: op.Type, Op: op.Op, Field: field, Reason: reason, Err: ErrInvalidOp}
	}
	if !isNull(w.Amount) {
		n, ok := parseAmount(w.Amount)
		if !ok {
			return fail("amount", fmt.Sprintf("must be an integer ≥ 1, got %s", truncate(w.Amount)))
		}
		op.Amount = n
	}
	if !isNull(w.Timestamp) {
		var ts Timestamp
		if e := ts.UnmarshalJSON(w.Timestamp); e != nil {
			return fail("timestamp", strings.TrimPrefix(e.Error(), "timestamp: "))
		}
		op.Timestamp = &ts
	}
	// element and value keep JSON null: it is a value. A null state is
	// no state.
	op.Element, op.Value = w.Element, w.Value
	if !isNull(w.State) {
		op.State = w.State
	}
	*o = op
	return nil
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// parseAmount reads a JSON integer ≥ 1. 3.0 and 3e0 are accepted as 3;
// 1.5, 0, negatives, strings and values past int64 are not.
func parseAmount(raw json.RawMessage) (int64, bool) {
	s := string(bytes.TrimSpace(raw))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if s == "" || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) {
			return 0, false
		}
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) || f < 1 || f >= math.MaxInt64 {
			return 0, false
		}
		n = int64(f)
	}
	return n, n >= 1
}

func truncate(raw []byte) string {
	const max = 40
	if len(raw) > max {
		return string(raw[:max]) + "…"
	}
	return string(raw)
}

// Validate checks the op against its Type: the type is known, the op is
// one of the type's, and the fields the op needs are present and well
// formed. Errors are *OpError. Values and elements are checked to be JSON
// here and canonicalized by Apply.
func (o Op) Validate() error {
	if o.Type == "" {
		return &OpError{Op: o.Op, Field: "type", Reason: "missing", Err: ErrInvalidOp}
	}
	return o.validate(o.Type)
}

func (o Op) validate(typ string) error {
	ops, ok := opsByType[typ]
	if !ok {
		return &OpError{Op: o.Op, Field: "type", Reason: unknownType(typ), Err: ErrUnknownType}
	}
	fail := func(field, reason string) error {
		return &OpError{Type: typ, Op: o.Op, Field: field, Reason: reason, Err: ErrInvalidOp}
	}
	if o.Op == "" {
		return fail("op", fmt.Sprintf("missing op (valid for %s: %s)", typ, strings.Join(ops, ", ")))
	}
	if !slices.Contains(ops, o.Op) {
		return fail("op", fmt.Sprintf("%q is not an op of %s (valid: %s)", o.Op, typ, strings.Join(ops, ", ")))
	}
	if o.Op == OpMerge {
		if isNull(o.State) {
			return fail("state", "missing")
		}
		return nil
	}
	if o.ActorID == "" {
		return fail("actor_id", "missing")
	}
	if r := validActor(o.ActorID); r != "" {
		return fail("actor_id", r)
	}
	switch o.Op {
	case OpIncrement, OpDecrement:
		if o.Amount < 0 {
			return fail("amount", fmt.Sprintf("must be an integer ≥ 1, got %d", o.Amount))
		}
	case OpAdd, OpRemove:
		if len(o.Element) == 0 {
			return fail("element", "missing")
		}
		if !json.Valid(o.Element) {
			return fail("element", "not valid JSON")
		}
	case OpAssign, OpSet, OpDelete:
		if o.Op != OpAssign {
			if o.Field == "" {
				return fail("field", "missing")
			}
			if !utf8.ValidString(o.Field) {
				return fail("field", "not valid UTF-8")
			}
		}
		if o.Op != OpDelete {
			if len(o.Value) == 0 {
				return fail("value", "missing")
			}
			if !json.Valid(o.Value) {
				return fail("value", "not valid JSON")
			}
		}
		if o.Timestamp != nil {
			ts := o.stamp(Timestamp{})
			if r := ts.check(); r != "" {
				return fail("timestamp", r)
			}
		}
	}
	return nil
}

// amount is the increment or decrement, with the default applied.
func (o Op) amount() uint64 {
	if o.Amount == 0 {
		return 1
	}
	return uint64(o.Amount)
}

// stamp is the op's timestamp: the one it carries (its actor defaulting to
// the op's), or else the successor of latest, the greatest timestamp the
// replica holds, so the write wins over everything the replica has seen.
func (o Op) stamp(latest Timestamp) Timestamp {
	if o.Timestamp == nil {
		return latest.successor(o.ActorID)
	}
	ts := *o.Timestamp
	if ts.Actor == "" {
		ts.Actor = o.ActorID
	}
	return ts
}
