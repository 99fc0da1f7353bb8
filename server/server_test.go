package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentstate/agentstate/auth"
	"github.com/agentstate/agentstate/state"
	"github.com/agentstate/agentstate/store/sqlite"
)

// env is a server over a real engine over the real embedded store.
type env struct {
	t   testing.TB
	m   *state.Manager
	srv *Server
	ts  *httptest.Server
}

func newEnv(t testing.TB, opts ...func(*Options)) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	streams, err := sqlite.OpenStreams(ctx, t.TempDir(), sqlite.StreamOptions{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatalf("sqlite.OpenStreams: %v", err)
	}
	m, err := state.New(st, state.Options{ReapInterval: -1, Streams: streams})
	if err != nil {
		t.Fatalf("state.New: %v", err)
	}
	o := Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, f := range opts {
		f(&o)
	}
	srv := New(m, o)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		_ = m.Close()
	})
	return &env{t: t, m: m, srv: srv, ts: ts}
}

// reply is a decoded answer.
type reply struct {
	status int
	header http.Header
	raw    []byte
	body   any // JSON decoded with UseNumber; nil if not JSON
}

// do sends a request; hdr is name, value pairs.
func (e *env) do(method, path, body string, hdr ...string) *reply {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatalf("NewRequest %s %s: %v", method, path, err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	r := &reply{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(raw) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&r.body); err != nil {
			r.body = nil
		}
	}
	return r
}

func (r *reply) obj(t testing.TB) map[string]any {
	t.Helper()
	m, ok := r.body.(map[string]any)
	if !ok {
		t.Fatalf("answer is not a JSON object: %d %s", r.status, r.raw)
	}
	return m
}

func (r *reply) want(t testing.TB, status int) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.raw)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	if status == http.StatusNoContent {
		return nil
	}
	return r.obj(t)
}

// wantError checks the error envelope exactly: {"error": {"code",
// "message", "details"}} and returns details.
func (r *reply) wantError(t testing.TB, status int, code string) map[string]any {
	t.Helper()
	if r.status >= 500 && status < 500 {
		t.Fatalf("got a %d, want %d %s: %s", r.status, status, code, r.raw)
	}
	m := r.want(t, status)
	if len(m) != 1 {
		t.Fatalf("error envelope has members %v, want only error: %s", keysOf(m), r.raw)
	}
	e, ok := m["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object: %s", r.raw)
	}
	if got := keysOf(e); !reflect.DeepEqual(got, []string{"code", "details", "message"}) {
		t.Fatalf("error object has members %v, want code, details, message: %s", got, r.raw)
	}
	if e["code"] != code {
		t.Fatalf("error code %v, want %s: %s", e["code"], code, r.raw)
	}
	if msg, _ := e["message"].(string); msg == "" {
		t.Fatalf("empty error message: %s", r.raw)
	}
	d, ok := e["details"].(map[string]any)
	if !ok {
		t.Fatalf("details is not an object: %s", r.raw)
	}
	return d
}

func keysOf(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// jsonEq reports whether a (decoded with UseNumber) equals the JSON text b.
func jsonEq(t testing.TB, a any, b string) bool {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(b))
	dec.UseNumber()
	var bv any
	if err := dec.Decode(&bv); err != nil {
		t.Fatalf("bad test JSON %s: %v", b, err)
	}
	return reflect.DeepEqual(normalize(a), normalize(bv))
}

// normalize re-encodes numbers canonically so 1 and 1.0 compare by value.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

func wantJSON(t testing.TB, what string, got any, want string) {
	t.Helper()
	if !jsonEq(t, got, want) {
		g, _ := json.Marshal(got)
		t.Fatalf("%s = %s, want %s", what, g, want)
	}
}

func num(t testing.TB, v any) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a number", v, v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatalf("%v is not an integer", v)
	}
	return i
}

func (e *env) revision() int64 {
	e.t.Helper()
	r, err := e.m.Revision(context.Background())
	if err != nil {
		e.t.Fatalf("Revision: %v", err)
	}
	return r
}

var entryFields = []string{"agent_id", "checksum", "created_at", "created_by", "expires_at", "key", "metadata", "revision", "tier", "updated_at", "value", "version"}

// checkEntry checks an entry object has exactly API.md's fields, well formed.
func checkEntry(t testing.TB, m map[string]any, agent, tier, key string, version int64, value string) {
	t.Helper()
	want := entryFields
	if got := keysOf(m); !reflect.DeepEqual(got, want) {
		t.Fatalf("entry members %v, want %v", got, want)
	}
	if m["agent_id"] != agent || m["tier"] != tier || m["key"] != key {
		t.Fatalf("entry names %v/%v/%v, want %s/%s/%s", m["agent_id"], m["tier"], m["key"], agent, tier, key)
	}
	if v := num(t, m["version"]); v != version {
		t.Fatalf("version %d, want %d", v, version)
	}
	if num(t, m["revision"]) < 1 {
		t.Fatalf("revision %v < 1", m["revision"])
	}
	wantJSON(t, "value", m["value"], value)
	for _, f := range []string{"created_at", "updated_at"} {
		checkTime(t, f, m[f])
	}
	if m["expires_at"] != nil {
		checkTime(t, "expires_at", m["expires_at"])
	}
	if cs, _ := m["checksum"].(string); !strings.HasPrefix(cs, "sha256:") || len(cs) != len("sha256:")+64 {
		t.Fatalf("checksum %v", m["checksum"])
	}
	if _, ok := m["metadata"].(map[string]any); !ok {
		t.Fatalf("metadata %v is not an object", m["metadata"])
	}
}

