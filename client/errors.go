package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Error codes of the API (API.md, Conventions). CodeInternal and CodeUnknown
// are not sent by the server: the client derives them from the HTTP status
// when an answer carries no error envelope (a proxy's page, a 500 crash).
const (
	CodeInvalidArgument      = "invalid_argument"
	CodeUnauthenticated      = "unauthenticated"
	CodePermissionDenied     = "permission_denied"
	CodeNotFound             = "not_found"
	CodeVersionConflict      = "version_conflict"
	CodeAlreadyExists        = "already_exists"
	CodeWrongExpectedVersion = "wrong_expected_version"
	CodeCompacted            = "compacted"
	CodeTooLarge             = "too_large"
	CodeValidationFailed     = "validation_failed"
	CodeRuleViolation        = "rule_violation"
	CodeLocked               = "locked"
	CodeRateLimited          = "rate_limited"
	CodeUnavailable          = "unavailable"
	CodeInternal             = "internal"
	CodeUnknown              = "unknown"
)

// Sentinels, one per API error code, for errors.Is:
//
//	if errors.Is(err, client.ErrVersionConflict) { … }
//
// An *Error matches the sentinel with the same Code, whatever its status and
// message. Do not modify the sentinels.
var (
	ErrInvalidArgument      = sentinel(CodeInvalidArgument)
	ErrUnauthenticated      = sentinel(CodeUnauthenticated)
	ErrPermissionDenied     = sentinel(CodePermissionDenied)
	ErrNotFound             = sentinel(CodeNotFound)
	ErrVersionConflict      = sentinel(CodeVersionConflict)
	ErrAlreadyExists        = sentinel(CodeAlreadyExists)
	ErrWrongExpectedVersion = sentinel(CodeWrongExpectedVersion)
	ErrCompacted            = sentinel(CodeCompacted)
	ErrTooLarge             = sentinel(CodeTooLarge)
	ErrValidationFailed     = sentinel(CodeValidationFailed)
	ErrRuleViolation        = sentinel(CodeRuleViolation)
	ErrLocked               = sentinel(CodeLocked)
	ErrRateLimited          = sentinel(CodeRateLimited)
	ErrUnavailable          = sentinel(CodeUnavailable)
)

// ErrTransport is wrapped by every failure to exchange a request and an
// answer with the server (connection refused, TLS, timeout, cancelled
// context, an unreadable or undecodable answer). Such errors are never an
// *Error: the server may or may not have applied a write whose answer was
// lost. The underlying cause is wrapped too, so errors.Is(err,
// context.DeadlineExceeded) works.
var ErrTransport = errors.New("client: transport failure")

func sentinel(code string) *Error {
	return &Error{Code: code, Message: strings.ReplaceAll(code, "_", " ")}
}

// Error is an error answered by the server: a non-2xx status with the
// contract's envelope {"error": {"code", "message", "details"}}. Answers
// without the envelope still give an *Error, with a Code derived from the
// status (see codeForStatus) and the start of the body as Message.
type Error struct {
	Status  int             // HTTP status; 0 for the sentinels and errors sent in an event stream
	Code    string          // one of the Code* constants
	Message string          // the server's human sentence
	Details json.RawMessage // the envelope's details object, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("agentstate: ")
	b.WriteString(e.Code)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	return b.String()
}

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, ErrNotFound) holds for every not_found answer.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code != "" && t.Code == e.Code
}

// ConflictDetails is the details object of a 409 answer, and the "conflict"
// object of a first_writer_wins write. Fields the server did not send are
// zero.
type ConflictDetails struct {
	StateKey      string          `json:"state_key"`
	LocalVersion  int64           `json:"local_version"`  // the expected_version sent
	RemoteVersion int64           `json:"remote_version"` // the key's current version
	LocalValue    json.RawMessage `json:"local_value"`    // the value sent
	RemoteValue   json.RawMessage `json:"remote_value"`   // the current value
	ConflictType  string          `json:"conflict_type"`  // one of the Conflict* constants
	// Conflicts lists the JSON Pointers changed on both sides, for a merge
	// strategy write whose changes overlap.
	Conflicts []string `json:"conflicts,omitempty"`
	// Op is the index of the failing op of a batch write; nil otherwise.
	Op *int `json:"op,omitempty"`
}

// Conflict types of ConflictDetails.ConflictType.
const (
	ConflictConcurrentModification = "concurrent_modification"
	ConflictDeletedModified        = "deleted_modified"
	ConflictTypeMismatch           = "type_mismatch"
)

