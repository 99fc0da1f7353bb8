package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStreamCommands runs the stream commands against a fake server.
func TestStreamCommands(t *testing.T) {
	dir := t.TempDir()
	dataFile := filepath.Join(dir, "d.json")
	require.NoError(t, os.WriteFile(dataFile, []byte(`{"paid": true}`+"\n"), 0o600))
	const evs = `{"events":[
		{"event_id":"e1","event_type":"OrderPlaced","event_data":{"total":12},"version":0,"timestamp":"2025-01-02T03:04:05.5Z","metadata":{}},
		{"event_id":"e2","event_type":"OrderPaid","event_data":{"paid":true},"version":1,"timestamp":"2025-01-02T03:05:05Z","metadata":{}}]}`
	tests := []struct {
		name     string
		args     []string
		stdin    string
		exs      []exchange
		wantCode int
		wantOut  string
		errHas   []string
	}{
		// append with --no-stream sends expected_version -1.
		{
			name:    "append/no-stream",
			args:    []string{"stream", "append", "order-1", "--type", "OrderPlaced", "--data", `{"total":12}`, "--no-stream"},
			exs:     []exchange{{method: "POST", path: "/v1/streams/order-1/events", body: `{"events":[{"event_type":"OrderPlaced","event_data":{"total":12}}],"expected_version":-1}`, reply: `{"next_version":0}`}},
			wantOut: "appended OrderPlaced to order-1: version 0\n",
		},
		// append from a file, conditional, with metadata and an event id; no
		// expectation sends null.
		{
			name: "append/file",
			args: []string{"stream", "append", "order-1", "--type", "OrderPaid", "-f", dataFile, "--expected-version", "0",
				"--metadata", `{"by":"cli"}`, "--event-id", "ev-9"},
			exs: []exchange{{method: "POST", path: "/v1/streams/order-1/events",
				body: `{"events":[{"event_type":"OrderPaid","event_data":{"paid":true},"metadata":{"by":"cli"},"event_id":"ev-9"}],"expected_version":0}`, reply: `{"next_version":1}`}},
			wantOut: "appended OrderPaid to order-1: version 1\n",
		},
		{
			name:    "append/stdin-any-json",
			args:    []string{"stream", "append", "order-1", "--type", "Noted", "--data", "-", "-o", "json"},
			stdin:   `"hello"`,
			exs:     []exchange{{method: "POST", path: "/v1/streams/order-1/events", body: `{"events":[{"event_type":"Noted","event_data":"hello"}],"expected_version":null}`, reply: `{"next_version":2}`}},
			wantOut: `{"next_version":2}` + "\n",
		},
		// A failed expectation shows the stream's current version.
		{
			name: "append/wrong-expected-version",
			args: []string{"stream", "append", "order-1", "--type", "T", "--data", "1", "--expected-version", "3"},
			exs: []exchange{{method: "POST", path: "/v1/streams/order-1/events", body: `{"events":[{"event_type":"T","event_data":1}],"expected_version":3}`,
				status: 409, reply: apiError("wrong_expected_version", "stream order-1 is at version 5", `{"current_version":5}`)}},
			wantCode: 1,
			errHas:   []string{"error: wrong_expected_version: stream order-1 is at version 5\n", "current_version: 5\n"},
		},
		// Usage errors: no type, no data, both expectations, data not JSON.
		{
			name:     "append/no-type",
			args:     []string{"stream", "append", "order-1", "--data", "1"},
			wantCode: 2,
			errHas:   []string{`"type" not set`},
		},
		{
			name:     "append/no-data",
			args:     []string{"stream", "append", "order-1", "--type", "T"},
			wantCode: 2,
			errHas:   []string{"missing event data"},
		},
		{
			name:     "append/both-expectations",
			args:     []string{"stream", "append", "order-1", "--type", "T", "--data", "1", "--no-stream", "--expected-version", "2"},
			wantCode: 2,
			errHas:   []string{"no-stream"},
		},
		{
			name:     "append/not-json",
			args:     []string{"stream", "append", "order-1", "--type", "T", "--data", "nope"},
			wantCode: 1,
			errHas:   []string{"error: event data is not valid JSON"},
		},
		{
			name:     "append/no-stream-id",
			args:     []string{"stream", "append", "--type", "T", "--data", "1"},
			wantCode: 2,
			errHas:   []string{"missing stream id"},
		},
		// read: a table of versions, oldest first.
		{
			name: "read",
			args: []string{"stream", "read", "order-1", "--from", "0", "--max", "2"},
			exs:  []exchange{{method: "GET", path: "/v1/streams/order-1/events", query: "from_version=0&max_count=2", reply: evs}},
			wantOut: "VERSION  TYPE         TIME                  DATA\n" +
				"0        OrderPlaced  2025-01-02T03:04:05Z  {\"total\":12}\n" +
				"1        OrderPaid    2025-01-02T03:05:05Z  {\"paid\":true}\n",
		},
		{
			name:    "read/json",
			args:    []string{"stream", "read", "order-1", "-o", "json"},
			exs:     []exchange{{method: "GET", path: "/v1/streams/order-1/events", query: "from_version=0", reply: `{"events":[]}`}},
			wantOut: `{"events":[]}` + "\n",
		},
		{
			name:    "read/empty",
			args:    []string{"stream", "read", "order-1", "--from", "9"},
			exs:     []exchange{{method: "GET", path: "/v1/streams/order-1/events", query: "from_version=9", reply: `{"events":[]}`}},
			wantOut: "no events\n",
		},
		{
			name:     "read/not-found",
			args:     []string{"stream", "read", "nope"},
			exs:      []exchange{{method: "GET", path: "/v1/streams/nope/events", query: "from_version=0", status: 404, reply: apiError("not_found", "stream nope not found", "")}},
			wantCode: 1,
			errHas:   []string{"error: not_found: stream nope not found\n"},
		},
		// snapshot save and get.
		{
			name:    "snapshot/save",
			args:    []string{"stream", "snapshot", "save", "order-1", "--version", "1", `{"total":12,"paid":true}`},
			exs:     []exchange{{method: "PUT", path: "/v1/streams/order-1/snapshot", body: `{"version":1,"state":{"total":12,"paid":true}}`, reply: `{"stream_id":"order-1","version":1,"created_at":"2025-01-02T03:04:05Z"}`}},
			wantOut: "saved snapshot of order-1 at version 1\n",
		},
		{
			name:     "snapshot/save-no-version",
			args:     []string{"stream", "snapshot", "save", "order-1", "{}"},
			wantCode: 2,
			errHas:   []string{`"version" not set`},
		},
		{
			name:    "snapshot/get",
			args:    []string{"stream", "snapshot", "get", "order-1"},
			exs:     []exchange{{method: "GET", path: "/v1/streams/order-1/snapshot", reply: `{"stream_id":"order-1","version":1,"state":{"paid":true},"created_at":"2025-01-02T03:04:05Z"}`}},
			wantOut: "order-1  version 1  created 2025-01-02T03:04:05Z\n{\n  \"paid\": true\n}\n",
		},
		{
			name:     "snapshot/none",
			args:     []string{"stream", "snapshot", "get", "order-1"},
			exs:      []exchange{{method: "GET", path: "/v1/streams/order-1/snapshot", status: 404, reply: apiError("not_found", "no snapshot", "")}},
			wantCode: 1,
			errHas:   []string{"error: not_found: no snapshot\n"},
		},
		{
			name:     "unknown-subcommand",
			args:     []string{"stream", "delete", "order-1"},
			wantCode: 2,
			errHas:   []string{"Run 'agentstate stream --help' for usage."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.exs...)
			code, out, errOut := runCLI(t, tt.args, map[string]string{"AGENTSTATE_SERVER": f.url}, tt.stdin)
			require.Equal(t, tt.wantCode, code, "stderr: %s", errOut)
			if tt.wantOut != "" {
				require.Equal(t, tt.wantOut, out)
			}
			for _, s := range tt.errHas {
				require.Contains(t, errOut, s)
			}
			if tt.wantCode != 0 {
				require.Empty(t, out)
			} else {
				require.Empty(t, errOut)
			}
		})
	}
}
