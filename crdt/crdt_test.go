package crdt

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// parse decodes an op written as JSON, without validation (Apply does it).
func parse(t testing.TB, s string) Op {
	t.Helper()
	var op Op
	require.NoError(t, json.Unmarshal([]byte(s), &op), s)
	return op
}

// build applies ops, written as JSON, to a new CRDT of type typ.
func build(t testing.TB, typ string, ops ...string) CRDT {
	t.Helper()
	c, err := New(typ)
	require.NoError(t, err)
	for _, s := range ops {
		require.NoError(t, c.Apply(parse(t, s)), s)
	}
	return c
}

// roundTrip checks that the state decodes to a CRDT with the same state
// and value.
func roundTrip(t testing.TB, c CRDT) {
	t.Helper()
	d, err := Decode(c.Type(), c.State())
	require.NoError(t, err, "%s", c.State())
	assert.Equal(t, string(c.State()), string(d.State()))
	assert.Equal(t, string(c.Value()), string(d.Value()))
}

func TestValues(t *testing.T) {
	tests := []struct {
		name string
		typ  string
		ops  []string
		want string
	}{
		// Counters.
		{"g_counter empty is 0", TypeGCounter, nil, `0`},
		{"g_counter sums actors, amount defaults to 1", TypeGCounter, []string{
			`{"op":"increment","actor_id":"a","amount":2}`,
			`{"op":"increment","actor_id":"a"}`,
			`{"op":"increment","actor_id":"b","amount":10}`,
		}, `13`},
		{"g_counter sum past uint64 is exact", TypeGCounter, []string{
			`{"op":"increment","actor_id":"a","amount":9223372036854775807}`,
			`{"op":"increment","actor_id":"a","amount":9223372036854775807}`,
			`{"op":"increment","actor_id":"b","amount":9223372036854775807}`,
		}, `27670116110564327421`},
		{"pn_counter goes negative", TypePNCounter, []string{
			`{"op":"increment","actor_id":"a","amount":5}`,
			`{"op":"decrement","actor_id":"b","amount":7}`,
		}, `-2`},
		{"pn_counter decrement by the incrementer", TypePNCounter, []string{
			`{"op":"increment","actor_id":"a","amount":5}`,
			`{"op":"decrement","actor_id":"a","amount":2}`,
		}, `3`},
		// Sets.
		{"g_set sorts by kind, numbers numerically", TypeGSet, []string{
			`{"op":"add","actor_id":"a","element":"x"}`,
			`{"op":"add","actor_id":"a","element":10}`,
			`{"op":"add","actor_id":"a","element":2}`,
			`{"op":"add","actor_id":"a","element":{"b":2,"a":1}}`,
			`{"op":"add","actor_id":"a","element":[1]}`,
			`{"op":"add","actor_id":"a","element":true}`,
			`{"op":"add","actor_id":"a","element":null}`,
			`{"op":"add","actor_id":"a","element":-1.5}`,
		}, `[null,true,-1.5,2,10,"x",[1],{"a":1,"b":2}]`},
		{"g_set elements are canonical: key order and number form do not matter", TypeGSet, []string{
			`{"op":"add","actor_id":"a","element":{"a":1,"b":[1.0]}}`,
			`{"op":"add","actor_id":"b","element":{ "b" : [1e0], "a":1 }}`,
			`{"op":"add","actor_id":"b","element":1}`,
			`{"op":"add","actor_id":"b","element":1.00}`,
		}, `[1,{"a":1,"b":[1]}]`},
		{"or_set remove drops the element", TypeORSet, []string{
			`{"op":"add","actor_id":"a","element":"x"}`,
			`{"op":"add","actor_id":"a","element":"y"}`,
			`{"op":"remove","actor_id":"a","element":"x"}`,
		}, `["y"]`},
		{"or_set remove of an absent element is a no-op", TypeORSet, []string{
			`{"op":"remove","actor_id":"a","element":"x"}`,
		}, `[]`},
		{"or_set re-add after remove", TypeORSet, []string{
			`{"op":"add","actor_id":"a","element":{"k":1,"j":2}}`,
			`{"op":"remove","actor_id":"b","element":{"j":2,"k":1}}`,
			`{"op":"add","actor_id":"b","element":{"j":2,"k":1}}`,
		}, `[{"j":2,"k":1}]`},
		// Registers.
		{"lww_register empty is null", TypeLWWRegister, nil, `null`},
		{"lww_register older write loses", TypeLWWRegister, []string{
			`{"op":"assign","actor_id":"a","value":1,"timestamp":100}`,
			`{"op":"assign","actor_id":"b","value":2,"timestamp":50}`,
		}, `1`},
		{"lww_register equal physical time: actor breaks the tie", TypeLWWRegister, []string{
			`{"op":"assign","actor_id":"b","value":"b","timestamp":100}`,
			`{"op":"assign","actor_id":"a","value":"a","timestamp":100}`,
		}, `"b"`},
		{"lww_register unstamped write orders after the current one", TypeLWWRegister, []string{
			`{"op":"assign","actor_id":"a","value":1,"timestamp":"2030-01-01T00:00:00Z"}`,
			`{"op":"assign","actor_id":"a","value":{"y":[2],"x":null}}`,
		}, `{"x":null,"y":[2]}`},
		{"lww_register object timestamp with logical", TypeLWWRegister, []string{
			`{"op":"assign","actor_id":"a","value":1,"timestamp":{"physical":100,"logical":2}}`,
			`{"op":"assign","actor_id":"z","value":2,"timestamp":{"physical":100,"logical":1}}`,
		}, `1`},
		{"mv_register empty is []", TypeMVRegister, nil, `[]`},
		{"mv_register sequential assigns overwrite", TypeMVRegister, []string{
			`{"op":"assign","actor_id":"a","value":1}`,
			`{"op":"assign","actor_id":"b","value":2}`,
		}, `[2]`},
		{"lww_map set, overwrite, delete", TypeLWWMap, []string{
			`{"op":"set","actor_id":"a","field":"n","value":1}`,
			`{"op":"set","actor_id":"a","field":"o","value":{"b":1,"a":2}}`,
			`{"op":"set","actor_id":"a","field":"n","value":2}`,
			`{"op":"set","actor_id":"a","field":"gone","value":true}`,
			`{"op":"delete","actor_id":"a","field":"gone"}`,
		}, `{"n":2,"o":{"a":2,"b":1}}`},
		{"lww_map older set does not undo a delete", TypeLWWMap, []string{
			`{"op":"delete","actor_id":"a","field":"k","timestamp":200}`,
			`{"op":"set","actor_id":"b","field":"k","value":1,"timestamp":100}`,
		}, `{}`},
		{"lww_map newer set revives a deleted field", TypeLWWMap, []string{
			`{"op":"delete","actor_id":"a","field":"k","timestamp":200}`,
			`{"op":"set","actor_id":"b","field":"k","value":1,"timestamp":300}`,
		}, `{"k":1}`},
		// Merge ops.
		{"merge op joins a state", TypeGCounter, []string{
			`{"op":"increment","actor_id":"a","amount":3}`,
			`{"op":"merge","state":{"counts":{"a":2,"b":5}}}`,
		}, `8`},
		{"merge op on or_set", TypeORSet, []string{
			`{"op":"merge","state":{"vv":{"x":2},"entries":[{"element":"e","dots":[["x",2]]}]}}`,
			`{"op":"add","actor_id":"a","element":"f"}`,
		}, `["e","f"]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := build(t, tc.typ, tc.ops...)
			assert.Equal(t, tc.want, string(c.Value()))
			roundTrip(t, c)
			assert.Equal(t, string(c.State()), string(c.Clone().State()))
		})
	}
}

func TestStates(t *testing.T) {
	tests := []struct {
		name string
		c    CRDT
		want string
	}{
		{"g_counter", build(t, TypeGCounter, `{"op":"increment","actor_id":"b"}`, `{"op":"increment","actor_id":"a","amount":2}`),
			`{"counts":{"a":2,"b":1}}`},
		{"pn_counter", build(t, TypePNCounter, `{"op":"decrement","actor_id":"a"}`),
			`{"increments":{},"decrements":{"a":1}}`},
		{"g_set", build(t, TypeGSet, `{"op":"add","actor_id":"a","element":{"b":1,"a":2}}`),
			`{"elements":[{"a":2,"b":1}]}`},
		// The remove leaves no trace but the version vector.
		{"or_set", build(t, TypeORSet,
			`{"op":"add","actor_id":"a","element":"x"}`,
			`{"op":"add","actor_id":"b","element":"y"}`,
			`{"op":"add","actor_id":"a","element":"y"}`,
			`{"op":"remove","actor_id":"a","element":"x"}`),
			`{"vv":{"a":2,"b":1},"entries":[{"element":"y","dots":[["a",2]]}]}`},
		{"lww_register", build(t, TypeLWWRegister, `{"op":"assign","actor_id":"a","value":[1],"timestamp":5}`),
			`{"timestamp":{"physical":5,"logical":0,"actor":"a"},"value":[1]}`},
		{"lww_register empty", NewLWWRegister(), `{}`},
		{"lww_map", build(t, TypeLWWMap,
			`{"op":"set","actor_id":"a","field":"k","value":null,"timestamp":5}`,
			`{"op":"delete","actor_id":"a","field":"d","timestamp":6}`),
			`{"fields":{"d":{"timestamp":{"physical":6,"logical":0,"actor":"a"},"deleted":true},"k":{"timestamp":{"physical":5,"logical":0,"actor":"a"},"value":null}}}`},
		{"mv_register", build(t, TypeMVRegister, `{"op":"assign","actor_id":"a","value":1}`, `{"op":"assign","actor_id":"a","value":2}`),
			`{"vv":{"a":2},"entries":[{"dot":["a",2],"value":2}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, string(tc.c.State()))
			roundTrip(t, tc.c)
		})
	}
}