func checkTime(t testing.TB, field string, v any) {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%s = %v, not a string", field, v)
	}
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("%s = %q: %v", field, s, err)
	}
	if !strings.HasSuffix(s, "Z") || !strings.Contains(s, ".") {
		t.Fatalf("%s = %q: want UTC (Z) with fractional seconds", field, s)
	}
	if d := time.Since(tm); d < -time.Hour || d > 24*time.Hour {
		t.Fatalf("%s = %q is not around now", field, s)
	}
}

const entryPath = "/v1/agents/agent-1/state/local/prefs/ui"

func TestEntryLifecycle(t *testing.T) {
	e := newEnv(t)

	// Create: 201, the entry, ETag.
	r := e.do("PUT", entryPath, `{"value": {"theme": "dark"}}`)
	m := r.want(t, http.StatusCreated)
	checkEntry(t, m, "agent-1", "local", "prefs/ui", 1, `{"theme":"dark"}`)
	if m["expires_at"] != nil {
		t.Fatalf("expires_at = %v, want null", m["expires_at"])
	}
	wantJSON(t, "metadata", m["metadata"], `{}`)
	if m["created_by"] != "anonymous" {
		t.Fatalf("created_by = %v, want anonymous", m["created_by"])
	}
	if got := r.header.Get("ETag"); got != `"1"` {
		t.Fatalf("ETag %q, want \"1\"", got)
	}
	created := m["created_at"]
	rev1 := num(t, m["revision"])

	// Read.
	r = e.do("GET", entryPath, "")
	m = r.want(t, http.StatusOK)
	checkEntry(t, m, "agent-1", "local", "prefs/ui", 1, `{"theme":"dark"}`)
	if r.header.Get("ETag") != `"1"` {
		t.Fatalf("GET ETag %q", r.header.Get("ETag"))
	}

	// Update: 200; created_at kept, revision grows.
	r = e.do("PUT", entryPath, `{"value": {"theme": "light"}, "change_summary": "lighter", "metadata": {"source": "test"}}`)
	m = r.want(t, http.StatusOK)
	checkEntry(t, m, "agent-1", "local", "prefs/ui", 2, `{"theme":"light"}`)
	wantJSON(t, "metadata", m["metadata"], `{"source":"test"}`)
	if m["created_at"] != created {
		t.Fatalf("created_at changed on update: %v -> %v", created, m["created_at"])
	}
	if num(t, m["revision"]) != rev1+1 {
		t.Fatalf("revision %v, want %d", m["revision"], rev1+1)
	}
	if r.header.Get("ETag") != `"2"` {
		t.Fatalf("ETag %q", r.header.Get("ETag"))
	}

	// Old version still readable; at_revision too.
	m = e.do("GET", entryPath+"?version=1", "").want(t, http.StatusOK)
	checkEntry(t, m, "agent-1", "local", "prefs/ui", 1, `{"theme":"dark"}`)
	m = e.do("GET", entryPath+fmt.Sprintf("?at_revision=%d", rev1), "").want(t, http.StatusOK)
	checkEntry(t, m, "agent-1", "local", "prefs/ui", 1, `{"theme":"dark"}`)
	m = e.do("GET", entryPath+"?consistency=eventual", "").want(t, http.StatusOK)
	checkEntry(t, m, "agent-1", "local", "prefs/ui", 2, `{"theme":"light"}`)

	// HEAD answers like GET without a body.
	r = e.do("HEAD", entryPath, "")
	if r.status != http.StatusOK || len(r.raw) != 0 || r.header.Get("ETag") != `"2"` {
		t.Fatalf("HEAD: %d %q ETag %q", r.status, r.raw, r.header.Get("ETag"))
	}

	// Delete: {"version", "revision"} exactly.
	r = e.do("DELETE", entryPath, "")
	m = r.want(t, http.StatusOK)
	if got := keysOf(m); !reflect.DeepEqual(got, []string{"revision", "version"}) {
		t.Fatalf("delete answer members %v", got)
	}
	if num(t, m["version"]) != 3 || num(t, m["revision"]) != rev1+2 {
		t.Fatalf("delete answer %s", r.raw)
	}
	e.do("GET", entryPath, "").wantError(t, http.StatusNotFound, CodeNotFound)
	if d := e.do("DELETE", entryPath, "").wantError(t, http.StatusNotFound, CodeNotFound); len(d) != 0 {
		t.Fatalf("single delete 404 details %v, want {}", d)
	}

	// A later write creates again (201) and continues the numbering.
	r = e.do("PUT", entryPath, `{"value": null}`)
	m = r.want(t, http.StatusCreated)
	checkEntry(t, m, "agent-1", "local", "prefs/ui", 4, `null`)
	m = e.do("GET", entryPath, "").want(t, http.StatusOK)
	checkEntry(t, m, "agent-1", "local", "prefs/ui", 4, `null`)
}

