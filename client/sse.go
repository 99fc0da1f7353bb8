package client

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
)

// maxSSELine bounds one line of an event stream: a change event carries an
// old and a new value of up to the server's value limit each (1 MiB by
// default, configurable), so leave ample room.
const maxSSELine = 64 << 20

// sseMessage is one message of a text/event-stream, as the HTML Living
// Standard's "interpret an event stream" defines it.
type sseMessage struct {
	event   string // the event field; "message" when absent
	data    string // data lines joined by "\n"
	id      string // the id field of this message, if hasID
	hasID   bool
	comment bool // a comment line (": ping"); nothing else is set
}

// sseReader reads the messages of an event stream. Lines end with CRLF,
// LF or CR; a leading BOM is skipped; a message is dispatched at a blank
// line, and one cut off by the end of the stream is discarded.
type sseReader struct {
	sc     *bufio.Scanner
	skipLF bool // the last line ended with CR: a following LF belongs to it
	first  bool // no line read yet (BOM check)
}

// newSSEReader reads an event stream whose lines are at most maxLine bytes.
func newSSEReader(r io.Reader, maxLine int) *sseReader {
	s := &sseReader{first: true}
	s.sc = bufio.NewScanner(r)
	s.sc.Buffer(make([]byte, 0, min(64<<10, maxLine)), maxLine)
	s.sc.Split(s.split)
	return s
}

func (s *sseReader) split(data []byte, atEOF bool) (int, []byte, error) {
	if s.skipLF && len(data) > 0 {
		s.skipLF = false
		if data[0] == '\n' {
			return 1, nil, nil
		}
	}
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		s.skipLF = data[i] == '\r'
		return i + 1, data[:i], nil
	}
	if atEOF {
		// An unterminated last line cannot complete a message: drop it.
		return len(data), nil, nil
	}
	return 0, nil, nil
}

// errSSELineTooLong is a line longer than the reader's limit.
var errSSELineTooLong = errors.New("client: event stream line too long")

// next returns the next message or comment. At the end of the stream it
// returns io.EOF (a message in progress is discarded); a read error is
// returned as is.
func (s *sseReader) next() (sseMessage, error) {
	var (
		m       sseMessage
		data    strings.Builder
		hasData bool
	)
	for s.sc.Scan() {
		line := s.sc.Text()
		if s.first {
			s.first = false
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if line == "" {
			// Dispatch. A message without data is not dispatched, except
			// that its id still moves the stream's position.
			if hasData || m.hasID {
				if m.event == "" {
					m.event = "message"
				}
				m.data = data.String()
				return m, nil
			}
			m = sseMessage{}
			continue
		}
		if line[0] == ':' {
			if !hasData && !m.hasID && m.event == "" {
				return sseMessage{comment: true}, nil
			}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			m.event = value
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			hasData = true
		case "id":
			if !strings.ContainsRune(value, 0) {
				m.id, m.hasID = value, true
			}
		}
		// "retry" and unknown fields are ignored: reconnection follows the
		// client's own backoff.
	}
	if err := s.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return sseMessage{}, errSSELineTooLong
		}
		return sseMessage{}, err
	}
	return sseMessage{}, io.EOF
}
