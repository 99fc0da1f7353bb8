// Package merge owns the three-way JSON merge behind the `merge` write
// strategy of API.md: given the value the writer last read (base, the
// expected_version value), the value stored now (ours) and the value the
// writer sends (theirs), it combines the changes each side made to base and
// reports the places where both sides changed the same thing differently. It
// is pure: no I/O.
//
// Neither side wins: a conflict is reported, never resolved. The caller
// answers 409 with the conflict paths; Result.Value then holds the merge
// with every conflicting path left at ours (the stored value), which is only
// useful for showing what did merge cleanly.
//
// Semantics, applied at every path starting from the whole value (""):
//
//   - One side unchanged (equal to base): the other side's value, whatever it
//     is — an edit, a type change, a deletion.
//   - Both sides changed to equal values: that value (ours' spelling).
//   - Base, ours and theirs all objects: member by member, recursively, over
//     the union of their member names, with "absent" as a value of its own;
//     a member absent from the result is left out. So a member deleted on
//     one side and modified on the other is a conflict at that member, and
//     deleted on both is deleted.
//   - Base, ours and theirs all arrays, and base a prefix of both (both sides
//     only appended): base, then ours' appended elements, then theirs'.
//     Elements are not merged one by one: any other pair of array changes is
//     a conflict at the array's path. Appending the same elements on both
//     sides counts as "changed to equal values" and keeps one copy.
//   - Anything else changed on both sides differently (scalars, type changes,
//     a member or whole value created on both sides with different values —
//     even two objects, as there is no common ancestor to merge them
//     against): a conflict at that path.
//
// Equality is JSON value equality: numbers by exact decimal value (1, 1.0,
// 1e0 and 10e-1 are equal, and so are 0 and -0; no float64 rounding, so
// 9007199254740993 differs from 9007199254740992), strings by their decoded
// text, objects regardless of member order. Number text is preserved: every
// number in the result is copied from one of the inputs, never reformatted
// through float64 (strings are re-escaped, minimally).
//
// A nil json.RawMessage is "absent": a nil base is a key created
// concurrently on both sides, a nil ours or theirs a deleted key, and a nil
// Result.Value a merge whose outcome is "deleted". Output is compact JSON
// with members in byte order of their names and no HTML escaping, so equal
// merges give equal bytes. Conflict paths are RFC 6901 JSON Pointers (~ and
// / in member names written ~0 and ~1), listed in that same document order.
package merge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sort"
	"strconv"
	"strings"
)

// ErrInvalid: one of the three inputs is not a single JSON value. It is the
// only error Merge returns.
var ErrInvalid = errors.New("merge: invalid JSON")

// Result is the outcome of Merge.
type Result struct {
	// Value is the merged document when Conflicts is empty; with conflicts,
	// the merge with each conflicting path left at ours. nil: absent.
	Value json.RawMessage
	// Conflicts lists the paths both sides changed differently, in
	// document order. Empty (nil) on a clean merge.
	Conflicts []Conflict
}

// Conflict is one path both sides changed differently, with what each of
// the three values holds there (nil: absent there).
type Conflict struct {
	Path   string // RFC 6901 JSON Pointer; "" is the whole value
	Base   json.RawMessage
	Ours   json.RawMessage
	Theirs json.RawMessage
}

// Merge merges the changes ours and theirs each made to base. ours is the
// value stored now, theirs the value a writer sends after reading base; the
// roles only matter for which value Result.Value keeps at a conflicting path
// (ours) and for the order of concurrently appended array elements (ours'
// first). See the package doc for the rules.
func Merge(base, ours, theirs json.RawMessage) (Result, error) {
	b, err := decode("base", base)
	if err != nil {
		return Result{}, err
	}
	o, err := decode("ours", ours)
	if err != nil {
		return Result{}, err
	}
	t, err := decode("theirs", theirs)
	if err != nil {
		return Result{}, err
	}
	m := &merger{}
	v := m.merge(b, o, t)
	var res Result
	if res.Value, err = encode(v); err != nil {
		return Result{}, err
	}
	res.Conflicts = m.conflicts
	if m.err != nil {
		return Result{}, m.err
	}
	return res, nil
}

// absentT marks a value that is not there: a missing member, or a nil
// input. It is distinct from JSON null (a Go nil).
type absentT struct{}

var absent any = absentT{}

// decode parses one input into the generic tree (map[string]any, []any,
// json.Number, string, bool, nil), keeping number text.
func decode(side string, raw json.RawMessage) (any, error) {
	if raw == nil {
		return absent, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, side, err)
	}
	// A second value or trailing garbage makes the input not one JSON value.
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: %s: data after the value", ErrInvalid, side)
	}
	return v, nil
}

