// Package crdt owns agentstate's conflict-free replicated data types: the
// seven types of API.md's CRDT section (g_counter, pn_counter, g_set, or_set,
// lww_register, lww_map, mv_register), the ops that change them and their
// validation, the deterministic JSON of each type's full state (what a
// replica sends to merge, answered as "crdt": {"type", "state"}) and of its
// materialized value, and the hybrid logical clock that orders
// last-writer-wins writes. It is pure: no I/O; the caller stores the state
// and passes the physical time in.
//
// Every type is state-based: Merge is a join (commutative, associative,
// idempotent), so replicas that have seen the same ops converge whatever the
// order, grouping or repetition of the merges between them. ApplyDelta also
// returns the op's delta: a small state whose merge into any replica has the
// op's effect, so a replica can ship deltas instead of its whole state.
//
// The causal types (or_set, mv_register) tag each add or assign with a dot,
// an (actor, counter) pair unique to that op, and keep a causal context: a
// version vector covering every dot seen, plus a "cloud" of dots seen out of
// order (only deltas delivered out of order leave one). A remove or an
// overwrite drops the dots it observed; the context remembers they were
// seen, so a merge can tell "removed here" from "not yet seen here" without
// tombstones, and the state does not grow with removed elements (the
// optimized OR-Set, "ORSWOT", with the delta-CRDT causal context).
//
// Elements and values are identified by their RFC 8785 canonical form
// (github.com/gowebpki/jcs): {"a":1,"b":2} and {"b":2,"a":1} are one element,
// and are stored and answered canonically (numbers as IEEE doubles, so
// integers past 2^53 lose precision). Arrays in values and states are sorted
// (null, booleans, numbers by value, strings, arrays, objects; see
// compareJSON) and maps by key, so equal states serialize to equal bytes.
package crdt

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// The CRDT types of API.md.
const (
	TypeGCounter    = "g_counter"
	TypePNCounter   = "pn_counter"
	TypeGSet        = "g_set"
	TypeORSet       = "or_set"
	TypeLWWRegister = "lww_register"
	TypeLWWMap      = "lww_map"
	TypeMVRegister  = "mv_register"
)

// The ops of API.md.
const (
	OpIncrement = "increment"
	OpDecrement = "decrement"
	OpAdd       = "add"
	OpRemove    = "remove"
	OpAssign    = "assign"
	OpSet       = "set"
	OpDelete    = "delete"
	OpMerge     = "merge"
)

// opsByType lists each type's ops, in the order error messages show them.
var opsByType = map[string][]string{
	TypeGCounter:    {OpIncrement, OpMerge},
	TypePNCounter:   {OpIncrement, OpDecrement, OpMerge},
	TypeGSet:        {OpAdd, OpMerge},
	TypeORSet:       {OpAdd, OpRemove, OpMerge},
	TypeLWWRegister: {OpAssign, OpMerge},
	TypeLWWMap:      {OpSet, OpDelete, OpMerge},
	TypeMVRegister:  {OpAssign, OpMerge},
}

// typeNames is every type, sorted, for messages and Types.
var typeNames = []string{
	TypeGCounter, TypeGSet, TypeLWWMap, TypeLWWRegister, TypeMVRegister, TypeORSet, TypePNCounter,
}

// Types returns the type names New accepts, sorted.
func Types() []string { return append([]string(nil), typeNames...) }

// Ops returns the ops valid for typ, or nil for an unknown type.
func Ops(typ string) []string { return append([]string(nil), opsByType[typ]...) }

var (
	// ErrUnknownType: the type is not one of Types (HTTP 400).
	ErrUnknownType = errors.New("crdt: unknown type")
	// ErrInvalidOp: the op is malformed or not valid for its type (HTTP 400).
	ErrInvalidOp = errors.New("crdt: invalid op")
	// ErrInvalidState: a state to decode or merge is malformed (HTTP 400).
	ErrInvalidState = errors.New("crdt: invalid state")
	// ErrTypeMismatch: an op or a state of one type met a CRDT of another
	// (HTTP 409 version_conflict, conflict_type type_mismatch).
	ErrTypeMismatch = errors.New("crdt: type mismatch")
)

// OpError says what is wrong with an op. It unwraps to its cause: one of
// ErrInvalidOp, ErrUnknownType, ErrTypeMismatch, or, for a merge op whose
// state does not decode, the *StateError (which unwraps to ErrInvalidState).
type OpError struct {
	Type   string // the CRDT type, when known
	Op     string // the op, when known
	Field  string // the request field at fault ("amount", "actor_id", ...), if one is
	Reason string // what is wrong; empty when Err says it all
	Err    error
}

// Error reads "crdt: <type> <op>: <field>: <reason>", leaving out what is
// not known, e.g. `crdt: g_counter decrement: "decrement" is not an op of
// g_counter (valid: increment, merge)` or `crdt: pn_counter increment:
// amount: must be an integer ≥ 1, got 0`.
func (e *OpError) Error() string {
	var b strings.Builder
	b.WriteString("crdt: ")
	var what []string
	for _, s := range []string{e.Type, e.Op} {
		if s != "" {
			what = append(what, s)
		}
	}
	switch {
	case len(what) > 0:
		b.WriteString(strings.Join(what, " "))
		b.WriteString(": ")
	case e.Field == "":
		b.WriteString("invalid op: ")
	}
	if e.Field != "" && e.Field != "op" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	switch {
	case e.Reason != "":
		b.WriteString(e.Reason)
	case e.Err != nil:
		b.WriteString(strings.TrimPrefix(e.Err.Error(), "crdt: "))
	}
	return b.String()
}

