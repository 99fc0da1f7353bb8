package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/agentstate/agentstate/auth"
	"github.com/agentstate/agentstate/feed"
	"github.com/agentstate/agentstate/jsonvalue"
	"github.com/agentstate/agentstate/keys"
	"github.com/agentstate/agentstate/state"
	"github.com/agentstate/agentstate/store"
)

// Error codes of the wire contract (API.md, Conventions), plus the two the
// edge adds: method_not_allowed (405) and internal (500).
const (
	CodeInvalidArgument      = "invalid_argument"
	CodeUnauthenticated      = "unauthenticated"
	CodePermissionDenied     = "permission_denied"
	CodeNotFound             = "not_found"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeVersionConflict      = "version_conflict"
	CodeAlreadyExists        = "already_exists"
	CodeWrongExpectedVersion = "wrong_expected_version"
	CodeCompacted            = "compacted"
	CodeTooLarge             = "too_large"
	CodeUnavailable          = "unavailable"
	CodeInternal             = "internal"
)

// Errors of the edge itself. They go through the same table as the engine's.
var (
	// errNoRoute: no endpoint at this path (404).
	errNoRoute = errors.New("server: no such endpoint")
	// errBadPath: a /v1 path with an empty, "." or ".." segment (400).
	errBadPath = errors.New(`server: path has an empty, "." or ".." segment`)
)

// methodNotAllowedError: the path exists, the method does not (405).
type methodNotAllowedError struct {
	method string
	allow  string
}

func (e *methodNotAllowedError) Error() string {
	return fmt.Sprintf("method %s is not allowed here; allowed: %s", e.method, e.allow)
}

// errContext is what the table needs from the request to fill details: the
// key addressed, the value sent and, for batches, each op's value. A nil
// *errContext is valid (requests that address no key).
type errContext struct {
	key      string          // the key of the request ("" for none)
	local    json.RawMessage // the value sent (put), for conflict details
	expected *int64          // expected_version sent, if any
	notFound string          // message for a 404, if more precise than the default
	batch    bool            // a batch request: details name the op
	opValues []json.RawMessage
	opKeys   []string
}

func (ec *errContext) localValue(op int) json.RawMessage {
	if ec == nil {
		return nil
	}
	if ec.batch {
		if op >= 0 && op < len(ec.opValues) {
			return ec.opValues[op]
		}
		return nil
	}
	return ec.local
}

func (ec *errContext) keyOf(op int) string {
	if ec == nil {
		return ""
	}
	if ec.batch && op >= 0 && op < len(ec.opKeys) {
		return ec.opKeys[op]
	}
	return ec.key
}

// apiError is one answer of the table: status, contract code, message and
// details, plus response headers some rows need.
type apiError struct {
	Status  int
	Code    string
	Message string
	Details map[string]any
	Header  map[string]string
}

// errorBody is the error envelope of API.md.
type errorBody struct {
	Error errorJSON `json:"error"`
}

type errorJSON struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

