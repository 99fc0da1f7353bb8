package diff

import (
	"encoding/json"
	"errors"
	"reflect"
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