func (e *OpError) Unwrap() error { return e.Err }

// StateError says what is wrong with a state given to Decode (or to a merge
// op). It unwraps to ErrInvalidState, or to ErrUnknownType.
type StateError struct {
	Type   string
	Path   string // where in the state, e.g. "entries[3].dots[0]"; empty for the whole
	Reason string
	Err    error
}

func (e *StateError) Error() string {
	if e.Err == ErrUnknownType {
		return "crdt: " + e.Reason
	}
	msg := "crdt: invalid " + e.Type + " state: "
	if e.Path != "" {
		msg += e.Path + ": "
	}
	return msg + e.Reason
}

func (e *StateError) Unwrap() error { return e.Err }

func stateErr(typ, path, format string, args ...any) *StateError {
	return &StateError{Type: typ, Path: path, Reason: fmt.Sprintf(format, args...), Err: ErrInvalidState}
}

// CRDT is one replica of one CRDT. Implementations are not safe for
// concurrent use; the caller serializes access to a key.
type CRDT interface {
	// Type is the API name of the type, e.g. "or_set".
	Type() string
	// Apply applies op (validated against the type; an op whose Type is set
	// must name this type). A merge op merges the state it carries.
	Apply(op Op) error
	// ApplyDelta applies op like Apply and returns its delta: a state of the
	// same type whose merge into any replica has the op's effect there.
	ApplyDelta(op Op) (CRDT, error)
	// Merge joins other, which must be of the same type, into the receiver;
	// other is not modified.
	Merge(other CRDT) error
	// Value is the materialized value: a number, a sorted array, a
	// register's value, an object; deterministic.
	Value() json.RawMessage
	// State is the full state as deterministic JSON, accepted by Decode.
	State() json.RawMessage
	// Clone returns an independent copy.
	Clone() CRDT
}

// Timestamped is implemented by the last-writer-wins types: Latest is the
// greatest timestamp the state holds, which a server's Clock should Observe
// after a merge so its later writes order after the merged ones.
type Timestamped interface {
	Latest() (Timestamp, bool)
}

var (
	_ CRDT        = (*GCounter)(nil)
	_ CRDT        = (*PNCounter)(nil)
	_ CRDT        = (*GSet)(nil)
	_ CRDT        = (*ORSet)(nil)
	_ CRDT        = (*LWWRegister)(nil)
	_ CRDT        = (*LWWMap)(nil)
	_ CRDT        = (*MVRegister)(nil)
	_ Timestamped = (*LWWRegister)(nil)
	_ Timestamped = (*LWWMap)(nil)
)

// stateDecoder is implemented by every type: decodeState replaces the
// receiver's state with data, validated, or returns a *StateError.
type stateDecoder interface {
	CRDT
	decodeState(data []byte) error
}

func unknownType(typ string) string {
	return fmt.Sprintf("unknown type %q (valid: %s)", typ, strings.Join(typeNames, ", "))
}

// New returns an empty CRDT of type typ.
func New(typ string) (CRDT, error) {
	c := newEmpty(typ)
	if c == nil {
		return nil, &OpError{Field: "type", Reason: unknownType(typ), Err: ErrUnknownType}
	}
	return c, nil
}

func newEmpty(typ string) stateDecoder {
	switch typ {
	case TypeGCounter:
		return NewGCounter()
	case TypePNCounter:
		return NewPNCounter()
	case TypeGSet:
		return NewGSet()
	case TypeORSet:
		return NewORSet()
	case TypeLWWRegister:
		return NewLWWRegister()
	case TypeLWWMap:
		return NewLWWMap()
	case TypeMVRegister:
		return NewMVRegister()
	}
	return nil
}

// Decode returns the CRDT of type typ whose full state is state (as State
// answers it). The state is validated as hostile input: malformed JSON,
// unknown fields, negative or overflowing counts, malformed dots, dots the
// causal context does not cover, duplicate elements and the like are a
// *StateError, never a panic.
func Decode(typ string, state json.RawMessage) (CRDT, error) {
	c := newEmpty(typ)
	if c == nil {
		return nil, &StateError{Type: typ, Reason: unknownType(typ), Err: ErrUnknownType}
	}
	if !isObject(state) {
		return nil, stateErr(typ, "", "must be a JSON object")
	}
	if err := c.decodeState(state); err != nil {
		return nil, err
	}
	return c, nil
}

// checkOp validates op for a CRDT of type typ.
func checkOp(typ string, op Op) error {
	if op.Type != "" && op.Type != typ {
		return &OpError{Type: op.Type, Op: op.Op, Reason: fmt.Sprintf("an op of %s cannot apply to a %s", op.Type, typ), Err: ErrTypeMismatch}
	}
	return op.validate(typ)
}

// applyMerge is every type's merge op: decode the state, join it, and
// return it as the delta (joining it anywhere has the op's effect).
func applyMerge(c CRDT, op Op) (CRDT, error) {
	other, err := Decode(c.Type(), op.State)
	if err != nil {
		return nil, &OpError{Type: c.Type(), Op: OpMerge, Field: "state", Err: err}
	}
	if err := c.Merge(other); err != nil {
		return nil, err
	}
	return other, nil
}

func mismatch(c, other CRDT) error {
	name := "nil"
	if other != nil {
		name = other.Type()
	}
	return fmt.Errorf("%w: cannot merge a %s into a %s", ErrTypeMismatch, name, c.Type())
}
