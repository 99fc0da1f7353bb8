package merge

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"sort"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// j spells a test input; nil stands for absent.
func j(s string) json.RawMessage { return json.RawMessage(s) }

func TestMerge(t *testing.T) {
	tests := []struct {
		name               string
		base, ours, theirs json.RawMessage
		want               json.RawMessage // Result.Value; nil: absent
		wantConflicts      []Conflict
	}{
		// Disjoint changes inside the same nested object both land.
		{
			name: "nested objects, disjoint members",
			base: j(`{"a":{"x":1,"y":1},"b":1}`), ours: j(`{"a":{"x":2,"y":1},"b":1}`), theirs: j(`{"a":{"x":1,"y":2},"b":1}`),
			want: j(`{"a":{"x":2,"y":2},"b":1}`),
		},
		// Members created on different sides are both kept.
		{
			name: "members added on each side",
			base: j(`{}`), ours: j(`{"a":1}`), theirs: j(`{"b":2}`),
			want: j(`{"a":1,"b":2}`),
		},
		// A deletion is a change like any other: one side's deletion wins
		// over the other side leaving the member alone.
		{
			name: "deletion on one side",
			base: j(`{"a":1,"b":2}`), ours: j(`{"a":1}`), theirs: j(`{"a":1,"b":2,"c":3}`),
			want: j(`{"a":1,"c":3}`),
		},
		// Deleted on both sides is the same change.
		{
			name: "deleted on both sides",
			base: j(`{"a":1,"b":2}`), ours: j(`{"a":1}`), theirs: j(`{"a":2}`),
			want: j(`{"a":2}`),
		},
		// Deleted on one side, modified on the other: a conflict at the
		// member; Value keeps ours (deleted).
		{
			name: "deleted vs modified",
			base: j(`{"a":1,"b":2}`), ours: j(`{"a":1}`), theirs: j(`{"a":1,"b":3}`),
			want:          j(`{"a":1}`),
			wantConflicts: []Conflict{{Path: "/b", Base: j(`2`), Ours: nil, Theirs: j(`3`)}},
		},
		// The same edit on both sides is no conflict.
		{
			name: "same change on both sides",
			base: j(`{"a":1}`), ours: j(`{"a":2,"b":true}`), theirs: j(`{"a":2}`),
			want: j(`{"a":2,"b":true}`),
		},
		// The conflict is reported at the deepest path both sides touched.
		{
			name: "nested scalar conflict",
			base: j(`{"a":{"b":{"c":1,"d":1}}}`), ours: j(`{"a":{"b":{"c":2,"d":1}}}`), theirs: j(`{"a":{"b":{"c":3,"d":2}}}`),
			want:          j(`{"a":{"b":{"c":2,"d":2}}}`),
			wantConflicts: []Conflict{{Path: "/a/b/c", Base: j(`1`), Ours: j(`2`), Theirs: j(`3`)}},
		},
		// Several conflicts come out in document order (member names sorted).
		{
			name: "conflicts in document order",
			base: j(`{"z":1,"a":1}`), ours: j(`{"z":2,"a":2}`), theirs: j(`{"z":3,"a":3}`),
			want: j(`{"a":2,"z":2}`),
			wantConflicts: []Conflict{
				{Path: "/a", Base: j(`1`), Ours: j(`2`), Theirs: j(`3`)},
				{Path: "/z", Base: j(`1`), Ours: j(`2`), Theirs: j(`3`)},
			},
		},
		// 1 and 1.0 are the same value: ours did not change n.
		{
			name: "number respelled is unchanged",
			base: j(`{"n":1}`), ours: j(`{"n":1.0}`), theirs: j(`{"n":2}`),
			want: j(`{"n":2}`),
		},
		// Both sides set the same value in different spellings: no conflict,
		// ours' spelling.
		{
			name: "same number, different spellings",
			base: j(`{"n":1}`), ours: j(`{"n":2.50}`), theirs: j(`{"n":25e-1}`),
			want: j(`{"n":2.50}`),
		},
		// Number text is copied, not reformatted through float64.
		{
			name: "number text preserved",
			base: j(`{"n":1.10,"big":12345678901234567890123,"m":1}`), ours: j(`{"n":1.10,"big":12345678901234567890123,"m":2}`), theirs: j(`{"n":1.10,"big":12345678901234567890123,"m":1,"e":1E+2}`),
			want: j(`{"big":12345678901234567890123,"e":1E+2,"m":2,"n":1.10}`),
		},
		// -0 equals 0, so only theirs changed z.
		{
			name: "negative zero",
			base: j(`{"z":0}`), ours: j(`{"z":-0.0}`), theirs: j(`{"z":1}`),
			want: j(`{"z":1}`),
		},
		// Both sides only appended: base, ours' elements, theirs' elements.
		{
			name: "array appends on both sides",
			base: j(`{"log":[1,2]}`), ours: j(`{"log":[1,2,"o1"]}`), theirs: j(`{"log":[1,2,"t1","t2"]}`),
			want: j(`{"log":[1,2,"o1","t1","t2"]}`),
		},
		// Appending from an empty array.
		{
			name: "appends to an empty array",
			base: j(`[]`), ours: j(`[1]`), theirs: j(`[2]`),
			want: j(`[1,2]`),
		},
		// The same append on both sides is the same change: one copy.
		{
			name: "identical appends collapse",
			base: j(`[1]`), ours: j(`[1,2]`), theirs: j(`[1,2]`),
			want: j(`[1,2]`),
		},
		// One side left the array alone: the other side's array, whatever it
		// did to it.
		{
			name: "array rewritten on one side",
			base: j(`{"a":[1,2,3]}`), ours: j(`{"a":[1,2,3]}`), theirs: j(`{"a":[3]}`),
			want: j(`{"a":[3]}`),
		},
		// Truncation against an append is not two appends: conflict at the
		// array.
		{
			name: "array truncated vs appended",
			base: j(`{"a":[1,2]}`), ours: j(`{"a":[2]}`), theirs: j(`{"a":[1,2,3]}`),
			want:          j(`{"a":[2]}`),
			wantConflicts: []Conflict{{Path: "/a", Base: j(`[1,2]`), Ours: j(`[2]`), Theirs: j(`[1,2,3]`)}},
		},
		// Elements are not merged one by one, even disjoint edits inside them.
		{
			name: "array elements are not merged",
			base: j(`{"a":[{"x":1,"y":1}]}`), ours: j(`{"a":[{"x":2,"y":1}]}`), theirs: j(`{"a":[{"x":1,"y":2}]}`),
			want:          j(`{"a":[{"x":2,"y":1}]}`),
			wantConflicts: []Conflict{{Path: "/a", Base: j(`[{"x":1,"y":1}]`), Ours: j(`[{"x":2,"y":1}]`), Theirs: j(`[{"x":1,"y":2}]`)}},
		},
		// A type change on one side is taken like any edit.
		{
			name: "type change on one side",
			base: j(`{"a":{"x":1},"b":1}`), ours: j(`{"a":"str","b":1}`), theirs: j(`{"a":{"x":1},"b":2}`),
			want: j(`{"a":"str","b":2}`),
		},
		// A type change against an edit inside the old value conflicts at the
		// member that changed type.
		{
			name: "type change vs nested edit",
			base: j(`{"a":{"x":1}}`), ours: j(`{"a":[1]}`), theirs: j(`{"a":{"x":2}}`),
			want:          j(`{"a":[1]}`),
			wantConflicts: []Conflict{{Path: "/a", Base: j(`{"x":1}`), Ours: j(`[1]`), Theirs: j(`{"x":2}`)}},
		},
		// Both changed the type, differently.
		{
			name: "type changed differently on both sides",
			base: j(`{"a":1}`), ours: j(`{"a":"1"}`), theirs: j(`{"a":true}`),
			want:          j(`{"a":"1"}`),
			wantConflicts: []Conflict{{Path: "/a", Base: j(`1`), Ours: j(`"1"`), Theirs: j(`true`)}},
		},
		// null is a value, distinct from absent: deleting a null member is a
		// change, and so is adding one.
		{
			name: "null is not absent",
			base: j(`{"a":null}`), ours: j(`{}`), theirs: j(`{"a":null,"b":null}`),
			want: j(`{"b":null}`),
		},
		// Whole-value scalars: one side changed.
		{
			name: "top-level scalar changed on one side",
			base: j(`1`), ours: j(`2`), theirs: j(`1`),
			want: j(`2`),
		},
		// Whole-value scalars changed differently: conflict at "".
		{
			name: "top-level scalar conflict",
			base: j(`"a"`), ours: j(`"b"`), theirs: j(`"c"`),
			want:          j(`"b"`),
			wantConflicts: []Conflict{{Path: "", Base: j(`"a"`), Ours: j(`"b"`), Theirs: j(`"c"`)}},
		},
		// nil base: the key was created on both sides; the same value is fine.
		{
			name: "nil base, created equal",
			base: nil, ours: j(`{"a":1.0}`), theirs: j(`{"a":1}`),
			want: j(`{"a":1.0}`),
		},
		// nil base, created differently: no common ancestor to merge the
		// objects against, so a conflict at the whole value.
		{
			name: "nil base, created differently",
			base: nil, ours: j(`{"a":1}`), theirs: j(`{"b":2}`),
			want:          j(`{"a":1}`),
			wantConflicts: []Conflict{{Path: "", Base: nil, Ours: j(`{"a":1}`), Theirs: j(`{"b":2}`)}},
		},
		// nil base and nil ours: only the writer created the key.
		{
			name: "nil base, created by theirs only",
			base: nil, ours: nil, theirs: j(`{"a":1}`),
			want: j(`{"a":1}`),
		},
		// ours deleted the key, theirs left it alone: the merge is "deleted".
		{
			name: "deleted key, other side unchanged",
			base: j(`{"a":1}`), ours: nil, theirs: j(`{"a":1}`),
			want: nil,
		},
		// ours deleted the key, theirs modified it: conflict at "".
		{
			name: "deleted key vs modified",
			base: j(`{"a":1}`), ours: nil, theirs: j(`{"a":2}`),
			want:          nil,
			wantConflicts: []Conflict{{Path: "", Base: j(`{"a":1}`), Ours: nil, Theirs: j(`{"a":2}`)}},
		},
		// A member created on both sides with different objects conflicts at
		// that member, for the same reason as a nil base.
		{
			name: "member created differently on both sides",
			base: j(`{}`), ours: j(`{"m":{"x":1}}`), theirs: j(`{"m":{"y":1}}`),
			want:          j(`{"m":{"x":1}}`),
			wantConflicts: []Conflict{{Path: "/m", Base: nil, Ours: j(`{"x":1}`), Theirs: j(`{"y":1}`)}},
		},
		// RFC 6901: "~" is written "~0" and "/" is written "~1", "~1" in a
		// name is "~01", and the empty name is an empty token.
		{
			name: "pointer escaping",
			base: j(`{"a/b":{"m~n":1},"~1":1,"":1}`), ours: j(`{"a/b":{"m~n":2},"~1":2,"":2}`), theirs: j(`{"a/b":{"m~n":3},"~1":3,"":3}`),
			want: j(`{"":2,"a/b":{"m~n":2},"~1":2}`),
			wantConflicts: []Conflict{
				{Path: "/", Base: j(`1`), Ours: j(`2`), Theirs: j(`3`)},
				{Path: "/a~1b/m~0n", Base: j(`1`), Ours: j(`2`), Theirs: j(`3`)},
				{Path: "/~01", Base: j(`1`), Ours: j(`2`), Theirs: j(`3`)},
			},
		},
		// Strings compare by decoded text, not by escape spelling.
		{
			name: "string escapes are not changes",
			base: j(`{"s":"A","t":1}`), ours: j(`{"s":"\u0041","t":1}`), theirs: j(`{"s":"A","t":2}`),
			want: j(`{"s":"A","t":2}`),
		},
		// Output is compact with sorted members, and strings are not
		// HTML-escaped.
		{
			name: "compact, sorted, no HTML escaping",
			base: j(` { "b" : 1 , "a" : "<x&y>" } `), ours: j(`{"b":1,"a":"<x&y>"}`), theirs: j(`{ "b" : 2, "a" : "<x&y>" }`),
			want: j(`{"a":"<x&y>","b":2}`),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Merge(tc.base, tc.ours, tc.theirs)
			if err != nil {
				t.Fatalf("Merge: %v", err)
			}
			if !rawEqual(res.Value, tc.want) {
				t.Errorf("Value = %s, want %s", show(res.Value), show(tc.want))
			}
			if len(res.Conflicts) != len(tc.wantConflicts) {
				t.Fatalf("Conflicts = %s, want %s", showConflicts(res.Conflicts), showConflicts(tc.wantConflicts))
			}
			for i, c := range res.Conflicts {
				w := tc.wantConflicts[i]
				if c.Path != w.Path || !rawEqual(c.Base, w.Base) || !rawEqual(c.Ours, w.Ours) || !rawEqual(c.Theirs, w.Theirs) {
					t.Fatalf("Conflicts = %s, want %s", showConflicts(res.Conflicts), showConflicts(tc.wantConflicts))
				}
			}
		})
	}
}

