// Package client is the Go SDK of the agentstate HTTP API v1: read, write,
// patch, list and batch an agent's state, read its history and diffs, and
// roll a key back; watch the change events of the store; and append to,
// read and subscribe to event streams (event sourcing).
//
//	c, err := client.New("http://127.0.0.1:7400", client.WithToken(tok))
//	res, err := c.Put(ctx, "agent-1", client.TierLocal, "prefs/ui",
//		map[string]any{"theme": "dark"},
//		&client.PutOptions{ExpectedVersion: client.Version(0)})
//	e, err := c.Get(ctx, "agent-1", client.TierLocal, "prefs/ui", nil)
//	if errors.Is(err, client.ErrNotFound) { … }
//
// Every method takes a context first; the state calls take an optional (nil
// allowed) options struct last. Errors answered by the server are *Error,
// matched by the Err* sentinels with errors.Is; failures to reach the
// server wrap ErrTransport.
//
// Watch, SubscribeStream and SubscribeAll return watchers that read
// Server-Sent Events and reconnect by themselves, delivering each event
// once, in order:
//
//	w := c.Watch(ctx, client.WatchFilter{Tiers: []string{client.TierShared}}, client.FromNow)
//	defer w.Close()
//	for {
//		e, err := w.Next(ctx)
//		if err != nil { … }
//	}
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultUserAgent is sent unless WithUserAgent says otherwise.
const DefaultUserAgent = "agentstate-go-client/1"

