package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		base     string
		wantBase string // "" means New fails
	}{
		// The usual form; a trailing slash is dropped.
		{"plain", "http://127.0.0.1:7400/", "http://127.0.0.1:7400"},
		// No scheme: http.
		{"no scheme", "localhost:7400", "http://localhost:7400"},
		// A path prefix (reverse proxy) is kept.
		{"prefix", "https://example.com/agentstate/", "https://example.com/agentstate"},
		// User info is dropped: secrets belong in WithToken.
		{"userinfo", "http://u:p@h:1", "http://h:1"},
		// Refused: empty, other schemes, no host, a query.
		{"empty", "  ", ""},
		{"ftp", "ftp://h", ""},
		{"no host", "http://", ""},
		{"query", "http://h/?x=1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.base)
			if tt.wantBase == "" {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantBase, c.BaseURL())
		})
	}
}

// countingTransport counts the requests it carries.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func TestOptions(t *testing.T) {
	ctx := context.Background()
	f := newFake(t,
		exchange{method: "GET", path: "/v1/agents/a/state/local/k", reply: entryJSON,
			header: map[string]string{"Authorization": "Bearer s3cret", "User-Agent": "my-agent/2"}},
		exchange{method: "GET", path: "/v1/agents/a/state/local/k", reply: entryJSON,
			header: map[string]string{"Authorization": "", "User-Agent": DefaultUserAgent}},
	)
	tr := &countingTransport{}
	var hooked []byte
	var hookedStatus int
	c := f.client(t, WithToken("s3cret"), WithUserAgent("my-agent/2"),
		WithHTTPClient(&http.Client{Transport: tr}),
		WithResponseHook(func(r *http.Response, b []byte) { hookedStatus, hooked = r.StatusCode, b }))
	_, err := c.Get(ctx, "a", TierLocal, "k", nil)
	require.NoError(t, err)
	require.EqualValues(t, 1, tr.n.Load(), "the given http.Client is used")
	require.Equal(t, 200, hookedStatus)
	require.Equal(t, entryJSON, string(hooked), "the hook sees the raw answer")

	// Without options: no Authorization, the default User-Agent.
	_, err = f.client(t).Get(ctx, "a", TierLocal, "k", nil)
	require.NoError(t, err)
}

// TestTransportErrors checks that failures to talk to the server wrap
// ErrTransport and their cause, and are never *Error.
func TestTransportErrors(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(slow.Close)

	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"version": "three"`))
	}))
	t.Cleanup(garbage.Close)

	tests := []struct {
		name    string
		url     string
		timeout time.Duration
		cause   error
	}{
		// Nobody listening.
		{name: "refused", url: closedURL},
		// The context ends first.
		{name: "deadline", url: slow.URL, timeout: 50 * time.Millisecond, cause: context.DeadlineExceeded},
		// A 200 whose body is not the expected JSON.
		{name: "bad json", url: garbage.URL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			c, err := New(tt.url)
			require.NoError(t, err)
			_, err = c.Get(ctx, "a", TierLocal, "k", nil)
			require.ErrorIs(t, err, ErrTransport)
			var e *Error
			require.False(t, errors.As(err, &e))
			if tt.cause != nil {
				require.ErrorIs(t, err, tt.cause)
			}
		})
	}
}

// TestRedirects checks that a write answered by a redirect is not replayed
// as a GET (which net/http does by default), while reads follow it.
func TestRedirects(t *testing.T) {
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/agents/a/state/local/other" {
			gets.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(entryJSON))
			return
		}
		http.Redirect(w, r, "/v1/agents/a/state/local/other", http.StatusMovedPermanently)
	}))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL)
	require.NoError(t, err)
	ctx := context.Background()

	_, err = c.Put(ctx, "a", TierLocal, "k", 1, nil)
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, http.StatusMovedPermanently, e.Status)
	require.Zero(t, gets.Load())

	_, err = c.Get(ctx, "a", TierLocal, "k", nil)
	require.NoError(t, err)
	require.EqualValues(t, 1, gets.Load())
}