// rawEqual compares bytes exactly, telling nil (absent) from anything else.
func rawEqual(a, b json.RawMessage) bool {
	return (a == nil) == (b == nil) && string(a) == string(b)
}

func show(r json.RawMessage) string {
	if r == nil {
		return "<absent>"
	}
	return string(r)
}

func showConflicts(cs []Conflict) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("{%q base=%s ours=%s theirs=%s}", c.Path, show(c.Base), show(c.Ours), show(c.Theirs)))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func TestMergeInvalid(t *testing.T) {
	ok := j(`{}`)
	tests := []struct {
		name               string
		base, ours, theirs json.RawMessage
	}{
		{"invalid base", j(`{`), ok, ok},                           // truncated
		{"invalid ours", ok, j(`{"a":}`), ok},                      // missing value
		{"invalid theirs", ok, ok, j(`[1,]`)},                      // trailing comma
		{"two values", ok, ok, j(`{} {}`)},                         // not one value
		{"trailing garbage", ok, j(`1 x`), ok},                     // not one value
		{"empty but not nil", j(``), ok, ok},                       // only nil means absent
		{"invalid even when absent elsewhere", nil, nil, j(`nul`)}, // absent sides do not hide errors
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Merge(tc.base, tc.ours, tc.theirs)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Merge = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestNumbersEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"1", "1.0", true},                              // fraction zeros
		{"1", "1e0", true},                              // exponent zero
		{"10e-1", "1", true},                            // exponent and digits cancel
		{"100", "1E+2", true},                           // upper-case E, explicit sign
		{"0", "-0", true},                               // zero has no sign
		{"0.0", "-0e5", true},                           // nor an exponent
		{"0.000", "0", true},                            // nor fraction digits
		{"1.5", "15e-2", false},                         // 1.5 vs 0.15
		{"-1", "1", false},                              // sign matters off zero
		{"1e400", "10e399", true},                       // beyond float64, still exact
		{"1e400", "1e401", false},                       // ... and still distinguished
		{"9007199254740993", "9007199254740992", false}, // no float64 rounding
		{"1e99999999999999999999", "10e99999999999999999998", true}, // exponent beyond int64
		{"1e99999999999999999999", "1e99999999999999999998", false}, // ... compared exactly
		{"1e-99999999999999999999", "0.1e-99999999999999999998", true},
		{"2", "3", false}, // plain integers
	}
	for _, tc := range tests {
		if got := numbersEqual(tc.a, tc.b); got != tc.want {
			t.Errorf("numbersEqual(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := numbersEqual(tc.b, tc.a); got != tc.want {
			t.Errorf("numbersEqual(%s, %s) = %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
}

// numberText draws a valid JSON number spelling with a small exponent, so an
// independent big.Rat can judge it.
func numberText() *rapid.Generator[string] {
	return rapid.Custom(func(t *rapid.T) string {
		s := ""
		if rapid.Bool().Draw(t, "neg") {
			s = "-"
		}
		s += rapid.SampledFrom([]string{"0", "1", "10", "100", "25", "250"}).Draw(t, "int")
		if rapid.Bool().Draw(t, "hasFrac") {
			s += "." + rapid.SampledFrom([]string{"0", "00", "5", "50", "25"}).Draw(t, "frac")
		}
		if rapid.Bool().Draw(t, "hasExp") {
			s += rapid.SampledFrom([]string{"e", "E"}).Draw(t, "e") +
				rapid.SampledFrom([]string{"", "+", "-"}).Draw(t, "expSign") +
				rapid.SampledFrom([]string{"0", "1", "2", "01"}).Draw(t, "exp")
		}
		return s
	})
}

// Property: numbersEqual is exact rational equality.
func TestNumbersEqualIsRationalEquality(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := numberText().Draw(t, "a"), numberText().Draw(t, "b")
		ra, _ := new(big.Rat).SetString(a)
		rb, _ := new(big.Rat).SetString(b)
		if got, want := numbersEqual(a, b), ra.Cmp(rb) == 0; got != want {
			t.Fatalf("numbersEqual(%s, %s) = %v, want %v", a, b, got, want)
		}
	})
}

// --- random documents ---

// absentDoc marks an absent document or member in the generators and the
// oracle below; it never reaches Merge, which sees nil instead.
type absentDoc struct{}

// A small alphabet so both sides touch the same members; it includes names
// that need escaping in a pointer.
var keyAlphabet = []string{"a", "b", "c", "", "a/b", "~1"}

var numberSpellings = []string{"0", "-0", "1", "1.0", "1e0", "2", "-3", "0.5", "5e-1", "12345678901234567890"}

// jsonDoc draws a random JSON value of small depth: the tree uses
// json.Number so spellings survive into the input bytes. Objects come
// first and most often: rapid favours small values, and the merge does
// most of its work inside objects.
func jsonDoc(depth int) *rapid.Generator[any] {
	return rapid.Custom(func(t *rapid.T) any {
		kind := rapid.IntRange(0, 8).Draw(t, "kind")
		if depth <= 0 && kind <= 3 {
			kind = 4
		}
		switch kind {
		case 0, 1, 2:
			return objectDoc(depth).Draw(t, "object")
		case 3:
			return rapid.SliceOfN(jsonDoc(depth-1), 0, 3).Draw(t, "array")
		case 4, 5:
			return json.Number(rapid.SampledFrom(numberSpellings).Draw(t, "number"))
		case 6:
			return rapid.SampledFrom([]string{"", "x", "y", "<&>"}).Draw(t, "string")
		case 7:
			return rapid.Bool().Draw(t, "bool")
		default:
			return nil
		}
	})
}

func objectDoc(depth int) *rapid.Generator[any] {
	return rapid.Custom(func(t *rapid.T) any {
		// At least one member: edits make empty objects often enough.
		keys := rapid.SliceOfNDistinct(rapid.SampledFrom(keyAlphabet), 1, 4, rapid.ID[string]).Draw(t, "keys")
		m := map[string]any{}
		for _, k := range keys {
			m[k] = jsonDoc(depth-1).Draw(t, "member")
		}
		return m
	})
}

// edit draws a change of v, the way a writer edits what it read: mostly
// small and local, so the two sides of a merge overlap only sometimes.
func edit(t *rapid.T, v any, depth int) any {
	switch rapid.IntRange(0, 9).Draw(t, "edit") {
	case 0, 1, 2, 3, 4:
		return editInside(t, v, depth)
	case 5, 6, 7, 8:
		return v // unchanged
	default:
		return jsonDoc(depth).Draw(t, "replace")
	}
}

// editInside changes members of an object or elements of an array, or
// replaces a scalar.
func editInside(t *rapid.T, v any, depth int) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for _, k := range keyAlphabet {
			mv, ok := x[k]
			switch rapid.IntRange(0, 9).Draw(t, "member "+k) {
			case 0, 1, 2, 3: // keep
				if ok {
					out[k] = mv
				}
			case 4, 5, 6, 7: // edit in place
				if ok {
					out[k] = edit(t, mv, depth-1)
				}
			case 8: // set, creating it if absent
				out[k] = jsonDoc(depth-1).Draw(t, "set")
			default: // delete
			}
		}
		return out
	case []any:
		switch rapid.IntRange(0, 3).Draw(t, "array edit") {
		case 0, 1: // append
			return append(slices.Clip(x), rapid.SliceOfN(jsonDoc(depth-1), 1, 2).Draw(t, "appended")...)
		case 2: // edit an element
			if len(x) == 0 {
				return x
			}
			y := slices.Clone(x)
			i := rapid.IntRange(0, len(y)-1).Draw(t, "index")
			y[i] = edit(t, y[i], depth-1)
			return y
		default: // truncate
			return x[:rapid.IntRange(0, len(x)).Draw(t, "len")]
		}
	}
	return jsonDoc(depth).Draw(t, "replace scalar")
}