func TestPutTTLAndTimes(t *testing.T) {
	e := newEnv(t)
	m := e.do("PUT", "/v1/agents/a/state/persistent/k", `{"value": 1, "ttl_seconds": 600}`).want(t, http.StatusCreated)
	checkEntry(t, m, "a", "persistent", "k", 1, `1`)
	exp, err := time.Parse(time.RFC3339Nano, m["expires_at"].(string))
	if err != nil {
		t.Fatal(err)
	}
	upd, _ := time.Parse(time.RFC3339Nano, m["updated_at"].(string))
	if d := exp.Sub(upd); d < 599*time.Second || d > 601*time.Second {
		t.Fatalf("expires_at - updated_at = %v, want 600s", d)
	}
	// The session tier has a default TTL.
	m = e.do("PUT", "/v1/agents/a/state/session/s1/tool", `{"value": "x"}`).want(t, http.StatusCreated)
	if m["expires_at"] == nil {
		t.Fatalf("session entry has no expires_at")
	}
}

func TestConditionalWrites(t *testing.T) {
	e := newEnv(t)
	const p = "/v1/agents/a/state/shared/doc"

	// expected_version 0: create only.
	e.do("PUT", p, `{"value": {"n": 1}, "expected_version": 0}`).want(t, http.StatusCreated)
	d := e.do("PUT", p, `{"value": {"n": 9}, "expected_version": 0}`).wantError(t, http.StatusConflict, CodeAlreadyExists)
	wantJSON(t, "already_exists details", d, `{"state_key":"doc","local_version":0,"remote_version":1,"local_value":{"n":9},"remote_value":{"n":1},"conflict_type":"concurrent_modification"}`)

	// Matching expected_version.
	e.do("PUT", p, `{"value": {"n": 2}, "expected_version": 1}`).want(t, http.StatusOK)

	// Stale expected_version: 409 with API.md's details.
	d = e.do("PUT", p, `{"value": {"n": 3}, "expected_version": 1}`).wantError(t, http.StatusConflict, CodeVersionConflict)
	wantJSON(t, "version_conflict details", d, `{"state_key":"doc","local_version":1,"remote_version":2,"local_value":{"n":3},"remote_value":{"n":2},"conflict_type":"concurrent_modification"}`)

	// If-Match as expected_version.
	e.do("PUT", p, `{"value": {"n": 3}}`, "If-Match", `"1"`).wantError(t, http.StatusConflict, CodeVersionConflict)
	r := e.do("PUT", p, `{"value": {"n": 3}}`, "If-Match", `"2"`)
	r.want(t, http.StatusOK)
	if r.header.Get("ETag") != `"3"` {
		t.Fatalf("ETag %q", r.header.Get("ETag"))
	}
	// If-Match and an agreeing expected_version.
	e.do("PUT", p, `{"value": {"n": 4}, "expected_version": 3}`, "If-Match", `"3"`).want(t, http.StatusOK)
	// Disagreeing: 400, nothing written.
	e.do("PUT", p, `{"value": {"n": 5}, "expected_version": 4}`, "If-Match", `"3"`).wantError(t, http.StatusBadRequest, CodeInvalidArgument)

	// If-None-Match: * = create only.
	e.do("PUT", p, `{"value": 0}`, "If-None-Match", "*").wantError(t, http.StatusConflict, CodeAlreadyExists)
	e.do("PUT", "/v1/agents/a/state/shared/new", `{"value": 0}`, "If-None-Match", "*").want(t, http.StatusCreated)

	// Conditional delete, by query and by If-Match.
	e.do("DELETE", p+"?expected_version=1", "").wantError(t, http.StatusConflict, CodeVersionConflict)
	e.do("DELETE", p, "", "If-Match", `"1"`).wantError(t, http.StatusConflict, CodeVersionConflict)
	e.do("DELETE", p+"?expected_version=4", "").want(t, http.StatusOK)

	// Writing a deleted key with its old version: deleted_modified.
	d = e.do("PUT", p, `{"value": {"n": 6}, "expected_version": 4}`).wantError(t, http.StatusConflict, CodeVersionConflict)
	wantJSON(t, "deleted_modified details", d, `{"state_key":"doc","local_version":4,"remote_version":0,"local_value":{"n":6},"remote_value":null,"conflict_type":"deleted_modified"}`)

	m := e.do("GET", p+"?version=4", "").want(t, http.StatusOK)
	wantJSON(t, "value", m["value"], `{"n":4}`)
}

