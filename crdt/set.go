package crdt

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// element canonicalizes an add's or a remove's element.
func element(typ string, op Op) (string, error) {
	key, err := canonical(op.Element)
	if err != nil {
		return "", &OpError{Type: typ, Op: op.Op, Field: "element", Reason: err.Error(), Err: ErrInvalidOp}
	}
	return key, nil
}

// GSet is a grow-only set of JSON values; the join is the union.
// State: {"elements": [sorted canonical elements]}; value: the same array.
type GSet struct {
	elems map[string]struct{}
}

// NewGSet returns an empty set.
func NewGSet() *GSet { return &GSet{elems: map[string]struct{}{}} }

func (s *GSet) Type() string { return TypeGSet }

func (s *GSet) Apply(op Op) error {
	_, err := s.apply(op, false)
	return err
}

func (s *GSet) ApplyDelta(op Op) (CRDT, error) { return s.apply(op, true) }

func (s *GSet) apply(op Op, wantDelta bool) (CRDT, error) {
	if err := checkOp(TypeGSet, op); err != nil {
		return nil, err
	}
	if op.Op == OpMerge {
		return applyMerge(s, op)
	}
	key, err := element(TypeGSet, op)
	if err != nil {
		return nil, err
	}
	s.elems[key] = struct{}{}
	if !wantDelta {
		return nil, nil
	}
	return &GSet{elems: map[string]struct{}{key: {}}}, nil
}

func (s *GSet) Merge(other CRDT) error {
	o, ok := other.(*GSet)
	if !ok || o == nil {
		return mismatch(s, other)
	}
	maps.Copy(s.elems, o.elems)
	return nil
}

// Has reports whether the set holds element (any JSON, compared by its
// canonical form).
func (s *GSet) Has(element json.RawMessage) bool {
	key, err := canonical(element)
	_, ok := s.elems[key]
	return err == nil && ok
}

func (s *GSet) Value() json.RawMessage {
	return sortedArray(slices.Collect(maps.Keys(s.elems)))
}

func (s *GSet) State() json.RawMessage {
	b := make([]byte, 0, 16)
	b = append(b, `{"elements":`...)
	b = append(b, s.Value()...)
	return append(b, '}')
}

type gSetWire struct {
	Elements []json.RawMessage `json:"elements"`
}

func (s *GSet) decodeState(data []byte) error {
	var w gSetWire
	if err := strictUnmarshal(data, &w); err != nil {
		return stateErr(TypeGSet, "", "%s", jsonErr(err))
	}
	elems := make(map[string]struct{}, len(w.Elements))
	for i, e := range w.Elements {
		key, err := canonical(e)
		if err != nil {
			return stateErr(TypeGSet, fmt.Sprintf("elements[%d]", i), "%v", err)
		}
		if _, dup := elems[key]; dup {
			return stateErr(TypeGSet, fmt.Sprintf("elements[%d]", i), "duplicate element %s", truncate([]byte(key)))
		}
		elems[key] = struct{}{}
	}
	s.elems = elems
	return nil
}

func (s *GSet) Clone() CRDT { return &GSet{elems: maps.Clone(s.elems)} }

// ORSet is an add-wins observed-remove set of JSON values, the optimized
// OR-Set (ORSWOT): each present element carries the dots of the adds that
// put it there and that no remove has observed; the causal context covers
// every dot the replica has seen. An add takes a new dot for its actor and
// replaces the element's dots (it has observed them); a remove drops the
// element and its dots, keeping no tombstone — the context still covers
// them, which is how a merge tells "removed here" (seen, absent: drop it)
// from "not yet seen here" (keep it). A concurrent add's dot is one the
// remover has not seen, so it survives the merge: add wins.
//
// State: {"vv": {"actor": n}, "cloud": [dots], "entries": [{"element": e,
// "dots": [["actor", n], …]}]}, entries in element order, dots sorted,
// "cloud" omitted when empty (always, for replicas exchanging full states).
type ORSet struct {
	ctx causalContext
	// entries maps each present element's canonical text to its dots,
	// sorted and non-empty. Dot slices are never modified in place (they
	// are replaced), so clones share them.
	entries map[string][]Dot
}

// NewORSet returns an empty set.
func NewORSet() *ORSet { return &ORSet{ctx: newContext(), entries: map[string][]Dot{}} }

func (s *ORSet) Type() string { return TypeORSet }

func (s *ORSet) Apply(op Op) error {
	_, err := s.apply(op, false)
	return err
}

func (s *ORSet) ApplyDelta(op Op) (CRDT, error) { return s.apply(op, true) }

func (s *ORSet) apply(op Op, wantDelta bool) (CRDT, error) {
	if err := checkOp(TypeORSet, op); err != nil {
		return nil, err
	}
	if op.Op == OpMerge {
		return applyMerge(s, op)
	}
	key, err := element(TypeORSet, op)
	if err != nil {
		return nil, err
	}
	old := s.entries[key]
	// The delta's context is the dots the op observed (and the add's new
	// one): merged elsewhere, it drops exactly those and nothing else.
	var delta *ORSet
	if wantDelta {
		delta = NewORSet()
		for _, d := range old {
			delta.ctx.insert(d)
		}
	}
	switch op.Op {
	case OpAdd:
		d, ok := s.ctx.next(op.ActorID)
		if !ok {
			return nil, &OpError{Type: TypeORSet, Op: op.Op, Field: "actor_id", Reason: fmt.Sprintf("actor %q has no dots left", op.ActorID), Err: ErrInvalidOp}
		}
		s.ctx.insert(d)
		s.entries[key] = []Dot{d}
		if delta != nil {
			delta.ctx.insert(d)
			delta.entries[key] = []Dot{d}
		}
	case OpRemove:
		delete(s.entries, key)
	}
	if delta == nil {
		return nil, nil
	}
	return delta, nil
}

func (s *ORSet) Merge(other CRDT) error {
	o, ok := other.(*ORSet)
	if !ok || o == nil {
		return mismatch(s, other)
	}
	if o == s {
		return nil
	}
	// Both passes read the contexts as they were before the merge; they
	// are joined last.
	for key, dots := range s.entries {
		var nd []Dot
		if od, both := o.entries[key]; both {
			nd = joinDots(dots, &s.ctx, od, &o.ctx)
		} else {
			nd = survivors(dots, &o.ctx)
		}
		if len(nd) == 0 {
			delete(s.entries, key)
		} else {
			s.entries[key] = nd
		}
	}
	for key, od := range o.entries {
		if _, both := s.entries[key]; both {
			continue
		}
		// Either the element is new here, or the first pass dropped it;
		// then every dot o has for it is one s has seen, and none survive.
		if nd := survivors(od, &s.ctx); len(nd) > 0 {
			s.entries[key] = nd
		}
	}
	s.ctx.join(&o.ctx)
	return nil
}

// Has reports whether the set holds element (any JSON, compared by its
// canonical form).
func (s *ORSet) Has(element json.RawMessage) bool {
	key, err := canonical(element)
	_, ok := s.entries[key]
	return err == nil && ok
}

// Len is the number of elements.
func (s *ORSet) Len() int { return len(s.entries) }

func (s *ORSet) Value() json.RawMessage {
	return sortedArray(slices.Collect(maps.Keys(s.entries)))
}

type orSetWire struct {
	VV      map[string]uint64 `json:"vv"`
	Cloud   []Dot             `json:"cloud,omitempty"`
	Entries []orSetWireEntry  `json:"entries"`
}

type orSetWireEntry struct {
	Element json.RawMessage `json:"element"`
	Dots    []Dot           `json:"dots"`
}

