package ot

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// str is the JSON form of a Go string.
func str(s string) json.RawMessage {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return b
}

// vals is array content from JSON literals.
func vals(vs ...string) []json.RawMessage {
	out := make([]json.RawMessage, len(vs))
	for i, v := range vs {
		out[i] = json.RawMessage(v)
	}
	return out
}

func mustApply(t testing.TB, doc json.RawMessage, op Op) string {
	t.Helper()
	got, err := Apply(doc, op)
	if err != nil {
		t.Fatalf("Apply(%s, %v): %v", doc, op, err)
	}
	return string(got)
}

func sameOp(a, b Op) bool { return a.String() == b.String() }

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		doc     json.RawMessage
		op      Op
		want    json.RawMessage
		wantErr error
	}{
		// Lengths count code points, not bytes: é is one.
		{"non-ASCII retain and replace", str("héllo wörld"), Op{Retain(1), Delete(1), InsertText("e"), Retain(5), ReplaceText(1, "o")}, str("hello world"), nil},
		// An emoji (4 bytes in UTF-8, 2 UTF-16 units) is one code point.
		{"emoji", str("a😀b"), Op{Retain(1), ReplaceText(1, "🙂🙃")}, str("a🙂🙃b"), nil},
		{"insert at the end", str("ab"), Op{Retain(2), InsertText("c")}, str("abc"), nil},
		{"insert at the start", str("ab"), Op{InsertText("é")}, str("éab"), nil},
		// What the op does not reach is retained.
		{"short op retains the rest", str("hello"), Op{Delete(1)}, str("ello"), nil},
		{"empty op", str("x"), nil, str("x"), nil},
		{"empty document", str(""), Op{InsertText("hi")}, str("hi"), nil},
		{"delete all", str("héllo"), Op{Delete(5)}, str(""), nil},
		// Escapes in the document and content survive; only what JSON requires
		// is escaped (not <>&, not U+2028).
		{"escapes", str("a\"\n\\<&>"), Op{Retain(7), InsertText("\t\u2028\x01")}, json.RawMessage("\"a\\\"\\n\\\\<&>\\t\u2028\\u0001\""), nil},
		{"delete before insert", str("abc"), Op{Delete(1), InsertText("X")}, str("Xbc"), nil},
		{"array insert", json.RawMessage(`[1,2,3]`), Op{Retain(1), InsertValues(vals(`{"a": [1, 2]}`, `"x"`)...)}, json.RawMessage(`[1,{"a":[1,2]},"x",2,3]`), nil},
		{"array delete and replace", json.RawMessage(`[1, 2, 3, 4]`), Op{Delete(1), Retain(1), ReplaceValues(2, vals(`null`)...)}, json.RawMessage(`[2,null]`), nil},
		{"array short op", json.RawMessage(` [ {"k" : 1}, 2 ] `), Op{Retain(1)}, json.RawMessage(`[{"k":1},2]`), nil},
		{"empty array", json.RawMessage(`[]`), Op{InsertValues(vals(`[]`)...)}, json.RawMessage(`[[]]`), nil},
		// Reaching one past the end is an error, not a silent clamp.
		{"retain past the end", str("héllo"), Op{Retain(6)}, nil, ErrDoesNotFit},
		{"delete past the end", str("ab"), Op{Retain(1), Delete(2)}, nil, ErrDoesNotFit},
		{"insert past the end", str("ab"), Op{Retain(3), InsertText("x")}, nil, ErrDoesNotFit},
		{"replace past the end", json.RawMessage(`[1]`), Op{ReplaceValues(2, vals(`1`)...)}, nil, ErrDoesNotFit},
		{"huge length", str("ab"), Op{Retain(MaxLength)}, nil, ErrDoesNotFit},
		{"array content in text", str("ab"), Op{InsertValues(vals(`1`)...)}, nil, ErrDoesNotFit},
		{"text content in array", json.RawMessage(`[1]`), Op{InsertText("x")}, nil, ErrDoesNotFit},
		{"zero length", str("ab"), Op{Retain(0)}, nil, ErrInvalidOp},
		{"empty content", str("ab"), Op{InsertText("")}, nil, ErrInvalidOp},
		{"object document", json.RawMessage(`{"a":1}`), Op{Retain(1)}, nil, ErrDocument},
		{"number document", json.RawMessage(`12`), nil, nil, ErrDocument},
		{"broken document", json.RawMessage(`"abc`), nil, nil, ErrDocument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Apply(tc.doc, tc.op)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Apply = %s, %v; want %v", got, err, tc.wantErr)
				}
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("error %v is not an *Error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(tc.want) {
				t.Fatalf("Apply = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestTransform(t *testing.T) {
	tests := []struct {
		name         string
		doc          json.RawMessage
		a, b         Op
		aFirst       bool
		wantA, wantB Op // a' and b'
		want         json.RawMessage
	}{
		{
			// Same position: the first op's insert comes first.
			name: "same position, a first", doc: str("héllo"),
			a: Op{Retain(1), InsertText("A")}, b: Op{Retain(1), InsertText("B")}, aFirst: true,
			wantA: Op{Retain(1), InsertText("A")}, wantB: Op{Retain(2), InsertText("B")},
			want: str("hABéllo"),
		},
		{
			name: "same position, b first", doc: str("héllo"),
			a: Op{Retain(1), InsertText("A")}, b: Op{Retain(1), InsertText("B")}, aFirst: false,
			wantA: Op{Retain(2), InsertText("A")}, wantB: Op{Retain(1), InsertText("B")},
			want: str("hBAéllo"),
		},
		{
			// An insert inside a range the other op deletes survives.
			name: "insert inside a deleted range", doc: str("a😀😀b"),
			a: Op{Retain(2), InsertText("X")}, b: Op{Retain(1), Delete(2)}, aFirst: true,
			wantA: Op{Retain(1), InsertText("X")}, wantB: Op{Retain(1), Delete(1), Retain(1), Delete(1)},
			want: str("aXb"),
		},
		{
			// Overlapping deletes delete once.
			name: "overlapping deletes", doc: str("abcdef"),
			a: Op{Retain(1), Delete(3)}, b: Op{Retain(2), Delete(3)}, aFirst: true,
			wantA: Op{Retain(1), Delete(1)}, wantB: Op{Retain(1), Delete(1)},
			want: str("af"),
		},
		{
			// Two replaces of the same range: both contents, ordered.
			name: "replace vs replace", doc: str("wörld"),
			a: Op{Retain(1), ReplaceText(1, "o")}, b: Op{Retain(1), ReplaceText(1, "ø")}, aFirst: false,
			wantA: Op{Retain(2), InsertText("o")}, wantB: Op{Retain(1), InsertText("ø")},
			want: str("wøorld"),
		},
		{
			name: "arrays", doc: json.RawMessage(`[1,2,3]`),
			a: Op{Delete(1), InsertValues(vals(`"a"`)...)}, b: Op{InsertValues(vals(`"b"`)...), Retain(2), Delete(1)}, aFirst: true,
			wantA: Op{InsertValues(vals(`"a"`)...), Retain(1), Delete(1)}, wantB: Op{Retain(1), InsertValues(vals(`"b"`)...), Retain(1), Delete(1)},
			want: json.RawMessage(`["a","b",2]`),
		},
		{
			name: "no-op against anything", doc: str("abc"),
			a: nil, b: Op{Retain(3), InsertText("z")}, aFirst: true,
			wantA: Op{}, wantB: Op{Retain(3), InsertText("z")},
			want: str("abcz"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ap, bp := Transform(tc.a, tc.b, tc.aFirst)
			if !sameOp(ap, tc.wantA) || !sameOp(bp, tc.wantB) {
				t.Fatalf("Transform = %v, %v; want %v, %v", ap, bp, tc.wantA, tc.wantB)
			}
			x := mustApply(t, json.RawMessage(mustApply(t, tc.doc, tc.a)), bp)
			y := mustApply(t, json.RawMessage(mustApply(t, tc.doc, tc.b)), ap)
			if x != y || x != string(tc.want) {
				t.Fatalf("a then b' = %s, b then a' = %s, want %s", x, y, tc.want)
			}
		})
	}
}

func TestTransformActors(t *testing.T) {
	a, b := Op{InsertText("a")}, Op{InsertText("b")}
	doc := str("")
	for _, tc := range []struct {
		aActor, bActor, want string
	}{
		{"alice", "bob", "ab"}, // alice sorts first
		{"bob", "alice", "ba"}, // so does b's actor here
		{"same", "same", "ba"}, // equal ids: b first
		{"B", "a", "ab"},       // byte order: upper case before lower
		{"agent-10", "agent-9", "ab"},
	} {
		ap, bp := TransformActors(a, tc.aActor, b, tc.bActor)
		x := mustApply(t, json.RawMessage(mustApply(t, doc, a)), bp)
		y := mustApply(t, json.RawMessage(mustApply(t, doc, b)), ap)
		if x != y || x != string(str(tc.want)) {
			t.Errorf("%s vs %s: %s / %s, want %q", tc.aActor, tc.bActor, x, y, tc.want)
		}
	}
}

func TestTransformAgainst(t *testing.T) {
	// Base "hello"; committed since: c1 by bob inserts "B" at 0, c2 by dave
	// deletes "ll". Carol's op, made on the base, inserts at 0 and at 4.
	base := str("hello")
	c1 := Committed{Op: Op{InsertText("B")}, ActorID: "bob"}
	c2 := Committed{Op: Op{Retain(3), Delete(2)}, ActorID: "dave"}
	cur := json.RawMessage(mustApply(t, json.RawMessage(mustApply(t, base, c1.Op)), c2.Op))
	op := Op{InsertText("C"), Retain(4), InsertText("!")}
	got := TransformAgainst(op, "carol", []Committed{c1, c2})
	if s := mustApply(t, cur, got); s != string(str("BChe!o")) {
		t.Fatalf("result %s (op %v)", s, got)
	}
	// "alice" sorts before "bob": her insert goes before his.
	got = TransformAgainst(op, "alice", []Committed{c1, c2})
	if s := mustApply(t, cur, got); s != string(str("CBhe!o")) {
		t.Fatalf("result %s (op %v)", s, got)
	}
	// Nothing committed since: the op, normalized.
	if got := TransformAgainst(Op{Retain(1), Retain(1), InsertText("x"), Retain(2)}, "a", nil); !sameOp(got, Op{Retain(2), InsertText("x")}) {
		t.Fatalf("no history: %v", got)
	}
}

func TestCompose(t *testing.T) {
	tests := []struct {
		name string
		doc  json.RawMessage
		a, b Op
		want Op
	}{
		{"insert then delete it", str("héllo"), Op{Retain(1), InsertText("XY")}, Op{Retain(2), Delete(1)}, Op{Retain(1), InsertText("X")}},
		{"delete then insert", str("héllo"), Op{Delete(2)}, Op{InsertText("he")}, Op{InsertText("he"), Delete(2)}},
		{"disjoint edits", str("abcdef"), Op{Retain(1), Delete(1)}, Op{Retain(3), InsertText("😀")}, Op{Retain(1), Delete(1), Retain(2), InsertText("😀")}},
		{"b reaches past a", str("abcdef"), Op{InsertText("x")}, Op{Retain(5), Delete(1)}, Op{InsertText("x"), Retain(4), Delete(1)}},
		{"replace then replace", str("abc"), Op{ReplaceText(2, "xy")}, Op{Retain(1), ReplaceText(1, "Z")}, Op{InsertText("xZ"), Delete(2)}},
		{"arrays", json.RawMessage(`[1,2]`), Op{InsertValues(vals(`0`)...)}, Op{Retain(2), InsertValues(vals(`1.5`)...)}, Op{InsertValues(vals(`0`)...), Retain(1), InsertValues(vals(`1.5`)...)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Compose(tc.a, tc.b)
			if !sameOp(got, tc.want) {
				t.Fatalf("Compose = %v, want %v", got, tc.want)
			}
			seq := mustApply(t, json.RawMessage(mustApply(t, tc.doc, tc.a)), tc.b)
			if one := mustApply(t, tc.doc, got); one != seq {
				t.Fatalf("composed %s, sequential %s", one, seq)
			}
		})
	}
}

func TestInvert(t *testing.T) {
	tests := []struct {
		name string
		doc  json.RawMessage
		op   Op
		want Op
	}{
		{"text", str("héllo wörld"), Op{Retain(1), ReplaceText(1, "e"), Retain(5), Delete(1)}, Op{Retain(1), InsertText("é"), Delete(1), Retain(5), InsertText("ö")}},
		{"emoji", str("😀x"), Op{Delete(1), InsertText("🙂🙂")}, Op{InsertText("😀"), Delete(2)}},
		{"array", json.RawMessage(`[1,{"a":2},3]`), Op{Retain(1), Delete(1), InsertValues(vals(`4`)...)}, Op{Retain(1), InsertValues(vals(`{"a":2}`)...), Delete(1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := Invert(tc.op, tc.doc)
			if err != nil {
				t.Fatal(err)
			}
			if !sameOp(inv, tc.want) {
				t.Fatalf("Invert = %v, want %v", inv, tc.want)
			}
			after := json.RawMessage(mustApply(t, tc.doc, tc.op))
			if back := mustApply(t, after, inv); back != mustApply(t, tc.doc, nil) {
				t.Fatalf("undo gives %s, want %s", back, tc.doc)
			}
		})
	}
	if _, err := Invert(Op{Delete(3)}, str("ab")); !errors.Is(err, ErrDoesNotFit) {
		t.Fatalf("Invert past the end: %v", err)
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name   string
		op     Op
		want   Op
		normal bool
	}{
		{"merges adjacent", Op{Retain(1), Retain(2), InsertText("a"), InsertText("é"), Delete(1), Delete(2)}, Op{Retain(3), InsertText("aé"), Delete(3)}, false},
		{"drops the trailing retain", Op{Delete(1), Retain(4)}, Op{Delete(1)}, false},
		{"replace becomes insert then delete", Op{Retain(1), ReplaceText(2, "x")}, Op{Retain(1), InsertText("x"), Delete(2)}, false},
		{"insert moves ahead of delete", Op{Delete(2), InsertText("x"), Delete(1), InsertText("y")}, Op{InsertText("xy"), Delete(3)}, false},
		{"drops no-ops", Op{Retain(0), InsertText(""), Delete(-1), {}}, Op{}, false},
		{"already normal", Op{Retain(1), InsertText("x"), Delete(1), Retain(1), Delete(1)}, Op{Retain(1), InsertText("x"), Delete(1), Retain(1), Delete(1)}, true},
		{"kinds do not merge", Op{InsertText("x"), InsertValues(vals(`1`)...)}, Op{InsertText("x"), InsertValues(vals(`1`)...)}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if isNormal(tc.op) != tc.normal {
				t.Fatalf("isNormal = %v", !tc.normal)
			}
			got := Normalize(tc.op)
			if !sameOp(got, tc.want) || !isNormal(got) {
				t.Fatalf("Normalize = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOpJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Op // nil with wantErr
		err  bool
	}{
		{"all four", `[{"type":"retain","length":2},{"type":"insert","content":"hé😀"},{"type":"delete","length":1},{"type":"replace","length":3,"content":"x"}]`,
			Op{Retain(2), InsertText("hé😀"), Delete(1), ReplaceText(3, "x")}, false},
		{"array content", `[{"type":"insert","content":[1,{"a":null},"s"]},{"type":"replace","length":1,"content":[[]]}]`,
			Op{InsertValues(vals(`1`, `{"a":null}`, `"s"`)...), ReplaceValues(1, vals(`[]`)...)}, false},
		{"empty", `[]`, Op{}, false},
		{"null is empty", `null`, nil, false},
		{"not an array", `{"type":"retain","length":1}`, nil, true},
		{"not JSON", `[{"type":`, nil, true},
		{"component not an object", `[1]`, nil, true},
		{"null component", `[null]`, nil, true},
		{"unknown type", `[{"type":"move","length":1}]`, nil, true},
		{"type case matters", `[{"type":"Retain","length":1}]`, nil, true},
		{"missing type", `[{"length":1}]`, nil, true},
		{"zero length", `[{"type":"retain","length":0}]`, nil, true},
		{"negative length", `[{"type":"delete","length":-3}]`, nil, true},
		{"fractional length", `[{"type":"delete","length":1.5}]`, nil, true},
		{"exponent length", `[{"type":"delete","length":1e3}]`, nil, true},
		{"huge length", `[{"type":"retain","length":99999999999999999999999}]`, nil, true},
		{"length over MaxLength", `[{"type":"retain","length":2147483648}]`, nil, true},
		{"string length", `[{"type":"retain","length":"3"}]`, nil, true},
		{"missing length", `[{"type":"replace","content":"x"}]`, nil, true},
		{"insert with length", `[{"type":"insert","length":1,"content":"x"}]`, nil, true},
		{"retain with content", `[{"type":"retain","length":1,"content":"x"}]`, nil, true},
		{"unknown member", `[{"type":"retain","length":1,"attributes":{}}]`, nil, true},
		{"missing content", `[{"type":"insert"}]`, nil, true},
		{"empty text", `[{"type":"insert","content":""}]`, nil, true},
		{"empty array", `[{"type":"insert","content":[]}]`, nil, true},
		{"number content", `[{"type":"insert","content":5}]`, nil, true},
		{"object content", `[{"type":"insert","content":{"a":1}}]`, nil, true},
		{"null content", `[{"type":"insert","content":null}]`, nil, true},
		{"mixed kinds", `[{"type":"insert","content":"x"},{"type":"insert","content":[1]}]`, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseOp([]byte(tc.in))
			if tc.err {
				var e *Error
				if !errors.Is(err, ErrInvalidOp) || !errors.As(err, &e) {
					t.Fatalf("ParseOp = %v, %v; want an ErrInvalidOp", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !sameOp(got, tc.want) {
				t.Fatalf("ParseOp = %v, want %v", got, tc.want)
			}
			// Decoding is faithful: replace stays replace, and the wire form
			// round-trips (modulo whitespace).
			out, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if tc.in != "null" && string(out) != tc.in {
				t.Fatalf("Marshal = %s, want %s", out, tc.in)
			}
		})
	}
	// Inside a request body.
	var body struct {
		Ops Op `json:"ops"`
	}
	err := json.Unmarshal([]byte(`{"ops":[{"type":"retain","length":0}]}`), &body)
	if !errors.Is(err, ErrInvalidOp) {
		t.Fatalf("nested decode: %v", err)
	}
	if err := json.Unmarshal([]byte(`{"ops":[{"type":"insert","content":"a"}]}`), &body); err != nil || !sameOp(body.Ops, Op{InsertText("a")}) {
		t.Fatalf("nested decode: %v %v", body.Ops, err)
	}
}

func TestValidate(t *testing.T) {
	bad := []Op{
		{{Type: 9, Length: 1}},
		{Retain(MaxLength + 1)},
		{{Type: TypeRetain, Length: 1, Content: Text("x")}},
		{{Type: TypeInsert, Length: 1, Content: Text("x")}},
		{InsertText("\xff")},
		{InsertValues(json.RawMessage(`{`))},
		{ReplaceText(1, "")},
	}
	for _, op := range bad {
		if err := op.Validate(); !errors.Is(err, ErrInvalidOp) {
			t.Errorf("Validate(%#v) = %v", op, err)
		}
	}
	if err := (Op{Retain(1), InsertText("é"), Delete(MaxLength)}).Validate(); err != nil {
		t.Fatal(err)
	}
	op := Op{Retain(2), InsertText("xyz"), Delete(3), ReplaceText(4, "a")}
	if n := op.InputLen(); n != 9 {
		t.Fatalf("InputLen = %d", n)
	}
	if d := op.Delta(); d != 3-3+1-4 {
		t.Fatalf("Delta = %d", d)
	}
	if err := (Op{Retain(1)}).Validate(); err != nil || !strings.Contains(invalid(2, "x").Error(), "component 2") {
		t.Fatal("error message")
	}
}
