package server

import (
	"net/http"
	"strings"
	"testing"
)

// TestBadInputs: every bad request gets its 4xx and contract code, never a
// 500, and changes nothing: neither the store's revision nor the seeded key.
func TestBadInputs(t *testing.T) {
	e := newEnv(t)
	const (
		seed  = "/v1/agents/agent-1/state/local/seed"
		agent = "/v1/agents/agent-1"
	)
	e.do("PUT", seed, `{"value": {"n": 1}}`).want(t, http.StatusCreated)
	e.do("PUT", agent+"/state/local/other", `{"value": [1, 2]}`).want(t, http.StatusCreated)

	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	big := `{"value": "` + strings.Repeat("x", 2<<20) + `"}`
	justOver := `{"value": "` + strings.Repeat("x", 1<<20) + `"}` // the value is 1 MiB + 2 bytes (its quotes)

	type tc struct {
		name   string
		method string
		path   string
		body   string
		hdr    []string
		status int
		code   string
	}
	bad := http.StatusBadRequest
	cases := []tc{
		// Identifiers.
		{"agent id with a bad character", "PUT", "/v1/agents/bad!id/state/local/k", `{"value":1}`, nil, bad, CodeInvalidArgument},
		{"agent id with a space", "GET", "/v1/agents/bad%20id/state/local/k", "", nil, bad, CodeInvalidArgument},
		{"agent id too long", "GET", "/v1/agents/" + strings.Repeat("a", 129) + "/state/local/k", "", nil, bad, CodeInvalidArgument},
		{"agent id ..", "GET", "/v1/agents/../state/local/k", "", nil, bad, CodeInvalidArgument},
		{"agent id with encoded slash", "GET", "/v1/agents/a%2Fb/state/local/k", "", nil, bad, CodeInvalidArgument},
		{"unknown tier", "PUT", agent + "/state/global/k", `{"value":1}`, nil, bad, CodeInvalidArgument},
		{"unknown tier on list", "GET", agent + "/state/global", "", nil, bad, CodeInvalidArgument},
		{"key with ..", "PUT", agent + "/state/local/a/../seed", `{"value":1}`, nil, bad, CodeInvalidArgument},
		{"key that is ..", "PUT", agent + "/state/local/..", `{"value":1}`, nil, bad, CodeInvalidArgument},
		{"key with .", "PUT", agent + "/state/local/a/./b", `{"value":1}`, nil, bad, CodeInvalidArgument},
		{"key with //", "PUT", agent + "/state/local/a//b", `{"value":1}`, nil, bad, CodeInvalidArgument},
		{"key with trailing /", "PUT", agent + "/state/local/seed/", `{"value":1}`, nil, bad, CodeInvalidArgument},
		{"empty key", "PUT", agent + "/state/local/", `{"value":1}`, nil, bad, CodeInvalidArgument},
		{"key with encoded ..", "PUT", agent + "/state/local/%2E%2E/seed", `{"value":1}`, nil, bad, CodeInvalidArgument},
		{"key with encoded /../", "PUT", agent + "/state/local/a%2F..%2Fseed", `{"value":1}`, nil, bad, CodeInvalidArgument},
		{"key with encoded //", "PUT", agent + "/state/local/a%2F%2Fb", `{"value":1}`, nil, bad, CodeInvalidArgument},
		{"key with a bad character", "PUT", agent + "/state/local/a%20b", `{"value":1}`, nil, bad, CodeInvalidArgument},
		{"key too long", "PUT", agent + "/state/local/" + strings.Repeat("k", 513), `{"value":1}`, nil, bad, CodeInvalidArgument},
		{"history without key", "GET", agent + "/history/local", "", nil, bad, CodeInvalidArgument},
		{"rollback without key", "POST", agent + "/rollback/local", `{"version":1}`, nil, bad, CodeInvalidArgument},

		// Bodies.
		{"empty body", "PUT", seed, "", nil, bad, CodeInvalidArgument},
		{"whitespace body", "PUT", seed, "  \n", nil, bad, CodeInvalidArgument},
		{"truncated JSON", "PUT", seed, `{"value": {"a":`, nil, bad, CodeInvalidArgument},
		{"not JSON", "PUT", seed, `value=1`, nil, bad, CodeInvalidArgument},
		{"body is an array", "PUT", seed, `[{"value":1}]`, nil, bad, CodeInvalidArgument},
		{"body is null", "PUT", seed, `null`, nil, bad, CodeInvalidArgument},
		{"body is a string", "PUT", seed, `"x"`, nil, bad, CodeInvalidArgument},
		{"trailing data", "PUT", seed, `{"value": 1} {"value": 2}`, nil, bad, CodeInvalidArgument},
		{"invalid UTF-8", "PUT", seed, "{\"value\": \"\xff\xfe\"}", nil, bad, CodeInvalidArgument},
		{"10,000-deep nesting", "PUT", seed, `{"value": ` + deep(10000) + `}`, nil, bad, CodeInvalidArgument},
		{"10,000-deep unbalanced nesting", "PUT", seed, `{"value": ` + strings.Repeat("[", 10000) + `}`, nil, bad, CodeInvalidArgument},
		{"value nested 65 deep", "PUT", seed, `{"value": ` + deep(65) + `}`, nil, bad, CodeInvalidArgument},
		{"2 MiB value", "PUT", seed, big, nil, http.StatusRequestEntityTooLarge, CodeTooLarge},
		{"value just over 1 MiB", "PUT", seed, justOver, nil, http.StatusRequestEntityTooLarge, CodeTooLarge},
		{"missing value", "PUT", seed, `{}`, nil, bad, CodeInvalidArgument},
		{"unknown field", "PUT", seed, `{"value": 2, "expected_verison": 1}`, nil, bad, CodeInvalidArgument},
		{"expected_version a string", "PUT", seed, `{"value": 2, "expected_version": "1"}`, nil, bad, CodeInvalidArgument},
		{"expected_version negative", "PUT", seed, `{"value": 2, "expected_version": -1}`, nil, bad, CodeInvalidArgument},
		{"expected_version a float", "PUT", seed, `{"value": 2, "expected_version": 1.5}`, nil, bad, CodeInvalidArgument},
		{"expected_version 1.0", "PUT", seed, `{"value": 2, "expected_version": 1.0}`, nil, bad, CodeInvalidArgument},
		{"expected_version huge", "PUT", seed, `{"value": 2, "expected_version": 1e30}`, nil, bad, CodeInvalidArgument},
		{"ttl_seconds 0", "PUT", seed, `{"value": 2, "ttl_seconds": 0}`, nil, bad, CodeInvalidArgument},
		{"ttl_seconds negative", "PUT", seed, `{"value": 2, "ttl_seconds": -5}`, nil, bad, CodeInvalidArgument},
		{"ttl_seconds a string", "PUT", seed, `{"value": 2, "ttl_seconds": "60"}`, nil, bad, CodeInvalidArgument},
		{"ttl_seconds absurd", "PUT", seed, `{"value": 2, "ttl_seconds": 9223372036854775807}`, nil, bad, CodeInvalidArgument},
		{"change_summary a number", "PUT", seed, `{"value": 2, "change_summary": 5}`, nil, bad, CodeInvalidArgument},
		{"metadata not an object", "PUT", seed, `{"value": 2, "metadata": [1]}`, nil, bad, CodeInvalidArgument},
		{"unknown strategy", "PUT", seed, `{"value": 2, "strategy": "yolo"}`, nil, bad, CodeInvalidArgument},
		{"strategy not available", "PUT", seed, `{"value": 2, "strategy": "manual"}`, nil, bad, CodeInvalidArgument},

		// Preconditions.
		{"If-Match garbage", "PUT", seed, `{"value": 2}`, []string{"If-Match", "abc"}, bad, CodeInvalidArgument},
		{"If-Match star", "PUT", seed, `{"value": 2}`, []string{"If-Match", "*"}, bad, CodeInvalidArgument},
		{"If-Match weak", "PUT", seed, `{"value": 2}`, []string{"If-Match", `W/"1"`}, bad, CodeInvalidArgument},
		{"If-Match list", "PUT", seed, `{"value": 2}`, []string{"If-Match", `"1", "2"`}, bad, CodeInvalidArgument},
		{"If-Match vs expected_version", "PUT", seed, `{"value": 2, "expected_version": 2}`, []string{"If-Match", `"1"`}, bad, CodeInvalidArgument},
		{"If-None-Match not star", "PUT", seed, `{"value": 2}`, []string{"If-None-Match", `"1"`}, bad, CodeInvalidArgument},
		{"stale expected_version", "PUT", seed, `{"value": 2, "expected_version": 7}`, nil, http.StatusConflict, CodeVersionConflict},
		{"stale If-Match", "PUT", seed, `{"value": 2}`, []string{"If-Match", `"7"`}, http.StatusConflict, CodeVersionConflict},
		{"create-only on existing", "PUT", seed, `{"value": 2, "expected_version": 0}`, nil, http.StatusConflict, CodeAlreadyExists},
		{"delete stale", "DELETE", seed + "?expected_version=3", "", nil, http.StatusConflict, CodeVersionConflict},
		{"delete negative expected_version", "DELETE", seed + "?expected_version=-1", "", nil, bad, CodeInvalidArgument},
		{"delete non-numeric expected_version", "DELETE", seed + "?expected_version=one", "", nil, bad, CodeInvalidArgument},
		{"delete absent", "DELETE", agent + "/state/local/absent", "", nil, http.StatusNotFound, CodeNotFound},

		// Patch.
		{"patch unknown op", "PATCH", seed, `{"json_patch": [{"op": "frobnicate", "path": "/n"}]}`, nil, bad, CodeInvalidArgument},
		{"patch op without path", "PATCH", seed, `{"json_patch": [{"op": "remove"}]}`, nil, bad, CodeInvalidArgument},
		{"patch bad path", "PATCH", seed, `{"json_patch": [{"op": "remove", "path": "/nope"}]}`, nil, bad, CodeInvalidArgument},
		{"patch not an array", "PATCH", seed, `{"json_patch": {"op": "remove", "path": "/n"}}`, nil, bad, CodeInvalidArgument},
		{"patch both kinds", "PATCH", seed, `{"json_patch": [], "merge_patch": {}}`, nil, bad, CodeInvalidArgument},
		{"patch neither", "PATCH", seed, `{"expected_version": 1}`, nil, bad, CodeInvalidArgument},
		{"patch failing test", "PATCH", seed, `{"json_patch": [{"op": "test", "path": "/n", "value": 2}, {"op": "remove", "path": "/n"}]}`, nil, http.StatusConflict, CodeVersionConflict},
		{"patch stale", "PATCH", seed, `{"merge_patch": {"n": 5}, "expected_version": 9}`, nil, http.StatusConflict, CodeVersionConflict},
		{"patch unknown field", "PATCH", seed, `{"merge_patch": {"n": 5}, "value": 1}`, nil, bad, CodeInvalidArgument},
		{"patch absent key", "PATCH", agent + "/state/local/absent", `{"merge_patch": {"n": 5}}`, nil, http.StatusNotFound, CodeNotFound},
		{"patch too deep", "PATCH", seed, `{"merge_patch": {"n": ` + deep(70) + `}}`, nil, bad, CodeInvalidArgument},

		// Query parameters.
		{"version not a number", "GET", seed + "?version=abc", "", nil, bad, CodeInvalidArgument},
		{"version 0", "GET", seed + "?version=0", "", nil, bad, CodeInvalidArgument},
		{"version negative", "GET", seed + "?version=-2", "", nil, bad, CodeInvalidArgument},
		{"version a float", "GET", seed + "?version=1.5", "", nil, bad, CodeInvalidArgument},
		{"version absent", "GET", seed + "?version=99", "", nil, http.StatusNotFound, CodeNotFound},
		{"at_revision not a number", "GET", seed + "?at_revision=x", "", nil, bad, CodeInvalidArgument},
		{"at_revision ahead", "GET", seed + "?at_revision=999999", "", nil, bad, CodeInvalidArgument},
		{"version and at_revision", "GET", seed + "?version=1&at_revision=1", "", nil, bad, CodeInvalidArgument},
		{"consistency unknown", "GET", seed + "?consistency=linearizable", "", nil, bad, CodeInvalidArgument},
		{"malformed query", "GET", seed + "?version=%zz", "", nil, bad, CodeInvalidArgument},
		{"get absent", "GET", agent + "/state/local/absent", "", nil, http.StatusNotFound, CodeNotFound},
		{"list limit not a number", "GET", agent + "/state/local?limit=ten", "", nil, bad, CodeInvalidArgument},
		{"list limit 0", "GET", agent + "/state/local?limit=0", "", nil, bad, CodeInvalidArgument},
		{"list limit too big", "GET", agent + "/state/local?limit=5000", "", nil, bad, CodeInvalidArgument},
		{"list limit overflows", "GET", agent + "/state/local?limit=99999999999999999999", "", nil, bad, CodeInvalidArgument},
		{"list values not a bool", "GET", agent + "/state/local?values=maybe", "", nil, bad, CodeInvalidArgument},
		{"list bad cursor", "GET", agent + "/state/local?cursor=!!!", "", nil, bad, CodeInvalidArgument},
		{"list prefix and pattern", "GET", agent + "/state/local?prefix=a&pattern=a/*", "", nil, bad, CodeInvalidArgument},
		{"list bad pattern", "GET", agent + "/state/local?pattern=a//b", "", nil, bad, CodeInvalidArgument},
		{"list bad prefix", "GET", agent + "/state/local?prefix=../", "", nil, bad, CodeInvalidArgument},
		{"list bad consistency", "GET", agent + "/state/local?consistency=x", "", nil, bad, CodeInvalidArgument},
		{"history limit not a number", "GET", agent + "/history/local/seed?limit=x", "", nil, bad, CodeInvalidArgument},
		{"history before_version negative", "GET", agent + "/history/local/seed?before_version=-1", "", nil, bad, CodeInvalidArgument},
		{"history include_diff not a bool", "GET", agent + "/history/local/seed?include_diff=yes", "", nil, bad, CodeInvalidArgument},
		{"history limit too big", "GET", agent + "/history/local/seed?limit=100000", "", nil, bad, CodeInvalidArgument},
		{"history of a never-written key", "GET", agent + "/history/local/never", "", nil, http.StatusNotFound, CodeNotFound},
		{"diff from not a number", "GET", agent + "/diff/local/seed?from=x&to=1", "", nil, bad, CodeInvalidArgument},
		{"diff without from", "GET", agent + "/diff/local/seed?to=1", "", nil, bad, CodeInvalidArgument},
		{"diff bad format", "GET", agent + "/diff/local/seed?from=1&to=1&format=xml", "", nil, bad, CodeInvalidArgument},
		{"diff absent version", "GET", agent + "/diff/local/seed?from=1&to=9", "", nil, http.StatusNotFound, CodeNotFound},

		// Rollback.
		{"rollback without version", "POST", agent + "/rollback/local/seed", `{}`, nil, bad, CodeInvalidArgument},
		{"rollback version 0", "POST", agent + "/rollback/local/seed", `{"version": 0}`, nil, bad, CodeInvalidArgument},
		{"rollback version a string", "POST", agent + "/rollback/local/seed", `{"version": "1"}`, nil, bad, CodeInvalidArgument},
		{"rollback absent version", "POST", agent + "/rollback/local/seed", `{"version": 42}`, nil, http.StatusNotFound, CodeNotFound},
		{"rollback stale", "POST", agent + "/rollback/local/seed", `{"version": 1, "expected_version": 5}`, nil, http.StatusConflict, CodeVersionConflict},
		{"rollback unknown field", "POST", agent + "/rollback/local/seed", `{"version": 1, "to": 2}`, nil, bad, CodeInvalidArgument},

		// Batches.
		{"batch write no ops", "POST", agent + "/batch/write", `{"ops": []}`, nil, bad, CodeInvalidArgument},
		{"batch write ops missing", "POST", agent + "/batch/write", `{}`, nil, bad, CodeInvalidArgument},
		{"batch write ops not an array", "POST", agent + "/batch/write", `{"ops": {}}`, nil, bad, CodeInvalidArgument},
		{"batch write op not an object", "POST", agent + "/batch/write", `{"ops": [1]}`, nil, bad, CodeInvalidArgument},
		{"batch write unknown op", "POST", agent + "/batch/write", `{"ops": [{"op": "put", "tier": "local", "key": "n", "value": 1}, {"op": "upsert", "tier": "local", "key": "seed", "value": 1}]}`, nil, bad, CodeInvalidArgument},
		{"batch write bad key", "POST", agent + "/batch/write", `{"ops": [{"op": "put", "tier": "local", "key": "n", "value": 1}, {"op": "put", "tier": "local", "key": "a/../b", "value": 1}]}`, nil, bad, CodeInvalidArgument},
		{"batch write bad tier", "POST", agent + "/batch/write", `{"ops": [{"op": "put", "tier": "nope", "key": "n", "value": 1}]}`, nil, bad, CodeInvalidArgument},
		{"batch write duplicate key", "POST", agent + "/batch/write", `{"ops": [{"op": "put", "tier": "local", "key": "n", "value": 1}, {"op": "delete", "tier": "local", "key": "n"}]}`, nil, bad, CodeInvalidArgument},
		{"batch write put without value", "POST", agent + "/batch/write", `{"ops": [{"op": "put", "tier": "local", "key": "n"}]}`, nil, bad, CodeInvalidArgument},
		{"batch write negative expected_version", "POST", agent + "/batch/write", `{"ops": [{"op": "put", "tier": "local", "key": "n", "value": 1, "expected_version": -3}]}`, nil, bad, CodeInvalidArgument},
		{"batch write string expected_version", "POST", agent + "/batch/write", `{"ops": [{"op": "put", "tier": "local", "key": "n", "value": 1, "expected_version": "3"}]}`, nil, bad, CodeInvalidArgument},
		{"batch write unknown op field", "POST", agent + "/batch/write", `{"ops": [{"op": "put", "tier": "local", "key": "n", "value": 1, "metadata": {}}]}`, nil, bad, CodeInvalidArgument},
		{"batch write ttl 0", "POST", agent + "/batch/write", `{"ops": [{"op": "put", "tier": "local", "key": "n", "value": 1, "ttl_seconds": 0}]}`, nil, bad, CodeInvalidArgument},
		{"batch write deep value", "POST", agent + "/batch/write", `{"ops": [{"op": "put", "tier": "local", "key": "n", "value": ` + deep(10000) + `}]}`, nil, bad, CodeInvalidArgument},
		{"batch write too large", "POST", agent + "/batch/write", `{"ops": [{"op": "put", "tier": "local", "key": "n", "value": "` + strings.Repeat("x", 17<<20) + `"}]}`, nil, http.StatusRequestEntityTooLarge, CodeTooLarge},
		{"batch write conflict", "POST", agent + "/batch/write", `{"ops": [{"op": "put", "tier": "local", "key": "n", "value": 1}, {"op": "put", "tier": "local", "key": "seed", "value": 1, "expected_version": 0}]}`, nil, http.StatusConflict, CodeAlreadyExists},
		{"batch write patch absent", "POST", agent + "/batch/write", `{"ops": [{"op": "put", "tier": "local", "key": "n", "value": 1}, {"op": "patch", "tier": "local", "key": "absent", "merge_patch": {}}]}`, nil, http.StatusNotFound, CodeNotFound},
		{"batch write truncated", "POST", agent + "/batch/write", `{"ops": [{"op": "put"`, nil, bad, CodeInvalidArgument},
		{"batch get no keys", "POST", agent + "/batch/get", `{"keys": []}`, nil, bad, CodeInvalidArgument},
		{"batch get bad key", "POST", agent + "/batch/get", `{"keys": [{"tier": "local", "key": "a//b"}]}`, nil, bad, CodeInvalidArgument},
		{"batch get unknown field", "POST", agent + "/batch/get", `{"keys": [], "consistency": "strong"}`, nil, bad, CodeInvalidArgument},
		{"batch get bad consistency", "POST", agent + "/batch/get?consistency=x", `{"keys": [{"tier": "local", "key": "seed"}]}`, nil, bad, CodeInvalidArgument},
		{"batch get bad agent", "POST", "/v1/agents/a%24b/batch/get", `{"keys": [{"tier": "local", "key": "seed"}]}`, nil, bad, CodeInvalidArgument},

		// Routing.
		{"wrong method on an entry", "POST", seed, `{"value": 1}`, nil, http.StatusMethodNotAllowed, CodeMethodNotAllowed},
		{"wrong method on a list", "DELETE", agent + "/state/local", "", nil, http.StatusMethodNotAllowed, CodeMethodNotAllowed},
		{"wrong method on batch", "GET", agent + "/batch/get", "", nil, http.StatusMethodNotAllowed, CodeMethodNotAllowed},
		{"unknown path", "GET", "/v1/nope", "", nil, http.StatusNotFound, CodeNotFound},
		{"unknown version prefix", "PUT", "/v2/agents/agent-1/state/local/seed", `{"value": 1}`, nil, http.StatusNotFound, CodeNotFound},
		{"agent without resource", "GET", agent, "", nil, http.StatusNotFound, CodeNotFound},
	}

	seedBefore := e.do("GET", seed, "").want(t, http.StatusOK)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rev := e.revision()
			r := e.do(c.method, c.path, c.body, c.hdr...)
			r.wantError(t, c.status, c.code)
			if testing.Verbose() {
				raw := string(r.raw)
				if len(raw) > 300 {
					raw = raw[:300] + "…"
				}
				t.Logf("%d %s", r.status, raw)
			}
			if got := e.revision(); got != rev {
				t.Fatalf("a failed request moved the revision %d -> %d", rev, got)
			}
			now := e.do("GET", seed, "").want(t, http.StatusOK)
			if !jsonEq(t, now, string(mustJSON(t, seedBefore))) {
				t.Fatalf("a failed request changed the seed: %v", now)
			}
		})
	}
}

