package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// DefaultHeartbeatInterval is how often an idle event stream gets a comment
// line (API.md: every 15 s), so proxies keep it open and clients notice a
// dead one.
const DefaultHeartbeatInterval = 15 * time.Second

// sseWriter writes Server-Sent Events. Messages are buffered and flushed by
// the caller at revision (or append) boundaries, so the events of one batch
// leave in one write.
type sseWriter struct {
	w         http.ResponseWriter
	rc        *http.ResponseController
	buf       bytes.Buffer
	heartbeat time.Duration
}

// startSSE answers 200 with the event-stream headers.
func (s *Server) startSSE(w http.ResponseWriter, r *http.Request) *sseWriter {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: http.NewResponseController(w), heartbeat: s.opts.HeartbeatInterval}
	// Streams live longer than any write deadline the server may set.
	_ = sw.rc.SetWriteDeadline(time.Time{})
	_ = sw.flush()
	return sw
}

// event buffers one message; id is written only when non-empty.
func (sw *sseWriter) event(name, id string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	if id != "" {
		sw.buf.WriteString("id: ")
		sw.buf.WriteString(id)
		sw.buf.WriteByte('\n')
	}
	sw.buf.WriteString("event: ")
	sw.buf.WriteString(name)
	sw.buf.WriteString("\ndata: ")
	sw.buf.Write(b) // compact JSON has no newline
	sw.buf.WriteString("\n\n")
	return nil
}

// eventRaw buffers one message whose data is already JSON.
func (sw *sseWriter) eventRaw(name, id string, data []byte) {
	if id != "" {
		sw.buf.WriteString("id: ")
		sw.buf.WriteString(id)
		sw.buf.WriteByte('\n')
	}
	sw.buf.WriteString("event: ")
	sw.buf.WriteString(name)
	sw.buf.WriteString("\ndata: ")
	sw.buf.Write(data) // compact JSON has no newline
	sw.buf.WriteString("\n\n")
}

// comment buffers a comment line (a heartbeat).
func (sw *sseWriter) comment(text string) {
	sw.buf.WriteString(": ")
	sw.buf.WriteString(text)
	sw.buf.WriteString("\n\n")
}

// flush sends what is buffered.
func (sw *sseWriter) flush() error {
	if sw.buf.Len() > 0 {
		if _, err := sw.w.Write(sw.buf.Bytes()); err != nil {
			return err
		}
		sw.buf.Reset()
	}
	return sw.rc.Flush()
}

// sendError writes an error message in the envelope of API.md and flushes;
// the stream ends after it.
func (sw *sseWriter) sendError(ae *apiError) {
	_ = sw.event("error", "", errorBody{Error: errorJSON{Code: ae.Code, Message: ae.Message, Details: ae.Details}})
	_ = sw.flush()
}

// lastEventID reads the resume point of a reconnecting EventSource.
func lastEventID(r *http.Request) (int64, bool, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, false, invalidArg("Last-Event-ID", "Last-Event-ID must be a revision (an integer >= 0), not %q", v)
	}
	return n, true, nil
}

// streamContext is the context of a long-lived stream: it ends when the
// client leaves or when the server begins to shut down (http.Server.Shutdown
// waits for handlers but does not cancel their contexts, so streams would
// otherwise hold the drain until its timeout).
func (s *Server) streamContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(s.stopping, cancel)
	return ctx, func() { stop(); cancel() }
}

// StopStreams ends every open event stream (SSE and WebSocket). Serve calls
// it when shutdown begins; call it yourself when serving Handler() from your
// own http.Server, before Shutdown.
func (s *Server) StopStreams() { s.stopStreams() }