func TestStrategies(t *testing.T) {
	e := newEnv(t)
	const p = "/v1/agents/a/state/local/k"
	e.do("PUT", p, `{"value": "first"}`).want(t, http.StatusCreated)
	e.do("PUT", p, `{"value": "second"}`).want(t, http.StatusOK)

	// first_writer_wins: 200, the current entry, and the conflict.
	r := e.do("PUT", p, `{"value": "mine", "expected_version": 1, "strategy": "first_writer_wins"}`)
	m := r.want(t, http.StatusOK)
	conflict, ok := m["conflict"].(map[string]any)
	if !ok {
		t.Fatalf("no conflict object: %s", r.raw)
	}
	delete(m, "conflict")
	checkEntry(t, m, "a", "local", "k", 2, `"second"`)
	wantJSON(t, "conflict", conflict, `{"state_key":"k","local_version":1,"remote_version":2,"local_value":"mine","remote_value":"second","conflict_type":"concurrent_modification"}`)
	if r.header.Get("ETag") != `"2"` {
		t.Fatalf("ETag %q", r.header.Get("ETag"))
	}

	// last_writer_wins: written whatever the version.
	m = e.do("PUT", p, `{"value": "lww", "expected_version": 1, "strategy": "last_writer_wins"}`).want(t, http.StatusOK)
	checkEntry(t, m, "a", "local", "k", 3, `"lww"`)

	// fail (explicit) is the default.
	e.do("PUT", p, `{"value": "x", "expected_version": 1, "strategy": "fail"}`).wantError(t, http.StatusConflict, CodeVersionConflict)
}

func TestPatch(t *testing.T) {
	e := newEnv(t)
	const p = "/v1/agents/a/state/local/doc"
	e.do("PUT", p, `{"value": {"a": 1, "b": {"c": 2}}}`).want(t, http.StatusCreated)

	r := e.do("PATCH", p, `{"json_patch": [{"op": "replace", "path": "/a", "value": 10}, {"op": "add", "path": "/d", "value": [1]}]}`)
	m := r.want(t, http.StatusOK)
	checkEntry(t, m, "a", "local", "doc", 2, `{"a":10,"b":{"c":2},"d":[1]}`)
	if r.header.Get("ETag") != `"2"` {
		t.Fatalf("ETag %q", r.header.Get("ETag"))
	}

	m = e.do("PATCH", p, `{"merge_patch": {"b": null, "e": "x"}, "expected_version": 2, "change_summary": "merge"}`).want(t, http.StatusOK)
	checkEntry(t, m, "a", "local", "doc", 3, `{"a":10,"d":[1],"e":"x"}`)

	// A failing test op: 409 version_conflict, nothing written.
	d := e.do("PATCH", p, `{"json_patch": [{"op": "test", "path": "/a", "value": 11}, {"op": "remove", "path": "/a"}]}`).wantError(t, http.StatusConflict, CodeVersionConflict)
	wantJSON(t, "patch test details", d, `{"state_key":"doc","local_version":null,"remote_version":3,"local_value":null,"remote_value":{"a":10,"d":[1],"e":"x"},"conflict_type":"concurrent_modification"}`)

	// Stale expected_version, via If-Match.
	d = e.do("PATCH", p, `{"merge_patch": {"a": 0}}`, "If-Match", `"2"`).wantError(t, http.StatusConflict, CodeVersionConflict)
	if num(t, d["local_version"]) != 2 || num(t, d["remote_version"]) != 3 {
		t.Fatalf("details %v", d)
	}

	// Absent key.
	e.do("PATCH", "/v1/agents/a/state/local/nope", `{"merge_patch": {"a": 1}}`).wantError(t, http.StatusNotFound, CodeNotFound)

	m = e.do("GET", p, "").want(t, http.StatusOK)
	checkEntry(t, m, "a", "local", "doc", 3, `{"a":10,"d":[1],"e":"x"}`)
}