// toAPIError is THE table: every error any handler returns is mapped here,
// and only here, to an HTTP status and a contract code (like etcd's
// api/v3rpc/rpctypes). Order matters where typed errors unwrap to the same
// sentinel (a failed patch test unwraps to ErrVersionConflict).
func toAPIError(err error, ec *errContext) *apiError {
	var (
		mna *methodNotAllowedError
		ia  *state.InvalidArgumentError
		se  *keys.SyntaxError
		le  *jsonvalue.LimitError
		tl  *state.TooLargeError
		mb  *http.MaxBytesError
		pt  *state.PatchTestFailedError
		ce  *store.ConflictError
		wev *store.WrongExpectedVersionError
		lag *feed.LaggedError
	)
	// Op indexes are the batch's business: a single write's store error
	// may carry op 0 (its only op), which means nothing to the caller.
	op := -1
	if ec != nil && ec.batch {
		op = opIndex(err)
	}
	switch {
	case errors.As(err, &mna):
		return &apiError{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed, Message: mna.Error(),
			Details: map[string]any{"allow": mna.allow}}
	case errors.Is(err, errNoRoute):
		return &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no such endpoint; see the API reference (/v1/...)"}
	case errors.Is(err, errBadPath):
		return &apiError{Status: http.StatusBadRequest, Code: CodeInvalidArgument,
			Message: `path has an empty, "." or ".." segment: keys and ids may not contain //, /./ or /../ (also when percent-encoded)`,
			Details: map[string]any{"field": "path"}}

	// 400 invalid_argument
	case errors.As(err, &ia):
		d := map[string]any{}
		if ia.Field != "" {
			d["field"] = ia.Field
		}
		if ia.Op >= 0 {
			d["op"] = ia.Op
		}
		return &apiError{Status: http.StatusBadRequest, Code: CodeInvalidArgument, Message: ia.Message, Details: d}
	case errors.As(err, &se):
		return &apiError{Status: http.StatusBadRequest, Code: CodeInvalidArgument, Message: se.Error(),
			Details: withOp(map[string]any{"field": se.Field}, op)}
	case errors.As(err, &le) && errors.Is(err, jsonvalue.ErrTooLarge):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: le.Reason,
			Details: withOp(map[string]any{"limit": le.Limit, "actual": le.Actual}, op)}
	case errors.As(err, &le):
		return &apiError{Status: http.StatusBadRequest, Code: CodeInvalidArgument, Message: le.Reason,
			Details: withOp(map[string]any{"field": "value"}, op)}
	case errors.Is(err, state.ErrInvalidArgument):
		return &apiError{Status: http.StatusBadRequest, Code: CodeInvalidArgument, Message: err.Error(), Details: withOp(nil, op)}
	case errors.Is(err, store.ErrInvalid):
		return &apiError{Status: http.StatusBadRequest, Code: CodeInvalidArgument, Message: err.Error(), Details: withOp(nil, op)}

	// 413 too_large
	case errors.As(err, &tl):
		d := map[string]any{}
		if tl.Limit > 0 {
			d["limit"] = tl.Limit
		}
		if tl.Actual > 0 {
			d["actual"] = tl.Actual
		}
		if ec != nil && ec.batch && tl.Op >= 0 {
			d["op"] = tl.Op
		}
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: tl.Message, Details: d}
	case errors.As(err, &mb):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge,
			Message: fmt.Sprintf("request body is larger than %d bytes", mb.Limit), Details: map[string]any{"limit": mb.Limit}}

	// 401, 403
	case errors.Is(err, auth.ErrUnauthenticated):
		return &apiError{Status: http.StatusUnauthorized, Code: CodeUnauthenticated,
			Message: "authentication required: send Authorization: Bearer <token>",
			Header:  map[string]string{"WWW-Authenticate": `Bearer realm="agentstate"`}}
	case errors.Is(err, auth.ErrPermissionDenied):
		return &apiError{Status: http.StatusForbidden, Code: CodePermissionDenied, Message: err.Error()}

	// 409
	case errors.As(err, &pt):
		return &apiError{Status: http.StatusConflict, Code: CodeVersionConflict, Message: pt.Message,
			Details: patchTestDetails(pt, ec, op)}
	case errors.As(err, &ce):
		code := CodeVersionConflict
		msg := fmt.Sprintf("version conflict on key %q: expected version %d, current version %d", ce.Key.Key, ce.Expected, ce.Current)
		if errors.Is(err, store.ErrAlreadyExists) {
			code = CodeAlreadyExists
			msg = fmt.Sprintf("key %q already exists (version %d); expected_version 0 creates only", ce.Key.Key, ce.Current)
		}
		if ec != nil && ec.batch {
			msg = fmt.Sprintf("op %d: %s", ce.Op, msg)
		}
		return &apiError{Status: http.StatusConflict, Code: code, Message: msg, Details: conflictDetails(ce, ec)}
	case errors.As(err, &wev):
		return &apiError{Status: http.StatusConflict, Code: CodeWrongExpectedVersion, Message: wev.Error(),
			Details: map[string]any{"stream_id": wev.StreamID, "expected_version": wev.Expected, "current_version": wev.CurrentVersion}}
	case errors.Is(err, store.ErrAlreadyExists):
		return &apiError{Status: http.StatusConflict, Code: CodeAlreadyExists, Message: "key already exists", Details: withOp(nil, op)}
	case errors.Is(err, store.ErrVersionConflict):
		return &apiError{Status: http.StatusConflict, Code: CodeVersionConflict, Message: "version conflict", Details: withOp(nil, op)}

	// 404, 410
	case errors.Is(err, store.ErrNotFound):
		msg := "key not found"
		if k := ec.keyOf(op); k != "" {
			msg = fmt.Sprintf("key %q not found", k)
		}
		if ec != nil && ec.notFound != "" && !ec.batch {
			msg = ec.notFound
		}
		if op >= 0 {
			msg = fmt.Sprintf("op %d: %s", op, msg)
		}
		return &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: msg, Details: withOp(nil, op)}
	case errors.Is(err, store.ErrCompacted):
		d := map[string]any{}
		msg := "that revision is older than the oldest kept history"
		var cpe *store.CompactedError
		if errors.As(err, &cpe) {
			d["oldest_revision"] = cpe.OldestRevision
			msg = fmt.Sprintf("events before revision %d were compacted; resume from revision %d or later", cpe.OldestRevision, max(cpe.OldestRevision-1, 0))
		}
		return &apiError{Status: http.StatusGone, Code: CodeCompacted, Message: msg, Details: d}

	// 503
	case errors.As(err, &lag):
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
			Message: fmt.Sprintf("this subscriber fell too far behind; resume from revision %d", lag.ResumeFrom),
			Details: map[string]any{"resume_from": lag.ResumeFrom}}
	case errors.Is(err, feed.ErrHubClosed):
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
			Message: "the server is stopping; reconnect and resume", Header: map[string]string{"Retry-After": "1"}}
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrClosed), errors.Is(err, state.ErrClosed):
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
			Message: "the store is unavailable; retry later", Header: map[string]string{"Retry-After": "1"}}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
			Message: "the request was canceled or timed out before it completed", Header: map[string]string{"Retry-After": "1"}}
	}
	return &apiError{Status: http.StatusInternalServerError, Code: CodeInternal,
		Message: "internal error; the server log has the details"}
}