// maybeAbsent makes a top-level document absent now and then.
func maybeAbsent(t *rapid.T, label string, v any) any {
	if rapid.IntRange(0, 31).Draw(t, label) == 31 {
		return absentDoc{}
	}
	return v
}

func raw(t *rapid.T, v any) json.RawMessage {
	if _, ok := v.(absentDoc); ok {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// --- an oracle independent of the package's equality ---

// parse decodes bytes (nil: absent) into a tree whose numbers are written
// as reduced big.Rat fractions, so that canonical() gives trees equal by
// JSON value equal strings without using the package's own equality.
func parse(t *rapid.T, r json.RawMessage) any {
	if r == nil {
		return absentDoc{}
	}
	var v any
	d := json.NewDecoder(strings.NewReader(string(r)))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("invalid JSON %s: %v", r, err)
	}
	return ratNumbers(v)
}

func ratNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		r, ok := new(big.Rat).SetString(string(x))
		if !ok {
			panic("bad number " + x)
		}
		return rat(r.RatString())
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = ratNumbers(x[i])
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, mv := range x {
			out[k] = ratNumbers(mv)
		}
		return out
	}
	return v
}

type rat string

// canonical writes a tree with sorted members; with bags, every array is
// written as the sorted multiset of its elements.
func canonical(v any, bags bool) string {
	switch x := v.(type) {
	case absentDoc:
		return "<absent>"
	case rat:
		return "n:" + string(x)
	case []any:
		parts := make([]string, len(x))
		for i := range x {
			parts[i] = canonical(x[i], bags)
		}
		if bags {
			sort.Strings(parts)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%q:%s", k, canonical(x[k], bags))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func same(a, b any) bool { return canonical(a, false) == canonical(b, false) }

// at follows member names (the merge never addresses array elements).
func at(v any, path []string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return absentDoc{}
		}
		if v, ok = m[k]; !ok {
			return absentDoc{}
		}
	}
	return v
}

// unescape parses an RFC 6901 pointer: "~1" first, then "~0".
func unescape(t *rapid.T, ptr string) []string {
	if ptr == "" {
		return nil
	}
	if !strings.HasPrefix(ptr, "/") {
		t.Fatalf("pointer %q does not start with /", ptr)
	}
	toks := strings.Split(ptr[1:], "/")
	for i, tok := range toks {
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
	}
	return toks
}

type change struct {
	path []string
	to   any
}

// changes lists what side changed relative to base, with the merge's
// granularity: objects member by member, everything else as a whole.
func changes(base, side any, path []string) []change {
	bm, bok := base.(map[string]any)
	sm, sok := side.(map[string]any)
	if bok && sok {
		var out []change
		for _, k := range keyAlphabetOf(bm, sm) {
			out = append(out, changes(at(bm, []string{k}), at(sm, []string{k}), append(slices.Clip(path), k))...)
		}
		return out
	}
	if same(base, side) {
		return nil
	}
	return []change{{path: path, to: side}}
}

func keyAlphabetOf(a, b map[string]any) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	return keys
}

