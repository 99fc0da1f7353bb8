// Package ot owns operational transformation of sequences in the op form of
// API.md: an op is a list of components — retain n, insert content, delete n,
// replace n with content — applied left to right over the document, the rest
// retained. A document is a JSON string (text, addressed in Unicode code
// points) or a JSON array (addressed in elements, each an arbitrary JSON
// value). The package applies ops (Apply), transforms concurrent ops against
// each other (Transform, TransformActors, TransformAgainst), composes
// sequential ones (Compose) and inverts them (Invert). It is pure: no I/O.
//
// # Normal form
//
// Ops keep the wire form they were decoded or built with: a replace stays a
// replace when marshalled again. Transform, Compose and Invert work on, and
// return, the normal form of Normalize: a replace n with c becomes insert c
// then delete n (the same edit), adjacent components of the same type merge,
// an insert never follows a delete directly (insert-then-delete at one
// position is the same edit) and a trailing retain is dropped. Apply accepts
// either form and gives the same document for both.
//
// # Concurrent inserts
//
// When two concurrent ops insert at the same position, one insert must go
// first, and both sides of a transformation must agree on which. Transform
// takes that choice as aFirst; TransformActors and TransformAgainst derive it
// from actor ids: the op whose actor id sorts first (byte-wise, Go string
// order) goes first; on equal ids the other op (for TransformAgainst, the
// committed one) goes first.
//
// # Lengths beyond the op
//
// An op need not cover the whole document: what it does not reach is
// retained. Transform and Compose therefore treat an op's end as an unbounded
// retain, and never need the document. An op that reaches past the end of
// the document fails in Apply with ErrDoesNotFit. Transform cannot see that
// an op reaches past the end of the document it was made on, and its result
// may fit where the op did not (when the other op deleted the end, say); so
// check an op against its own base document before transforming it (see
// TransformAgainst).
package ot

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// MaxLength bounds a component's length. Documents are far smaller (values
// are limited to 1 MiB); the bound only keeps length arithmetic far from
// overflow on hostile input.
const MaxLength = math.MaxInt32

var (
	// ErrInvalidOp: an op is malformed in itself — unknown type, length
	// below 1, missing or empty content, text and array content mixed, or
	// JSON that is not an array of components (HTTP 400).
	ErrInvalidOp = errors.New("ot: invalid op")
	// ErrDoesNotFit: a well-formed op does not fit the document — it reaches
	// past the end, or carries text content for an array or array content
	// for text (HTTP 400).
	ErrDoesNotFit = errors.New("ot: op does not fit the document")
	// ErrDocument: the document is neither a JSON string nor a JSON array.
	ErrDocument = errors.New("ot: document is neither a JSON string nor a JSON array")
)

// Error locates a failure in an op. Err is one of the sentinels above.
type Error struct {
	Err   error
	Index int // the component at fault; -1 when no single one is
	Msg   string
}