func TestMVRegisterConcurrentAssigns(t *testing.T) {
	a := build(t, TypeMVRegister, `{"op":"assign","actor_id":"a","value":"base"}`)
	b := a.Clone()
	c := a.Clone()
	require.NoError(t, a.Apply(parse(t, `{"op":"assign","actor_id":"a","value":{"z":1}}`)))
	require.NoError(t, b.Apply(parse(t, `{"op":"assign","actor_id":"b","value":"b"}`)))
	require.NoError(t, c.Apply(parse(t, `{"op":"assign","actor_id":"c","value":"b"}`)))
	require.NoError(t, a.Merge(b))
	require.NoError(t, a.Merge(c))
	// Both concurrent values are kept; the equal ones once; "base" was
	// overwritten by all three.
	assert.Equal(t, `["b",{"z":1}]`, string(a.Value()))
	// An assign that has seen them all resolves the conflict.
	require.NoError(t, a.Apply(parse(t, `{"op":"assign","actor_id":"c","value":"resolved"}`)))
	require.NoError(t, b.Merge(a))
	assert.Equal(t, `["resolved"]`, string(b.Value()))
}

func TestLWWMapMergeKeepsTombstone(t *testing.T) {
	a := build(t, TypeLWWMap, `{"op":"set","actor_id":"a","field":"k","value":1,"timestamp":100}`)
	b := a.Clone()
	require.NoError(t, a.Apply(parse(t, `{"op":"delete","actor_id":"a","field":"k","timestamp":200}`)))
	// b has not seen the delete; merging it into a does not bring k back.
	require.NoError(t, a.Merge(b))
	assert.Equal(t, `{}`, string(a.Value()))
	require.NoError(t, b.Merge(a))
	assert.Equal(t, `{}`, string(b.Value()))
	ts, ok := a.(Timestamped).Latest()
	assert.True(t, ok)
	assert.Equal(t, Timestamp{Physical: 200, Actor: "a"}, ts)
}

