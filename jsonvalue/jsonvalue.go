// Package jsonvalue owns what agentstate accepts as a value and how it
// fingerprints one: the size and nesting limits (checked without recursion, so
// a 10,000-deep document costs a linear scan and never a stack), compaction,
// and the RFC 8785 canonical form whose SHA-256 is an entry's checksum.
// It is pure: no I/O.
package jsonvalue

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gowebpki/jcs"
)

// Defaults of API.md: 1 MiB per value, nesting depth 64.
const (
	DefaultMaxBytes = 1 << 20
	DefaultMaxDepth = 64
)

var (
	// ErrTooLarge: the value is bigger than the limit (HTTP 413).
	ErrTooLarge = errors.New("jsonvalue: value too large")
	// ErrInvalid: not JSON, or nested deeper than the limit (HTTP 400).
	ErrInvalid = errors.New("jsonvalue: invalid value")
)

// Limits bounds a value. Zero fields take the defaults.
type Limits struct {
	MaxBytes int
	MaxDepth int
}

func (l Limits) maxBytes() int {
	if l.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return l.MaxBytes
}

func (l Limits) maxDepth() int {
	if l.MaxDepth <= 0 {
		return DefaultMaxDepth
	}
	return l.MaxDepth
}

// LimitError says which limit a value broke.
type LimitError struct {
	Err    error // ErrTooLarge or ErrInvalid
	Reason string
	Limit  int
	Actual int
}

func (e *LimitError) Error() string { return e.Reason }
func (e *LimitError) Unwrap() error { return e.Err }

// Check validates raw against the limits and returns it compacted. Size is
// checked on the value as sent, before anything else, so an oversized value
// is rejected without being parsed.
func Check(raw []byte, l Limits) (json.RawMessage, error) {
	if n := len(raw); n > l.maxBytes() {
		return nil, &LimitError{Err: ErrTooLarge, Reason: fmt.Sprintf("value is %d bytes; the limit is %d", n, l.maxBytes()), Limit: l.maxBytes(), Actual: n}
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, &LimitError{Err: ErrInvalid, Reason: "value is missing or empty"}
	}
	if d := Depth(raw); d > l.maxDepth() {
		return nil, &LimitError{Err: ErrInvalid, Reason: fmt.Sprintf("value nests %d levels deep; the limit is %d", d, l.maxDepth()), Limit: l.maxDepth(), Actual: d}
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	// Compact runs the full JSON scanner, so it validates as it goes.
	if err := json.Compact(&buf, raw); err != nil {
		return nil, &LimitError{Err: ErrInvalid, Reason: "value is not valid JSON: " + err.Error()}
	}
	return json.RawMessage(buf.Bytes()), nil
}

// Depth returns the maximum nesting depth of arrays and objects in raw,
// scanning bytes and skipping string contents. It does not validate: on
// malformed input it returns the depth seen so far, which is only used to
// reject early; validity is checked separately.
func Depth(raw []byte) int {
	depth, maxDepth := 0, 0
	inString, escaped := false, false
	for _, c := range raw {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			if depth > maxDepth {
				maxDepth = depth
			}
		case ']', '}':
			depth--
		}
	}
	return maxDepth
}

// Canonical returns the RFC 8785 (JCS) canonical form of a valid JSON value.
func Canonical(v json.RawMessage) ([]byte, error) {
	out, err := jcs.Transform(v)
	if err != nil {
		// JSON that parses but has no RFC 8785 form: a lone UTF-16
		// surrogate escape ("\ud800") or a number beyond IEEE-754 doubles.
		return nil, &LimitError{Err: ErrInvalid, Reason: "value has no canonical JSON form (RFC 8785): it holds a lone surrogate escape such as \"\\ud800\" or a number outside the range of a double (" + err.Error() + ")"}
	}
	return out, nil
}

// Checksum is "sha256:<hex>" over the canonical form of v, the entry checksum
// of API.md.
func Checksum(v json.RawMessage) (string, error) {
	c, err := Canonical(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
