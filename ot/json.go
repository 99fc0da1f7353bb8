package ot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The wire form of API.md:
//
//	{"type": "retain", "length": n}
//	{"type": "insert", "content": "text" | [values]}
//	{"type": "delete", "length": n}
//	{"type": "replace", "length": n, "content": "text" | [values]}
//
// Decoding is strict: a component has exactly the members its type takes,
// lengths are integers between 1 and MaxLength, content is a non-empty
// string or a non-empty array, and one op does not mix text and array
// content. Every decoding failure wraps ErrInvalidOp.

// ParseOp decodes an op from its JSON wire form (an array of components)
// and validates it. Every error wraps ErrInvalidOp; it never panics.
func ParseOp(data []byte) (Op, error) {
	var op Op
	if err := op.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return op, nil
}

// UnmarshalJSON decodes and validates an op (see ParseOp). JSON null is the
// empty op.
func (op *Op) UnmarshalJSON(data []byte) error {
	if string(bytes.TrimSpace(data)) == "null" {
		*op = nil
		return nil
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		return invalid(-1, "ops must be a JSON array of components")
	}
	out := make(Op, len(raws))
	for i, r := range raws {
		if err := out[i].decode(r); err != nil {
			err.Index = i
			return err
		}
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*op = out
	return nil
}

// UnmarshalJSON decodes and validates one component. Errors wrap
// ErrInvalidOp.
func (c *Component) UnmarshalJSON(data []byte) error {
	if err := c.decode(data); err != nil {
		return err
	}
	return Op{*c}.Validate()
}

func (c *Component) decode(data []byte) *Error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return invalid(-1, "a component must be a JSON object")
	}
	var name string
	if err := json.Unmarshal(m["type"], &name); err != nil {
		return invalid(-1, `"type" must be one of "retain", "insert", "delete", "replace"`)
	}
	var t Type
	for i, n := range typeNames {
		if n != "" && n == name {
			t = Type(i)
		}
	}
	if t == 0 {
		return invalid(-1, "unknown type %q", name)
	}
	*c = Component{Type: t}
	for k := range m {
		switch {
		case k == "type":
		case k == "length" && t != TypeInsert:
		case k == "content" && (t == TypeInsert || t == TypeReplace):
		default:
			return invalid(-1, "%s takes no %q", t, k)
		}
	}
	if t != TypeInsert {
		raw, ok := m["length"]
		if !ok {
			return invalid(-1, "%s needs a length", t)
		}
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || n < 1 || n > MaxLength {
			return invalid(-1, "length must be an integer between 1 and %d", MaxLength)
		}
		c.Length = int(n)
	}
	if t == TypeInsert || t == TypeReplace {
		raw, ok := m["content"]
		if !ok {
			return invalid(-1, "%s needs content", t)
		}
		content, err := decodeContent(raw)
		if err != nil {
			return err
		}
		c.Content = content
	}
	return nil
}

func decodeContent(raw json.RawMessage) (Content, *Error) {
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	if len(trimmed) > 0 {
		switch trimmed[0] {
		case '"':
			var s string
			if err := json.Unmarshal(raw, &s); err == nil && s != "" {
				return Text(s), nil
			}
		case '[':
			var vs []json.RawMessage
			if err := json.Unmarshal(raw, &vs); err == nil && len(vs) > 0 {
				return Values(vs...), nil
			}
		}
	}
	return Content{}, invalid(-1, "content must be a non-empty string or a non-empty array")
}

// MarshalJSON encodes the op in its wire form; the empty op is [].
func (op Op) MarshalJSON() ([]byte, error) {
	b := []byte{'['}
	for i, c := range op {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = c.appendJSON(b); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

// MarshalJSON encodes the component in its wire form.
func (c Component) MarshalJSON() ([]byte, error) { return c.appendJSON(nil) }

func (c Component) appendJSON(b []byte) ([]byte, error) {
	if c.Type < TypeRetain || c.Type > TypeReplace {
		return nil, fmt.Errorf("ot: cannot marshal a component of unknown type %d", uint8(c.Type))
	}
	b = append(b, `{"type":"`...)
	b = append(b, typeNames[c.Type]...)
	b = append(b, '"')
	if c.Type != TypeInsert {
		b = append(b, `,"length":`...)
		b = strconv.AppendInt(b, int64(c.Length), 10)
	}
	if c.Type == TypeInsert || c.Type == TypeReplace {
		b = append(b, `,"content":`...)
		var err error
		if b, err = c.Content.appendJSON(b); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func (c Content) appendJSON(b []byte) ([]byte, error) {
	if !c.array {
		text := c.text
		if !utf8.ValidString(text) { // not from ParseOp, not validated
			text = strings.ToValidUTF8(text, "\uFFFD")
		}
		b = append(b, '"')
		b = appendEscaped(b, text)
		return append(b, '"'), nil
	}
	buf := bytes.NewBuffer(append(b, '['))
	for i, v := range c.items {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := json.Compact(buf, v); err != nil {
			return nil, fmt.Errorf("ot: content element %d: %w", i, err)
		}
	}
	buf.WriteByte(']')
	return buf.Bytes(), nil
}

// String is the op's wire form, for messages and debugging.
func (op Op) String() string {
	b, err := op.MarshalJSON()
	if err != nil {
		return fmt.Sprintf("%#v", []Component(op))
	}
	return string(b)
}