// State is written by hand rather than by json.Marshal: a set's state is
// rewritten on every op and can hold many elements, and every part of it is
// already valid JSON (canonical elements, checked actor ids).
func (s *ORSet) State() json.RawMessage {
	keys := slices.Collect(maps.Keys(s.entries))
	slices.SortFunc(keys, compareJSON)
	n := 32
	for _, k := range keys {
		n += len(k) + 32 + 24*len(s.entries[k])
	}
	b := make([]byte, 0, n)
	b = appendContext(b, &s.ctx)
	b = append(b, `,"entries":[`...)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"element":`...)
		b = append(b, k...)
		b = append(b, `,"dots":`...)
		b = appendDots(b, s.entries[k])
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendContext writes `{"vv":{…}` and, when the cloud is not empty,
// `,"cloud":[…]`, leaving the object open.
func appendContext(b []byte, c *causalContext) []byte {
	b = append(b, `{"vv":{`...)
	actors := slices.Sorted(maps.Keys(c.vv))
	for i, a := range actors {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, a)
		b = append(b, ':')
		b = strconv.AppendUint(b, c.vv[a], 10)
	}
	b = append(b, '}')
	if cloud := c.sortedCloud(); len(cloud) > 0 {
		b = append(b, `,"cloud":`...)
		b = appendDots(b, cloud)
	}
	return b
}

func appendDots(b []byte, dots []Dot) []byte {
	b = append(b, '[')
	for i, d := range dots {
		if i > 0 {
			b = append(b, ',')
		}
		b = d.appendJSON(b)
	}
	return append(b, ']')
}

func (s *ORSet) decodeState(data []byte) error {
	var w orSetWire
	if err := strictUnmarshal(data, &w); err != nil {
		return stateErr(TypeORSet, "", "%s", jsonErr(err))
	}
	ctx, err := decodeContext(TypeORSet, w.VV, w.Cloud)
	if err != nil {
		return err
	}
	entries := make(map[string][]Dot, len(w.Entries))
	for i, e := range w.Entries {
		path := func(sub string) string { return fmt.Sprintf("entries[%d]%s", i, sub) }
		if e.Element == nil {
			return stateErr(TypeORSet, path(""), "missing element")
		}
		key, err := canonical(e.Element)
		if err != nil {
			return stateErr(TypeORSet, path(".element"), "%v", err)
		}
		if _, dup := entries[key]; dup {
			return stateErr(TypeORSet, path(".element"), "duplicate element %s", truncate([]byte(key)))
		}
		dots, err := decodeDots(TypeORSet, path(".dots"), e.Dots, &ctx)
		if err != nil {
			return err
		}
		entries[key] = dots
	}
	s.ctx, s.entries = ctx, entries
	return nil
}

// decodeDots validates an element's dots: at least one, each well formed,
// covered by the context (a state holds only dots it has seen; a dot beyond
// its own context would be one it can be told about twice) and no
// duplicates. It sorts in, which it owns, and returns it.
func decodeDots(typ, path string, in []Dot, ctx *causalContext) ([]Dot, error) {
	if len(in) == 0 {
		return nil, stateErr(typ, path, "an element needs at least one dot")
	}
	dots := in
	for j, d := range dots {
		if r := checkDot(d); r != "" {
			return nil, stateErr(typ, fmt.Sprintf("%s[%d]", path, j), "%s", r)
		}
		if !ctx.has(d) {
			return nil, stateErr(typ, fmt.Sprintf("%s[%d]", path, j), "dot %v is not covered by vv or cloud", d)
		}
	}
	slices.SortFunc(dots, Dot.compare)
	for j := 1; j < len(dots); j++ {
		if dots[j] == dots[j-1] {
			return nil, stateErr(typ, path, "duplicate dot %v", dots[j])
		}
	}
	return dots, nil
}

func (s *ORSet) Clone() CRDT {
	return &ORSet{ctx: s.ctx.clone(), entries: maps.Clone(s.entries)}
}