// encode writes a tree as compact JSON. encoding/json sorts map keys and
// writes json.Number text as is; HTML escaping would only change the
// spelling of strings we copy through.
func encode(v any) (json.RawMessage, error) {
	if v == absent {
		return nil, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Unreachable for trees built by decode; reported rather than hidden.
		return nil, fmt.Errorf("merge: encoding: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// merger walks the three trees once, collecting conflicts. The path is kept
// as raw member names / indexes and only escaped when a conflict is
// recorded, so a clean merge builds no path strings.
type merger struct {
	path      []string
	conflicts []Conflict
	err       error
}

func (m *merger) merge(b, o, t any) any {
	bm, bok := b.(map[string]any)
	om, ook := o.(map[string]any)
	tm, tok := t.(map[string]any)
	if bok && ook && tok {
		// Recursing directly gives the same answer as the whole-value
		// checks below (an unchanged side yields the other member by
		// member) and visits each member once instead of once per level.
		return m.mergeObjects(bm, om, tm)
	}
	switch {
	case equal(o, t):
		return o
	case equal(b, o):
		return t
	case equal(b, t):
		return o
	}
	if ba, ok := b.([]any); ok {
		oa, ook := o.([]any)
		ta, tok := t.([]any)
		if ook && tok && hasPrefix(oa, ba) && hasPrefix(ta, ba) {
			out := make([]any, 0, len(oa)+len(ta)-len(ba))
			out = append(out, oa...)
			return append(out, ta[len(ba):]...)
		}
	}
	m.conflict(b, o, t)
	return o
}

func (m *merger) mergeObjects(b, o, t map[string]any) map[string]any {
	keys := make([]string, 0, len(o)+len(t))
	for k := range b {
		keys = append(keys, k)
	}
	for k := range o {
		if _, ok := b[k]; !ok {
			keys = append(keys, k)
		}
	}
	for k := range t {
		_, inB := b[k]
		_, inO := o[k]
		if !inB && !inO {
			keys = append(keys, k)
		}
	}
	// Sorted so conflicts come out in document order, deterministically.
	sort.Strings(keys)
	out := make(map[string]any, len(keys))
	for _, k := range keys {
		m.path = append(m.path, k)
		v := m.merge(member(b, k), member(o, k), member(t, k))
		m.path = m.path[:len(m.path)-1]
		if v != absent {
			out[k] = v
		}
	}
	return out
}

func member(obj map[string]any, k string) any {
	if v, ok := obj[k]; ok {
		return v
	}
	return absent
}

func (m *merger) conflict(b, o, t any) {
	c := Conflict{Path: pointer(m.path)}
	var errs [3]error
	c.Base, errs[0] = encode(b)
	c.Ours, errs[1] = encode(o)
	c.Theirs, errs[2] = encode(t)
	if err := errors.Join(errs[:]...); err != nil && m.err == nil {
		m.err = err
	}
	m.conflicts = append(m.conflicts, c)
}

// escaper escapes one RFC 6901 reference token. strings.Replacer replaces
// in one pass, so the "~" it writes for "/" is not escaped again.
var escaper = strings.NewReplacer("~", "~0", "/", "~1")

// pointer writes an RFC 6901 JSON Pointer from unescaped member names.
func pointer(tokens []string) string {
	var sb strings.Builder
	for _, tok := range tokens {
		sb.WriteByte('/')
		escaper.WriteString(&sb, tok)
	}
	return sb.String()
}

func hasPrefix(a, prefix []any) bool {
	if len(a) < len(prefix) {
		return false
	}
	for i := range prefix {
		if !equal(a[i], prefix[i]) {
			return false
		}
	}
	return true
}

// equal is JSON value equality over decoded trees, absent included.
func equal(a, b any) bool {
	switch x := a.(type) {
	case absentT:
		_, ok := b.(absentT)
		return ok
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case json.Number:
		y, ok := b.(json.Number)
		return ok && numbersEqual(string(x), string(y))
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !equal(xv, yv) {
				return false
			}
		}
		return true
	}
	return false
}

// numbersEqual compares two valid JSON number texts by decimal value.
func numbersEqual(a, b string) bool {
	if a == b {
		return true
	}
	// Integers without fraction or exponent have one spelling per value,
	// except zero's sign; the common case needs no normalizing.
	if !strings.ContainsAny(a, ".eE") && !strings.ContainsAny(b, ".eE") {
		return strings.TrimPrefix(a, "-") == "0" && strings.TrimPrefix(b, "-") == "0"
	}
	return normalize(a).equal(normalize(b))
}

// decimal is a number as ±digits × 10^exp with no leading or trailing zero
// in digits; zero is the empty digits with exp 0 and no sign. Each value
// has exactly one decimal.
type decimal struct {
	neg    bool
	digits string
	exp    int64
	bigExp *big.Int // set instead of exp when the exponent does not fit
}

func (d decimal) equal(e decimal) bool {
	if d.neg != e.neg || d.digits != e.digits {
		return false
	}
	if d.bigExp == nil && e.bigExp == nil {
		return d.exp == e.exp
	}
	return d.exponent().Cmp(e.exponent()) == 0
}

func (d decimal) exponent() *big.Int {
	if d.bigExp != nil {
		return d.bigExp
	}
	return big.NewInt(d.exp)
}

// normalize reads a number text that encoding/json already validated:
// -?int(.frac)?([eE][+-]?digits)?.
func normalize(s string) decimal {
	var d decimal
	if strings.HasPrefix(s, "-") {
		d.neg = true
		s = s[1:]
	}
	mant, expText := s, ""
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, expText = s[:i], s[i+1:]
	}
	intPart, frac := mant, ""
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		intPart, frac = mant[:i], mant[i+1:]
	}
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		return decimal{}
	}
	trimmed := strings.TrimRight(digits, "0")
	d.digits = trimmed
	// value = digits × 10^(exp - len(frac)); the stripped trailing zeros
	// move into the exponent.
	shift := int64(len(digits)-len(trimmed)) - int64(len(frac))
	expText = strings.TrimPrefix(expText, "+")
	if expText == "" {
		d.exp = shift
		return d
	}
	// Inputs are bounded by memory, so |shift| < 2^62 and an exponent that
	// fits in 62 bits can take it without overflow.
	if e, err := strconv.ParseInt(expText, 10, 64); err == nil && e > -(1<<62) && e < 1<<62 {
		d.exp = e + shift
		return d
	}
	be, _ := new(big.Int).SetString(expText, 10)
	d.bigExp = be.Add(be, big.NewInt(shift))
	return d
}
