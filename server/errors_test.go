package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/agentstate/agentstate/auth"
	"github.com/agentstate/agentstate/feed"
	"github.com/agentstate/agentstate/jsonvalue"
	"github.com/agentstate/agentstate/keys"
	"github.com/agentstate/agentstate/state"
	"github.com/agentstate/agentstate/store"
)

// TestErrorTable checks each row of the one table.
func TestErrorTable(t *testing.T) {
	k := store.Key{AgentID: "a", Tier: "local", Key: "k"}
	cur := &store.Entry{Key: k, Value: json.RawMessage(`{"x":1}`), Version: 4}
	for _, c := range []struct {
		name   string
		err    error
		status int
		code   string
	}{
		// Comment per row: which error, which status.
		{"invalid argument", &state.InvalidArgumentError{Field: "key", Message: "bad", Op: -1}, 400, CodeInvalidArgument},
		{"wrapped invalid argument", fmt.Errorf("ctx: %w", &state.InvalidArgumentError{Message: "bad", Op: 2}), 400, CodeInvalidArgument},
		{"key syntax", &keys.SyntaxError{Field: "key", Value: "a//b", Reason: "empty segment"}, 400, CodeInvalidArgument},
		{"value limit: invalid", &jsonvalue.LimitError{Err: jsonvalue.ErrInvalid, Reason: "deep"}, 400, CodeInvalidArgument},
		{"value limit: too large", &jsonvalue.LimitError{Err: jsonvalue.ErrTooLarge, Reason: "big", Limit: 1, Actual: 2}, 413, CodeTooLarge},
		{"store invalid", fmt.Errorf("x: %w", store.ErrInvalid), 400, CodeInvalidArgument},
		{"too large", &state.TooLargeError{Message: "big", Limit: 10, Actual: 20}, 413, CodeTooLarge},
		{"body too large", &http.MaxBytesError{Limit: 10}, 413, CodeTooLarge},
		{"unauthenticated", fmt.Errorf("token: %w", auth.ErrUnauthenticated), 401, CodeUnauthenticated},
		{"permission denied", fmt.Errorf("no: %w", auth.ErrPermissionDenied), 403, CodePermissionDenied},
		{"patch test failed", &state.PatchTestFailedError{Message: "test failed", Current: cur}, 409, CodeVersionConflict},
		{"conflict", &store.ConflictError{Key: k, Expected: 2, Current: 4, CurrentEntry: cur}, 409, CodeVersionConflict},
		{"already exists", &store.ConflictError{Key: k, Expected: 0, Current: 4, CurrentEntry: cur}, 409, CodeAlreadyExists},
		{"bare version conflict", store.ErrVersionConflict, 409, CodeVersionConflict},
		{"bare already exists", store.ErrAlreadyExists, 409, CodeAlreadyExists},
		{"not found", store.ErrNotFound, 404, CodeNotFound},
		{"not found in a batch op", &store.OpError{Op: 3, Err: store.ErrNotFound}, 404, CodeNotFound},
		{"compacted", store.ErrCompacted, 410, CodeCompacted},
		{"compacted with oldest", &store.CompactedError{OldestRevision: 17}, 410, CodeCompacted},
		{"wrong expected version", &store.WrongExpectedVersionError{StreamID: "s", Expected: 2, CurrentVersion: 5}, 409, CodeWrongExpectedVersion},
		{"store unavailable", fmt.Errorf("db: %w", store.ErrUnavailable), 503, CodeUnavailable},
		{"store closed", store.ErrClosed, 503, CodeUnavailable},
		{"engine closed", state.ErrClosed, 503, CodeUnavailable},
		{"canceled", context.Canceled, 503, CodeUnavailable},
		{"deadline", fmt.Errorf("q: %w", context.DeadlineExceeded), 503, CodeUnavailable},
		{"no route", errNoRoute, 404, CodeNotFound},
		{"bad path", errBadPath, 400, CodeInvalidArgument},
		{"method", &methodNotAllowedError{method: "POST", allow: "GET"}, 405, CodeMethodNotAllowed},
		{"unknown", errors.New("disk on fire"), 500, CodeInternal},
	} {
		t.Run(c.name, func(t *testing.T) {
			ae := toAPIError(c.err, &errContext{key: "k"})
			if ae.Status != c.status || ae.Code != c.code {
				t.Fatalf("%v -> %d %s, want %d %s", c.err, ae.Status, ae.Code, c.status, c.code)
			}
			if ae.Message == "" {
				t.Fatal("empty message")
			}
			if c.status == 500 && ae.Message != "internal error; the server log has the details" {
				t.Fatalf("500 leaks the cause: %q", ae.Message)
			}
		})
	}

	// details.oldest_revision when the store knows it.
	if d := toAPIError(fmt.Errorf("wrapped: %w", &store.CompactedError{OldestRevision: 17}), nil).Details; d["oldest_revision"] != int64(17) {
		t.Fatalf("compacted details %v", d)
	}
	// A lagging subscriber is told where to resume.
	if ae := toAPIError(&feed.LaggedError{ResumeFrom: 41}, nil); ae.Code != CodeUnavailable || ae.Details["resume_from"] != int64(41) {
		t.Fatalf("lagged: %d %s %v", ae.Status, ae.Code, ae.Details)
	}
	// details.op of a batch's failing op.
	if d := toAPIError(&store.OpError{Op: 3, Err: store.ErrNotFound}, &errContext{batch: true}).Details; d["op"] != 3 {
		t.Fatalf("not found details %v", d)
	}
	// A single write's conflict names no op; a batch's does.
	ce := &store.ConflictError{Op: 0, Key: k, Expected: 2, Current: 4, CurrentEntry: cur, Type: store.ConflictConcurrentModification}
	if _, has := toAPIError(ce, &errContext{key: "k"}).Details["op"]; has {
		t.Fatal("single write conflict names an op")
	}
	ce.Op = 1
	d := toAPIError(ce, &errContext{batch: true, opValues: []json.RawMessage{nil, json.RawMessage(`"mine"`)}}).Details
	if d["op"] != 1 || string(d["local_value"].(json.RawMessage)) != `"mine"` {
		t.Fatalf("batch conflict details %v", d)
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
