package ot

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParseOp: decoding never panics, fails only with an *Error wrapping
// ErrInvalidOp, and what it accepts is valid, round-trips through the wire
// form, and survives the algorithms.
func FuzzParseOp(f *testing.F) {
	for _, s := range []string{
		`[{"type":"retain","length":2},{"type":"insert","content":"hé😀"},{"type":"delete","length":1}]`,
		`[{"type":"replace","length":3,"content":[1,{"a":null}]}]`,
		`[{"type":"retain","length":99999999999999999999}]`,
		`[{"type":"retain","length":2147483647},{"type":"delete","length":2147483647}]`,
		`[{"type":"insert","content":5}]`,
		`[{"type":"insert","content":"\ud800"}]`,
		`[{"type":"insert","content":[[[[[[[[[[]]]]]]]]]]}]`,
		`null`, `[]`, `[null]`, `{}`, `"x"`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		op, err := ParseOp(data)
		if err != nil {
			var e *Error
			if !errors.Is(err, ErrInvalidOp) || !errors.As(err, &e) {
				t.Fatalf("ParseOp error %v (%T) is not an ErrInvalidOp *Error", err, err)
			}
			return
		}
		if err := op.Validate(); err != nil {
			t.Fatalf("accepted an invalid op: %v", err)
		}
		raw, err := json.Marshal(op)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseOp(raw)
		if err != nil || !sameOp(back, op) {
			t.Fatalf("round trip of %s: %v, %v", raw, back, err)
		}
		norm := Normalize(op)
		if !isNormal(norm) {
			t.Fatalf("Normalize(%v) = %v is not normal", op, norm)
		}
		Transform(op, norm, true)
		Compose(op, norm)
		TransformAgainst(op, "x", []Committed{{Op: op, ActorID: "y"}})
	})
}

// FuzzApply: Apply and Invert never panic on any document and valid op,
// fail only with the package's errors, and invert what they apply.
func FuzzApply(f *testing.F) {
	f.Add(`"héllo wörld"`, `[{"type":"retain","length":1},{"type":"replace","length":1,"content":"e"}]`)
	f.Add(`"a😀b"`, `[{"type":"delete","length":3}]`)
	f.Add(`[1,{"a":2},3]`, `[{"type":"insert","content":[null]},{"type":"retain","length":3}]`)
	f.Add(`[1]`, `[{"type":"retain","length":2147483647}]`)
	f.Add(`{"a":1}`, `[]`)
	f.Add(`"\u2028<&>\n"`, `[{"type":"insert","content":"\u0000"}]`)
	f.Fuzz(func(t *testing.T, doc, ops string) {
		op, err := ParseOp([]byte(ops))
		if err != nil {
			return
		}
		out, err := Apply(json.RawMessage(doc), op)
		if err != nil {
			var e *Error
			if !(errors.Is(err, ErrDocument) || errors.Is(err, ErrDoesNotFit)) || !errors.As(err, &e) {
				t.Fatalf("Apply error %v (%T)", err, err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("Apply produced invalid JSON %q", out)
		}
		if again := apply(t, json.RawMessage(doc), Normalize(op)); string(again) != string(out) {
			t.Fatalf("normalized op gives %s, op %s", again, out)
		}
		inv, err := Invert(op, json.RawMessage(doc))
		if err != nil {
			t.Fatal(err)
		}
		if back, orig := apply(t, out, inv), apply(t, json.RawMessage(doc), nil); string(back) != string(orig) {
			t.Fatalf("undo gives %s, want %s", back, orig)
		}
	})
}

// FuzzUnquote: the text fast path decodes exactly as encoding/json does.
func FuzzUnquote(f *testing.F) {
	for _, s := range []string{
		`"plain"`, ` "héllo\nwörld" `, `"\ud83d\ude00"`, `"\ud800"`, `"\ud800\u0041"`, `"\udc00\ud800\udc00"`,
		`"\u00e9\/\b\f\r\t\"\\"`, `"a\"`, `"a" "b"`, `"\x"`, "\"\xff\"", "\"\x01\"", `"\u12"`, `"\ud800\uzzzz"`, `""`, `"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want string
		wantErr := json.Unmarshal(raw, &want)
		if len(trimSpace(raw)) == 0 || trimSpace(raw)[0] != '"' {
			return // not a string: decodeDoc never asks
		}
		got, err := unquote(raw)
		if (err != nil) != (wantErr != nil) || got != want {
			t.Fatalf("unquote(%q) = %q, %v; encoding/json: %q, %v", raw, got, err, want, wantErr)
		}
	})
}

// FuzzSplitArray: splitting an array in place agrees with encoding/json.
func FuzzSplitArray(f *testing.F) {
	for _, s := range []string{
		`[]`, `[ ]`, `[1]`, `["a,]", {"b":"]"}, [1,[2]] , "\"]", "\\"]`, "[\n 1 ,\t{\"a\" : [ ]}\r]", `[[],{},""]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want []json.RawMessage
		if json.Unmarshal(raw, &want) != nil || want == nil {
			return
		}
		got, compact := splitArray(trimSpace(raw))
		if len(got) != len(want) {
			t.Fatalf("splitArray(%q) = %q, want %q", raw, got, want)
		}
		for i := range got {
			var g, w bytes.Buffer
			if json.Compact(&g, got[i]) != nil || json.Compact(&w, want[i]) != nil || g.String() != w.String() {
				t.Fatalf("element %d: %q, want %q", i, got[i], want[i])
			}
			if compact && string(got[i]) != g.String() {
				t.Fatalf("reported compact, element %d is %q", i, got[i])
			}
		}
	})
}