// draw3 draws a base and two edits of it, the inputs of one merge. Half the
// time both sides also edit the same randomly chosen member, often deep:
// independent edits alone rarely meet below the first level.
func draw3(t *rapid.T) (b, x, y json.RawMessage) {
	base := objectDoc(3).Draw(t, "base")
	if rapid.IntRange(0, 3).Draw(t, "scalar or array base") == 3 {
		base = jsonDoc(3).Draw(t, "any base")
	}
	// Both sides mostly edit inside the document: unchanged sides are the
	// business of properties 1 and 2.
	xv, yv := editOften(t, base), editOften(t, base)
	if rapid.Bool().Draw(t, "overlap") {
		p := pick(t, base)
		old := at(base, p)
		xv = setAt(xv, p, edit(t, old, 3-len(p)))
		yv = setAt(yv, p, edit(t, old, 3-len(p)))
	}
	return raw(t, maybeAbsent(t, "base absent", base)), raw(t, maybeAbsent(t, "x absent", xv)), raw(t, maybeAbsent(t, "y absent", yv))
}

// pick walks down from v through random members of objects.
func pick(t *rapid.T, v any) []string {
	var path []string
	for {
		m, ok := v.(map[string]any)
		if !ok || len(m) == 0 || rapid.IntRange(0, 3).Draw(t, "stop here") == 3 {
			return path
		}
		keys := slices.Sorted(maps.Keys(m))
		k := rapid.SampledFrom(keys).Draw(t, "member")
		path, v = append(path, k), m[k]
	}
}