func TestParseOp(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr error
		msg     string // a substring of the error
	}{
		{"increment", `{"type":"g_counter","op":"increment","actor_id":"a","amount":3}`, nil, ""},
		{"integral float amount", `{"type":"pn_counter","op":"decrement","actor_id":"a","amount":3.0}`, nil, ""},
		{"null amount is the default", `{"type":"pn_counter","op":"decrement","actor_id":"a","amount":null}`, nil, ""},
		{"null element is an element", `{"type":"or_set","op":"add","actor_id":"a","element":null}`, nil, ""},
		{"null value is a value", `{"type":"lww_register","op":"assign","actor_id":"a","value":null}`, nil, ""},
		{"merge needs no actor", `{"type":"or_set","op":"merge","state":{}}`, nil, ""},
		{"unknown fields are ignored", `{"type":"g_set","op":"add","actor_id":"a","element":1,"extra":true}`, nil, ""},
		{"delete needs no value", `{"type":"lww_map","op":"delete","actor_id":"a","field":"f"}`, nil, ""},
		{"not JSON", `{"type":`, ErrInvalidOp, "not valid JSON"},
		{"not an object", `[1]`, ErrInvalidOp, "must be a JSON object"},
		{"missing type", `{"op":"add"}`, ErrInvalidOp, "type: missing"},
		{"unknown type", `{"type":"counter","op":"increment","actor_id":"a"}`, ErrUnknownType, `unknown type "counter"`},
		{"decrement on g_counter", `{"type":"g_counter","op":"decrement","actor_id":"a"}`, ErrInvalidOp, `"decrement" is not an op of g_counter (valid: increment, merge)`},
		{"remove on g_set", `{"type":"g_set","op":"remove","actor_id":"a","element":1}`, ErrInvalidOp, `"remove" is not an op of g_set`},
		{"missing op", `{"type":"g_set","actor_id":"a"}`, ErrInvalidOp, "missing op (valid for g_set: add, merge)"},
		{"amount 0", `{"type":"g_counter","op":"increment","actor_id":"a","amount":0}`, ErrInvalidOp, "amount: must be an integer ≥ 1, got 0"},
		{"negative amount", `{"type":"g_counter","op":"increment","actor_id":"a","amount":-2}`, ErrInvalidOp, "amount: must be an integer ≥ 1"},
		{"fractional amount", `{"type":"g_counter","op":"increment","actor_id":"a","amount":1.5}`, ErrInvalidOp, "amount: must be an integer ≥ 1"},
		{"string amount", `{"type":"g_counter","op":"increment","actor_id":"a","amount":"2"}`, ErrInvalidOp, "amount: must be an integer ≥ 1"},
		{"amount past int64", `{"type":"g_counter","op":"increment","actor_id":"a","amount":1e19}`, ErrInvalidOp, "amount"},
		{"missing actor_id", `{"type":"g_counter","op":"increment"}`, ErrInvalidOp, "actor_id: missing"},
		{"actor_id not a string", `{"type":"g_counter","op":"increment","actor_id":7}`, ErrInvalidOp, "actor_id: must be a string"},
		{"actor_id too long", `{"type":"g_counter","op":"increment","actor_id":"` + strings.Repeat("x", MaxActorLen+1) + `"}`, ErrInvalidOp, "actor_id: longer than"},
		{"missing element", `{"type":"or_set","op":"add","actor_id":"a"}`, ErrInvalidOp, "element: missing"},
		{"missing value", `{"type":"mv_register","op":"assign","actor_id":"a"}`, ErrInvalidOp, "value: missing"},
		{"missing field", `{"type":"lww_map","op":"set","actor_id":"a","value":1}`, ErrInvalidOp, "field: missing"},
		{"field not a string", `{"type":"lww_map","op":"set","actor_id":"a","field":1,"value":1}`, ErrInvalidOp, "field: must be a string"},
		{"missing state", `{"type":"g_set","op":"merge"}`, ErrInvalidOp, "state: missing"},
		{"null state", `{"type":"g_set","op":"merge","state":null}`, ErrInvalidOp, "state: missing"},
		{"timestamp not RFC 3339", `{"type":"lww_register","op":"assign","actor_id":"a","value":1,"timestamp":"yesterday"}`, ErrInvalidOp, "timestamp: not RFC 3339"},
		{"negative timestamp", `{"type":"lww_register","op":"assign","actor_id":"a","value":1,"timestamp":-5}`, ErrInvalidOp, "timestamp: physical -5 out of range"},
		{"timestamp with unknown field", `{"type":"lww_register","op":"assign","actor_id":"a","value":1,"timestamp":{"physical":1,"wall":2}}`, ErrInvalidOp, `unknown field "wall"`},
		{"timestamp without physical", `{"type":"lww_register","op":"assign","actor_id":"a","value":1,"timestamp":{"logical":1}}`, ErrInvalidOp, "missing physical"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			op, err := ParseOp([]byte(tc.body))
			if tc.wantErr == nil {
				require.NoError(t, err)
				c, err := New(op.Type)
				require.NoError(t, err)
				require.NoError(t, c.Apply(op))
				return
			}
			require.Error(t, err)
			var oe *OpError
			require.ErrorAs(t, err, &oe)
			assert.ErrorIs(t, err, tc.wantErr)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestParseOpFields(t *testing.T) {
	op, err := ParseOp([]byte(`{"type":"lww_map","op":"set","actor_id":"a","field":"f","value":{"b":1},"timestamp":"2024-01-02T03:04:05.678Z","amount":4}`))
	require.NoError(t, err)
	assert.Equal(t, Op{
		Type: TypeLWWMap, Op: OpSet, ActorID: "a", Field: "f", Value: json.RawMessage(`{"b":1}`), Amount: 4,
		Timestamp: &Timestamp{Physical: time.Date(2024, 1, 2, 3, 4, 5, 678e6, time.UTC).UnixMilli()},
	}, op)
	// An Op marshals to the body it was parsed from.
	b, err := json.Marshal(op)
	require.NoError(t, err)
	again, err := ParseOp(b)
	require.NoError(t, err)
	assert.Equal(t, op, again)
}

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		name    string
		c       CRDT
		op      Op
		wantErr error
		msg     string
	}{
		{"op of another type", NewGCounter(), Op{Type: TypeGSet, Op: OpAdd, ActorID: "a", Element: json.RawMessage(`1`)}, ErrTypeMismatch, "an op of g_set cannot apply to a g_counter"},
		{"op not of this type", NewGSet(), Op{Op: OpRemove, ActorID: "a", Element: json.RawMessage(`1`)}, ErrInvalidOp, `"remove" is not an op of g_set`},
		{"negative amount", NewPNCounter(), Op{Op: OpDecrement, ActorID: "a", Amount: -1}, ErrInvalidOp, "amount"},
		{"element not JSON", NewORSet(), Op{Op: OpAdd, ActorID: "a", Element: json.RawMessage(`{x}`)}, ErrInvalidOp, "element: not valid JSON"},
		{"value not JSON", NewLWWRegister(), Op{Op: OpAssign, ActorID: "a", Value: json.RawMessage(`tru`)}, ErrInvalidOp, "value: not valid JSON"},
		{"field not UTF-8", NewLWWMap(), Op{Op: OpSet, ActorID: "a", Field: "\xff", Value: json.RawMessage(`1`)}, ErrInvalidOp, "field: not valid UTF-8"},
		{"actor not UTF-8", NewGCounter(), Op{Op: OpIncrement, ActorID: "\xff"}, ErrInvalidOp, "actor_id: not valid UTF-8"},
		{"timestamp out of range", NewLWWRegister(), Op{Op: OpAssign, ActorID: "a", Value: json.RawMessage(`1`), Timestamp: &Timestamp{Physical: MaxPhysical + 1}}, ErrInvalidOp, "timestamp: physical"},
		{"merge of a bad state", NewORSet(), Op{Op: OpMerge, State: json.RawMessage(`{"vv":{},"entries":[{"element":1,"dots":[["a",1]]}]}`)}, ErrInvalidState, "not covered"},
		{"merge of another type's state", NewGCounter(), Op{Op: OpMerge, State: json.RawMessage(`{"increments":{},"decrements":{}}`)}, ErrInvalidState, `unknown field "increments"`},
		{"count overflow", build(t, TypeGCounter, `{"op":"merge","state":{"counts":{"a":18446744073709551615}}}`), Op{Op: OpIncrement, ActorID: "a"}, ErrInvalidOp, "overflow"},
		{"dots exhausted", build(t, TypeORSet, `{"op":"merge","state":{"vv":{"a":18446744073709551615},"entries":[]}}`), Op{Op: OpAdd, ActorID: "a", Element: json.RawMessage(`1`)}, ErrInvalidOp, "no dots left"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := string(tc.c.State())
			err := tc.c.Apply(tc.op)
			require.Error(t, err)
			var oe *OpError
			require.ErrorAs(t, err, &oe)
			assert.ErrorIs(t, err, tc.wantErr)
			assert.Contains(t, err.Error(), tc.msg)
			assert.Equal(t, before, string(tc.c.State()), "a failed op changes nothing")
		})
	}
}

