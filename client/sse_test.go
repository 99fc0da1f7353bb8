package client

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

func TestSSEReader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []sseMessage
	}{
		// The usual message: id, event and one data line.
		{"message", "id: 7\nevent: change\ndata: {\"a\":1}\n\n",
			[]sseMessage{{event: "change", data: `{"a":1}`, id: "7", hasID: true}}},
		// No event field: "message"; no id field: hasID false.
		{"defaults", "data: x\n\n", []sseMessage{{event: "message", data: "x"}}},
		// Data lines are joined by LF; one leading space is dropped, not two.
		{"multi-line data", "data: a\ndata:  b\ndata\n\n", []sseMessage{{event: "message", data: "a\n b\n"}}},
		// CRLF and lone CR end lines too, and a leading BOM is skipped.
		{"line ends", "\ufeffdata: a\r\n\r\ndata: b\r\rdata: c\n\n",
			[]sseMessage{{event: "message", data: "a"}, {event: "message", data: "b"}, {event: "message", data: "c"}}},
		// Comments between messages are reported; inside a message, skipped.
		{"comments", ": ping\n\ndata: a\n: inside\n\n",
			[]sseMessage{{comment: true}, {event: "message", data: "a"}}},
		// A message without data is not dispatched, unless it has an id.
		{"no data", "event: change\n\nid: 9\n\n", []sseMessage{{event: "message", id: "9", hasID: true}}},
		// A message cut off by the end of the stream is discarded.
		{"cut off", "data: a\n\ndata: b\n", []sseMessage{{event: "message", data: "a"}}},
		// A line without a colon is a field with an empty value; unknown
		// fields and retry are ignored; an id with NUL is ignored.
		{"odd fields", "retry: 10\nfoo: bar\nid: a\x00b\ndata\n\n", []sseMessage{{event: "message", data: ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One byte at a time, to exercise the CR LF split across reads.
			r := newSSEReader(iotest.OneByteReader(strings.NewReader(tt.in)), 1024)
			var got []sseMessage
			for {
				m, err := r.next()
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(t, err)
				got = append(got, m)
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestSSEReaderLongLine(t *testing.T) {
	r := newSSEReader(strings.NewReader("data: "+strings.Repeat("x", 2000)+"\n\n"), 1024)
	_, err := r.next()
	require.ErrorIs(t, err, errSSELineTooLong)
}
