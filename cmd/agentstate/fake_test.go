package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// exchange is one request the fake server expects and its answer.
type exchange struct {
	method string
	path   string // escaped path
	query  string // expected query, compared as url.Values
	body   string // expected JSON body, compared semantically; "" = none
	auth   string // expected Authorization header ("" = absent)

	status int
	reply  string
	ctype  string
}

// fakeServer mimics the API: it answers the expected exchanges in order and
// fails the test on anything else.
type fakeServer struct {
	t    testing.TB
	mu   sync.Mutex
	exs  []exchange
	next int
	url  string
}

func newFake(t testing.TB, exs ...exchange) *fakeServer {
	t.Helper()
	f := &fakeServer{t: t, exs: exs}
	srv := httptest.NewServer(http.HandlerFunc(f.handle))
	f.url = srv.URL
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.next != len(f.exs) {
			t.Errorf("fake server: %d of %d expected requests received", f.next, len(f.exs))
		}
	})
	return f
}

func (f *fakeServer) handle(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if f.next >= len(f.exs) {
		f.mu.Unlock()
		f.t.Errorf("fake server: unexpected request %s %s", r.Method, r.URL)
		http.Error(w, "unexpected", http.StatusTeapot)
		return
	}
	ex := f.exs[f.next]
	f.next++
	f.mu.Unlock()

	t := f.t
	body, _ := io.ReadAll(r.Body)
	if ex.method != r.Method || ex.path != r.URL.EscapedPath() {
		t.Errorf("request = %s %s, want %s %s", r.Method, r.URL.EscapedPath(), ex.method, ex.path)
	}
	want, _ := url.ParseQuery(ex.query)
	if got := r.URL.Query(); got.Encode() != want.Encode() {
		t.Errorf("%s %s: query = %q, want %q", r.Method, ex.path, got.Encode(), want.Encode())
	}
	switch {
	case ex.body == "" && len(body) > 0:
		t.Errorf("%s %s: unexpected body %s", r.Method, ex.path, body)
	case ex.body != "" && !jsonEqual(body, []byte(ex.body)):
		t.Errorf("%s %s: body = %s, want %s", r.Method, ex.path, body, ex.body)
	}
	if got := r.Header.Get("Authorization"); got != ex.auth {
		t.Errorf("Authorization = %q, want %q", got, ex.auth)
	}
	ct := ex.ctype
	if ct == "" {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	status := ex.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, ex.reply)
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// runCLI runs the command line with env as the whole environment.
func runCLI(t testing.TB, args []string, env map[string]string, stdin string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errb, getenv)
	return code, out.String(), errb.String()
}

// apiError renders the contract's error envelope.
func apiError(code, message, details string) string {
	if details == "" {
		details = "{}"
	}
	return `{"error":{"code":"` + code + `","message":"` + message + `","details":` + details + `}}`
}

// entry renders an entry answer.
func entry(tier, key, value string, version, revision int) string {
	b, _ := json.Marshal(map[string]any{
		"agent_id": "default", "tier": tier, "key": key, "value": json.RawMessage(value),
		"version": version, "revision": revision,
		"created_at": "2025-01-02T03:04:05.123Z", "updated_at": "2025-01-03T04:05:06.5Z",
		"expires_at": nil, "created_by": "anonymous", "checksum": "sha256:00", "metadata": map[string]any{},
	})
	return string(b)
}
