package server

import (
	"context"
	"net/http"
)

// healthz: GET /healthz — 200 whenever the process can answer HTTP.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, http.StatusOK, statusJSON{Status: "ok"})
}

// readyz: GET /readyz — 200 when the engine and its store can serve, else
// 503 with the error envelope.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.ReadyTimeout)
	defer cancel()
	if err := s.m.Ready(ctx); err != nil {
		ae := toAPIError(err, nil)
		if ae.Status != http.StatusServiceUnavailable {
			// Whatever the cause, not ready is a 503.
			s.log.Warn("server: not ready", "err", err)
			ae = &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "not ready: the store does not answer"}
		}
		s.writeAPIError(w, r, ae)
		return
	}
	s.writeJSON(w, r, http.StatusOK, statusJSON{Status: "ready"})
}
