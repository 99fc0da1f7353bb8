// Package server is agentstate's HTTP face: the v1 wire contract of API.md
// over the engine (package state).
//
// Handlers are thin: decode the request, call one state.Manager method,
// encode the answer. The engine knows no HTTP; every error, the engine's, the
// store's and the edge's own, is mapped to a status and contract code in ONE
// table (toAPIError in errors.go).
//
// Serving: New builds the Server; Handler is the complete http.Handler
// (routing, path checks, logging, panic recovery, authentication). A command
// either serves Handler() from its own http.Server, or calls Serve, which uses
// HTTPServer's timeouts and shuts down gracefully when its context ends:
//
//	srv := server.New(m, server.Options{Logger: log})
//	ln, _ := net.Listen("tcp", addr)
//	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
//	defer stop()
//	err := srv.Serve(ctx, ln) // returns nil after a clean drain
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/agentstate/agentstate/auth"
	"github.com/agentstate/agentstate/state"
)

// Defaults of Options.
const (
	// DefaultBodySlack is added to the value limit to cap a single write's
	// body (the value plus the other fields).
	DefaultBodySlack = 64 << 10
	// DefaultMaxBatchBodyBytes caps a batch request's body.
	DefaultMaxBatchBodyBytes = 16 << 20
	// DefaultBodyReadTimeout bounds reading one request body.
	DefaultBodyReadTimeout = 60 * time.Second
	// DefaultReadyTimeout bounds the store ping of /readyz.
	DefaultReadyTimeout = 5 * time.Second
	// DefaultShutdownTimeout bounds Serve's graceful drain.
	DefaultShutdownTimeout = 30 * time.Second
)

// Options configure a Server. Zero values take the defaults.
type Options struct {
	// Logger receives request logs (2xx/3xx at debug, 4xx at info, 5xx at
	// warn) and internal errors. Default slog.Default().
	Logger *slog.Logger
	// MaxBatchBodyBytes caps the body of batch get/write (default 16 MiB,
	// and never less than a single write's cap). Larger: 413 too_large.
	MaxBatchBodyBytes int64
	// BodySlack is added to the engine's value limit to cap the body of a
	// single write (default 64 KiB).
	BodySlack int64
	// BodyReadTimeout bounds reading one request body (default 60 s;
	// negative: none).
	BodyReadTimeout time.Duration
	// ReadyTimeout bounds /readyz's check of the engine (default 5 s).
	ReadyTimeout time.Duration
	// ShutdownTimeout bounds Serve's graceful drain (default 30 s).
	ShutdownTimeout time.Duration
	// HeartbeatInterval is how often an idle event stream (SSE) gets a
	// comment line (default 15 s, API.md).
	HeartbeatInterval time.Duration
	// Authenticator establishes the principal of each /v1 request. Default
	// AnonymousAuthenticator (auth disabled: everyone is auth.Anonymous).
	Authenticator Authenticator
}