func TestList(t *testing.T) {
	e := newEnv(t)
	for _, k := range []string{"b/2", "a/1", "a/2", "a/x/3", "c"} {
		e.do("PUT", "/v1/agents/lister/state/persistent/"+k, fmt.Sprintf(`{"value": %q}`, k)).want(t, http.StatusCreated)
	}
	e.do("PUT", "/v1/agents/other/state/persistent/a/9", `{"value": 1}`).want(t, http.StatusCreated)

	keysOfList := func(m map[string]any) []string {
		var out []string
		for _, x := range m["entries"].([]any) {
			out = append(out, x.(map[string]any)["key"].(string))
		}
		return out
	}

	m := e.do("GET", "/v1/agents/lister/state/persistent", "").want(t, http.StatusOK)
	if got := keysOf(m); !reflect.DeepEqual(got, []string{"entries", "next_cursor"}) {
		t.Fatalf("list members %v", got)
	}
	if got := keysOfList(m); !reflect.DeepEqual(got, []string{"a/1", "a/2", "a/x/3", "b/2", "c"}) {
		t.Fatalf("keys %v", got)
	}
	if m["next_cursor"] != nil {
		t.Fatalf("next_cursor %v, want null", m["next_cursor"])
	}
	checkEntry(t, m["entries"].([]any)[0].(map[string]any), "lister", "persistent", "a/1", 1, `"a/1"`)

	m = e.do("GET", "/v1/agents/lister/state/persistent?prefix=a/", "").want(t, http.StatusOK)
	if got := keysOfList(m); !reflect.DeepEqual(got, []string{"a/1", "a/2", "a/x/3"}) {
		t.Fatalf("prefix keys %v", got)
	}
	m = e.do("GET", "/v1/agents/lister/state/persistent?pattern=a/*", "").want(t, http.StatusOK)
	if got := keysOfList(m); !reflect.DeepEqual(got, []string{"a/1", "a/2"}) {
		t.Fatalf("pattern keys %v", got)
	}
	m = e.do("GET", "/v1/agents/lister/state/persistent?pattern=**/3", "").want(t, http.StatusOK)
	if got := keysOfList(m); !reflect.DeepEqual(got, []string{"a/x/3"}) {
		t.Fatalf("pattern ** keys %v", got)
	}

	// Paging.
	var all []string
	cursor := ""
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatal("paging does not end")
		}
		path := "/v1/agents/lister/state/persistent?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		m = e.do("GET", path, "").want(t, http.StatusOK)
		ks := keysOfList(m)
		if len(ks) > 2 {
			t.Fatalf("page of %d > limit 2", len(ks))
		}
		all = append(all, ks...)
		if m["next_cursor"] == nil {
			break
		}
		cursor = m["next_cursor"].(string)
	}
	if !reflect.DeepEqual(all, []string{"a/1", "a/2", "a/x/3", "b/2", "c"}) {
		t.Fatalf("paged keys %v", all)
	}

	// values=false: entries without "value".
	m = e.do("GET", "/v1/agents/lister/state/persistent?values=false&limit=1", "").want(t, http.StatusOK)
	first := m["entries"].([]any)[0].(map[string]any)
	if _, has := first["value"]; has {
		t.Fatalf("values=false entry has a value: %v", first)
	}
	if m["next_cursor"] == nil {
		t.Fatal("no next_cursor on a partial page")
	}

	// An empty list.
	m = e.do("GET", "/v1/agents/nobody/state/local", "").want(t, http.StatusOK)
	wantJSON(t, "empty list", m, `{"entries":[],"next_cursor":null}`)
}

func TestBatch(t *testing.T) {
	e := newEnv(t)
	e.do("PUT", "/v1/agents/b/state/local/x", `{"value": 1}`).want(t, http.StatusCreated)
	rev0 := e.revision()

	r := e.do("POST", "/v1/agents/b/batch/write", `{"ops": [
		{"op": "put", "tier": "local", "key": "y", "value": {"v": 2}},
		{"op": "patch", "tier": "local", "key": "x", "merge_patch": 5, "expected_version": 1},
		{"op": "put", "tier": "session", "key": "s/1", "value": "t", "ttl_seconds": 60}
	], "change_summary": "batch"}`)
	m := r.want(t, http.StatusOK)
	wantJSON(t, "batch write answer", m, fmt.Sprintf(`{"revision": %d, "results": [
		{"tier": "local", "key": "y", "version": 1},
		{"tier": "local", "key": "x", "version": 2},
		{"tier": "session", "key": "s/1", "version": 1}]}`, rev0+1))

	r = e.do("POST", "/v1/agents/b/batch/write", `{"ops": [{"op": "delete", "tier": "local", "key": "y"}]}`)
	m = r.want(t, http.StatusOK)
	wantJSON(t, "delete results", m["results"], `[{"tier": "local", "key": "y", "version": 2}]`)

	// A conflict: 409 naming the op, nothing written.
	rev1 := e.revision()
	d := e.do("POST", "/v1/agents/b/batch/write", `{"ops": [
		{"op": "put", "tier": "local", "key": "z", "value": 1},
		{"op": "put", "tier": "local", "key": "x", "value": "stale", "expected_version": 1}
	]}`).wantError(t, http.StatusConflict, CodeVersionConflict)
	wantJSON(t, "batch conflict details", d, `{"op":1,"state_key":"x","local_version":1,"remote_version":2,"local_value":"stale","remote_value":5,"conflict_type":"concurrent_modification"}`)
	d = e.do("POST", "/v1/agents/b/batch/write", `{"ops": [
		{"op": "put", "tier": "local", "key": "z", "value": 1},
		{"op": "put", "tier": "local", "key": "x", "value": "stale", "expected_version": 0}
	]}`).wantError(t, http.StatusConflict, CodeAlreadyExists)
	if num(t, d["op"]) != 1 {
		t.Fatalf("details %v", d)
	}
	d = e.do("POST", "/v1/agents/b/batch/write", `{"ops": [
		{"op": "put", "tier": "local", "key": "z", "value": 1},
		{"op": "delete", "tier": "local", "key": "absent"}
	]}`).wantError(t, http.StatusNotFound, CodeNotFound)
	if num(t, d["op"]) != 1 {
		t.Fatalf("details %v", d)
	}
	d = e.do("POST", "/v1/agents/b/batch/write", `{"ops": [
		{"op": "put", "tier": "local", "key": "z", "value": 1},
		{"op": "patch", "tier": "local", "key": "x", "json_patch": [{"op": "test", "path": "", "value": 4}]}
	]}`).wantError(t, http.StatusConflict, CodeVersionConflict)
	if num(t, d["op"]) != 1 {
		t.Fatalf("details %v", d)
	}
	if e.revision() != rev1 {
		t.Fatalf("a failed batch moved the revision %d -> %d", rev1, e.revision())
	}
	e.do("GET", "/v1/agents/b/state/local/z", "").wantError(t, http.StatusNotFound, CodeNotFound)

	// Batch get: entries in request order, missing ones listed.
	m = e.do("POST", "/v1/agents/b/batch/get", `{"keys": [
		{"tier": "session", "key": "s/1"}, {"tier": "local", "key": "nope"},
		{"tier": "local", "key": "x"}, {"tier": "local", "key": "y"}]}`).want(t, http.StatusOK)
	if got := keysOf(m); !reflect.DeepEqual(got, []string{"entries", "missing"}) {
		t.Fatalf("batch get members %v", got)
	}
	es := m["entries"].([]any)
	if len(es) != 2 {
		t.Fatalf("entries %v", es)
	}
	checkEntry(t, es[0].(map[string]any), "b", "session", "s/1", 1, `"t"`)
	checkEntry(t, es[1].(map[string]any), "b", "local", "x", 2, `5`)
	wantJSON(t, "missing", m["missing"], `[{"tier":"local","key":"nope"},{"tier":"local","key":"y"}]`)

	m = e.do("POST", "/v1/agents/b/batch/get?consistency=eventual", `{"keys": [{"tier": "local", "key": "none"}]}`).want(t, http.StatusOK)
	wantJSON(t, "all missing", m, `{"entries":[],"missing":[{"tier":"local","key":"none"}]}`)
}