// The details of batch errors name the op at fault.
func TestBatchErrorDetails(t *testing.T) {
	e := newEnv(t)
	e.do("PUT", "/v1/agents/a/state/local/k", `{"value": 1}`).want(t, http.StatusCreated)
	for _, c := range []struct {
		name, body string
		status     int
		code       string
		op         int64
		field      string
	}{
		{"unknown op", `{"ops": [{"op": "put", "tier": "local", "key": "n", "value": 1}, {"op": "x", "tier": "local", "key": "m"}]}`, 400, CodeInvalidArgument, 1, "op"},
		{"bad key", `{"ops": [{"op": "put", "tier": "local", "key": "a//b", "value": 1}]}`, 400, CodeInvalidArgument, 0, "key"},
		{"type error", `{"ops": [{"op": "put", "tier": "local", "key": "n", "value": 1}, {"op": "put", "tier": "local", "key": "m", "value": 1, "ttl_seconds": "x"}]}`, 400, CodeInvalidArgument, 1, "ops[1].ttl_seconds"},
		{"unknown field", `{"ops": [{"op": "put", "tier": "local", "key": "n", "value": 1, "expected_verison": 1}]}`, 400, CodeInvalidArgument, 0, "ops[0].expected_verison"},
		{"deep value", `{"ops": [{"op": "put", "tier": "local", "key": "n", "value": 1}, {"op": "put", "tier": "local", "key": "m", "value": ` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + `}]}`, 400, CodeInvalidArgument, 1, "value"},
		{"conflict", `{"ops": [{"op": "put", "tier": "local", "key": "n", "value": 1}, {"op": "put", "tier": "local", "key": "k", "value": 2, "expected_version": 3}]}`, 409, CodeVersionConflict, 1, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := e.do("POST", "/v1/agents/a/batch/write", c.body).wantError(t, c.status, c.code)
			if num(t, d["op"]) != c.op {
				t.Fatalf("details.op %v, want %d (%v)", d["op"], c.op, d)
			}
			if c.field != "" && d["field"] != c.field {
				t.Fatalf("details.field %v, want %s", d["field"], c.field)
			}
		})
	}
}