func TestMergeTypeMismatch(t *testing.T) {
	for _, typ := range Types() {
		c, _ := New(typ)
		other := NewGCounter() // a g_counter's mismatch is against a g_set
		var o CRDT = other
		if typ == TypeGCounter {
			o = NewGSet()
		}
		assert.ErrorIs(t, c.Merge(o), ErrTypeMismatch, typ)
		assert.ErrorIs(t, c.Merge(nil), ErrTypeMismatch, typ)
	}
	_, err := New("nope")
	assert.ErrorIs(t, err, ErrUnknownType)
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		typ   string
		state string
		msg   string
	}{
		{TypeGCounter, `null`, "must be a JSON object"},
		{TypeGCounter, `[]`, "must be a JSON object"},
		{TypeGCounter, ``, "must be a JSON object"},
		{TypeGCounter, `{"counts":{"a":-1}}`, "cannot unmarshal"},
		{TypeGCounter, `{"counts":{"a":1.5}}`, "cannot unmarshal"},
		{TypeGCounter, `{"counts":{"a":18446744073709551616}}`, "cannot unmarshal"},
		{TypeGCounter, `{"counts":{"":1}}`, `actor "": must not be empty`},
		{TypeGCounter, `{"count":{}}`, `unknown field "count"`},
		{TypeGCounter, `{"counts":{}} {}`, "trailing data"},
		{TypePNCounter, `{"counts":{"a":1}}`, `unknown field "counts"`},
		{TypePNCounter, `{"increments":{"a":1},"decrements":{"b":-3}}`, "cannot unmarshal"},
		{TypeGSet, `{"elements":[{"a":1,"b":2},{"b":2,"a":1}]}`, `elements[1]: duplicate element {"a":1,"b":2}`},
		{TypeGSet, `{"elements":{}}`, "cannot unmarshal"},
		{TypeORSet, `{"vv":{"a":1},"entries":[{"element":1,"dots":[["a",2]]}]}`, `entries[0].dots[0]: dot ["a",2] is not covered`},
		{TypeORSet, `{"vv":{"a":1},"entries":[{"element":1,"dots":[["a",0]]}]}`, "counter must be ≥ 1"},
		{TypeORSet, `{"vv":{"a":1},"entries":[{"element":1,"dots":[["a",-1]]}]}`, "a dot's counter must be an integer ≥ 1"},
		{TypeORSet, `{"vv":{"a":1},"entries":[{"element":1,"dots":[["a"]]}]}`, `a dot must be ["actor", counter]`},
		{TypeORSet, `{"vv":{"a":1},"entries":[{"element":1,"dots":[[1,1]]}]}`, "a dot's actor must be a string"},
		{TypeORSet, `{"vv":{"a":1},"entries":[{"element":1,"dots":[["",1]]}]}`, "actor must not be empty"},
		{TypeORSet, `{"vv":{"a":1},"entries":[{"element":1,"dots":[]}]}`, "at least one dot"},
		{TypeORSet, `{"vv":{"a":2},"entries":[{"element":1,"dots":[["a",1],["a",1]]}]}`, "duplicate dot"},
		{TypeORSet, `{"vv":{"a":2},"entries":[{"element":1,"dots":[["a",1]]},{"element":1.0,"dots":[["a",2]]}]}`, "duplicate element 1"},
		{TypeORSet, `{"vv":{"a":1},"entries":[{"dots":[["a",1]]}]}`, "missing element"},
		{TypeORSet, `{"vv":{"a":1},"cloud":[["a",0]],"entries":[]}`, "cloud[0]: counter must be ≥ 1"},
		{TypeORSet, `{"vv":{"a":-1},"entries":[]}`, "cannot unmarshal"},
		{TypeMVRegister, `{"vv":{"a":1},"entries":[{"value":1}]}`, "missing dot"},
		{TypeMVRegister, `{"vv":{"a":1},"entries":[{"dot":["a",1]}]}`, "missing value"},
		{TypeMVRegister, `{"vv":{"a":1},"entries":[{"dot":["b",1],"value":1}]}`, "not covered"},
		{TypeMVRegister, `{"vv":{"a":1},"entries":[{"dot":["a",1],"value":1},{"dot":["a",1],"value":2}]}`, "duplicate dot"},
		{TypeLWWRegister, `{"value":1}`, "missing timestamp"},
		{TypeLWWRegister, `{"timestamp":{"physical":1,"logical":0,"actor":"a"}}`, "missing value"},
		{TypeLWWRegister, `{"timestamp":{"physical":1,"logical":0,"actor":""},"value":1}`, "actor must not be empty"},
		{TypeLWWRegister, `{"timestamp":{"physical":-1,"logical":0,"actor":"a"},"value":1}`, "out of range"},
		{TypeLWWRegister, `{"timestamp":{"physical":1,"logical":-1,"actor":"a"},"value":1}`, "cannot unmarshal"},
		{TypeLWWRegister, `{"timestamp":{"physical":1,"actor":"a"},"deleted":true}`, `unknown field "deleted"`},
		{TypeLWWMap, `{"fields":{"k":{"timestamp":{"physical":1,"actor":"a"},"deleted":true,"value":1}}}`, "a deleted field has no value"},
		{TypeLWWMap, `{"fields":{"":{"timestamp":{"physical":1,"actor":"a"},"value":1}}}`, "non-empty"},
		{TypeLWWMap, `{"fields":{"k":{"value":1}}}`, "missing timestamp"},
		{TypeLWWMap, `{"fields":{"k":{"timestamp":{"physical":1,"actor":"a"},"value":{"x":}}}}`, "invalid character"},
	}
	for _, tc := range tests {
		t.Run(tc.typ+" "+tc.state, func(t *testing.T) {
			_, err := Decode(tc.typ, json.RawMessage(tc.state))
			require.Error(t, err)
			var se *StateError
			require.ErrorAs(t, err, &se)
			assert.ErrorIs(t, err, ErrInvalidState)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
	_, err := Decode("nope", json.RawMessage(`{}`))
	assert.ErrorIs(t, err, ErrUnknownType)
}

func TestDecodeNormalizes(t *testing.T) {
	tests := []struct {
		typ, in, want string
	}{
		// Zero counts are no counts.
		{TypeGCounter, `{"counts":{"a":0,"b":2}}`, `{"counts":{"b":2}}`},
		{TypeGCounter, `{}`, `{"counts":{}}`},
		// Cloud dots contiguous with the vv fold into it; covered ones go.
		{TypeORSet, `{"vv":{"a":1,"z":0},"cloud":[["a",4],["a",2],["a",1],["b",1],["b",3]],"entries":[{"element":"x","dots":[["a",4],["b",3]]}]}`,
			`{"vv":{"a":2,"b":1},"cloud":[["a",4],["b",3]],"entries":[{"element":"x","dots":[["a",4],["b",3]]}]}`},
		// Elements and values are stored canonically.
		{TypeMVRegister, `{"vv":{"b":1,"a":1},"entries":[{"dot":["b",1],"value":{"y":1e2,"x":1}},{"dot":["a",1],"value":1}]}`,
			`{"vv":{"a":1,"b":1},"entries":[{"dot":["a",1],"value":1},{"dot":["b",1],"value":{"x":1,"y":100}}]}`},
		// Op-style timestamps are accepted in a state when they name an actor.
		{TypeLWWRegister, `{"timestamp":{"physical":7,"actor":"a"},"value":"v"}`, `{"timestamp":{"physical":7,"logical":0,"actor":"a"},"value":"v"}`},
	}
	for _, tc := range tests {
		t.Run(tc.typ, func(t *testing.T) {
			c, err := Decode(tc.typ, json.RawMessage(tc.in))
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(c.State()))
		})
	}
}

func TestClock(t *testing.T) {
	at := func(ms int64) time.Time { return time.UnixMilli(ms) }
	var c Clock
	assert.Equal(t, Timestamp{1000, 0, "a"}, c.Now("a", at(1000)))
	// Physical time going backwards does not take the clock back.
	assert.Equal(t, Timestamp{1000, 1, "b"}, c.Now("b", at(900)))
	assert.Equal(t, Timestamp{1000, 2, "a"}, c.Now("a", at(1000)))
	assert.Equal(t, Timestamp{2000, 0, "a"}, c.Now("a", at(2000)))
	// A timestamp from the future is observed: later readings order after it.
	c.Observe(Timestamp{5000, 3, "z"})
	assert.Equal(t, Timestamp{5000, 4, "a"}, c.Now("a", at(2500)))
	c.Observe(Timestamp{4000, 9, "z"}) // the past changes nothing
	assert.Equal(t, Timestamp{5000, 5, "a"}, c.Now("a", at(2500)))
	c.Observe(Timestamp{-1, 0, "z"}) // out of range: ignored
	c.Observe(Timestamp{MaxPhysical + 1, 0, "z"})
	assert.Equal(t, Timestamp{6000, 0, "a"}, c.Now("a", at(6000)))

	// Logical overflow borrows the next millisecond.
	var o Clock
	o.Observe(Timestamp{10, math.MaxUint32, "z"})
	assert.Equal(t, Timestamp{11, 0, "a"}, o.Now("a", at(10)))

	// Stamp fills in missing timestamps and observes given ones.
	var s Clock
	op := Op{Op: OpAssign, ActorID: "a", Value: json.RawMessage(`1`)}
	s.Stamp(&op, at(100))
	require.NotNil(t, op.Timestamp)
	assert.Equal(t, Timestamp{100, 0, "a"}, *op.Timestamp)
	given := Op{Op: OpSet, ActorID: "a", Timestamp: &Timestamp{Physical: 500}}
	s.Stamp(&given, at(100))
	assert.Equal(t, Timestamp{Physical: 500}, *given.Timestamp)
	assert.Equal(t, Timestamp{500, 1, "b"}, s.Now("b", at(100)))
	inc := Op{Op: OpIncrement, ActorID: "a"}
	s.Stamp(&inc, at(100))
	assert.Nil(t, inc.Timestamp)
}

func TestClockStampedWritesWin(t *testing.T) {
	// A server stamping with its clock: a later write wins even when the
	// physical clock went backwards between them.
	var clock Clock
	r := NewLWWRegister()
	for i, ms := range []int64{1000, 990, 980} {
		op := Op{Op: OpAssign, ActorID: "srv", Value: json.RawMessage(strings.Repeat("1", i+1))}
		clock.Stamp(&op, time.UnixMilli(ms))
		require.NoError(t, r.Apply(op))
	}
	assert.Equal(t, `111`, string(r.Value()))
}

func TestTimestampJSON(t *testing.T) {
	tests := []struct {
		in   string
		want Timestamp
	}{
		{`1700000000000`, Timestamp{Physical: 1700000000000}},
		{`1.7e12`, Timestamp{Physical: 1700000000000}},
		{`"1970-01-01T00:00:01.5Z"`, Timestamp{Physical: 1500}},
		{`{"physical":3,"logical":4,"actor":"x"}`, Timestamp{3, 4, "x"}},
	}
	for _, tc := range tests {
		var ts Timestamp
		require.NoError(t, json.Unmarshal([]byte(tc.in), &ts), tc.in)
		assert.Equal(t, tc.want, ts, tc.in)
	}
	for _, bad := range []string{`true`, `1.5`, `"x"`, `{"physical":"1"}`, `{}`, `9007199254740992`, `[]`} {
		var ts Timestamp
		assert.Error(t, json.Unmarshal([]byte(bad), &ts), bad)
	}
}

func TestHasAndApplyDelta(t *testing.T) {
	s := build(t, TypeORSet, `{"op":"add","actor_id":"a","element":{"a":1,"b":2}}`).(*ORSet)
	assert.True(t, s.Has(json.RawMessage(`{"b":2,"a":1}`)))
	assert.False(t, s.Has(json.RawMessage(`{"b":2}`)))
	assert.False(t, s.Has(json.RawMessage(`{`)))
	assert.Equal(t, 1, s.Len())
	g := build(t, TypeGSet, `{"op":"add","actor_id":"a","element":[1]}`).(*GSet)
	assert.True(t, g.Has(json.RawMessage(`[1.0]`)))

	// A remove's delta carries only the dots it observed.
	d, err := s.ApplyDelta(parse(t, `{"op":"remove","actor_id":"b","element":{"a":1,"b":2}}`))
	require.NoError(t, err)
	assert.Equal(t, `{"vv":{"a":1},"entries":[]}`, string(d.State()))
	// A merge op's delta is the merged state.
	d, err = s.ApplyDelta(parse(t, `{"op":"merge","state":{"vv":{"q":1},"entries":[{"element":0,"dots":[["q",1]]}]}}`))
	require.NoError(t, err)
	assert.Equal(t, `{"vv":{"q":1},"entries":[{"element":0,"dots":[["q",1]]}]}`, string(d.State()))
}

func TestDotJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := Dot{Actor: rapid.String().Draw(t, "actor"), Counter: rapid.Uint64().Draw(t, "counter")}
		b, err := d.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var got Dot
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if got != d {
			t.Fatalf("%s decoded as %v, want %v", b, got, d)
		}
		// The fast path and encoding/json agree wherever the fast path
		// answers.
		var parts []json.RawMessage
		if fast, ok := parseDot(b); ok {
			_ = json.Unmarshal(b, &parts)
			var actor string
			_ = json.Unmarshal(parts[0], &actor)
			if fast.Actor != actor {
				t.Fatalf("fast path read %q, encoding/json %q", fast.Actor, actor)
			}
		}
	})
	for _, s := range []string{` [ "a" , 7 ] `, `["a",7]`, `["\u0061",7]`} {
		var d Dot
		require.NoError(t, json.Unmarshal([]byte(s), &d), s)
		assert.Equal(t, Dot{"a", 7}, d, s)
	}
	for _, s := range []string{`["a",07]`, `["a",-1]`, `["a",1.0]`, `["a",18446744073709551616]`, `["a"]`, `["a",1,2]`, `{}`, `["a",""]`} {
		var d Dot
		assert.Error(t, json.Unmarshal([]byte(s), &d), s)
	}
}