func TestHistoryDiffRollback(t *testing.T) {
	e := newEnv(t)
	const base = "/v1/agents/h/%s/persistent/cfg"
	p := fmt.Sprintf(base, "state")
	e.do("PUT", p, `{"value": {"a": 1, "b": 2, "h": "<b>&"}, "change_summary": "first"}`).want(t, http.StatusCreated)
	e.do("PUT", p, `{"value": {"a": 1, "b": 3, "c": 4, "h": "<b>&"}}`).want(t, http.StatusOK)
	e.do("DELETE", p, "").want(t, http.StatusOK)
	e.do("PUT", p, `{"value": {"a": 2}}`).want(t, http.StatusCreated)

	r := e.do("GET", fmt.Sprintf(base, "history"), "")
	m := r.want(t, http.StatusOK)
	if got := keysOf(m); !reflect.DeepEqual(got, []string{"branches", "current_version", "versions"}) {
		t.Fatalf("history members %v", got)
	}
	wantJSON(t, "branches", m["branches"], `[]`)
	if num(t, m["current_version"]) != 4 {
		t.Fatalf("current_version %v", m["current_version"])
	}
	vs := m["versions"].([]any)
	if len(vs) != 4 {
		t.Fatalf("%d versions", len(vs))
	}
	wantTypes := []string{"create", "delete", "update", "create"}
	for i, x := range vs {
		v := x.(map[string]any)
		if got := keysOf(v); !reflect.DeepEqual(got, []string{"change_summary", "change_type", "checksum", "created_at", "created_by", "parent_version", "revision", "version"}) {
			t.Fatalf("version members %v", got)
		}
		if num(t, v["version"]) != int64(4-i) || v["change_type"] != wantTypes[i] {
			t.Fatalf("version %d: %v", i, v)
		}
		checkTime(t, "created_at", v["created_at"])
		if v["created_by"] != "anonymous" {
			t.Fatalf("created_by %v", v["created_by"])
		}
	}
	if vs[3].(map[string]any)["parent_version"] != nil {
		t.Fatalf("first version's parent_version %v, want null", vs[3].(map[string]any)["parent_version"])
	}
	if num(t, vs[0].(map[string]any)["parent_version"]) != 3 {
		t.Fatalf("parent_version %v", vs[0].(map[string]any)["parent_version"])
	}
	if vs[3].(map[string]any)["change_summary"] != "first" {
		t.Fatalf("change_summary %v", vs[3].(map[string]any)["change_summary"])
	}

	// Paging and diffs.
	r = e.do("GET", fmt.Sprintf(base, "history")+"?include_diff=true", "")
	m = r.want(t, http.StatusOK)
	if bytes.Contains(r.raw, []byte(`\u003c`)) {
		t.Fatalf("HTML characters escaped in the history: %s", r.raw)
	}
	m = e.do("GET", fmt.Sprintf(base, "history")+"?limit=1&before_version=3&include_diff=true", "").want(t, http.StatusOK)
	vs = m["versions"].([]any)
	if len(vs) != 1 || num(t, vs[0].(map[string]any)["version"]) != 2 {
		t.Fatalf("paged history %v", vs)
	}
	wantJSON(t, "diff of v2", vs[0].(map[string]any)["diff"], `{"added":{"/c":4},"modified":{"/b":{"old":2,"new":3}},"removed":[]}`)

	// Diff, both formats.
	m = e.do("GET", fmt.Sprintf(base, "diff")+"?from=1&to=2", "").want(t, http.StatusOK)
	wantJSON(t, "diff", m, `{"added":{"/c":4},"modified":{"/b":{"old":2,"new":3}},"removed":[]}`)
	r = e.do("GET", fmt.Sprintf(base, "diff")+"?from=2&to=4&format=json-patch", "")
	if r.status != http.StatusOK {
		t.Fatalf("json-patch diff: %d %s", r.status, r.raw)
	}
	ops, ok := r.body.([]any)
	if !ok || len(ops) == 0 {
		t.Fatalf("json-patch diff is not a non-empty array: %s", r.raw)
	}
	e.do("GET", fmt.Sprintf(base, "diff")+"?from=1&to=3", "").wantError(t, http.StatusNotFound, CodeNotFound)

	// Rollback: a new version, change_type restore.
	r = e.do("POST", fmt.Sprintf(base, "rollback"), `{"version": 1}`)
	m = r.want(t, http.StatusOK)
	checkEntry(t, m, "h", "persistent", "cfg", 5, `{"a":1,"b":2,"h":"<b>&"}`)
	if !bytes.Contains(r.raw, []byte(`"<b>&"`)) {
		t.Fatalf("HTML characters escaped in the answer: %s", r.raw)
	}
	if r.header.Get("ETag") != `"5"` {
		t.Fatalf("ETag %q", r.header.Get("ETag"))
	}
	m = e.do("GET", fmt.Sprintf(base, "history")+"?limit=1", "").want(t, http.StatusOK)
	if v := m["versions"].([]any)[0].(map[string]any); v["change_type"] != "restore" {
		t.Fatalf("rollback change_type %v", v["change_type"])
	}
	e.do("POST", fmt.Sprintf(base, "rollback"), `{"version": 1}`, "If-Match", `"4"`).wantError(t, http.StatusConflict, CodeVersionConflict)
	e.do("POST", fmt.Sprintf(base, "rollback"), `{"version": 3}`).wantError(t, http.StatusNotFound, CodeNotFound)
}