// Query and body errors name what is wrong.
func TestErrorFields(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ method, path, body, field string }{
		{"GET", "/v1/agents/a/state/local/k?version=x", "", "version"},
		{"GET", "/v1/agents/a/state/local/k?at_revision=x", "", "at_revision"},
		{"GET", "/v1/agents/a/state/local?limit=x", "", "limit"},
		{"GET", "/v1/agents/a/history/local/k?before_version=x", "", "before_version"},
		{"GET", "/v1/agents/a/diff/local/k?from=1&to=x", "", "to"},
		{"DELETE", "/v1/agents/a/state/local/k?expected_version=x", "", "expected_version"},
		{"PUT", "/v1/agents/a/state/local/k", `{"value": 1, "expected_version": "x"}`, "expected_version"},
		{"PUT", "/v1/agents/a/state/local/k", `{"value": 1, "expected_version": -1}`, "expected_version"},
		{"PUT", "/v1/agents/a/state/local/k", `{"value": 1, "expected_verison": 1}`, "expected_verison"},
		{"PUT", "/v1/agents/a/state/local/k", `{}`, "value"},
		{"PUT", "/v1/agents/a!/state/local/k", `{"value": 1}`, "agent_id"},
		{"PUT", "/v1/agents/a/state/x/k", `{"value": 1}`, "tier"},
		{"PUT", "/v1/agents/a/state/local/k/", `{"value": 1}`, "key"},
		{"PUT", "/v1/agents/a/state/local/a/../b", `{"value": 1}`, "path"},
	} {
		d := e.do(c.method, c.path, c.body).wantError(t, http.StatusBadRequest, CodeInvalidArgument)
		if d["field"] != c.field {
			t.Errorf("%s %s %s: details.field %v, want %s", c.method, c.path, c.body, d["field"], c.field)
		}
	}
}