// Authenticator establishes who is calling. It returns an error wrapping
// auth.ErrUnauthenticated for missing or bad credentials (401); the engine's
// Authorizer then decides what the principal may do (403).
type Authenticator interface {
	Authenticate(r *http.Request) (auth.Principal, error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(r *http.Request) (auth.Principal, error)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(r *http.Request) (auth.Principal, error) { return f(r) }

// AnonymousAuthenticator is auth disabled: every request acts as
// auth.Anonymous (principal "anonymous", role admin), as API.md says.
type AnonymousAuthenticator struct{}

// Authenticate returns auth.Anonymous.
func (AnonymousAuthenticator) Authenticate(*http.Request) (auth.Principal, error) {
	return auth.Anonymous, nil
}

// Server is the HTTP API over one engine. It is safe for concurrent use.
type Server struct {
	m           *state.Manager
	opts        Options
	log         *slog.Logger
	mux         *http.ServeMux
	handler     http.Handler
	singleLimit int64
	batchLimit  int64
	// events caches the wire form of fanned-out change events.
	eventWire eventCache
	// stopping is canceled when shutdown begins: open streams end.
	stopping    context.Context
	stopStreams context.CancelFunc
}

// New returns a Server over m. The Server does not own m: closing the engine
// is the caller's job, after the HTTP server has drained.
func New(m *state.Manager, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BodySlack <= 0 {
		opts.BodySlack = DefaultBodySlack
	}
	if opts.BodyReadTimeout == 0 {
		opts.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = DefaultReadyTimeout
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	if opts.Authenticator == nil {
		opts.Authenticator = AnonymousAuthenticator{}
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = DefaultHeartbeatInterval
	}
	s := &Server{m: m, opts: opts, log: opts.Logger, mux: http.NewServeMux()}
	s.stopping, s.stopStreams = context.WithCancel(context.Background())
	s.singleLimit = int64(m.Limits().MaxBytes) + opts.BodySlack
	if s.singleLimit <= opts.BodySlack {
		s.singleLimit = 1<<20 + opts.BodySlack
	}
	s.batchLimit = opts.MaxBatchBodyBytes
	if s.batchLimit <= 0 {
		s.batchLimit = DefaultMaxBatchBodyBytes
	}
	s.batchLimit = max(s.batchLimit, s.singleLimit)
	s.routes()
	s.handler = s.observe(http.HandlerFunc(s.dispatch))
	return s
}

// Handler returns the complete HTTP handler: serve it from any http.Server.
func (s *Server) Handler() http.Handler { return s.handler }

// HTTPServer returns an http.Server for Handler with timeouts suited to this
// API: ReadHeaderTimeout 10 s and IdleTimeout 120 s. There is deliberately no
// ReadTimeout or WriteTimeout, which would cut long-lived streams (SSE,
// WebSocket); request bodies are bounded per request by BodyReadTimeout.
func (s *Server) HTTPServer() *http.Server {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	hs.RegisterOnShutdown(s.stopStreams)
	return hs
}

// Serve serves HTTPServer() on ln until ctx is done, then shuts down
// gracefully: it stops accepting, lets in-flight requests finish for up to
// ShutdownTimeout, and returns nil. It returns an error if serving fails or
// the drain times out (remaining connections are then closed).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := s.HTTPServer()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
		<-errc
		return fmt.Errorf("server: graceful shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// route is one path pattern: its handlers by method. Every pattern is
// registered without a method so that an unsupported method gets a JSON 405
// with Allow rather than ServeMux's plain-text one.
type route struct {
	s       *Server
	methods map[string]http.HandlerFunc
	allow   string
	authn   bool // /v1 routes authenticate; health probes do not
}

func (s *Server) handle(pattern string, authn bool, methods map[string]http.HandlerFunc) {
	names := make([]string, 0, len(methods)+2)
	for m := range methods {
		names = append(names, m)
	}
	if _, ok := methods[http.MethodGet]; ok {
		names = append(names, http.MethodHead)
	}
	names = append(names, http.MethodOptions)
	sort.Strings(names)
	s.mux.Handle(pattern, &route{s: s, methods: methods, allow: strings.Join(names, ", "), authn: authn})
}

func (rt *route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, ok := rt.methods[r.Method]
	if !ok && r.Method == http.MethodHead {
		h, ok = rt.methods[http.MethodGet]
	}
	if !ok {
		w.Header().Set("Allow", rt.allow)
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		rt.s.fail(w, r, &methodNotAllowedError{method: r.Method, allow: rt.allow}, nil)
		return
	}
	if rt.authn {
		p, err := rt.s.opts.Authenticator.Authenticate(r)
		if err != nil {
			rt.s.fail(w, r, err, nil)
			return
		}
		r = r.WithContext(auth.WithPrincipal(r.Context(), p))
	}
	h(w, r)
}

// notFoundRoute answers every method on unknown paths with a JSON 404.
type notFoundRoute struct{ s *Server }

func (nf notFoundRoute) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	nf.s.fail(w, r, errNoRoute, nil)
}

func (s *Server) routes() {
	const (
		get, put, post = http.MethodGet, http.MethodPut, http.MethodPost
		patch, del     = http.MethodPatch, http.MethodDelete
	)
	type methods = map[string]http.HandlerFunc

	// Entries.
	s.handle("/v1/agents/{agent_id}/state/{tier}/{key...}", true, methods{
		get: s.getEntry, put: s.putEntry, patch: s.patchEntry, del: s.deleteEntry,
	})
	s.handle("/v1/agents/{agent_id}/state/{tier}", true, methods{get: s.listEntries})
	s.handle("/v1/agents/{agent_id}/batch/get", true, methods{post: s.batchGet})
	s.handle("/v1/agents/{agent_id}/batch/write", true, methods{post: s.batchWrite})

	// History. Each is also registered without a key, so that the path
	// without one is a 400 (empty key) instead of ServeMux's redirect to the
	// path with a trailing slash.
	for _, r := range []struct {
		name   string
		method string
		h      http.HandlerFunc
	}{
		{"history", get, s.history},
		{"diff", get, s.diff},
		{"rollback", post, s.rollback},
	} {
		s.handle("/v1/agents/{agent_id}/"+r.name+"/{tier}/{key...}", true, methods{r.method: r.h})
		s.handle("/v1/agents/{agent_id}/"+r.name+"/{tier}", true, methods{r.method: r.h})
	}

	// Change events.
	s.handle("/v1/events", true, methods{get: s.events})
	s.handle("/v1/ws", true, methods{get: s.websocket})

	// Event streams (event sourcing). The all-streams subscription is
	// registered before {stream_id} patterns; ServeMux prefers the more
	// specific literal segment anyway.
	s.handle("/v1/streams/events", true, methods{get: s.subscribeAll})
	s.handle("/v1/streams/{stream_id}/events", true, methods{get: s.readEvents, post: s.appendEvents})
	s.handle("/v1/streams/{stream_id}/snapshot", true, methods{get: s.getSnapshot, put: s.putSnapshot})
	s.handle("/v1/streams/{stream_id}/subscribe", true, methods{get: s.subscribeStream})

	// Probes (no authentication).
	s.handle("/healthz", false, methods{get: s.healthz})
	s.handle("/readyz", false, methods{get: s.readyz})

	s.mux.Handle("/", notFoundRoute{s})
}

// dispatch guards the mux. ServeMux answers a non-canonical path (with //,
// /./ or /../) with a redirect and a path missing a trailing slash with
// another; this API answers neither: a /v1 path with an empty, "." or ".."
// segment (also percent-encoded, as in %2E%2E or %2F%2F) is a 400, and any
// path the mux would only redirect is a 404. Only then does the mux route.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	if badSegments(r.URL.Path) || badSegments(r.URL.EscapedPath()) {
		if strings.HasPrefix(r.URL.Path, "/v1/") || strings.HasPrefix(r.URL.EscapedPath(), "/v1/") {
			s.fail(w, r, errBadPath, nil)
		} else {
			s.fail(w, r, errNoRoute, nil)
		}
		return
	}
	switch h, _ := s.mux.Handler(r); h.(type) {
	case *route, notFoundRoute:
		s.mux.ServeHTTP(w, r)
	default: // a redirect
		s.fail(w, r, errNoRoute, nil)
	}
}

// badSegments reports whether path has an empty, "." or ".." segment, apart
// from the leading "/" and one trailing "/" (an empty key is the engine's
// 400 to give, with a precise message).
func badSegments(path string) bool {
	if path == "" || path[0] != '/' {
		return true
	}
	rest := strings.TrimSuffix(path[1:], "/")
	if rest == "" {
		return false
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