func TestHealth(t *testing.T) {
	e := newEnv(t)
	wantJSON(t, "healthz", e.do("GET", "/healthz", "").want(t, http.StatusOK), `{"status":"ok"}`)
	wantJSON(t, "readyz", e.do("GET", "/readyz", "").want(t, http.StatusOK), `{"status":"ready"}`)
	e.do("POST", "/healthz", "").wantError(t, http.StatusMethodNotAllowed, CodeMethodNotAllowed)

	if err := e.m.Close(); err != nil {
		t.Fatal(err)
	}
	e.do("GET", "/readyz", "").wantError(t, http.StatusServiceUnavailable, CodeUnavailable)
	e.do("GET", entryPath, "").wantError(t, http.StatusServiceUnavailable, CodeUnavailable)
	e.do("GET", "/healthz", "").want(t, http.StatusOK)
}

func TestMethodsAndRoutes(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		method, path, allow string
	}{
		{"POST", entryPath, "DELETE, GET, HEAD, OPTIONS, PATCH, PUT"},
		{"PUT", "/v1/agents/a/state/local", "GET, HEAD, OPTIONS"},
		{"GET", "/v1/agents/a/batch/write", "OPTIONS, POST"},
		{"DELETE", "/v1/agents/a/history/local/k", "GET, HEAD, OPTIONS"},
		{"GET", "/v1/agents/a/rollback/local/k", "OPTIONS, POST"},
		{"PUT", "/readyz", "GET, HEAD, OPTIONS"},
	} {
		r := e.do(c.method, c.path, "")
		d := r.wantError(t, http.StatusMethodNotAllowed, CodeMethodNotAllowed)
		if got := r.header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
		if d["allow"] != c.allow {
			t.Errorf("%s %s: details.allow %v", c.method, c.path, d["allow"])
		}
	}
	r := e.do("OPTIONS", entryPath, "")
	if r.status != http.StatusNoContent || r.header.Get("Allow") == "" {
		t.Fatalf("OPTIONS: %d Allow %q", r.status, r.header.Get("Allow"))
	}
	for _, p := range []string{"/", "/v1", "/v1/", "/v2/agents/a/state/local/k", "/v1/agents/a", "/v1/agents/a/state",
		"/v1/agents/a/batch", "/v1/agents/a/batch/get/x", "/v1/agents/a/history", "/healthz/x", "/metrics/../healthz"} {
		e.do("GET", p, "").wantError(t, http.StatusNotFound, CodeNotFound)
	}
}

