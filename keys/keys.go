// Package keys owns the syntax of agentstate's identifiers — agent ids, tiers
// and keys — and glob matching over keys. It is pure: no I/O, so it is fuzzed
// and property-tested directly.
//
// Syntax (API.md, Conventions):
//   - agent_id: 1–128 chars of [A-Za-z0-9_.:-]
//   - tier: local, shared, session, persistent
//   - key: 1–512 bytes, segments of [A-Za-z0-9_.:@-] joined by "/"; no empty,
//     "." or ".." segment.
package keys

import (
	"errors"
	"fmt"
)

// Tiers.
const (
	TierLocal      = "local"
	TierShared     = "shared"
	TierSession    = "session"
	TierPersistent = "persistent"
)

// Tiers lists every tier in a stable order.
var Tiers = []string{TierLocal, TierShared, TierSession, TierPersistent}

// Limits of the syntax.
const (
	MaxAgentIDLen = 128
	MaxKeyLen     = 512
)

// ErrSyntax is wrapped by every error of this package.
var ErrSyntax = errors.New("keys: invalid syntax")

// SyntaxError says which identifier is wrong and why.
type SyntaxError struct {
	Field  string // "agent_id", "tier", "key", "pattern", "prefix"
	Value  string
	Reason string
}

func (e *SyntaxError) Error() string {
	v := e.Value
	if len(v) > 80 {
		v = v[:80] + "…"
	}
	return fmt.Sprintf("invalid %s %q: %s", e.Field, v, e.Reason)
}

func (e *SyntaxError) Unwrap() error { return ErrSyntax }

// idChar reports whether c may appear in an agent id: [A-Za-z0-9_.:-].
func idChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == ':' || c == '-'
}

// keyChar reports whether c may appear in a key segment: [A-Za-z0-9_.:@-].
func keyChar(c byte) bool { return idChar(c) || c == '@' }

// ValidateAgentID checks an agent id (or stream id; same syntax).
func ValidateAgentID(id string) error { return validateID("agent_id", id) }

func validateID(field, id string) error {
	if id == "" {
		return &SyntaxError{Field: field, Value: id, Reason: "must not be empty"}
	}
	if len(id) > MaxAgentIDLen {
		return &SyntaxError{Field: field, Value: id, Reason: fmt.Sprintf("longer than %d characters", MaxAgentIDLen)}
	}
	for i := 0; i < len(id); i++ {
		if !idChar(id[i]) {
			return &SyntaxError{Field: field, Value: id, Reason: fmt.Sprintf("character %q at %d is not one of [A-Za-z0-9_.:-]", id[i], i)}
		}
	}
	return nil
}

// ValidateTier checks a tier name.
func ValidateTier(t string) error {
	switch t {
	case TierLocal, TierShared, TierSession, TierPersistent:
		return nil
	}
	return &SyntaxError{Field: "tier", Value: t, Reason: "must be one of local, shared, session, persistent"}
}

// ValidateKey checks a key.
func ValidateKey(k string) error {
	if k == "" {
		return &SyntaxError{Field: "key", Value: k, Reason: "must not be empty"}
	}
	if len(k) > MaxKeyLen {
		return &SyntaxError{Field: "key", Value: k, Reason: fmt.Sprintf("longer than %d bytes", MaxKeyLen)}
	}
	start := 0
	for i := 0; i <= len(k); i++ {
		if i < len(k) && k[i] != '/' {
			if !keyChar(k[i]) {
				return &SyntaxError{Field: "key", Value: k, Reason: fmt.Sprintf("character %q at %d is not one of [A-Za-z0-9_.:@-] or /", k[i], i)}
			}
			continue
		}
		if err := checkSegment(k, k[start:i]); err != nil {
			return err
		}
		start = i + 1
	}
	return nil
}

func checkSegment(k, seg string) error {
	switch seg {
	case "":
		return &SyntaxError{Field: "key", Value: k, Reason: "has an empty segment (leading, trailing or double /)"}
	case ".", "..":
		return &SyntaxError{Field: "key", Value: k, Reason: fmt.Sprintf("has a %q segment", seg)}
	}
	return nil
}

// ValidatePrefix checks a list prefix: a key prefix may end in "/" or in a
// partial segment, but every complete segment must be valid.
func ValidatePrefix(p string) error {
	if p == "" {
		return nil
	}
	if len(p) > MaxKeyLen {
		return &SyntaxError{Field: "prefix", Value: p, Reason: fmt.Sprintf("longer than %d bytes", MaxKeyLen)}
	}
	body := p
	if body[len(body)-1] == '/' {
		body = body[:len(body)-1]
	}
	if body == "" {
		return &SyntaxError{Field: "prefix", Value: p, Reason: "must not start with /"}
	}
	for i := 0; i < len(body); i++ {
		if body[i] != '/' && !keyChar(body[i]) {
			return &SyntaxError{Field: "prefix", Value: p, Reason: fmt.Sprintf("character %q at %d is not allowed in a key", body[i], i)}
		}
	}
	start := 0
	for i := 0; i <= len(body); i++ {
		if i < len(body) && body[i] != '/' {
			continue
		}
		seg := body[start:i]
		// The last segment may be partial ("." is a valid start of ".x"), so
		// only complete segments are held to the full rules.
		if i < len(body) || p[len(p)-1] == '/' {
			if err := checkSegment(p, seg); err != nil {
				return &SyntaxError{Field: "prefix", Value: p, Reason: err.(*SyntaxError).Reason}
			}
		} else if seg == "" {
			return &SyntaxError{Field: "prefix", Value: p, Reason: "has an empty segment"}
		}
		start = i + 1
	}
	return nil
}