// setAt returns v with the value at path replaced by nv, copying the
// objects on the way; v itself when the path no longer leads anywhere.
func setAt(v any, path []string, nv any) any {
	if len(path) == 0 {
		return nv
	}
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	mv, ok := m[path[0]]
	if !ok {
		return v
	}
	out := maps.Clone(m)
	out[path[0]] = setAt(mv, path[1:], nv)
	return out
}

func editOften(t *rapid.T, base any) any {
	if rapid.IntRange(0, 3).Draw(t, "top-level edit") == 3 {
		return edit(t, base, 3)
	}
	return editInside(t, base, 3)
}

func mustMerge(t *rapid.T, b, o, th json.RawMessage) Result {
	res, err := Merge(b, o, th)
	if err != nil {
		t.Fatalf("Merge(%s, %s, %s): %v", show(b), show(o), show(th), err)
	}
	if res.Value != nil && !json.Valid(res.Value) {
		t.Fatalf("Merge(%s, %s, %s) = invalid %s", show(b), show(o), show(th), res.Value)
	}
	return res
}

// Property 1: a side equal to base yields the other side, whichever it is.
func TestPropertyUnchangedSideYieldsOther(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b, x, _ := draw3(t)
		for _, res := range []Result{mustMerge(t, b, b, x), mustMerge(t, b, x, b)} {
			if len(res.Conflicts) != 0 {
				t.Fatalf("conflicts %s merging %s with unchanged %s", showConflicts(res.Conflicts), show(x), show(b))
			}
			if !same(parse(t, res.Value), parse(t, x)) {
				t.Fatalf("merge of %s over unchanged %s = %s", show(x), show(b), show(res.Value))
			}
		}
	})
}

