// Package diff owns differences between JSON values, both ways: computing
// them in the two forms of API.md — an RFC 6902 JSON Patch (computed by
// github.com/wI2L/jsondiff) and the added/modified/removed map keyed by JSON
// Pointer (RFC 6901) derived from that patch, so both forms always agree —
// and applying an RFC 6902 patch to any document (ApplyPatch). It is pure:
// no I/O.
//
// A nil value stands for "absent" (a key not yet created, or a tombstone):
// from absent to v is Added[""] = v; from v to absent is Removed [""].
package diff

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/wI2L/jsondiff"
)

// Changes is the added/modified/removed form. Paths are JSON Pointers; ""
// is the whole value.
type Changes struct {
	Added    map[string]json.RawMessage `json:"added"`
	Modified map[string]Change          `json:"modified"`
	Removed  []string                   `json:"removed"`
}

// Change is one modified path.
type Change struct {
	Old json.RawMessage `json:"old"`
	New json.RawMessage `json:"new"`
}

// Empty reports whether there is no change.
func (c *Changes) Empty() bool {
	return len(c.Added) == 0 && len(c.Modified) == 0 && len(c.Removed) == 0
}

func newChanges() *Changes {
	return &Changes{Added: map[string]json.RawMessage{}, Modified: map[string]Change{}, Removed: []string{}}
}

// op is one RFC 6902 operation as we emit it.
type op struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value,omitempty"`
}

// Patch returns the RFC 6902 patch that turns from into to. Absent sides
// (nil) become whole-document operations.
func Patch(from, to json.RawMessage) (json.RawMessage, error) {
	switch {
	case from == nil && to == nil:
		return json.RawMessage("[]"), nil
	case from == nil:
		return json.Marshal([]op{{Op: "add", Path: "", Value: to}})
	case to == nil:
		return json.Marshal([]op{{Op: "remove", Path: ""}})
	}
	p, err := jsondiff.CompareJSON(from, to)
	if err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	if len(p) == 0 {
		return json.RawMessage("[]"), nil
	}
	return json.Marshal(p)
}

// Compute returns the added/modified/removed form of the change from from to to.
func Compute(from, to json.RawMessage) (*Changes, error) {
	c := newChanges()
	switch {
	case from == nil && to == nil:
		return c, nil
	case from == nil:
		c.Added[""] = to
		return c, nil
	case to == nil:
		c.Removed = append(c.Removed, "")
		return c, nil
	}
	p, err := jsondiff.CompareJSON(from, to)
	if err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	var src any
	if len(p) > 0 {
		if err := json.Unmarshal(from, &src); err != nil {
			return nil, fmt.Errorf("diff: %w", err)
		}
	}
	paths, err := resolveAppends(from, p)
	if err != nil {
		return nil, err
	}
	for i, o := range p {
		path := paths[i]
		switch o.Type {
		case jsondiff.OperationAdd:
			v, err := json.Marshal(o.Value)
			if err != nil {
				return nil, err
			}
			c.Added[path] = v
		case jsondiff.OperationRemove:
			c.Removed = append(c.Removed, path)
		case jsondiff.OperationReplace:
			nv, err := json.Marshal(o.Value)
			if err != nil {
				return nil, err
			}
			old, ok := lookup(src, path)
			if !ok {
				// jsondiff only replaces paths that exist in the source;
				// treat anything else as an addition rather than inventing
				// an old value.
				c.Added[path] = nv
				continue
			}
			ov, err := json.Marshal(old)
			if err != nil {
				return nil, err
			}
			c.Modified[path] = Change{Old: ov, New: nv}
		default:
			// Move, copy and test are not produced with default options.
			return nil, fmt.Errorf("diff: unexpected operation %q", o.Type)
		}
	}
	sort.Strings(c.Removed)
	return c, nil
}

// lookup resolves a JSON Pointer in a decoded document.
func lookup(doc any, ptr string) (any, bool) {
	if ptr == "" {
		return doc, true
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil, false
	}
	cur := doc
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[tok]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// resolveAppends returns each operation's path with a trailing "-" (RFC 6902's
// "past the end of the array") replaced by the index the element lands at,
// so that every path in the changes form is a JSON Pointer into the target.
// The index depends on the operations before it, so when there is any "-",
// the patch is applied one operation at a time to learn the array's length.
func resolveAppends(from json.RawMessage, p jsondiff.Patch) ([]string, error) {
	paths := make([]string, len(p))
	hasAppend := false
	for i, o := range p {
		paths[i] = o.Path
		if strings.HasSuffix(o.Path, "/-") {
			hasAppend = true
		}
	}
	if !hasAppend {
		return paths, nil
	}
	doc := from
	for i, o := range p {
		var cur any
		if err := json.Unmarshal(doc, &cur); err != nil {
			return nil, fmt.Errorf("diff: %w", err)
		}
		if strings.HasSuffix(o.Path, "/-") {
			parent := strings.TrimSuffix(o.Path, "/-")
			if arr, ok := lookupArray(cur, parent); ok {
				paths[i] = parent + "/" + strconv.Itoa(len(arr))
			}
		}
		one, err := json.Marshal(jsondiff.Patch{o})
		if err != nil {
			return nil, fmt.Errorf("diff: %w", err)
		}
		dp, err := jsonpatch.DecodePatch(one)
		if err != nil {
			return nil, fmt.Errorf("diff: %w", err)
		}
		if doc, err = ApplyPatch(doc, dp, jsonpatch.NewApplyOptions()); err != nil {
			return nil, fmt.Errorf("diff: replaying op %d: %w", i, err)
		}
	}
	return paths, nil
}

func lookupArray(doc any, ptr string) ([]any, bool) {
	v, ok := lookup(doc, ptr)
	if !ok {
		return nil, false
	}
	arr, ok := v.([]any)
	return arr, ok
}