// opIndex finds the batch op index an error names, or -1.
func opIndex(err error) int {
	var oe *store.OpError
	if errors.As(err, &oe) {
		return oe.Op
	}
	var ia *state.InvalidArgumentError
	if errors.As(err, &ia) {
		return ia.Op
	}
	return -1
}

func withOp(d map[string]any, op int) map[string]any {
	if d == nil {
		d = map[string]any{}
	}
	if op >= 0 {
		d["op"] = op
	}
	return d
}

// conflictDetails are the details of a 409 version_conflict or
// already_exists, and the "conflict" object of a first_writer_wins answer.
func conflictDetails(ce *store.ConflictError, ec *errContext) map[string]any {
	typ := ce.Type
	if typ == "" {
		typ = store.ConflictConcurrentModification
	}
	var remote json.RawMessage
	if ce.CurrentEntry != nil && !ce.CurrentEntry.Deleted {
		remote = ce.CurrentEntry.Value
	}
	op := -1
	if ec != nil && ec.batch {
		op = ce.Op
	}
	d := map[string]any{
		"state_key":      ce.Key.Key,
		"local_version":  ce.Expected,
		"remote_version": ce.Current,
		"local_value":    rawOrNull(ec.localValue(op)),
		"remote_value":   rawOrNull(remote),
		"conflict_type":  typ,
	}
	return withOp(d, op)
}

// patchTestDetails: a failed JSON Patch "test" op is a version conflict in
// API.md's terms; local_version is the expected_version sent (null if none).
func patchTestDetails(pt *state.PatchTestFailedError, ec *errContext, op int) map[string]any {
	d := map[string]any{
		"state_key":      ec.keyOf(op),
		"local_version":  nil,
		"remote_version": nil,
		"local_value":    nil,
		"remote_value":   nil,
		"conflict_type":  store.ConflictConcurrentModification,
	}
	if ec != nil && ec.expected != nil && !ec.batch {
		d["local_version"] = *ec.expected
	}
	if c := pt.Current; c != nil {
		d["state_key"] = c.Key.Key
		d["remote_version"] = c.Version
		d["remote_value"] = rawOrNull(c.Value)
	}
	return withOp(d, op)
}

func rawOrNull(v json.RawMessage) json.RawMessage {
	if len(v) == 0 {
		return json.RawMessage("null")
	}
	return v
}

// fail answers err through the table. Errors that map to 500 are logged
// with the request id, which the answer carries so a user can report it.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error, ec *errContext) {
	ae := toAPIError(err, ec)
	if ae.Status == http.StatusInternalServerError {
		id := requestID(r.Context())
		s.log.Error("server: internal error", "method", r.Method, "path", r.URL.Path, "request_id", id, "err", err)
		ae.Details = map[string]any{"request_id": id}
	}
	s.writeAPIError(w, r, ae)
}

func (s *Server) writeAPIError(w http.ResponseWriter, r *http.Request, ae *apiError) {
	w.Header().Del("ETag") // set before the failure, if at all: not this answer's
	for k, v := range ae.Header {
		w.Header().Set(k, v)
	}
	d := ae.Details
	if d == nil {
		d = map[string]any{}
	}
	s.writeJSON(w, r, ae.Status, errorBody{Error: errorJSON{Code: ae.Code, Message: ae.Message, Details: d}})
}

// etag formats a version as the entity tag of API.md: "<version>".
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }
