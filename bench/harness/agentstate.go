package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// AgentstateTarget speaks the agentstate HTTP API v1 with plain net/http:
// PUT and GET /v1/agents/{agent_id}/state/{tier}/{key}.
type AgentstateTarget struct {
	base  string // "http://127.0.0.1:7400/v1/agents/{agent}/"
	root  string // "http://127.0.0.1:7400"
	agent string
	tier  string
	// streams is the client of event streams (one connection each).
	streams *http.Client
	token   string
	client  *http.Client
	bufs    sync.Pool
}

// AgentstateOptions configures an AgentstateTarget.
type AgentstateOptions struct {
	BaseURL string // e.g. http://127.0.0.1:7400
	AgentID string // default "bench"
	Tier    string // default "persistent"
	Token   string // bearer token, if auth is on
	// MaxConns is the expected number of concurrent clients; the
	// transport keeps at least that many idle keep-alive connections.
	MaxConns int
}

var _ Target = (*AgentstateTarget)(nil)

// NewAgentstateTarget returns a target with a transport tuned so that the
// client is not the bottleneck: keep-alive, enough idle connections per
// host for every client, no proxy, no compression, HTTP/1.1.
func NewAgentstateTarget(o AgentstateOptions) *AgentstateTarget {
	if o.AgentID == "" {
		o.AgentID = "bench"
	}
	if o.Tier == "" {
		o.Tier = "persistent"
	}
	conns := max(o.MaxConns, 1) + 8
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		WriteBufferSize:     8 << 10,
		ReadBufferSize:      8 << 10,
	}
	str := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   -1, // a stream's connection is not reused
		DisableCompression:    true,
		ResponseHeaderTimeout: 30 * time.Second,
		ReadBufferSize:        8 << 10,
		WriteBufferSize:       4 << 10,
	}
	return &AgentstateTarget{
		base:    strings.TrimRight(o.BaseURL, "/") + "/v1/agents/" + o.AgentID + "/",
		root:    strings.TrimRight(o.BaseURL, "/"),
		agent:   o.AgentID,
		streams: &http.Client{Transport: str},
		tier:    o.Tier,
		token:   o.Token,
		client:  &http.Client{Transport: tr},
		bufs:    sync.Pool{New: func() any { return new(bytes.Buffer) }},
	}
}

func (a *AgentstateTarget) Name() string { return "agentstate" }

func (a *AgentstateTarget) keyURL(key string) string {
	return a.base + "state/" + a.tier + "/" + key
}

// HTTPError is a non-2xx answer.
type HTTPError struct {
	Method string
	Status int
	Body   string // the first bytes of the body
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("%s: HTTP %d: %s", e.Method, e.Status, strings.TrimSpace(e.Body))
}

// do sends req and checks the status; it drains and closes the body so the
// connection is reused. If into is not nil, a 2xx body is decoded into it.
func (a *AgentstateTarget) do(req *http.Request, into any) error {
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		_, _ = io.Copy(io.Discard, resp.Body)
		return &HTTPError{Method: req.Method, Status: resp.StatusCode, Body: string(b)}
	}
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			return fmt.Errorf("%s: decoding answer: %w", req.Method, err)
		}
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

func (a *AgentstateTarget) Put(ctx context.Context, key string, value []byte) error {
	buf := a.bufs.Get().(*bytes.Buffer)
	defer a.bufs.Put(buf)
	buf.Reset()
	buf.WriteString(`{"value":`)
	buf.Write(value)
	buf.WriteByte('}')
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, a.keyURL(key), bytes.NewReader(buf.Bytes()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return a.do(req, nil)
}

func (a *AgentstateTarget) Get(ctx context.Context, key string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.keyURL(key), nil)
	if err != nil {
		return err
	}
	return a.do(req, nil)
}

func (a *AgentstateTarget) Read(ctx context.Context, key string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.keyURL(key), nil)
	if err != nil {
		return nil, err
	}
	var entry struct {
		Value json.RawMessage `json:"value"`
	}
	if err := a.do(req, &entry); err != nil {
		return nil, err
	}
	return entry.Value, nil
}

// PutBatch uses POST /v1/agents/{agent_id}/batch/write. A 400, 404, 405,
// 413 or 501 answer is reported as ErrBatchUnsupported so the preload falls
// back to single puts.
func (a *AgentstateTarget) PutBatch(ctx context.Context, keys []string, values [][]byte) error {
	type op struct {
		Op    string          `json:"op"`
		Tier  string          `json:"tier"`
		Key   string          `json:"key"`
		Value json.RawMessage `json:"value"`
	}
	body := struct {
		Ops []op `json:"ops"`
	}{Ops: make([]op, len(keys))}
	for i, k := range keys {
		body.Ops[i] = op{Op: "put", Tier: a.tier, Key: k, Value: values[i]}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"batch/write", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	err = a.do(req, nil)
	if he, ok := err.(*HTTPError); ok {
		switch he.Status {
		case 400, 404, 405, 413, 501:
			return fmt.Errorf("%w (%v)", ErrBatchUnsupported, he)
		}
	}
	return err
}

func (a *AgentstateTarget) Close() error {
	a.client.CloseIdleConnections()
	a.streams.CloseIdleConnections()
	return nil
}