// Property 2: the same change on both sides is that change.
func TestPropertySameChange(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b, x, _ := draw3(t)
		res := mustMerge(t, b, x, x)
		if len(res.Conflicts) != 0 || !same(parse(t, res.Value), parse(t, x)) {
			t.Fatalf("Merge(%s, x, x) with x = %s: %s %s", show(b), show(x), show(res.Value), showConflicts(res.Conflicts))
		}
	})
}

// Property 3: swapping the sides swaps ours and theirs in every conflict
// and changes nothing else, except that concurrently appended array
// elements come out in the other order — so clean results are compared
// with every array as a multiset.
func TestPropertySymmetry(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b, x, y := draw3(t)
		r1, r2 := mustMerge(t, b, x, y), mustMerge(t, b, y, x)
		if len(r1.Conflicts) != len(r2.Conflicts) {
			t.Fatalf("conflicts differ: %s vs %s", showConflicts(r1.Conflicts), showConflicts(r2.Conflicts))
		}
		for i := range r1.Conflicts {
			c1, c2 := r1.Conflicts[i], r2.Conflicts[i]
			if c1.Path != c2.Path || !rawEqual(c1.Base, c2.Base) || !rawEqual(c1.Ours, c2.Theirs) || !rawEqual(c1.Theirs, c2.Ours) {
				t.Fatalf("conflicts differ: %s vs %s", showConflicts(r1.Conflicts), showConflicts(r2.Conflicts))
			}
		}
		if len(r1.Conflicts) == 0 && canonical(parse(t, r1.Value), true) != canonical(parse(t, r2.Value), true) {
			t.Fatalf("Merge(%s, %s, %s) = %s but swapped = %s", show(b), show(x), show(y), show(r1.Value), show(r2.Value))
		}
	})
}