// Client talks to one agentstate server. It is safe for concurrent use.
type Client struct {
	base      string // scheme://host[/prefix], without a trailing slash
	hc        *http.Client
	token     string
	userAgent string
	hook      func(*http.Response, []byte)

	// Reconnection of watchers (watch.go).
	backoffMin, backoffMax time.Duration
	onReconnect            func(err error, delay time.Duration)
	sleep                  func(ctx context.Context, d time.Duration) error // tests replace it
	jitter                 func(d time.Duration) time.Duration              // tests replace it
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the http.Client used for requests (timeouts, TLS,
// proxies, tracing transports). The default refuses redirects that would
// turn a write into a GET.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithToken sends "Authorization: Bearer <token>" with every request.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithResponseHook calls fn after every answer received, with the response
// (whose Body is already consumed) and the body as read: for logging,
// debugging, and tools that print the server's answer verbatim.
func WithResponseHook(fn func(resp *http.Response, body []byte)) Option {
	return func(c *Client) { c.hook = fn }
}

// WithReconnectBackoff sets the delays between the reconnections of a
// watcher: the first retry waits about first, each failed one doubles the
// delay up to limit, and a connection that delivers anything starts over
// from first. Each delay is jittered (between half and all of it).
// Defaults: DefaultBackoffMin and DefaultBackoffMax.
func WithReconnectBackoff(first, limit time.Duration) Option {
	return func(c *Client) {
		if first > 0 {
			c.backoffMin = first
		}
		if limit > 0 {
			c.backoffMax = limit
		}
	}
}

// WithReconnectHook calls fn each time a watcher lost its connection (or
// could not connect) and is about to retry after delay, with the cause:
// for logging, and for tools that tell their user a watch is retrying.
// fn runs on the goroutine calling Next and must not block.
func WithReconnectHook(fn func(err error, delay time.Duration)) Option {
	return func(c *Client) { c.onReconnect = fn }
}

// Defaults of WithReconnectBackoff.
const (
	DefaultBackoffMin = 250 * time.Millisecond
	DefaultBackoffMax = 30 * time.Second
)

// New returns a client of the server at baseURL, the server's root (for
// example "http://127.0.0.1:7400"; the client adds /v1). A baseURL without a
// scheme is taken as http://. A path in baseURL is kept as a prefix, for a
// server behind a reverse proxy.
func New(baseURL string, opts ...Option) (*Client, error) {
	raw := strings.TrimSpace(baseURL)
	if raw == "" {
		return nil, errors.New("client: empty server URL")
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("client: bad server URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("client: bad server URL %q: scheme must be http or https", baseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("client: bad server URL %q: no host", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: bad server URL %q: no query or fragment allowed", baseURL)
	}
	u.User = nil // credentials go in a token, never in URLs we print
	c := &Client{
		base:       strings.TrimRight(u.String(), "/"),
		hc:         &http.Client{CheckRedirect: keepMethod},
		userAgent:  DefaultUserAgent,
		backoffMin: DefaultBackoffMin,
		backoffMax: DefaultBackoffMax,
		sleep:      sleepCtx,
		jitter:     halfJitter,
	}
	for _, o := range opts {
		o(c)
	}
	c.backoffMax = max(c.backoffMax, c.backoffMin)
	return c, nil
}

// BaseURL returns the server's root URL as the client uses it.
func (c *Client) BaseURL() string { return c.base }

// keepMethod follows redirects of GET and HEAD only: net/http would replay
// a PUT, PATCH or POST answered by 301, 302 or 303 as a GET without its body
// and report the GET's answer as the write's.
func keepMethod(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if m := via[0].Method; m != http.MethodGet && m != http.MethodHead {
		return http.ErrUseLastResponse
	}
	return nil
}

// statePath is /v1/agents/{agent}/{kind}/{tier}/{key...}.
func statePath(kind, agentID, tier, key string) (string, error) {
	a, err := agentPath(agentID)
	if err != nil {
		return "", err
	}
	if err := checkSegment("tier", tier); err != nil {
		return "", err
	}
	k, err := escapeKey(key)
	if err != nil {
		return "", err
	}
	return a + "/" + kind + "/" + url.PathEscape(tier) + "/" + k, nil
}

// agentPath is /v1/agents/{agent}.
func agentPath(agentID string) (string, error) {
	if err := checkSegment("agent id", agentID); err != nil {
		return "", err
	}
	return "/v1/agents/" + url.PathEscape(agentID), nil
}

func checkSegment(what, s string) error {
	if s == "" {
		return fmt.Errorf("client: empty %s", what)
	}
	if s == "." || s == ".." {
		return fmt.Errorf("client: invalid %s %q", what, s)
	}
	return nil
}

// escapeKey escapes each segment of key and keeps the slashes. It refuses
// empty, "." and ".." segments: the key syntax forbids them, and a server
// mux would clean them out of the path and redirect to another key. Other
// characters are left for the server to judge.
func escapeKey(key string) (string, error) {
	if key == "" {
		return "", errors.New("client: empty key")
	}
	segs := strings.Split(key, "/")
	for i, s := range segs {
		if s == "" || s == "." || s == ".." {
			return "", fmt.Errorf("client: invalid key %q: empty, \".\" or \"..\" segment", key)
		}
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/"), nil
}

// do sends a request and decodes a 2xx JSON answer into out (if non-nil and
// the answer has a body). It returns the status of a 2xx answer; other
// answers are *Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := marshal(in)
		if err != nil {
			return 0, fmt.Errorf("client: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrTransport, err)
	}
	defer resp.Body.Close()
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	var r io.Reader = resp.Body
	if !ok {
		r = io.LimitReader(resp.Body, maxErrorBody)
	}
	data, err := io.ReadAll(r)
	if c.hook != nil {
		c.hook(resp, data)
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %s %s: read answer: %w", ErrTransport, method, path, err)
	}
	if !ok {
		return resp.StatusCode, newError(resp.StatusCode, data)
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%w: %s %s: decode answer (HTTP %d): %w", ErrTransport, method, path, resp.StatusCode, err)
		}
	}
	return resp.StatusCode, nil
}

// marshal encodes v as JSON without HTML escaping.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// rawValue encodes a value argument: json.RawMessage is checked and sent as
// is, anything else goes through encoding/json.
func rawValue(what string, v any) (json.RawMessage, error) {
	b, err := marshal(v)
	if err != nil {
		return nil, fmt.Errorf("client: encode %s: %w", what, err)
	}
	return b, nil
}