// Conflict decodes the details of a 409 answer (version_conflict,
// already_exists, wrong_expected_version). It reports false for other
// errors and for details that are not a JSON object.
func (e *Error) Conflict() (*ConflictDetails, bool) {
	if e.Status != http.StatusConflict || !isObject(e.Details) {
		return nil, false
	}
	// Decode leniently: a field of an unexpected shape is left zero rather
	// than losing the rest.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(e.Details, &raw); err != nil {
		return nil, false
	}
	var d ConflictDetails
	for name, dst := range map[string]any{
		"state_key":      &d.StateKey,
		"local_version":  &d.LocalVersion,
		"remote_version": &d.RemoteVersion,
		"local_value":    &d.LocalValue,
		"remote_value":   &d.RemoteValue,
		"conflict_type":  &d.ConflictType,
		"conflicts":      &d.Conflicts,
		"op":             &d.Op,
	} {
		if v, ok := raw[name]; ok {
			_ = json.Unmarshal(v, dst)
		}
	}
	return &d, true
}

// ValidationError is one item of the details.errors list of a
// validation_failed answer.
type ValidationError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// ValidationErrors decodes details.errors of a validation_failed answer; nil
// for other errors.
func (e *Error) ValidationErrors() []ValidationError {
	if e.Code != CodeValidationFailed || !isObject(e.Details) {
		return nil
	}
	var d struct {
		Errors []ValidationError `json:"errors"`
	}
	if json.Unmarshal(e.Details, &d) != nil {
		return nil
	}
	return d.Errors
}

// OldestRevision decodes details.oldest_revision of a compacted error: the
// oldest store revision still kept, from which history (or a watch) can
// start. ok is false for other errors.
func (e *Error) OldestRevision() (rev int64, ok bool) {
	if e.Code != CodeCompacted {
		return 0, false
	}
	return e.detailInt("oldest_revision")
}

// ResumeFrom decodes details.resume_from of an unavailable error sent to a
// watch that fell behind: the revision to resume from. Watchers resume by
// themselves; ok is false for other errors.
func (e *Error) ResumeFrom() (rev int64, ok bool) {
	if e.Code != CodeUnavailable {
		return 0, false
	}
	return e.detailInt("resume_from")
}

// CurrentVersion decodes details.current_version of a
// wrong_expected_version error: the stream's version, NoStream (-1) when
// the stream does not exist. ok is false for other errors.
func (e *Error) CurrentVersion() (version int64, ok bool) {
	if e.Code != CodeWrongExpectedVersion {
		return 0, false
	}
	return e.detailInt("current_version")
}

// detailInt decodes an integer member of the details object.
func (e *Error) detailInt(name string) (int64, bool) {
	if !isObject(e.Details) {
		return 0, false
	}
	var raw map[string]json.RawMessage
	if json.Unmarshal(e.Details, &raw) != nil {
		return 0, false
	}
	var n int64
	if v, ok := raw[name]; !ok || json.Unmarshal(v, &n) != nil {
		return 0, false
	}
	return n, true
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// newError builds the *Error of a non-2xx answer from its status and body.
func newError(status int, body []byte) *Error {
	var env struct {
		Error *struct {
			Code    string          `json:"code"`
			Message string          `json:"message"`
			Details json.RawMessage `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && env.Error != nil && (env.Error.Code != "" || env.Error.Message != "") {
		e := &Error{Status: status, Code: env.Error.Code, Message: env.Error.Message}
		if e.Code == "" {
			e.Code = codeForStatus(status)
		}
		if len(env.Error.Details) > 0 && !bytes.Equal(env.Error.Details, []byte("null")) {
			e.Details = env.Error.Details
		}
		return e
	}
	// Not the contract's envelope: a proxy, a load balancer, a crash.
	return &Error{Status: status, Code: codeForStatus(status), Message: bodySnippet(status, body)}
}

// codeForStatus derives an error code from an HTTP status, for answers that
// carry none. 409 becomes version_conflict, the most common of its three
// codes; 502 and 504 (a proxy that cannot reach the server) become
// unavailable, like 503.
func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return CodeInvalidArgument
	case http.StatusUnauthorized:
		return CodeUnauthenticated
	case http.StatusForbidden:
		return CodePermissionDenied
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusConflict:
		return CodeVersionConflict
	case http.StatusGone:
		return CodeCompacted
	case http.StatusRequestEntityTooLarge:
		return CodeTooLarge
	case http.StatusUnprocessableEntity:
		return CodeValidationFailed
	case http.StatusLocked:
		return CodeLocked
	case http.StatusTooManyRequests:
		return CodeRateLimited
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return CodeUnavailable
	case http.StatusInternalServerError:
		return CodeInternal
	}
	return CodeUnknown
}

// bodySnippet makes a one-line message of a body that is not an error
// envelope: its first 200 characters, or the status text when empty.
func bodySnippet(status int, body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	if s == "" {
		s = http.StatusText(status)
	}
	if s == "" {
		s = fmt.Sprintf("HTTP status %d", status)
	}
	return s
}

func isObject(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}