// Property 4: a clean merge keeps every change of each side: the result
// holds the side's value at each path it changed — or, for an array both
// sides appended to, base's elements followed by this side's appended ones
// (first for ours, last for theirs).
func TestPropertyCleanMergeKeepsEveryChange(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b, x, y := draw3(t)
		res := mustMerge(t, b, x, y)
		if len(res.Conflicts) != 0 {
			return
		}
		bv, got := parse(t, b), parse(t, res.Value)
		for _, side := range []struct {
			name  string
			v     json.RawMessage
			first bool
		}{{"ours", x, true}, {"theirs", y, false}} {
			for _, c := range changes(bv, parse(t, side.v), nil) {
				g := at(got, c.path)
				if same(g, c.to) || appendedTo(at(bv, c.path), c.to, g, side.first) {
					continue
				}
				t.Fatalf("Merge(%s, %s, %s) = %s lost %s' change at %q to %s",
					show(b), show(x), show(y), show(res.Value), side.name, pointer(c.path), canonical(c.to, false))
			}
		}
	})
}

// appendedTo: side only appended to the array base, and got is base then
// other elements with side's appended ones at the start (first) or the end.
func appendedTo(base, side, got any, first bool) bool {
	ba, ok1 := base.([]any)
	sa, ok2 := side.([]any)
	ga, ok3 := got.([]any)
	if !ok1 || !ok2 || !ok3 || len(ga) < len(sa) || !same(ba, sa[:min(len(ba), len(sa))]) || !same(ba, ga[:len(ba)]) {
		return false
	}
	tail, gtail := sa[len(ba):], ga[len(ba):]
	if first {
		return same(tail, gtail[:len(tail)])
	}
	return same(tail, gtail[len(gtail)-len(tail):])
}

// Property 5: each conflict is at a path where all three values differ,
// records what each of them holds there, and Value holds ours there.
func TestPropertyConflictsDescribeTheInputs(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b, x, y := draw3(t)
		res := mustMerge(t, b, x, y)
		bv, xv, yv, got := parse(t, b), parse(t, x), parse(t, y), parse(t, res.Value)
		for _, c := range res.Conflicts {
			path := unescape(t, c.Path)
			cb, co, ct := parse(t, c.Base), parse(t, c.Ours), parse(t, c.Theirs)
			if !same(cb, at(bv, path)) || !same(co, at(xv, path)) || !same(ct, at(yv, path)) {
				t.Fatalf("conflict %s does not match inputs %s, %s, %s", showConflicts([]Conflict{c}), show(b), show(x), show(y))
			}
			if same(cb, co) || same(cb, ct) || same(co, ct) {
				t.Fatalf("conflict %s where a side did not change or both agree", showConflicts([]Conflict{c}))
			}
			if !same(at(got, path), co) {
				t.Fatalf("Value %s does not hold ours at conflict %q", show(res.Value), c.Path)
			}
		}
	})
}

