package client

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// exchange is one request the fake server expects and its answer.
type exchange struct {
	method string
	path   string            // escaped path, as on the wire
	query  string            // expected raw query ("" = none); compared as url.Values
	body   string            // expected JSON body, compared semantically; "" = no body
	header map[string]string // extra headers expected (value "" = header absent)

	status int
	reply  string // answer body
	ctype  string // answer Content-Type; default application/json
}

// fakeServer answers the exchanges in order and fails the test on any
// request that does not match the next one.
type fakeServer struct {
	t    testing.TB
	mu   sync.Mutex
	exs  []exchange
	next int
	srv  *httptest.Server
}

func newFake(t testing.TB, exs ...exchange) *fakeServer {
	t.Helper()
	f := &fakeServer{t: t, exs: exs}
	f.srv = httptest.NewServer(http.HandlerFunc(f.handle))
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.next != len(f.exs) {
			t.Errorf("fake server: %d of %d expected requests received", f.next, len(f.exs))
		}
	})
	return f
}

func (f *fakeServer) client(t testing.TB, opts ...Option) *Client {
	t.Helper()
	c, err := New(f.srv.URL, opts...)
	require.NoError(t, err)
	return c
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
	wantQ, err := url.ParseQuery(ex.query)
	if err != nil {
		t.Errorf("bad test query %q: %v", ex.query, err)
	}
	gotQ := r.URL.Query()
	if len(wantQ) == 0 {
		wantQ = url.Values{}
	}
	if !equalValues(gotQ, wantQ) {
		t.Errorf("%s %s: query = %q, want %q", r.Method, ex.path, r.URL.RawQuery, ex.query)
	}
	if ex.body == "" {
		if len(body) != 0 {
			t.Errorf("%s %s: unexpected body %s", r.Method, ex.path, body)
		}
	} else {
		if !jsonEqual(t, string(body), ex.body) {
			t.Errorf("%s %s: body = %s, want %s", r.Method, ex.path, body, ex.body)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
	}
	if a := r.Header.Get("Accept"); a != "application/json" {
		t.Errorf("Accept = %q", a)
	}
	for k, v := range ex.header {
		if got := r.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	// The client sends expected_version in the body or the query, never
	// as If-Match as well.
	if im := r.Header.Get("If-Match"); im != "" {
		t.Errorf("unexpected If-Match %q", im)
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

func equalValues(a, b url.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, av := range a {
		bv := b[k]
		if len(av) != len(bv) {
			return false
		}
		for i := range av {
			if av[i] != bv[i] {
				return false
			}
		}
	}
	return true
}

func jsonEqual(t testing.TB, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Errorf("not JSON: %s: %v", a, err)
		return false
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Errorf("not JSON (test): %s: %v", b, err)
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

// apiError renders the contract's error envelope.
func apiError(code, message, details string) string {
	if details == "" {
		details = "{}"
	}
	return `{"error":{"code":"` + code + `","message":"` + message + `","details":` + details + `}}`
}

const entryJSON = `{"agent_id":"agent-1","tier":"local","key":"prefs/ui","value":{"theme":"dark"},
 "version":3,"revision":1042,"created_at":"2025-01-02T03:04:05.123456Z","updated_at":"2025-01-03T03:04:05.5Z",
 "expires_at":null,"created_by":"anonymous","checksum":"sha256:abc","metadata":{"source":"test"}}`
