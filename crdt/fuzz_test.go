package crdt

import (
	"encoding/json"
	"errors"
	"testing"
)

// Fuzz targets: hostile request bodies and states never panic, and every
// error is typed (*OpError or *StateError, unwrapping to a sentinel).

func FuzzParseOp(f *testing.F) {
	for _, s := range []string{
		`{"type":"g_counter","op":"increment","actor_id":"a","amount":3}`,
		`{"type":"pn_counter","op":"decrement","actor_id":"a","amount":1e3}`,
		`{"type":"g_set","op":"add","actor_id":"a","element":{"b":[1,2.50],"a":null}}`,
		`{"type":"or_set","op":"remove","actor_id":"a","element":"x"}`,
		`{"type":"or_set","op":"merge","state":{"vv":{"a":2},"cloud":[["a",4]],"entries":[{"element":1,"dots":[["a",4]]}]}}`,
		`{"type":"lww_register","op":"assign","actor_id":"a","value":1,"timestamp":{"physical":5,"logical":1}}`,
		`{"type":"lww_register","op":"assign","actor_id":"a","value":1,"timestamp":"2024-01-01T00:00:00Z"}`,
		`{"type":"lww_map","op":"set","actor_id":"a","field":"f","value":[1],"timestamp":12}`,
		`{"type":"lww_map","op":"delete","actor_id":"a","field":"f"}`,
		`{"type":"mv_register","op":"merge","state":{"vv":{"a":1},"entries":[{"dot":["a",1],"value":2}]}}`,
		`{"type":"g_counter","op":"decrement","actor_id":"a","amount":-1}`,
		`{"type":"x"}`, `[]`, `null`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		op, err := ParseOp(data)
		if err != nil {
			requireOpError(t, err)
			return
		}
		c, err := New(op.Type)
		if err != nil {
			t.Fatalf("ParseOp accepted type %q that New refuses: %v", op.Type, err)
		}
		for range 2 {
			before := string(c.State())
			if err := c.Apply(op); err != nil {
				requireOpError(t, err)
				if after := string(c.State()); after != before {
					t.Fatalf("failed op changed the state: %s -> %s", before, after)
				}
			}
		}
		checkValid(t, c)
	})
}

func requireOpError(t *testing.T, err error) {
	t.Helper()
	var oe *OpError
	if !errors.As(err, &oe) {
		t.Fatalf("error is %T, not *OpError: %v", err, err)
	}
	if !errors.Is(err, ErrInvalidOp) && !errors.Is(err, ErrUnknownType) && !errors.Is(err, ErrInvalidState) && !errors.Is(err, ErrTypeMismatch) {
		t.Fatalf("error wraps no sentinel: %v", err)
	}
}

// checkValid: the value is JSON, and the state decodes to itself and is a
// fixed point of merging with itself.
func checkValid(t *testing.T, c CRDT) {
	t.Helper()
	if !json.Valid(c.Value()) {
		t.Fatalf("value is not JSON: %q", c.Value())
	}
	d, err := Decode(c.Type(), c.State())
	if err != nil {
		t.Fatalf("state does not decode: %v\n%s", err, c.State())
	}
	if string(d.State()) != string(c.State()) {
		t.Fatalf("state round trip:\n%s\n%s", d.State(), c.State())
	}
	if err := d.Merge(c); err != nil {
		t.Fatal(err)
	}
	if string(d.State()) != string(c.State()) {
		t.Fatalf("merge with itself changed the state:\n%s\n%s", d.State(), c.State())
	}
}

func FuzzDecode(f *testing.F) {
	seeds := map[string][]string{
		TypeGCounter:    {`{"counts":{"a":1,"b":18446744073709551615}}`, `{"counts":{"a":-1}}`},
		TypePNCounter:   {`{"increments":{"a":3},"decrements":{"b":4}}`},
		TypeGSet:        {`{"elements":[1,"x",{"a":[]},null]}`},
		TypeORSet:       {`{"vv":{"a":3,"b":1},"cloud":[["a",5]],"entries":[{"element":"x","dots":[["a",2],["a",5],["b",1]]}]}`},
		TypeLWWRegister: {`{"timestamp":{"physical":1,"logical":2,"actor":"a"},"value":{"k":[1]}}`, `{}`},
		TypeLWWMap:      {`{"fields":{"f":{"timestamp":{"physical":1,"logical":0,"actor":"a"},"value":1},"g":{"timestamp":{"physical":2,"logical":0,"actor":"b"},"deleted":true}}}`},
		TypeMVRegister:  {`{"vv":{"a":2},"cloud":[["b",2]],"entries":[{"dot":["a",2],"value":1},{"dot":["b",2],"value":"x"}]}`},
	}
	for i, typ := range typeNames {
		for _, s := range seeds[typ] {
			f.Add(uint8(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, ti uint8, data []byte) {
		typ := typeNames[int(ti)%len(typeNames)]
		c, err := Decode(typ, data)
		if err != nil {
			var se *StateError
			if !errors.As(err, &se) || !errors.Is(err, ErrInvalidState) {
				t.Fatalf("error is %T, not a *StateError wrapping ErrInvalidState: %v", err, err)
			}
			return
		}
		checkValid(t, c)
		// Whatever was accepted merges with an ordinary replica, both
		// ways, to the same state, and takes ordinary ops afterwards.
		r := fuzzReplica(t, typ)
		rc, cr := r.Clone(), c.Clone()
		if err := rc.Merge(c); err != nil {
			t.Fatal(err)
		}
		if err := cr.Merge(r); err != nil {
			t.Fatal(err)
		}
		if string(rc.State()) != string(cr.State()) {
			t.Fatalf("merge not commutative:\n%s\n%s", rc.State(), cr.State())
		}
		for _, op := range fuzzOps[typ] {
			if err := cr.Apply(op); err != nil {
				requireOpError(t, err)
			}
		}
		checkValid(t, cr)
	})
}

var fuzzOps = map[string][]Op{
	TypeGCounter:    {{Op: OpIncrement, ActorID: "a"}},
	TypePNCounter:   {{Op: OpDecrement, ActorID: "a", Amount: 2}},
	TypeGSet:        {{Op: OpAdd, ActorID: "a", Element: json.RawMessage(`"x"`)}},
	TypeORSet:       {{Op: OpAdd, ActorID: "a", Element: json.RawMessage(`"x"`)}, {Op: OpRemove, ActorID: "b", Element: json.RawMessage(`1`)}},
	TypeLWWRegister: {{Op: OpAssign, ActorID: "a", Value: json.RawMessage(`2`)}},
	TypeLWWMap:      {{Op: OpSet, ActorID: "a", Field: "f", Value: json.RawMessage(`2`)}, {Op: OpDelete, ActorID: "b", Field: "g"}},
	TypeMVRegister:  {{Op: OpAssign, ActorID: "a", Value: json.RawMessage(`2`)}},
}

func fuzzReplica(t *testing.T, typ string) CRDT {
	c, _ := New(typ)
	for _, op := range fuzzOps[typ] {
		if err := c.Apply(op); err != nil {
			t.Fatal(err)
		}
	}
	return c
}