// FuzzMerge: Merge never panics; it fails exactly on invalid input, and
// otherwise answers valid JSON everywhere. An empty input stands for absent.
// Merging an unchanged side yields the other side's exact output bytes.
func FuzzMerge(f *testing.F) {
	seeds := [][3]string{
		{`{"a":1,"b":[1,2]}`, `{"a":2,"b":[1,2,3]}`, `{"a":1,"b":[1,2,4],"c":null}`},
		{`{"a":{"x":1}}`, `{"a":[1]}`, `{"a":{"x":2}}`},
		{``, `{"a":1}`, `{"b":2}`},
		{`1`, `1.0`, `1e400`},
		{`{"a/b":{"m~n":"<&>"}}`, `{}`, `{"a/b":{"m~n":"\u00e9"}}`},
		{`[[[[`, `{}`, `{}`},
		{`{"a":1} x`, `{}`, ``},
	}
	for _, s := range seeds {
		f.Add([]byte(s[0]), []byte(s[1]), []byte(s[2]))
	}
	in := func(b []byte) json.RawMessage {
		if len(b) == 0 {
			return nil
		}
		return b
	}
	valid := func(b []byte) bool { return len(b) == 0 || json.Valid(b) }
	f.Fuzz(func(t *testing.T, base, ours, theirs []byte) {
		res, err := Merge(in(base), in(ours), in(theirs))
		if allValid := valid(base) && valid(ours) && valid(theirs); err != nil {
			if allValid || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Merge(%q, %q, %q): %v", base, ours, theirs, err)
			}
			return
		} else if !allValid {
			t.Fatalf("Merge(%q, %q, %q) accepted invalid JSON", base, ours, theirs)
		}
		for _, r := range append([]json.RawMessage{res.Value}, conflictValues(res.Conflicts)...) {
			if r != nil && !json.Valid(r) {
				t.Fatalf("Merge(%q, %q, %q) answered invalid JSON %q", base, ours, theirs, r)
			}
		}
		a, err1 := Merge(in(base), in(base), in(theirs))
		b, err2 := Merge(in(theirs), in(theirs), in(theirs))
		if err1 != nil || err2 != nil || len(a.Conflicts) != 0 || !rawEqual(a.Value, b.Value) {
			t.Fatalf("unchanged ours: %s %v, want %s", show(a.Value), a.Conflicts, show(b.Value))
		}
	})
}

func conflictValues(cs []Conflict) []json.RawMessage {
	var out []json.RawMessage
	for _, c := range cs {
		out = append(out, c.Base, c.Ours, c.Theirs)
	}
	return out
}

// benchDocs builds a ~10 KB object and two edits of it with a few changes
// each: a few members edited on each side, one deleted, one added, and an
// append to the same array on both sides.
func benchDocs(tb testing.TB) (base, ours, theirs json.RawMessage) {
	tb.Helper()
	build := func(edit func(i int, m map[string]any)) json.RawMessage {
		doc := map[string]any{}
		for i := range 82 {
			m := map[string]any{
				"name":    fmt.Sprintf("item-%03d", i),
				"score":   json.Number(fmt.Sprintf("%d.%02d", i, i%100)),
				"tags":    []any{"alpha", "beta", fmt.Sprintf("t%d", i)},
				"enabled": i%2 == 0,
				"meta":    map[string]any{"owner": "agent-7", "rev": json.Number(fmt.Sprint(i))},
			}
			edit(i, m)
			doc[fmt.Sprintf("k%03d", i)] = m
		}
		doc["log"] = []any{"start", "step 1", "step 2"}
		b, err := json.Marshal(doc)
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	base = build(func(int, map[string]any) {})
	ours = build(func(i int, m map[string]any) {
		switch i {
		case 3, 17:
			m["score"] = json.Number("99.5")
		case 40:
			delete(m, "meta")
		}
	})
	theirs = build(func(i int, m map[string]any) {
		switch i {
		case 5:
			m["name"] = "renamed"
		case 29:
			m["meta"].(map[string]any)["rev"] = json.Number("1000")
		case 50:
			m["extra"] = []any{1, 2, 3}
		}
	})
	var o, th map[string]any
	_ = json.Unmarshal(ours, &o)
	_ = json.Unmarshal(theirs, &th)
	o["log"] = append(o["log"].([]any), "ours appended")
	th["log"] = append(th["log"].([]any), "theirs appended")
	ours, _ = json.Marshal(o)
	theirs, _ = json.Marshal(th)
	return base, ours, theirs
}

func BenchmarkMerge(b *testing.B) {
	base, ours, theirs := benchDocs(b)
	if len(base) < 9000 || len(base) > 12000 {
		b.Fatalf("base is %d bytes, want ~10 KB", len(base))
	}
	res, err := Merge(base, ours, theirs)
	if err != nil || len(res.Conflicts) != 0 {
		b.Fatalf("bench merge: %v %s", err, showConflicts(res.Conflicts))
	}
	b.SetBytes(int64(len(base)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Merge(base, ours, theirs); err != nil {
			b.Fatal(err)
		}
	}
}
