package ot

import (
	"bytes"
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"
)

// document is a decoded sequence: text kept as UTF-8 and walked by code
// point (so a 100 KB document is never widened to runes), or array elements
// as slices of the raw document (never decoded).
type document struct {
	array   bool
	text    string
	items   []json.RawMessage
	compact bool // array: no whitespace outside strings, items copy as they are
	size    int  // bytes of the raw document
}

func decodeDoc(raw json.RawMessage) (document, error) {
	trimmed := trimSpace(raw)
	if len(trimmed) == 0 {
		return document{}, &Error{Err: ErrDocument, Index: -1, Msg: "document is empty"}
	}
	switch trimmed[0] {
	case '"':
		s, err := unquote(raw)
		if err != nil {
			return document{}, &Error{Err: ErrDocument, Index: -1, Msg: err.Error()}
		}
		return document{text: s, size: len(trimmed)}, nil
	case '[':
		if !json.Valid(trimmed) {
			var v any
			err := json.Unmarshal(raw, &v)
			return document{}, &Error{Err: ErrDocument, Index: -1, Msg: "invalid JSON: " + err.Error()}
		}
		items, compact := splitArray(trimmed)
		return document{array: true, items: items, compact: compact, size: len(trimmed)}, nil
	}
	return document{}, &Error{Err: ErrDocument, Index: -1, Msg: "document is neither a string nor an array"}
}

// length is the document's length in code points or elements.
func (d document) length() int {
	if d.array {
		return len(d.items)
	}
	return utf8.RuneCountInString(d.text)
}

func (d document) kind() string {
	if d.array {
		return "an array"
	}
	return "a text"
}

// check validates op and checks that its content is of the document's kind.
func (d document) check(op Op) error {
	if err := op.Validate(); err != nil {
		return err
	}
	for i, c := range op {
		if (c.Type == TypeInsert || c.Type == TypeReplace) && c.Content.array != d.array {
			what := "text"
			if c.Content.array {
				what = "array"
			}
			return misfit(i, "%s content for %s document", what, d.kind())
		}
	}
	return nil
}

func (d document) pastEnd(i int) error {
	return misfit(i, "reaches past the end of the document (length %d)", d.length())
}

// Length is the length of doc, a JSON string (code points) or array
// (elements). It fails with ErrDocument for anything else.
func Length(doc json.RawMessage) (int, error) {
	d, err := decodeDoc(doc)
	if err != nil {
		return 0, err
	}
	return d.length(), nil
}

// Apply applies op to doc, a JSON string or array, and returns the result
// (compact JSON). It fails with ErrDocument if doc is neither, ErrInvalidOp
// if op is malformed, and ErrDoesNotFit if op reaches past the end of doc or
// carries content of the other kind. An op shorter than doc retains the
// rest.
func Apply(doc json.RawMessage, op Op) (json.RawMessage, error) {
	d, err := decodeDoc(doc)
	if err != nil {
		return nil, err
	}
	if err := d.check(op); err != nil {
		return nil, err
	}
	if d.array {
		return d.applyArray(op)
	}
	return d.applyText(op)
}

func (d document) applyText(op Op) (json.RawMessage, error) {
	s := d.text
	size := len(s) + 2
	for _, c := range op {
		size += len(c.Content.text)
	}
	out := make([]byte, 0, size+size/16)
	out = append(out, '"')
	i := 0
	for k, c := range op {
		if c.Type == TypeInsert || c.Type == TypeReplace {
			out = appendEscaped(out, c.Content.text)
		}
		if c.Type == TypeInsert {
			continue
		}
		j, ok := advance(s, i, c.Length)
		if !ok {
			return nil, d.pastEnd(k)
		}
		if c.Type == TypeRetain {
			out = appendEscaped(out, s[i:j])
		}
		i = j
	}
	out = appendEscaped(out, s[i:])
	return append(out, '"'), nil
}