func TestNoRedirects(t *testing.T) {
	e := newEnv(t)
	client := e.ts.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, p := range []string{
		"/v1/agents/a/history/local", "/v1/agents/a/diff/local", "/v1/agents/a/rollback/local",
		"/v1/agents/a/state/local/a/../b", "/v1/agents/a/state/local/a//b", "/v1/agents/a/state/local/./b",
		"/v1//agents/a/state/local/b", "//healthz", "/./readyz", "/v1/agents/a/state/local/%2E%2E/b",
	} {
		for _, method := range []string{"GET", "PUT", "POST"} {
			req, _ := http.NewRequest(method, e.ts.URL+p, strings.NewReader(`{"value":1}`))
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode >= 300 && resp.StatusCode < 400 || resp.StatusCode >= 500 {
				t.Errorf("%s %s: %d (Location %q)", method, p, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
	}
	if e.revision() != 0 {
		t.Fatalf("bad paths wrote: revision %d", e.revision())
	}
}

// Concurrent read-modify-write over HTTP with If-Match loses no update.
func TestConcurrentIfMatch(t *testing.T) {
	e := newEnv(t)
	const p = "/v1/agents/c/state/shared/counter"
	e.do("PUT", p, `{"value": 0}`).want(t, http.StatusCreated)
	const workers, each = 6, 5
	var wg sync.WaitGroup
	errs := make(chan string, workers)
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			client := e.ts.Client()
			for done := 0; done < each; {
				resp, err := client.Get(e.ts.URL + p)
				if err != nil {
					errs <- err.Error()
					return
				}
				var ent struct{ Value int64 }
				_ = json.NewDecoder(resp.Body).Decode(&ent)
				resp.Body.Close()
				tag := resp.Header.Get("ETag")
				req, _ := http.NewRequest("PUT", e.ts.URL+p, strings.NewReader(fmt.Sprintf(`{"value": %d}`, ent.Value+1)))
				req.Header.Set("If-Match", tag)
				resp, err = client.Do(req)
				if err != nil {
					errs <- err.Error()
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					done++
				case http.StatusConflict:
				default:
					errs <- fmt.Sprintf("PUT: %d", resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	m := e.do("GET", p, "").want(t, http.StatusOK)
	if got := num(t, m["value"]); got != workers*each {
		t.Fatalf("counter %d, want %d", got, workers*each)
	}
	if got := num(t, m["version"]); got != workers*each+1 {
		t.Fatalf("version %d, want %d", got, workers*each+1)
	}
}

func TestAuthenticator(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Authenticator = AuthenticatorFunc(func(r *http.Request) (auth.Principal, error) {
			if r.Header.Get("Authorization") != "Bearer good" {
				return auth.Principal{}, fmt.Errorf("bad token: %w", auth.ErrUnauthenticated)
			}
			return auth.Principal{ID: "alice", Roles: []string{"admin"}}, nil
		})
	})
	r := e.do("PUT", entryPath, `{"value": 1}`)
	r.wantError(t, http.StatusUnauthorized, CodeUnauthenticated)
	if r.header.Get("WWW-Authenticate") == "" {
		t.Fatal("401 without WWW-Authenticate")
	}
	m := e.do("PUT", entryPath, `{"value": 1}`, "Authorization", "Bearer good").want(t, http.StatusCreated)
	if m["created_by"] != "alice" {
		t.Fatalf("created_by %v, want alice", m["created_by"])
	}
	// Probes need no credentials.
	e.do("GET", "/healthz", "").want(t, http.StatusOK)
	e.do("GET", "/readyz", "").want(t, http.StatusOK)
}

func TestRequestID(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/healthz", "", "X-Request-Id", "abc-123")
	if r.header.Get("X-Request-Id") != "abc-123" {
		t.Fatalf("X-Request-Id %q", r.header.Get("X-Request-Id"))
	}
	r = e.do("GET", "/healthz", "", "X-Request-Id", "bad id!")
	if id := r.header.Get("X-Request-Id"); id == "" || id == "bad id!" {
		t.Fatalf("X-Request-Id %q", id)
	}
}

func TestPanicRecovery(t *testing.T) {
	var logs bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&logs, nil))}
	h := s.observe(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/x", nil))
	if rec.Code != http.StatusInternalServerError || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("panic answered %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var body struct {
		Error struct {
			Code    string
			Details map[string]any
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error.Code != CodeInternal || body.Error.Details["request_id"] == "" {
		t.Fatalf("panic body %s (%v)", rec.Body, err)
	}
	if !strings.Contains(logs.String(), "boom") {
		t.Fatalf("panic not logged: %s", logs.String())
	}
}

func TestServe(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

// A body without a Content-Length (chunked) is capped while it is read.
func TestChunkedBodyTooLarge(t *testing.T) {
	e := newEnv(t)
	body := io.MultiReader(strings.NewReader(`{"value": "`), strings.NewReader(strings.Repeat("x", 2<<20)), strings.NewReader(`"}`))
	req, _ := http.NewRequest("PUT", e.ts.URL+entryPath, body)
	req.ContentLength = -1
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(raw), `"too_large"`) {
		t.Fatalf("%d %s", resp.StatusCode, raw)
	}
	if e.revision() != 0 {
		t.Fatal("an oversized body wrote")
	}
}
