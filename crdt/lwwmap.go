package crdt

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"
)

// LWWMap is a map of last-writer-wins registers, one per field. A delete
// is a write too: the field keeps a tombstone with the delete's timestamp,
// so a set that the delete overwrote cannot come back through a merge from
// a replica that has not seen the delete. Tombstones are kept for good;
// unlike a dot, a timestamp does not say which writes it has seen, so there
// is nothing to compact them into. Its value is the object of the fields
// not deleted.
//
// State: {"fields": {"name": {"timestamp": {…}, "value": v}, "gone":
// {"timestamp": {…}, "deleted": true}}}.
type LWWMap struct {
	fields map[string]lwwEntry
	// latest is the greatest timestamp in fields (zero when there are
	// none): ops without a timestamp are stamped after it.
	latest Timestamp
}

// NewLWWMap returns an empty map.
func NewLWWMap() *LWWMap { return &LWWMap{fields: map[string]lwwEntry{}} }

func (m *LWWMap) Type() string { return TypeLWWMap }

func (m *LWWMap) Apply(op Op) error {
	_, err := m.apply(op, false)
	return err
}

func (m *LWWMap) ApplyDelta(op Op) (CRDT, error) { return m.apply(op, true) }

func (m *LWWMap) apply(op Op, wantDelta bool) (CRDT, error) {
	if err := checkOp(TypeLWWMap, op); err != nil {
		return nil, err
	}
	if op.Op == OpMerge {
		return applyMerge(m, op)
	}
	e, err := lwwWrite(TypeLWWMap, op, m.latest)
	if err != nil {
		return nil, err
	}
	m.put(op.Field, e)
	if !wantDelta {
		return nil, nil
	}
	return &LWWMap{fields: map[string]lwwEntry{op.Field: e}, latest: e.ts}, nil
}

func (m *LWWMap) put(field string, e lwwEntry) {
	if cur, ok := m.fields[field]; ok && e.compare(cur) <= 0 {
		return
	}
	m.fields[field] = e
	if e.ts.Compare(m.latest) > 0 {
		m.latest = e.ts
	}
}

func (m *LWWMap) Merge(other CRDT) error {
	o, ok := other.(*LWWMap)
	if !ok || o == nil {
		return mismatch(m, other)
	}
	for f, e := range o.fields {
		m.put(f, e)
	}
	return nil
}

// Latest is the greatest timestamp of any write, deletes included.
func (m *LWWMap) Latest() (Timestamp, bool) { return m.latest, len(m.fields) > 0 }

func (m *LWWMap) Value() json.RawMessage {
	names := slices.Sorted(maps.Keys(m.fields))
	b := make([]byte, 0, 64)
	b = append(b, '{')
	n := 0
	for _, f := range names {
		e := m.fields[f]
		if e.deleted {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = appendJSONString(b, f)
		b = append(b, ':')
		b = append(b, e.value...)
	}
	return append(b, '}')
}

type lwwMapWire struct {
	Fields map[string]lwwWire `json:"fields"`
}

func (m *LWWMap) State() json.RawMessage {
	w := lwwMapWire{Fields: make(map[string]lwwWire, len(m.fields))}
	for f, e := range m.fields {
		w.Fields[f] = e.wire()
	}
	return mustMarshal(w)
}

func (m *LWWMap) decodeState(data []byte) error {
	var w lwwMapWire
	if err := strictUnmarshal(data, &w); err != nil {
		return stateErr(TypeLWWMap, "", "%s", jsonErr(err))
	}
	out := NewLWWMap()
	for f, fw := range w.Fields {
		path := fmt.Sprintf("fields[%q]", truncate([]byte(f)))
		if f == "" || !utf8.ValidString(f) {
			return stateErr(TypeLWWMap, path, "a field name must be a non-empty string")
		}
		e, err := decodeLWW(TypeLWWMap, path, fw, true)
		if err != nil {
			return err
		}
		out.put(f, e)
	}
	*m = *out
	return nil
}

func (m *LWWMap) Clone() CRDT {
	return &LWWMap{fields: maps.Clone(m.fields), latest: m.latest}
}