func (d document) applyArray(op Op) (json.RawMessage, error) {
	size := d.size + 2
	for _, c := range op {
		for _, v := range c.Content.items {
			size += len(v) + 1
		}
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	buf.WriteByte('[')
	first := true
	put := func(vs []json.RawMessage, compact bool) error {
		for _, v := range vs {
			if !first {
				buf.WriteByte(',')
			}
			first = false
			if compact {
				buf.Write(v)
			} else if err := json.Compact(buf, v); err != nil {
				return err
			}
		}
		return nil
	}
	i := 0
	for k, c := range op {
		if c.Type == TypeInsert || c.Type == TypeReplace {
			if err := put(c.Content.items, false); err != nil {
				return nil, invalid(k, "content is not valid JSON")
			}
		}
		if c.Type == TypeInsert {
			continue
		}
		if c.Length > len(d.items)-i {
			return nil, d.pastEnd(k)
		}
		if c.Type == TypeRetain {
			_ = put(d.items[i:i+c.Length], d.compact) // valid: checked by decodeDoc
		}
		i += c.Length
	}
	_ = put(d.items[i:], d.compact)
	buf.WriteByte(']')
	return buf.Bytes(), nil
}

// splitArray returns the elements of t, a valid JSON array without
// surrounding whitespace, as slices of t, and whether t is compact.
func splitArray(t []byte) (items []json.RawMessage, compact bool) {
	compact = true
	i := 1 // after '['
	for {
		for isSpace(t[i]) {
			i++
			compact = false
		}
		if t[i] == ']' {
			return items, compact // only an empty array gets here first
		}
		start, depth := i, 0
		for {
			c := t[i]
			if c == '"' {
				i = skipString(t, i)
				continue
			}
			if depth == 0 && (c == ',' || c == ']') {
				break
			}
			switch c {
			case '[', '{':
				depth++
			case ']', '}':
				depth--
			case ' ', '\t', '\r', '\n':
				compact = false
			}
			i++
		}
		items = append(items, trimSpace(t[start:i:i]))
		if t[i] == ']' {
			return items, compact
		}
		i++ // ','
	}
}

// skipString returns the index after the JSON string starting at t[i].
func skipString(t []byte, i int) int {
	for i++; i < len(t); i++ {
		switch t[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// Invert returns the op that undoes op on doc:
//
//	Apply(Apply(doc, op), Invert(op, doc)) == doc
//
// It needs doc, the document op applies to, for the content op deletes. It
// fails as Apply does. The result is in normal form.
func Invert(op Op, doc json.RawMessage) (Op, error) {
	d, err := decodeDoc(doc)
	if err != nil {
		return nil, err
	}
	if err := d.check(op); err != nil {
		return nil, err
	}
	var b builder
	b.reset(make(Op, 0, len(op)+1))
	pos, i := 0, 0 // position in elements; byte offset in text
	for k, c := range op {
		if c.Type == TypeInsert || c.Type == TypeReplace {
			b.delete(c.Content.Len())
		}
		if c.Type == TypeInsert {
			continue
		}
		var deleted Content
		if d.array {
			if c.Length > len(d.items)-pos {
				return nil, d.pastEnd(k)
			}
			// Copied: the result must not share memory with doc.
			vs := make([]json.RawMessage, c.Length)
			for j, v := range d.items[pos : pos+c.Length] {
				vs[j] = append(json.RawMessage(nil), v...)
			}
			deleted = Values(vs...)
		} else {
			j, ok := advance(d.text, i, c.Length)
			if !ok {
				return nil, d.pastEnd(k)
			}
			deleted = Content{text: d.text[i:j], runes: c.Length}
			i = j
		}
		pos += c.Length
		if c.Type == TypeRetain {
			b.retain(c.Length)
		} else {
			b.insert(deleted)
		}
	}
	return b.done(), nil
}

// advance returns the byte offset n code points after byte offset i in s,
// and whether s has that many.
func advance(s string, i, n int) (int, bool) {
	// Eight ASCII bytes at a time while they last.
	for n >= 8 && i+8 <= len(s) && (s[i]|s[i+1]|s[i+2]|s[i+3]|s[i+4]|s[i+5]|s[i+6]|s[i+7]) < utf8.RuneSelf {
		i += 8
		n -= 8
	}
	for ; n > 0; n-- {
		if i >= len(s) {
			return i, false
		}
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		_, w := utf8.DecodeRuneInString(s[i:])
		i += w
	}
	return i, true
}

const hexDigits = "0123456789abcdef"

// appendEscaped appends s, valid UTF-8, to b as the inside of a JSON
// string, escaping only what JSON requires (", \ and control characters).
func appendEscaped(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	return append(b, s[start:]...)
}

// unquote decodes a JSON string as encoding/json does — invalid UTF-8 and
// lone surrogates become U+FFFD — in one pass that copies unescaped runs
// whole. Anything unusual (invalid UTF-8, malformed input) is left to
// encoding/json, for its exact behaviour and error.
func unquote(raw []byte) (string, error) {
	t := trimSpace(raw)
	if len(t) < 2 || t[0] != '"' || t[len(t)-1] != '"' {
		return unquoteSlow(raw)
	}
	in := t[1 : len(t)-1]
	out := make([]byte, 0, len(in))
	start := 0
	for i := 0; i < len(in); {
		c := in[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		if c != '\\' || i+1 >= len(in) {
			return unquoteSlow(raw)
		}
		out = append(out, in[start:i]...)
		switch e := in[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(in[i+2:])
			if !ok {
				return unquoteSlow(raw)
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if len(in) >= i+2 && in[i] == '\\' && in[i+1] == 'u' {
					r2, ok := hex4(in[i+2:])
					if !ok {
						return unquoteSlow(raw)
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						i += 6
					}
				}
				if utf16.IsSurrogate(r) {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
			start = i
			continue
		default:
			return unquoteSlow(raw)
		}
		i += 2
		start = i
	}
	out = append(out, in[start:]...)
	if !utf8.Valid(out) {
		return unquoteSlow(raw)
	}
	return string(out), nil
}

func unquoteSlow(raw []byte) (string, error) {
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// hex4 reads the four hex digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// trimSpace trims JSON whitespace.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}
