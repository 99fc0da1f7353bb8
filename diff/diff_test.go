package diff

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"pgregory.net/rapid"
)

func TestCompute(t *testing.T) {
	tests := []struct {
		name     string
		from, to string
		want     Changes
	}{
		{
			name: "members added, modified and removed",
			from: `{"a":1,"b":{"c":2},"d":true}`,
			to:   `{"a":1,"b":{"c":3},"e":"x"}`,
			want: Changes{
				Added:    map[string]json.RawMessage{"/e": json.RawMessage(`"x"`)},
				Modified: map[string]Change{"/b/c": {Old: json.RawMessage(`2`), New: json.RawMessage(`3`)}},
				Removed:  []string{"/d"},
			},
		},
		{
			name: "escaped pointer tokens",
			from: `{"a/b":1,"m~n":1}`,
			to:   `{"a/b":2,"m~n":1}`,
			want: Changes{
				Added:    map[string]json.RawMessage{},
				Modified: map[string]Change{"/a~1b": {Old: json.RawMessage(`1`), New: json.RawMessage(`2`)}},
				Removed:  []string{},
			},
		},
		{
			name: "appends are pointers into the target, not \"-\"",
			from: `{"b":[1,2]}`,
			to:   `{"b":[1,2,3,4]}`,
			want: Changes{
				Added:    map[string]json.RawMessage{"/b/2": json.RawMessage(`3`), "/b/3": json.RawMessage(`4`)},
				Modified: map[string]Change{},
				Removed:  []string{},
			},
		},
		{
			name: "removals from the middle of an array: each path once, in the source",
			from: `[1,2,3,4,5]`,
			to:   `[1,3,5]`,
			want: Changes{
				Added:    map[string]json.RawMessage{},
				Modified: map[string]Change{"/1": {Old: json.RawMessage(`2`), New: json.RawMessage(`3`)}, "/2": {Old: json.RawMessage(`3`), New: json.RawMessage(`5`)}},
				Removed:  []string{"/3", "/4"},
			},
		},
		{
			name: "a change of type is a modification",
			from: `1`,
			to:   `{"a":1}`,
			want: Changes{
				Added:    map[string]json.RawMessage{},
				Modified: map[string]Change{"": {Old: json.RawMessage(`1`), New: json.RawMessage(`{"a":1}`)}},
				Removed:  []string{},
			},
		},
		{
			name: "numbers compare by value",
			from: `{"n":1.0}`,
			to:   `{"n":1}`,
			want: Changes{Added: map[string]json.RawMessage{}, Modified: map[string]Change{}, Removed: []string{}},
		},
		{
			name: "equal values",
			from: `[1,2]`, to: `[1,2]`,
			want: Changes{Added: map[string]json.RawMessage{}, Modified: map[string]Change{}, Removed: []string{}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Compute(json.RawMessage(tc.from), json.RawMessage(tc.to))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Fatalf("Compute = %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func TestAbsentSides(t *testing.T) {
	c, _ := Compute(nil, json.RawMessage(`{"a":1}`))
	if string(c.Added[""]) != `{"a":1}` {
		t.Fatalf("create: %+v", c)
	}
	c, _ = Compute(json.RawMessage(`{"a":1}`), nil)
	if len(c.Removed) != 1 || c.Removed[0] != "" {
		t.Fatalf("delete: %+v", c)
	}
}

// jsonValue draws random JSON documents of small depth.
func jsonValue(depth int) *rapid.Generator[any] {
	return rapid.Custom(func(t *rapid.T) any {
		kind := rapid.IntRange(0, 5).Draw(t, "kind")
		if depth <= 0 && kind >= 4 {
			kind = 2
		}
		switch kind {
		case 0:
			return nil
		case 1:
			return rapid.Bool().Draw(t, "b")
		case 2:
			return float64(rapid.IntRange(-3, 3).Draw(t, "n"))
		case 3:
			return rapid.SampledFrom([]string{"", "x", "y", "a/b", "m~n"}).Draw(t, "s")
		case 4:
			return rapid.SliceOfN(jsonValue(depth-1), 0, 4).Draw(t, "arr")
		default:
			// No "" member name: evanphx/json-patch, the independent oracle,
			// cannot address it (path "//b"), though RFC 6901 allows it.
			keys := rapid.SliceOfNDistinct(rapid.SampledFrom([]string{"a", "b", "c", "a/b", "m~n"}), 0, 4, rapid.ID[string]).Draw(t, "keys")
			m := map[string]any{}
			for _, k := range keys {
				m[k] = jsonValue(depth-1).Draw(t, "v")
			}
			return m
		}
	})
}

// Property: the RFC 6902 patch turns from into to (checked by an independent
// patch implementation), and the changes form is empty exactly when the
// values are equal.
func TestPatchRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, _ := json.Marshal(jsonValue(3).Draw(t, "from"))
		b, _ := json.Marshal(jsonValue(3).Draw(t, "to"))
		p, err := Patch(a, b)
		if err != nil {
			t.Fatal(err)
		}
		dp, err := jsonpatch.DecodePatch(p)
		if err != nil {
			t.Fatalf("patch %s does not decode: %v", p, err)
		}
		got, err := ApplyPatch(a, dp, jsonpatch.NewApplyOptions())
		if err != nil {
			t.Fatalf("patch %s does not apply to %s: %v", p, a, err)
		}
		if !jsonEqual(t, got, b) {
			t.Fatalf("patch %s applied to %s gives %s, want %s", p, a, got, b)
		}
		c, err := Compute(a, b)
		if err != nil {
			t.Fatal(err)
		}
		var tgt any
		_ = json.Unmarshal(b, &tgt)
		for path, v := range c.Added {
			got, ok := lookup(tgt, path)
			if !ok {
				t.Fatalf("added path %q of Compute(%s, %s) is not in the target", path, a, b)
			}
			gb, _ := json.Marshal(got)
			if !jsonEqual(t, gb, v) {
				t.Fatalf("added %q = %s, target has %s", path, v, gb)
			}
		}
		for path, ch := range c.Modified {
			got, ok := lookup(tgt, path)
			if !ok {
				t.Fatalf("modified path %q is not in the target", path)
			}
			gb, _ := json.Marshal(got)
			if !jsonEqual(t, gb, ch.New) {
				t.Fatalf("modified %q new = %s, target has %s", path, ch.New, gb)
			}
		}
		var src any
		_ = json.Unmarshal(a, &src)
		for _, path := range c.Removed {
			if _, ok := lookup(src, path); !ok {
				t.Fatalf("removed path %q of Compute(%s, %s) is not in the source", path, a, b)
			}
		}
		for path, ch := range c.Modified {
			old, ok := lookup(src, path)
			ob, _ := json.Marshal(old)
			if !ok || !jsonEqual(t, ob, ch.Old) {
				t.Fatalf("modified %q old = %s, source has %s (found %v)", path, ch.Old, ob, ok)
			}
		}
		if got := applyChanges(t, a, c); !jsonEqual(t, got, b) {
			t.Fatalf("the changes %+v applied to %s give %s, want %s", c, a, got, b)
		}
		if c.Empty() != jsonEqual(t, a, b) {
			t.Fatalf("Compute(%s, %s) empty=%v", a, b, c.Empty())
		}
	})
}

func jsonEqual(t *rapid.T, a, b []byte) bool {
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

func TestApplyPatchErrorsQuoteCallerPaths(t *testing.T) {
	for _, doc := range []string{`{"a":1}`, `"scalar"`} {
		p, err := jsonpatch.DecodePatch([]byte(`[{"op":"test","path":"","value":0},{"op":"remove","path":"/nope"}]`))
		if err != nil {
			t.Fatal(err)
		}
		_, err = ApplyPatch(json.RawMessage(doc), p, jsonpatch.NewApplyOptions())
		if err == nil {
			t.Fatalf("patch applied to %s", doc)
		}
		if !errors.Is(err, jsonpatch.ErrTestFailed) {
			t.Fatalf("errors.Is(ErrTestFailed) lost through the wrapper: %v", err)
		}
		if strings.Contains(err.Error(), "/v") {
			t.Fatalf("error quotes the internal wrapper path: %v", err)
		}
	}
	p, _ := jsonpatch.DecodePatch([]byte(`[{"op":"remove","path":"/nope"}]`))
	_, err := ApplyPatch(json.RawMessage(`{"a":1}`), p, jsonpatch.NewApplyOptions())
	if err == nil || !strings.Contains(err.Error(), "/nope") {
		t.Fatalf("error %v does not name /nope", err)
	}
}

// applyChanges rebuilds the target from the source and the changes form:
// modifications in place, additions (array additions only at the tail, in
// index order), removals from the end. It proves the form complete and its
// paths exact.
func applyChanges(t *rapid.T, from json.RawMessage, c *Changes) []byte {
	var doc any
	if err := json.Unmarshal(from, &doc); err != nil {
		t.Fatal(err)
	}
	type op struct {
		kind string // "set", "remove"
		path string
		val  json.RawMessage
	}
	var ops []op
	for p, ch := range c.Modified {
		ops = append(ops, op{"set", p, ch.New})
	}
	added := make([]string, 0, len(c.Added))
	for p := range c.Added {
		added = append(added, p)
	}
	sortPaths(added)
	for _, p := range added {
		ops = append(ops, op{"set", p, c.Added[p]})
	}
	removed := append([]string(nil), c.Removed...)
	sortPaths(removed)
	for i := len(removed) - 1; i >= 0; i-- {
		ops = append(ops, op{"remove", removed[i], nil})
	}
	for _, o := range ops {
		var v any
		if o.val != nil {
			_ = json.Unmarshal(o.val, &v)
		}
		doc = setPath(t, doc, o.path, v, o.kind == "remove")
	}
	out, _ := json.Marshal(doc)
	return out
}

// sortPaths orders pointers with numeric tokens by number, so array
// indexes come in order.
func sortPaths(ps []string) {
	key := func(p string) []string { return strings.Split(p, "/") }
	less := func(a, b string) bool {
		x, y := key(a), key(b)
		for i := 0; i < len(x) && i < len(y); i++ {
			if x[i] == y[i] {
				continue
			}
			nx, e1 := strconv.Atoi(x[i])
			ny, e2 := strconv.Atoi(y[i])
			if e1 == nil && e2 == nil {
				return nx < ny
			}
			return x[i] < y[i]
		}
		return len(x) < len(y)
	}
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && less(ps[j], ps[j-1]); j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}

func setPath(t *rapid.T, doc any, ptr string, v any, remove bool) any {
	if ptr == "" {
		if remove {
			return nil
		}
		return v
	}
	toks := strings.Split(ptr[1:], "/")
	var rec func(cur any, toks []string) any
	rec = func(cur any, toks []string) any {
		tok := strings.ReplaceAll(strings.ReplaceAll(toks[0], "~1", "/"), "~0", "~")
		last := len(toks) == 1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				if remove {
					delete(c, tok)
				} else {
					c[tok] = v
				}
				return c
			}
			c[tok] = rec(c[tok], toks[1:])
			return c
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil {
				t.Fatalf("bad index %q in %q", tok, ptr)
			}
			if last {
				switch {
				case remove:
					if i != len(c)-1 {
						t.Fatalf("removal %q is not at the tail of %v", ptr, c)
					}
					return c[:i]
				case i == len(c):
					return append(c, v)
				case i < len(c):
					c[i] = v
					return c
				}
				t.Fatalf("index %q past the end of %v", ptr, c)
			}
			c[i] = rec(c[i], toks[1:])
			return c
		}
		t.Fatalf("path %q does not resolve", ptr)
		return nil
	}
	return rec(doc, toks)
}
