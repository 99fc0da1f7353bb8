package e2e

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"
	"testing"
)

// TestBadInputGets4xx proves the second half of DESIGN.md guarantee 5: bad
// input gets a clear 4xx with the contract's error code in the envelope
// {"error": {"code", "message", "details"}}, as application/json, never a
// 5xx. Paths are sent verbatim (no client-side cleaning of // or ..).
func TestBadInputGets4xx(t *testing.T) {
	p := startServer(t, t.TempDir())
	const a = "/v1/agents/agent-1"
	p.must(t, http.MethodPut, a+"/state/local/doc", `{"value": {"a": 1}}`, http.StatusCreated)

	deep := func(n int) string {
		return `{"value": ` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}`
	}
	const (
		bad      = 400
		notFound = 404
		tooLarge = 413
	)
	tests := []struct {
		name   string
		method string
		target string
		body   string
		status int
		code   string // "" = any code (the status is not in the contract's table)
	}{
		// Agent ids: 1–128 chars of [A-Za-z0-9_.:-].
		{"agent id 129 chars", "GET", "/v1/agents/" + strings.Repeat("a", 129) + "/state/local/x", "", bad, "invalid_argument"},
		{"agent id 128 chars is valid", "GET", "/v1/agents/" + strings.Repeat("a", 128) + "/state/local/x", "", notFound, "not_found"},
		{"agent id with encoded space", "GET", "/v1/agents/a%20b/state/local/x", "", bad, "invalid_argument"},
		{"agent id with @", "GET", "/v1/agents/a@b/state/local/x", "", bad, "invalid_argument"},
		{"agent id with encoded slash", "GET", "/v1/agents/a%2Fb/state/local/x", "", bad, "invalid_argument"},
		{"agent id ..", "GET", "/v1/agents/../state/local/x", "", bad, "invalid_argument"},
		{"put with bad agent id", "PUT", "/v1/agents/a@b/state/local/x", `{"value": 1}`, bad, "invalid_argument"},

		// Keys: segments of [A-Za-z0-9_.:@-] joined by /, no empty, . or .. segment.
		{"key with .. segment", "GET", a + "/state/local/x/../y", "", bad, "invalid_argument"},
		{"put key with .. segment", "PUT", a + "/state/local/x/../y", `{"value": 1}`, bad, "invalid_argument"},
		{"key starting with ..", "GET", a + "/state/local/../x", "", bad, "invalid_argument"},
		{"key with empty segment", "GET", a + "/state/local/x//y", "", bad, "invalid_argument"},
		{"put key with empty segment", "PUT", a + "/state/local/x//y", `{"value": 1}`, bad, "invalid_argument"},
		{"key with . segment", "GET", a + "/state/local/x/./y", "", bad, "invalid_argument"},
		{"key with trailing slash", "GET", a + "/state/local/x/", "", bad, "invalid_argument"},
		{"put key with trailing slash", "PUT", a + "/state/local/x/", `{"value": 1}`, bad, "invalid_argument"},
		{"key with encoded .. segment", "GET", a + "/state/local/x/%2E%2E/y", "", bad, "invalid_argument"},
		{"key with encoded slash making an empty segment", "GET", a + "/state/local/x%2F%2Fy", "", bad, "invalid_argument"},
		{"key with encoded space", "GET", a + "/state/local/x%20y", "", bad, "invalid_argument"},
		{"key with NUL", "GET", a + "/state/local/x%00y", "", bad, "invalid_argument"},
		{"key of 513 bytes", "GET", a + "/state/local/" + strings.Repeat("k", 513), "", bad, "invalid_argument"},
		{"key of 512 bytes is valid", "GET", a + "/state/local/" + strings.Repeat("k", 512), "", notFound, "not_found"},
		{"key with @ and : is valid", "GET", a + "/state/local/user@host:1/x", "", notFound, "not_found"},

		// Tiers.
		{"unknown tier", "GET", a + "/state/global/x", "", bad, "invalid_argument"},
		{"tier in capitals", "GET", a + "/state/LOCAL/x", "", bad, "invalid_argument"},
		{"put unknown tier", "PUT", a + "/state/global/x", `{"value": 1}`, bad, "invalid_argument"},
		{"list unknown tier", "GET", a + "/state/global", "", bad, "invalid_argument"},

		// Write bodies.
		{"truncated JSON", "PUT", a + "/state/local/x", `{"value": {"a": 1`, bad, "invalid_argument"},
		{"not JSON", "PUT", a + "/state/local/x", `hello`, bad, "invalid_argument"},
		{"empty body", "PUT", a + "/state/local/x", ``, bad, "invalid_argument"},
		{"body without value", "PUT", a + "/state/local/x", `{}`, bad, "invalid_argument"},
		{"body not an object", "PUT", a + "/state/local/x", `[1, 2]`, bad, "invalid_argument"},
		{"body not UTF-8", "PUT", a + "/state/local/x", "{\"value\": \"\xff\xfe\"}", bad, "invalid_argument"},
		{"value 10,000 deep", "PUT", a + "/state/local/x", deep(10000), bad, "invalid_argument"},
		{"value 100 deep", "PUT", a + "/state/local/x", deep(100), bad, "invalid_argument"},
		{"value of 2 MiB", "PUT", a + "/state/local/x", `{"value": "` + strings.Repeat("v", 2<<20) + `"}`, tooLarge, "too_large"},
		{"value of 2 MiB, chunked (no Content-Length)", "PUT", a + "/state/local/x", "chunked:" + `{"value": "` + strings.Repeat("v", 2<<20) + `"}`, tooLarge, "too_large"},
		{"patch value of 2 MiB", "PATCH", a + "/state/local/doc", `{"merge_patch": {"big": "` + strings.Repeat("v", 2<<20) + `"}}`, tooLarge, "too_large"},
		{"negative expected_version", "PUT", a + "/state/local/x", `{"value": 1, "expected_version": -1}`, bad, "invalid_argument"},
		{"expected_version not a number", "PUT", a + "/state/local/x", `{"value": 1, "expected_version": "abc"}`, bad, "invalid_argument"},
		{"ttl_seconds 0", "PUT", a + "/state/local/x", `{"value": 1, "ttl_seconds": 0}`, bad, "invalid_argument"},
		{"ttl_seconds negative", "PUT", a + "/state/local/x", `{"value": 1, "ttl_seconds": -5}`, bad, "invalid_argument"},
		{"unknown strategy", "PUT", a + "/state/local/doc", `{"value": 1, "expected_version": 1, "strategy": "bogus"}`, bad, "invalid_argument"},
		{"strategy merge (not available yet)", "PUT", a + "/state/local/doc", `{"value": 1, "expected_version": 1, "strategy": "merge"}`, bad, "invalid_argument"},
		{"metadata not an object", "PUT", a + "/state/local/x", `{"value": 1, "metadata": 5}`, bad, "invalid_argument"},
		{"If-Match not a version", "PUT", a + "/state/local/doc", "ifmatch:" + `{"value": 1}`, bad, "invalid_argument"},

		// Patches.
		{"patch unknown op", "PATCH", a + "/state/local/doc", `{"json_patch": [{"op": "frobnicate", "path": "/a"}]}`, bad, "invalid_argument"},
		{"patch not an array", "PATCH", a + "/state/local/doc", `{"json_patch": {"op": "add", "path": "/b", "value": 1}}`, bad, "invalid_argument"},
		{"patch path not a JSON pointer", "PATCH", a + "/state/local/doc", `{"json_patch": [{"op": "add", "path": "b", "value": 1}]}`, bad, "invalid_argument"},
		{"patch with both kinds", "PATCH", a + "/state/local/doc", `{"json_patch": [], "merge_patch": {"a": 2}}`, bad, "invalid_argument"},
		{"patch with neither kind", "PATCH", a + "/state/local/doc", `{"expected_version": 1}`, bad, "invalid_argument"},
		{"patch truncated", "PATCH", a + "/state/local/doc", `{"merge_patch": {"a": `, bad, "invalid_argument"},
		{"patch absent key", "PATCH", a + "/state/local/absent", `{"merge_patch": {"a": 2}}`, notFound, "not_found"},

		// Reads and deletes.
		{"version not a number", "GET", a + "/state/local/doc?version=abc", "", bad, "invalid_argument"},
		{"version negative", "GET", a + "/state/local/doc?version=-1", "", bad, "invalid_argument"},
		{"at_revision not a number", "GET", a + "/state/local/doc?at_revision=xyz", "", bad, "invalid_argument"},
		{"unknown consistency", "GET", a + "/state/local/doc?consistency=sometimes", "", bad, "invalid_argument"},
		{"version never written", "GET", a + "/state/local/doc?version=99", "", notFound, "not_found"},
		{"absent key", "GET", a + "/state/local/absent", "", notFound, "not_found"},
		{"delete expected_version not a number", "DELETE", a + "/state/local/doc?expected_version=abc", "", bad, "invalid_argument"},
		{"delete expected_version negative", "DELETE", a + "/state/local/doc?expected_version=-1", "", bad, "invalid_argument"},
		{"delete absent key", "DELETE", a + "/state/local/absent", "", notFound, "not_found"},

		// Lists.
		{"list limit 5000", "GET", a + "/state/local?limit=5000", "", bad, "invalid_argument"},
		{"list limit not a number", "GET", a + "/state/local?limit=abc", "", bad, "invalid_argument"},
		{"list limit negative", "GET", a + "/state/local?limit=-1", "", bad, "invalid_argument"},
		{"list malformed cursor", "GET", a + "/state/local?cursor=not-a-cursor!!", "", bad, "invalid_argument"},
		{"list values not a boolean", "GET", a + "/state/local?values=maybe", "", bad, "invalid_argument"},
		{"list malformed query string", "GET", a + "/state/local?limit=%zz", "", bad, "invalid_argument"},

		// Batches.
		{"batch write ops not an array", "POST", a + "/batch/write", `{"ops": {"op": "put"}}`, bad, "invalid_argument"},
		{"batch write unknown op", "POST", a + "/batch/write", `{"ops": [{"op": "frob", "tier": "local", "key": "x", "value": 1}]}`, bad, "invalid_argument"},
		{"batch write unknown tier", "POST", a + "/batch/write", `{"ops": [{"op": "put", "tier": "global", "key": "x", "value": 1}]}`, bad, "invalid_argument"},
		{"batch write truncated", "POST", a + "/batch/write", `{"ops": [{"op": "put"`, bad, "invalid_argument"},
		{"batch get bad key", "POST", a + "/batch/get", `{"keys": [{"tier": "local", "key": "a//b"}]}`, bad, "invalid_argument"},
		{"batch get not JSON", "POST", a + "/batch/get", `keys`, bad, "invalid_argument"},

		// History and diff.
		{"history limit not a number", "GET", a + "/history/local/doc?limit=abc", "", bad, "invalid_argument"},
		{"history before_version not a number", "GET", a + "/history/local/doc?before_version=x", "", bad, "invalid_argument"},
		{"history bad key", "GET", a + "/history/local/x//y", "", bad, "invalid_argument"},
		{"diff from not a number", "GET", a + "/diff/local/doc?from=abc&to=1", "", bad, "invalid_argument"},
		{"rollback without version", "POST", a + "/rollback/local/doc", `{}`, bad, "invalid_argument"},

		// Routing.
		{"unknown endpoint", "GET", "/v1/nope", "", notFound, "not_found"},
		{"method not allowed", "POST", a + "/state/local/doc", `{"value": 1}`, http.StatusMethodNotAllowed, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			var header http.Header
			b := tc.body
			if rest, ok := strings.CutPrefix(b, "ifmatch:"); ok {
				b = rest
				header = http.Header{"If-Match": {"not-a-version"}}
			}
			if b != "" || tc.method == "PUT" {
				body = b
			}
			if rest, ok := strings.CutPrefix(b, "chunked:"); ok {
				// A reader of unknown length is sent chunked.
				body = io.MultiReader(strings.NewReader(rest))
			}
			r, err := p.send(t.Context(), tc.method, tc.target, body, header)
			if err != nil {
				t.Fatalf("%s %s: transport error: %v\nserver stderr tail:\n%s", tc.method, tc.target, err, p.stderrTail())
			}
			checkErrorAnswer(t, r, tc.status, tc.code)
		})
	}

	// Success answers are JSON too.
	t.Run("success answers are application/json", func(t *testing.T) {
		for _, r := range []*response{
			p.must(t, http.MethodPut, a+"/state/local/ct", `{"value": 1}`, http.StatusCreated),
			p.must(t, http.MethodGet, a+"/state/local/ct", nil, http.StatusOK),
			p.must(t, http.MethodPatch, a+"/state/local/ct", `{"json_patch": [{"op": "replace", "path": "", "value": 2}]}`, http.StatusOK),
			p.must(t, http.MethodGet, a+"/state/local?prefix=c", nil, http.StatusOK),
			p.must(t, http.MethodGet, a+"/history/local/ct", nil, http.StatusOK),
			p.must(t, http.MethodPost, a+"/batch/get", `{"keys": [{"tier": "local", "key": "ct"}, {"tier": "local", "key": "nope"}]}`, http.StatusOK),
			p.must(t, http.MethodPost, a+"/batch/write", `{"ops": [{"op": "put", "tier": "local", "key": "ct2", "value": 1}]}`, http.StatusOK),
			p.must(t, http.MethodDelete, a+"/state/local/ct", nil, http.StatusOK),
		} {
			if !isJSONContentType(r.Header.Get("Content-Type")) {
				t.Errorf("%s\nContent-Type = %q; want application/json", r, r.Header.Get("Content-Type"))
			}
			if !json.Valid(r.Body) {
				t.Errorf("%s\nbody is not JSON", r)
			}
		}
	})

	if s := p.stderr.String(); strings.Contains(s, "panic") {
		t.Errorf("the server logged a panic while answering bad input:\n%s", p.stderrTail())
	}
}

// checkErrorAnswer checks an error answer: the status, application/json, and
// the envelope with the code, a message and (if present) object details.
func checkErrorAnswer(t testing.TB, r *response, status int, code string) {
	t.Helper()
	if r.Status >= 500 {
		t.Errorf("%s\nwant %d %s: a server error for bad input", r, status, code)
		return
	}
	if ct := r.Header.Get("Content-Type"); !isJSONContentType(ct) {
		t.Errorf("%s\nContent-Type = %q; want application/json", r, ct)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &raw); err != nil || raw["error"] == nil {
		t.Errorf("%s\nwant status %d and the envelope {\"error\": {\"code\": %q, …}}", r, status, code)
		return
	}
	var env struct {
		Code    *string          `json:"code"`
		Message *string          `json:"message"`
		Details *json.RawMessage `json:"details"`
	}
	if err := json.Unmarshal(raw["error"], &env); err != nil || env.Code == nil || env.Message == nil {
		t.Errorf("%s\nthe error object must have a string code and message", r)
		return
	}
	if r.Status != status || (code != "" && *env.Code != code) {
		want := code
		if want == "" {
			want = "(any code)"
		}
		t.Errorf("%s\nwant %d %s", r, status, want)
	}
	if *env.Code == "" || strings.TrimSpace(*env.Message) == "" {
		t.Errorf("%s\nthe error code and message must not be empty", r)
	}
	var d map[string]any
	if env.Details == nil || json.Unmarshal(*env.Details, &d) != nil || d == nil {
		t.Errorf("%s\nerror.details must be an object ({} when there is nothing to add)", r)
	}
	if r.Header.Get("X-Request-Id") == "" {
		t.Errorf("%s\nno X-Request-Id header (docs/api.md: every answer carries one)", r)
	}
}

func isJSONContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}
