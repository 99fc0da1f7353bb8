package crdt

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// MaxActorLen bounds an actor id, in bytes. Actor ids are repeated in every
// version vector and dot of a state, so a long one is costly everywhere.
const MaxActorLen = 256

// validActor says what is wrong with an actor id, or "".
func validActor(a string) string {
	switch {
	case a == "":
		return "must not be empty"
	case len(a) > MaxActorLen:
		return fmt.Sprintf("longer than %d bytes", MaxActorLen)
	case !utf8.ValidString(a):
		return "not valid UTF-8"
	}
	return ""
}

// canonical returns the RFC 8785 canonical text of a JSON value. The output
// is checked with json.Valid as well, so that whatever jcs accepts is also
// something encoding/json will marshal back: a stored element can never make
// State fail.
func canonical(raw []byte) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return "", errors.New("empty")
	}
	out, err := jcs.Transform(raw)
	if err != nil {
		return "", fmt.Errorf("not valid JSON: %v", err)
	}
	if !json.Valid(out) {
		return "", errors.New("not valid JSON")
	}
	return string(out), nil
}

// JSON kinds in the order compareJSON sorts them.
const (
	rankNull = iota
	rankFalse
	rankTrue
	rankNumber
	rankString
	rankArray
	rankObject
)

func rank(v string) int {
	if v == "" {
		return rankNull
	}
	switch v[0] {
	case 'n':
		return rankNull
	case 'f':
		return rankFalse
	case 't':
		return rankTrue
	case '"':
		return rankString
	case '[':
		return rankArray
	case '{':
		return rankObject
	}
	return rankNumber
}

// compareJSON is the order of elements in sorted arrays (set values, set
// states, mv_register values): by kind (null, false, true, numbers, strings,
// arrays, objects), numbers by numeric value, everything else by canonical
// text. It is a total order on canonical texts: two canonical numbers with
// the same value have the same text, since RFC 8785 prints each double one
// way. Numbers are compared numerically so that [1, 2, 10] reads as people
// expect, not as the byte order [1, 10, 2].
func compareJSON(a, b string) int {
	ra, rb := rank(a), rank(b)
	if ra != rb {
		return cmp.Compare(ra, rb)
	}
	if ra == rankNumber {
		fa, ea := strconv.ParseFloat(a, 64)
		fb, eb := strconv.ParseFloat(b, 64)
		if ea == nil && eb == nil {
			if c := cmp.Compare(fa, fb); c != 0 {
				return c
			}
		}
	}
	return strings.Compare(a, b)
}

// sortedArray renders canonical elements as a JSON array in compareJSON
// order, dropping duplicates.
func sortedArray(elems []string) json.RawMessage {
	slices.SortFunc(elems, compareJSON)
	elems = slices.Compact(elems)
	n := 2 + len(elems)
	for _, e := range elems {
		n += len(e)
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, e := range elems {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	return append(b, ']')
}

// isObject reports whether data is, after whitespace, a JSON object (an
// opening brace; the rest is left to the decoder).
func isObject(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

// strictUnmarshal decodes one JSON value into v, refusing unknown fields and
// trailing data: a state of another type (say a pn_counter's given to a
// g_counter) fails loudly instead of decoding as empty.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// jsonErr shortens encoding/json's messages for StateError reasons.
func jsonErr(err error) string {
	return strings.TrimPrefix(err.Error(), "json: ")
}

// mustMarshal marshals a state's wire form. Every value in one is a
// validated canonical text or a plain Go value, so an error is a bug here,
// not bad input.
func mustMarshal(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("crdt: marshal state: %v", err))
	}
	return b
}

// appendJSONString appends s as a JSON string. s is valid UTF-8 (actor ids
// and field names are checked), so json.Marshal cannot fail or rewrite it.
func appendJSONString(b []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		// What json.Marshal writes as is: printable ASCII but for the
		// quote, the backslash and the HTML characters it escapes.
		c := s[i]
		plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	if plain {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, _ := json.Marshal(s)
	return append(b, q...)
}