func (e *Error) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("%v: %s", e.Err, e.Msg)
	}
	return fmt.Sprintf("%v: component %d: %s", e.Err, e.Index, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

func invalid(i int, format string, args ...any) *Error {
	return &Error{Err: ErrInvalidOp, Index: i, Msg: fmt.Sprintf(format, args...)}
}

func misfit(i int, format string, args ...any) *Error {
	return &Error{Err: ErrDoesNotFit, Index: i, Msg: fmt.Sprintf(format, args...)}
}

// Type is a component's type.
type Type uint8

// Component types, named on the wire "retain", "insert", "delete", "replace".
const (
	TypeRetain Type = iota + 1
	TypeInsert
	TypeDelete
	TypeReplace
)

var typeNames = [...]string{TypeRetain: "retain", TypeInsert: "insert", TypeDelete: "delete", TypeReplace: "replace"}

func (t Type) String() string {
	if t >= TypeRetain && t <= TypeReplace {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Content is what an insert or a replace puts into the document: text (a run
// of code points) or array elements. The zero Content is empty text. A
// Content is immutable: its accessors share memory and must not be modified.
type Content struct {
	text  string // UTF-8
	runes int    // code points in text
	items []json.RawMessage
	array bool
}

// Text is text content.
func Text(s string) Content { return Content{text: s, runes: utf8.RuneCountInString(s)} }

// Values is array content: each value one element. The slice is kept, not
// copied.
func Values(vs ...json.RawMessage) Content {
	return Content{items: vs[:len(vs):len(vs)], array: true}
}

// Len is the content's length: code points of text, or elements.
func (c Content) Len() int {
	if c.array {
		return len(c.items)
	}
	return c.runes
}

// IsArray reports whether the content is array elements rather than text.
func (c Content) IsArray() bool { return c.array }

// Text returns text content ("" for array content).
func (c Content) Text() string { return c.text }

// Values returns array content (nil for text).
func (c Content) Values() []json.RawMessage { return c.items }

// Component is one step of an op. Length is used by retain, delete and
// replace; Content by insert and replace.
type Component struct {
	Type    Type
	Length  int
	Content Content
}

// Retain keeps n elements.
func Retain(n int) Component { return Component{Type: TypeRetain, Length: n} }

// Delete removes n elements.
func Delete(n int) Component { return Component{Type: TypeDelete, Length: n} }

// Insert inserts c.
func Insert(c Content) Component { return Component{Type: TypeInsert, Content: c} }

// InsertText inserts text.
func InsertText(s string) Component { return Insert(Text(s)) }

// InsertValues inserts array elements.
func InsertValues(vs ...json.RawMessage) Component { return Insert(Values(vs...)) }

// Replace removes n elements and puts c in their place.
func Replace(n int, c Content) Component { return Component{Type: TypeReplace, Length: n, Content: c} }

// ReplaceText replaces n code points with text.
func ReplaceText(n int, s string) Component { return Replace(n, Text(s)) }

// ReplaceValues replaces n elements with others.
func ReplaceValues(n int, vs ...json.RawMessage) Component { return Replace(n, Values(vs...)) }

// Op is a list of components applied left to right; what it does not reach
// of the document is retained. The nil Op changes nothing. Ops are values:
// no function here modifies an Op it is given.
type Op []Component

// InputLen is the length of document the op reaches: the sum of its retain,
// delete and replace lengths. Apply fails on documents shorter than this.
// It saturates at math.MaxInt.
func (op Op) InputLen() int {
	n := 0
	for _, c := range op {
		if c.Type == TypeInsert || c.Length <= 0 {
			continue
		}
		if n > math.MaxInt-c.Length {
			return math.MaxInt
		}
		n += c.Length
	}
	return n
}

// Delta is how much op changes a document's length: elements inserted minus
// elements deleted.
func (op Op) Delta() int {
	n := 0
	for _, c := range op {
		if c.Type == TypeInsert || c.Type == TypeReplace {
			n += c.Content.Len()
		}
		if c.Type == TypeDelete || c.Type == TypeReplace {
			n -= max(c.Length, 0)
		}
	}
	return n
}

// Validate checks that op is well-formed in itself: known types, lengths
// between 1 and MaxLength where a length belongs and 0 elsewhere, non-empty
// content where content belongs (valid UTF-8 text, valid JSON elements) and
// none elsewhere, and all content of one kind (text or array). Errors wrap
// ErrInvalidOp. Whether op fits a document is Apply's to check.
func (op Op) Validate() error {
	kind := -1 // 0 text, 1 array, -1 not yet seen
	for i, c := range op {
		switch c.Type {
		case TypeRetain, TypeDelete, TypeReplace:
			if c.Length < 1 || c.Length > MaxLength {
				return invalid(i, "%s length %d is not between 1 and %d", c.Type, c.Length, MaxLength)
			}
		case TypeInsert:
			if c.Length != 0 {
				return invalid(i, "insert takes no length")
			}
		default:
			return invalid(i, "unknown type %d", uint8(c.Type))
		}
		if c.Type == TypeRetain || c.Type == TypeDelete {
			if c.Content.array || c.Content.text != "" {
				return invalid(i, "%s takes no content", c.Type)
			}
			continue
		}
		if err := validContent(i, c.Content); err != nil {
			return err
		}
		k := 0
		if c.Content.array {
			k = 1
		}
		if kind >= 0 && k != kind {
			return invalid(i, "op mixes text and array content")
		}
		kind = k
	}
	return nil
}

func validContent(i int, c Content) error {
	if c.Len() == 0 {
		return invalid(i, "content is empty")
	}
	if !c.array {
		if !utf8.ValidString(c.text) || utf8.RuneCountInString(c.text) != c.runes {
			return invalid(i, "content is not valid UTF-8 text")
		}
		return nil
	}
	for j, v := range c.items {
		if !json.Valid(v) {
			return invalid(i, "content element %d is not valid JSON", j)
		}
	}
	return nil
}

// Normalize returns op in normal form (see the package documentation):
// replaces become insert then delete, adjacent components of a type merge
// (inserts only when their content is of one kind), an insert is moved ahead
// of a delete it directly follows, and the trailing retain is dropped;
// components with no effect (lengths below 1, empty content, unknown types)
// are dropped. The result applies exactly as op does. It may be op itself
// when op is already normal.
func Normalize(op Op) Op {
	if isNormal(op) {
		return op
	}
	var b builder
	b.reset(make(Op, 0, len(op)))
	for _, c := range op {
		switch c.Type {
		case TypeRetain:
			b.retain(c.Length)
		case TypeInsert:
			b.insert(c.Content)
		case TypeDelete:
			b.delete(c.Length)
		case TypeReplace:
			b.insert(c.Content)
			b.delete(c.Length)
		}
	}
	return b.done()
}

// isNormal reports whether op is in normal form, without allocating.
func isNormal(op Op) bool {
	for i, c := range op {
		switch c.Type {
		case TypeRetain, TypeDelete:
			if c.Length <= 0 {
				return false
			}
		case TypeInsert:
			if c.Content.Len() == 0 {
				return false
			}
		default:
			return false
		}
		if i == 0 {
			continue
		}
		p := op[i-1]
		if p.Type == c.Type && (c.Type != TypeInsert || p.Content.array == c.Content.array) {
			return false
		}
		if p.Type == TypeDelete && c.Type == TypeInsert {
			return false
		}
	}
	return len(op) == 0 || op[len(op)-1].Type != TypeRetain
}
