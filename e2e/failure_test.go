package e2e

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// TestFailedRequestChangesNothing proves the first half of DESIGN.md
// guarantee 5 ("a request that fails changes nothing"): after each failing
// request of the table, the targeted key answers exactly as before (value,
// version, revision, timestamps, checksum), its history is unchanged, keys a
// failed batch would have created do not exist, and the store revision did
// not move: a probe write just after the failure gets the revision right
// after the probe write just before it.
func TestFailedRequestChangesNothing(t *testing.T) {
	const agent = "fail-agent"
	p := startServer(t, t.TempDir())
	k := statePath(agent, "persistent", "doc")
	other := statePath(agent, "persistent", "other")
	p.must(t, http.MethodPut, k, `{"value": {"a": 1, "list": [1, 2]}}`, http.StatusCreated)
	p.must(t, http.MethodPut, k, `{"value": {"a": 2, "list": [1, 2, 3]}}`, http.StatusOK)
	p.must(t, http.MethodPut, other, `{"value": "x"}`, http.StatusCreated)

	big := `{"value": "` + strings.Repeat("x", 2<<20) + `"}`
	deep := `{"value": ` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`
	batch := "/v1/agents/" + agent + "/batch/write"

	tests := []struct {
		name   string
		method string
		target string
		body   string
		status int
		code   string
		// fresh names keys the request would have created.
		fresh []string
		// op is the batch op index details.op must name, or -1.
		op int
	}{
		// A stale expected_version.
		{"put stale expected_version", "PUT", k, `{"value": {"a": 9}, "expected_version": 1}`, 409, "version_conflict", nil, -1},
		// Create-only on an existing key.
		{"put create-only on existing key", "PUT", k, `{"value": {"a": 9}, "expected_version": 0}`, 409, "already_exists", nil, -1},
		// A version that never existed is stale too.
		{"put future expected_version", "PUT", k, `{"value": {"a": 9}, "expected_version": 7}`, 409, "version_conflict", nil, -1},
		// A JSON Patch whose test op fails.
		{"patch failing test op", "PATCH", k, `{"json_patch": [{"op": "replace", "path": "/a", "value": 9}, {"op": "test", "path": "/a", "value": 1}]}`, 409, "version_conflict", nil, -1},
		// A JSON Patch whose second op has a bad path: the first is not applied.
		{"patch bad path", "PATCH", k, `{"json_patch": [{"op": "replace", "path": "/a", "value": 9}, {"op": "remove", "path": "/nope/deeper"}]}`, 400, "invalid_argument", nil, -1},
		// A patch with a stale expected_version.
		{"patch stale expected_version", "PATCH", k, `{"merge_patch": {"a": 9}, "expected_version": 1}`, 409, "version_conflict", nil, -1},
		// A delete with a stale expected_version.
		{"delete stale expected_version", "DELETE", k + "?expected_version=1", "", 409, "version_conflict", nil, -1},
		// A value over the 1 MiB limit.
		{"put too large", "PUT", k, big, 413, "too_large", nil, -1},
		// A value nested deeper than 64.
		{"put too deep", "PUT", k, deep, 400, "invalid_argument", nil, -1},
		// A body that is not JSON.
		{"put invalid JSON", "PUT", k, `{"value": {"a": 9},}`, 400, "invalid_argument", nil, -1},
		// A body cut short.
		{"put truncated JSON", "PUT", k, `{"value": {"a": 9`, 400, "invalid_argument", nil, -1},
		// ttl_seconds must be >= 1.
		{"put ttl 0", "PUT", k, `{"value": {"a": 9}, "ttl_seconds": 0}`, 400, "invalid_argument", nil, -1},
		// An unknown strategy.
		{"put unknown strategy", "PUT", k, `{"value": {"a": 9}, "expected_version": 1, "strategy": "coin_flip"}`, 400, "invalid_argument", nil, -1},
		// A batch whose second op conflicts: the first op (a new key) is not written.
		{"batch second op conflicts", "POST", batch, `{"ops": [
			{"op": "put", "tier": "persistent", "key": "fresh-1", "value": 1},
			{"op": "put", "tier": "persistent", "key": "doc", "value": {"a": 9}, "expected_version": 1}]}`,
			409, "version_conflict", []string{"fresh-1"}, 1},
		// A batch whose second op is a create-only put on an existing key.
		{"batch second op already exists", "POST", batch, `{"ops": [
			{"op": "put", "tier": "persistent", "key": "doc", "value": {"a": 9}},
			{"op": "put", "tier": "persistent", "key": "other", "value": "y", "expected_version": 0}]}`,
			409, "already_exists", nil, 1},
		// A batch whose third op's patch test fails: neither earlier op is written.
		{"batch third op patch test fails", "POST", batch, `{"ops": [
			{"op": "put", "tier": "persistent", "key": "fresh-2", "value": 1},
			{"op": "delete", "tier": "persistent", "key": "other"},
			{"op": "patch", "tier": "persistent", "key": "doc", "json_patch": [{"op": "test", "path": "/a", "value": 1}]}]}`,
			409, "version_conflict", []string{"fresh-2"}, 2},
		// A batch whose second op has a bad key.
		{"batch second op bad key", "POST", batch, `{"ops": [
			{"op": "put", "tier": "persistent", "key": "fresh-3", "value": 1},
			{"op": "put", "tier": "persistent", "key": "a/../b", "value": 1}]}`,
			400, "invalid_argument", []string{"fresh-3"}, -1},
		// A batch whose second op's value is too large.
		{"batch second op too large", "POST", batch, `{"ops": [
			{"op": "put", "tier": "persistent", "key": "fresh-4", "value": 1},
			{"op": "put", "tier": "persistent", "key": "doc", "value": "` + strings.Repeat("y", 2<<20) + `"}]}`,
			413, "too_large", []string{"fresh-4"}, -1},
	}

	snapshot := func() (cur, otherCur, hist []byte) {
		cur = p.must(t, http.MethodGet, k, nil, http.StatusOK).Body
		otherCur = p.must(t, http.MethodGet, other, nil, http.StatusOK).Body
		hist = p.must(t, http.MethodGet, historyPath(agent, "persistent", "doc")+"?limit=1000", nil, http.StatusOK).Body
		return
	}
	probeRev := func() int64 {
		var e entry
		p.must(t, http.MethodPut, statePath(agent, "local", "probe"), `{"value": "probe"}`, http.StatusOK, http.StatusCreated).decode(t, &e)
		return e.Revision
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cur0, other0, hist0 := snapshot()
			rev0 := probeRev()

			var body any
			if tc.body != "" {
				body = tc.body
			}
			r := p.do(t, tc.method, tc.target, body)
			checkErrorAnswer(t, r, tc.status, tc.code)
			_, _, details, _ := r.apiError()
			if tc.op >= 0 {
				if got, _ := details["op"].(float64); details["op"] == nil || int(got) != tc.op {
					t.Errorf("%s\nwant details.op = %d (the failing op's index)", r, tc.op)
				}
			}

			if rev1 := probeRev(); rev1 != rev0+1 {
				t.Errorf("after the failed %s %s the store revision moved: probe writes got revisions %d and %d; want %d and %d", tc.method, tc.target, rev0, rev1, rev0, rev0+1)
			}
			cur1, other1, hist1 := snapshot()
			for _, c := range []struct {
				what          string
				before, after []byte
			}{{"GET " + k, cur0, cur1}, {"GET " + other, other0, other1}, {"GET history of doc", hist0, hist1}} {
				if !jsonEqual(c.before, c.after) {
					t.Errorf("the failed request changed %s:\nbefore: %s\nafter:  %s", c.what, bytes.TrimSpace(c.before), bytes.TrimSpace(c.after))
				}
			}
			for _, f := range tc.fresh {
				if r := p.do(t, http.MethodGet, statePath(agent, "persistent", f), nil); r.Status != http.StatusNotFound {
					t.Errorf("the failed batch wrote its op on key %q: %s\nwant 404", f, r)
				}
			}
		})
	}

	// And a request that fails half-way through a body (the client gives up)
	// writes nothing either: the value is sent with a Content-Length larger
	// than what follows.
	t.Run("body shorter than Content-Length", func(t *testing.T) {
		cur0, _, _ := snapshot()
		rev0 := probeRev()
		req, err := http.NewRequest(http.MethodPut, p.base+k, strings.NewReader(`{"value": {"a": 42}`))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = 100
		if resp, err := p.hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Errorf("PUT %s with a truncated body answered %d; want a failure", k, resp.StatusCode)
			}
		}
		if rev1 := probeRev(); rev1 != rev0+1 {
			t.Errorf("store revision moved across a truncated PUT: probes got %d then %d", rev0, rev1)
		}
		if cur1, _, _ := snapshot(); !jsonEqual(cur0, cur1) {
			t.Errorf("a truncated PUT changed the key:\nbefore: %s\nafter:  %s", cur0, cur1)
		}
	})
}
