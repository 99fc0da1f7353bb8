package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

var _ WatchTarget = (*AgentstateTarget)(nil)

// Watch opens GET /v1/events?agent_id=…&tier=…&key=watch-* (one HTTP
// connection per subscription) and returns once the response headers have
// arrived: the server subscribes before it answers, so the stream is live.
func (a *AgentstateTarget) Watch(ctx context.Context) (Subscription, error) {
	s := &sseSub{a: a, ctx: ctx, from: -1, id: -1}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

// sseSub is one SSE subscription to /v1/events.
type sseSub struct {
	a    *AgentstateTarget
	ctx  context.Context
	from int64 // last complete revision seen (id: line), -1 before any
	body io.ReadCloser
	r    *bufio.Reader
	line []byte // spill buffer for lines longer than the reader's buffer

	event string
	data  []byte
	id    int64 // the message's id: line, -1 if none; it takes effect on dispatch
}

func (s *sseSub) url() string {
	q := url.Values{}
	q.Set("agent_id", s.a.agent)
	q.Set("tier", s.a.tier)
	q.Set("key", WatchKeyPrefix+"*")
	if s.from >= 0 {
		q.Set("from_revision", strconv.FormatInt(s.from, 10))
	}
	return s.a.root + "/v1/events?" + q.Encode()
}

func (s *sseSub) open() error {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodGet, s.url(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if s.a.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.a.token)
	}
	resp, err := s.a.streams.Do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return &HTTPError{Method: "GET /v1/events", Status: resp.StatusCode, Body: string(b)}
	}
	s.body = resp.Body
	if s.r == nil {
		s.r = bufio.NewReaderSize(resp.Body, 8<<10)
	} else {
		s.r.Reset(resp.Body)
	}
	s.event, s.data, s.id = "", s.data[:0], -1
	return nil
}

// readLine returns the next line without its end of line.
func (s *sseSub) readLine() ([]byte, error) {
	l, err := s.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		s.line = append(s.line[:0], l...)
		for errors.Is(err, bufio.ErrBufferFull) {
			l, err = s.r.ReadSlice('\n')
			s.line = append(s.line, l...)
		}
		l = s.line
	}
	if err != nil {
		return nil, err
	}
	l = bytes.TrimSuffix(l, []byte{'\n'})
	return bytes.TrimSuffix(l, []byte{'\r'}), nil
}

var (
	sseEvent = []byte("event:")
	sseData  = []byte("data:")
	sseID    = []byte("id:")
)

func sseValue(l, field []byte) []byte {
	v := l[len(field):]
	if len(v) > 0 && v[0] == ' ' {
		v = v[1:]
	}
	return v
}

// Next reads messages until it has at least one change event and no more
// input is buffered, then returns them.
func (s *sseSub) Next() ([]Change, error) {
	if s.body == nil {
		if err := s.ctx.Err(); err != nil {
			return nil, err
		}
		if err := s.open(); err != nil {
			return nil, fmt.Errorf("reconnect from revision %d: %w", s.from, err)
		}
	}
	var out []Change
	for {
		l, err := s.readLine()
		if err != nil {
			s.drop()
			if cerr := s.ctx.Err(); cerr != nil {
				return nil, cerr
			}
			if err == io.EOF {
				err = errors.New("server closed the stream")
			}
			if len(out) > 0 {
				return out, nil // the error shows on the next call
			}
			return nil, fmt.Errorf("after revision %d: %w", s.from, err)
		}
		switch {
		case len(l) == 0: // dispatch
			if s.id >= 0 {
				s.from = s.id
			}
			if len(s.data) > 0 || s.event != "" {
				c, isChange, err := s.dispatch()
				if err != nil {
					s.drop()
					return out, err
				}
				if isChange {
					out = append(out, c)
				}
			}
			s.event, s.data, s.id = "", s.data[:0], -1
			if len(out) > 0 && s.r.Buffered() == 0 {
				return out, nil
			}
		case l[0] == ':': // comment (heartbeat)
		case bytes.HasPrefix(l, sseEvent):
			s.event = string(sseValue(l, sseEvent))
		case bytes.HasPrefix(l, sseData):
			if len(s.data) > 0 {
				s.data = append(s.data, '\n')
			}
			s.data = append(s.data, sseValue(l, sseData)...)
		case bytes.HasPrefix(l, sseID):
			if n, err := strconv.ParseInt(string(sseValue(l, sseID)), 10, 64); err == nil {
				s.id = n
			}
		}
	}
}

var newValueField = []byte(`"new_value":`)

// dispatch handles one complete message.
func (s *sseSub) dispatch() (Change, bool, error) {
	at := time.Now()
	switch s.event {
	case "change", "":
		c := Change{At: at}
		d := s.data
		if i := bytes.Index(d, newValueField); i >= 0 {
			c.Seq, _ = parseSeq(d[i:])
		}
		if i := bytes.Index(d, []byte(`"revision":`)); i >= 0 {
			rest := d[i+len(`"revision":`):]
			j := 0
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			c.Revision, _ = strconv.ParseInt(string(rest[:j]), 10, 64)
		}
		return c, true, nil
	case "error":
		return Change{}, false, fmt.Errorf("error message after revision %d: %s", s.from, truncate(s.data, 300))
	}
	return Change{}, false, nil // other messages (snapshots) are not ours
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

func (s *sseSub) drop() {
	if s.body != nil {
		s.body.Close()
		s.body = nil
	}
}

func (s *sseSub) Close() error {
	s.drop()
	return nil
}
