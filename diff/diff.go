// Package diff owns differences between JSON values, both ways: computing
// them in the two forms of API.md — an RFC 6902 JSON Patch (computed by
// github.com/wI2L/jsondiff) and the added/modified/removed map keyed by JSON
// Pointer (RFC 6901), from a structural walk whose every path resolves —
// and applying an RFC 6902 patch to any document (ApplyPatch). It is pure:
// no I/O.
//
// A nil value stands for "absent" (a key not yet created, or a tombstone):
// from absent to v is Added[""] = v; from v to absent is Removed [""].
package diff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

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

// Compute returns the added/modified/removed form of the change from from
// to to, by a structural walk: objects member by member, arrays index by
// index (elements past the shorter array are added or removed), anything
// else compared whole. Every path is a JSON Pointer that resolves — in to
// for added and modified, in from for removed — which the RFC 6902 form
// cannot promise (its paths address intermediate documents, e.g. "/a/-" or
// successive removals at one index), so this form is not derived from it.
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
	var a, b any
	if err := unmarshal(from, &a); err != nil {
		return nil, fmt.Errorf("diff: from: %w", err)
	}
	if err := unmarshal(to, &b); err != nil {
		return nil, fmt.Errorf("diff: to: %w", err)
	}
	if err := walk(c, "", a, b); err != nil {
		return nil, err
	}
	sort.Strings(c.Removed)
	return c, nil
}

func unmarshal(data []byte, v *any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber() // numbers keep their spelling and precision
	return d.Decode(v)
}

func walk(c *Changes, path string, a, b any) error {
	switch av := a.(type) {
	case map[string]any:
		if bv, ok := b.(map[string]any); ok {
			for k, x := range av {
				p := path + "/" + escape(k)
				if y, ok := bv[k]; ok {
					if err := walk(c, p, x, y); err != nil {
						return err
					}
				} else {
					c.Removed = append(c.Removed, p)
				}
			}
			for k, y := range bv {
				if _, ok := av[k]; !ok {
					raw, err := marshal(y)
					if err != nil {
						return err
					}
					c.Added[path+"/"+escape(k)] = raw
				}
			}
			return nil
		}
	case []any:
		if bv, ok := b.([]any); ok {
			n := min(len(av), len(bv))
			for i := 0; i < n; i++ {
				if err := walk(c, path+"/"+strconv.Itoa(i), av[i], bv[i]); err != nil {
					return err
				}
			}
			for i := n; i < len(bv); i++ {
				raw, err := marshal(bv[i])
				if err != nil {
					return err
				}
				c.Added[path+"/"+strconv.Itoa(i)] = raw
			}
			for i := n; i < len(av); i++ {
				c.Removed = append(c.Removed, path+"/"+strconv.Itoa(i))
			}
			return nil
		}
	}
	if equal(a, b) {
		return nil
	}
	ov, err := marshal(a)
	if err != nil {
		return err
	}
	nv, err := marshal(b)
	if err != nil {
		return err
	}
	c.Modified[path] = Change{Old: ov, New: nv}
	return nil
}

// equal compares decoded scalars (and, for a type change, anything): numbers
// by value, not spelling.
func equal(a, b any) bool {
	if x, ok := a.(json.Number); ok {
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		if x == y {
			return true
		}
		fx, err1 := x.Float64()
		fy, err2 := y.Float64()
		return err1 == nil && err2 == nil && fx == fy
	}
	switch a.(type) {
	case map[string]any, []any:
		return false // containers of different kinds, or a container and a scalar
	}
	return a == b
}

func marshal(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	return json.RawMessage(bytes.TrimRight(buf.Bytes(), "\n")), nil
}

// escape encodes a member name as a JSON Pointer token (RFC 6901).
func escape(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
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
