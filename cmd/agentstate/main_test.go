package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	prefsPath = "/v1/agents/default/state/local/prefs/ui"
	darkValue = `{"theme":"dark","size":12}`
)

// TestCommands runs each command line against a fake server and checks the
// requests, stdout, stderr and exit status.
func TestCommands(t *testing.T) {
	dir := t.TempDir()
	valueFile := filepath.Join(dir, "v.json")
	require.NoError(t, os.WriteFile(valueFile, []byte(`{"steps": [1, 2]}`+"\n"), 0o600))

	prefs := entry("local", "prefs/ui", darkValue, 3, 1042)
	tests := []struct {
		name     string
		args     []string
		env      map[string]string // added to AGENTSTATE_SERVER=<fake>
		stdin    string
		exs      []exchange
		wantCode int
		wantOut  string   // exact stdout, when not empty
		outHas   []string // substrings of stdout
		errHas   []string // substrings of stderr
	}{
		// get: a header line, then the value pretty-printed.
		{
			name: "get",
			args: []string{"get", "local", "prefs/ui"},
			exs:  []exchange{{method: "GET", path: prefsPath, reply: prefs}},
			wantOut: "local/prefs/ui  version 3  revision 1042  updated 2025-01-03T04:05:06Z by anonymous\n" +
				"{\n  \"theme\": \"dark\",\n  \"size\": 12\n}\n",
		},
		// get: <tier>/<key> form, agent from -a, version and revision options, -q.
		{
			name:    "get/options",
			args:    []string{"get", "-a", "agent-1", "local/prefs/ui", "--version", "2", "--at-revision", "900", "-q"},
			env:     map[string]string{"AGENTSTATE_AGENT": "ignored"},
			exs:     []exchange{{method: "GET", path: "/v1/agents/agent-1/state/local/prefs/ui", query: "version=2&at_revision=900", reply: prefs}},
			wantOut: "{\n  \"theme\": \"dark\",\n  \"size\": 12\n}\n",
		},
		// get: the agent and token from the environment.
		{
			name:   "get/env",
			args:   []string{"get", "persistent", "cfg"},
			env:    map[string]string{"AGENTSTATE_AGENT": "agent-9", "AGENTSTATE_TOKEN": "tok"},
			exs:    []exchange{{method: "GET", path: "/v1/agents/agent-9/state/persistent/cfg", auth: "Bearer tok", reply: entry("persistent", "cfg", `1`, 1, 5)}},
			outHas: []string{"persistent/cfg  version 1  revision 5", "\n1\n"},
		},
		// get -o json prints the server's answer as is.
		{
			name:    "get/json",
			args:    []string{"get", "local", "prefs/ui", "-o", "json"},
			exs:     []exchange{{method: "GET", path: prefsPath, reply: prefs}},
			wantOut: prefs + "\n",
		},
		// get of a missing key: error line on stderr, status 1, nothing on stdout.
		{
			name:     "get/not-found",
			args:     []string{"get", "local", "nope"},
			exs:      []exchange{{method: "GET", path: "/v1/agents/default/state/local/nope", status: 404, reply: apiError("not_found", "key local/nope not found", "")}},
			wantCode: 1,
			errHas:   []string{"error: not_found: key local/nope not found\n"},
		},
		// put from an argument, created.
		{
			name:    "put/created",
			args:    []string{"put", "local", "prefs/ui", darkValue},
			exs:     []exchange{{method: "PUT", path: prefsPath, body: `{"value":` + darkValue + `}`, status: 201, reply: entry("local", "prefs/ui", darkValue, 1, 42)}},
			wantOut: "created local/prefs/ui: version 1, revision 42\n",
		},
		// put from a file with every write flag; updated.
		{
			name: "put/file-and-flags",
			args: []string{"put", "shared/plan", "-f", valueFile, "--expected-version", "3", "--ttl", "10m",
				"-m", "add steps", "--metadata", `{"by":"cli"}`, "--strategy", "merge", "--lock-id", "L1"},
			exs: []exchange{{method: "PUT", path: "/v1/agents/default/state/shared/plan",
				body:  `{"value":{"steps":[1,2]},"expected_version":3,"ttl_seconds":600,"change_summary":"add steps","metadata":{"by":"cli"},"strategy":"merge","lock_id":"L1"}`,
				reply: entry("shared", "plan", `{"steps":[1,2]}`, 4, 50)}},
			wantOut: "updated shared/plan: version 4, revision 50\n",
		},
		// put --expected-version 0 sends 0 (create only).
		{
			name:    "put/create-only",
			args:    []string{"put", "local", "k", "1", "--expected-version", "0"},
			exs:     []exchange{{method: "PUT", path: "/v1/agents/default/state/local/k", body: `{"value":1,"expected_version":0}`, status: 201, reply: entry("local", "k", "1", 1, 2)}},
			wantOut: "created local/k: version 1, revision 2\n",
		},
		// put - --string reads text from stdin, dropping the trailing newline.
		{
			name:    "put/stdin-string",
			args:    []string{"put", "local", "note", "-", "--string"},
			stdin:   "hello <world>\n",
			exs:     []exchange{{method: "PUT", path: "/v1/agents/default/state/local/note", body: `{"value":"hello <world>"}`, status: 201, reply: entry("local", "note", `"hello <world>"`, 1, 3)}},
			wantOut: "created local/note: version 1, revision 3\n",
		},
		// put -o json prints the answer as is.
		{
			name:    "put/json",
			args:    []string{"put", "local", "k", "true", "-o", "json"},
			exs:     []exchange{{method: "PUT", path: "/v1/agents/default/state/local/k", body: `{"value":true}`, status: 201, reply: entry("local", "k", "true", 1, 9)}},
			wantOut: entry("local", "k", "true", 1, 9) + "\n",
		},
		// A value that is not JSON fails before any request, with a hint.
		{
			name:     "put/not-json",
			args:     []string{"put", "local", "k", "hello"},
			wantCode: 1,
			errHas:   []string{"error: value is not valid JSON", "--string"},
		},
		// No value at all is a usage error.
		{
			name:     "put/missing-value",
			args:     []string{"put", "local", "k"},
			wantCode: 2,
			errHas:   []string{"error: missing value", "Run 'agentstate put --help' for usage."},
		},
		// A version conflict shows expected and current versions.
		{
			name: "put/conflict",
			args: []string{"put", "local", "k", `{"n":2}`, "--expected-version", "1"},
			exs: []exchange{{method: "PUT", path: "/v1/agents/default/state/local/k", body: `{"value":{"n":2},"expected_version":1}`, status: 409,
				reply: apiError("version_conflict", "expected version 1, key is at version 4",
					`{"state_key":"k","local_version":1,"remote_version":4,"local_value":{"n":2},"remote_value":{"n":9},"conflict_type":"concurrent_modification"}`)}},
			wantCode: 1,
			errHas: []string{"error: version_conflict: expected version 1, key is at version 4\n",
				"expected version:  1\n", "current version:   4\n", "conflict type:     concurrent_modification\n", `current value:     {"n":9}`},
		},
		// Create-only on an existing key.
		{
			name: "put/already-exists",
			args: []string{"put", "local", "k", "1", "--expected-version", "0"},
			exs: []exchange{{method: "PUT", path: "/v1/agents/default/state/local/k", body: `{"value":1,"expected_version":0}`, status: 409,
				reply: apiError("already_exists", "key exists", `{"state_key":"k","local_version":0,"remote_version":2}`)}},
			wantCode: 1,
			errHas:   []string{"error: already_exists: key exists", "expected version:  0 (create only)", "current version:   2"},
		},
		// first_writer_wins keeps the current value: reported, not an error.
		{
			name: "put/first-writer-wins",
			args: []string{"put", "local", "k", "2", "--expected-version", "1", "--strategy", "first_writer_wins"},
			exs: []exchange{{method: "PUT", path: "/v1/agents/default/state/local/k", body: `{"value":2,"expected_version":1,"strategy":"first_writer_wins"}`,
				reply: strings.TrimSuffix(entry("local", "k", "7", 3, 30), "}") + `,"conflict":{"state_key":"k","local_version":1,"remote_version":3,"conflict_type":"concurrent_modification"}}`}},
			wantOut: "not written local/k: kept version 3 (first_writer_wins; expected version 1)\n",
		},
		// manual records a conflict (202).
		{
			name:    "put/manual",
			args:    []string{"put", "local", "k", "2", "--expected-version", "1", "--strategy", "manual"},
			exs:     []exchange{{method: "PUT", path: "/v1/agents/default/state/local/k", body: `{"value":2,"expected_version":1,"strategy":"manual"}`, status: 202, reply: `{"conflict_id":"c-7"}`}},
			wantOut: "conflict local/k: not written; conflict c-7 recorded for manual resolution\n",
		},
		// A schema failure lists each failed path.
		{
			name: "put/validation",
			args: []string{"put", "local", "k", "{}"},
			exs: []exchange{{method: "PUT", path: "/v1/agents/default/state/local/k", body: `{"value":{}}`, status: 422,
				reply: apiError("validation_failed", "value does not match schema prefs", `{"errors":[{"path":"/theme","message":"required"}]}`)}},
			wantCode: 1,
			errHas:   []string{"error: validation_failed: value does not match schema prefs\n  /theme: required\n"},
		},
		// patch --merge.
		{
			name:    "patch/merge",
			args:    []string{"patch", "local", "prefs/ui", "--merge", `{"theme":"light","size":null}`, "-m", "lighter"},
			exs:     []exchange{{method: "PATCH", path: prefsPath, body: `{"merge_patch":{"theme":"light","size":null},"change_summary":"lighter"}`, reply: entry("local", "prefs/ui", `{"theme":"light"}`, 4, 1043)}},
			wantOut: "patched local/prefs/ui: version 4, revision 1043\n",
		},
		// patch --json-patch from stdin, conditional.
		{
			name:  "patch/json-patch-stdin",
			args:  []string{"patch", "local/prefs/ui", "--json-patch", "-", "--expected-version", "3"},
			stdin: `[{"op":"test","path":"/theme","value":"dark"},{"op":"remove","path":"/size"}]`,
			exs: []exchange{{method: "PATCH", path: prefsPath,
				body:  `{"json_patch":[{"op":"test","path":"/theme","value":"dark"},{"op":"remove","path":"/size"}],"expected_version":3}`,
				reply: entry("local", "prefs/ui", `{"theme":"dark"}`, 4, 1043)}},
			wantOut: "patched local/prefs/ui: version 4, revision 1043\n",
		},
		// Both or neither patch flags: usage errors.
		{
			name:     "patch/both",
			args:     []string{"patch", "local", "k", "--merge", "{}", "--json-patch", "[]"},
			wantCode: 2,
			errHas:   []string{"error: ", "Run 'agentstate patch --help' for usage."},
		},
		{
			name:     "patch/neither",
			args:     []string{"patch", "local", "k"},
			wantCode: 2,
			errHas:   []string{"merge", "json-patch"},
		},
		// A JSON Patch that is not an array.
		{
			name:     "patch/not-array",
			args:     []string{"patch", "local", "k", "--json-patch", `{"op":"add"}`},
			wantCode: 1,
			errHas:   []string{"error: --json-patch must be a JSON array"},
		},
		// rm with --expected-version.
		{
			name:    "rm",
			args:    []string{"rm", "local", "prefs/ui", "--expected-version", "3"},
			exs:     []exchange{{method: "DELETE", path: prefsPath, query: "expected_version=3", reply: `{"version":4,"revision":1044}`}},
			wantOut: "deleted local/prefs/ui: tombstone version 4, revision 1044\n",
		},
		// rm -o json.
		{
			name:    "rm/json",
			args:    []string{"-o", "json", "rm", "local/k"},
			exs:     []exchange{{method: "DELETE", path: "/v1/agents/default/state/local/k", reply: `{"version":2,"revision":8}`}},
			wantOut: `{"version":2,"revision":8}` + "\n",
		},
		// ls of one tier: a table with a value preview.
		{
			name: "ls",
			args: []string{"ls", "local", "--prefix", "prefs/", "--limit", "2"},
			exs: []exchange{{method: "GET", path: "/v1/agents/default/state/local", query: "prefix=prefs/&limit=2",
				reply: `{"entries":[` + prefs + `,` + entry("local", "prefs/x", `"a"`, 1, 7) + `],"next_cursor":null}`}},
			wantOut: "KEY       VERSION  REVISION  UPDATED               SIZE  VALUE\n" +
				"prefs/ui  3        1042      2025-01-03T04:05:06Z  26 B  {\"theme\":\"dark\",\"size\":12}\n" +
				"prefs/x   1        7         2025-01-03T04:05:06Z  3 B   \"a\"\n",
		},
		// ls stops after a page and says how to go on.
		{
			name: "ls/more",
			args: []string{"ls", "local", "--pattern", "prefs/*", "--keys-only"},
			exs: []exchange{{method: "GET", path: "/v1/agents/default/state/local", query: "pattern=prefs/*&values=false",
				reply: `{"entries":[` + entry("local", "prefs/ui", `null`, 3, 1042) + `],"next_cursor":"cur1"}`}},
			wantOut: "KEY       VERSION  REVISION  UPDATED\nprefs/ui  3        1042      2025-01-03T04:05:06Z\n",
			errHas:  []string{"more entries in local: use --all, or run again with: local --cursor cur1\n"},
		},
		// ls --all follows the cursors; -o json merges the pages' entries.
		{
			name: "ls/all-json",
			args: []string{"ls", "session", "--all", "--cursor", "c0", "-o", "json"},
			exs: []exchange{
				{method: "GET", path: "/v1/agents/default/state/session", query: "cursor=c0", reply: `{"entries":[{"key":"a"}],"next_cursor":"c1"}`},
				{method: "GET", path: "/v1/agents/default/state/session", query: "cursor=c1", reply: `{"entries":[{"key":"b","x":1}],"next_cursor":null}`},
			},
			wantOut: `{"entries":[{"key":"a"},{"key":"b","x":1}],"next_cursor":null}` + "\n",
		},
		// ls without a tier lists every tier, with a TIER column.
		{
			name: "ls/every-tier",
			args: []string{"ls", "--keys-only"},
			exs: []exchange{
				{method: "GET", path: "/v1/agents/default/state/local", query: "values=false", reply: `{"entries":[` + entry("local", "a", "1", 1, 1) + `],"next_cursor":null}`},
				{method: "GET", path: "/v1/agents/default/state/shared", query: "values=false", reply: `{"entries":[],"next_cursor":null}`},
				{method: "GET", path: "/v1/agents/default/state/session", query: "values=false", reply: `{"entries":[],"next_cursor":null}`},
				{method: "GET", path: "/v1/agents/default/state/persistent", query: "values=false", reply: `{"entries":[` + entry("persistent", "b", "1", 2, 5) + `],"next_cursor":null}`},
			},
			wantOut: "TIER        KEY  VERSION  REVISION  UPDATED\n" +
				"local       a    1        1         2025-01-03T04:05:06Z\n" +
				"persistent  b    2        5         2025-01-03T04:05:06Z\n",
		},
		// ls of an empty tier.
		{
			name:    "ls/empty",
			args:    []string{"ls", "shared", "-a", "team-1"},
			exs:     []exchange{{method: "GET", path: "/v1/agents/team-1/state/shared", reply: `{"entries":[],"next_cursor":null}`}},
			wantOut: "no entries\n",
		},
		// An unknown tier is a usage error.
		{
			name:     "ls/bad-tier",
			args:     []string{"ls", "global"},
			wantCode: 2,
			errHas:   []string{`error: unknown tier "global"`},
		},
		// history: a table, newest first.
		{
			name: "history",
			args: []string{"history", "local", "prefs/ui", "--limit", "2", "--before", "9"},
			exs: []exchange{{method: "GET", path: "/v1/agents/default/history/local/prefs/ui", query: "limit=2&before_version=9",
				reply: `{"current_version":3,"versions":[
					{"version":3,"parent_version":2,"revision":1042,"change_type":"update","created_at":"2025-01-03T04:05:06Z","created_by":"anonymous","change_summary":"darker"},
					{"version":2,"parent_version":1,"revision":900,"change_type":"restore","created_at":"2025-01-02T04:05:06Z","created_by":"agent-1","change_summary":null}],"branches":[]}`}},
			wantOut: "local/prefs/ui  current version 3\n" +
				"VERSION  CHANGE   REVISION  CREATED_BY  WHEN                  SUMMARY\n" +
				"3        update   1042      anonymous   2025-01-03T04:05:06Z  darker\n" +
				"2        restore  900       agent-1     2025-01-02T04:05:06Z\n",
		},
		// history --diff shows each version's changes.
		{
			name: "history/diff",
			args: []string{"history", "local", "prefs/ui", "--diff"},
			exs: []exchange{{method: "GET", path: "/v1/agents/default/history/local/prefs/ui", query: "include_diff=true",
				reply: `{"current_version":2,"versions":[
					{"version":2,"parent_version":1,"revision":20,"change_type":"update","created_at":"2025-01-03T04:05:06Z","created_by":"u","change_summary":"s",
					 "diff":{"added":{"/b":true},"modified":{"/a":{"old":1,"new":2}},"removed":["/c"]}},
					{"version":1,"revision":10,"change_type":"create","created_at":"2025-01-02T04:05:06Z","created_by":"u",
					 "diff":[{"op":"add","path":"","value":{"a":1}}]}]}`}},
			wantOut: "local/prefs/ui  current version 2\n" +
				"version 2  update  revision 20  by u  2025-01-03T04:05:06Z  \"s\"\n" +
				"  ~ /a: 1 -> 2\n  + /b: true\n  - /c\n" +
				"version 1  create  revision 10  by u  2025-01-02T04:05:06Z\n" +
				"  + (root): {\"a\":1}\n",
		},
		// history -o json.
		{
			name:    "history/json",
			args:    []string{"history", "local/k", "-o", "json"},
			exs:     []exchange{{method: "GET", path: "/v1/agents/default/history/local/k", reply: `{"current_version":0,"versions":[],"branches":[]}`}},
			wantOut: `{"current_version":0,"versions":[],"branches":[]}` + "\n",
		},
		// diff: one line per changed pointer, sorted.
		{
			name: "diff",
			args: []string{"diff", "local", "prefs/ui", "--from", "2", "--to", "5"},
			exs: []exchange{{method: "GET", path: "/v1/agents/default/diff/local/prefs/ui", query: "from=2&to=5",
				reply: `{"added":{"/z":[1]},"modified":{"/theme":{"old":"dark","new":"light"}},"removed":["/size"]}`}},
			wantOut: "- /size\n~ /theme: \"dark\" -> \"light\"\n+ /z: [1]\n",
		},
		// diff with nothing changed.
		{
			name:    "diff/none",
			args:    []string{"diff", "local", "k", "--from", "1", "--to", "1"},
			exs:     []exchange{{method: "GET", path: "/v1/agents/default/diff/local/k", query: "from=1&to=1", reply: `{"added":{},"modified":{},"removed":[]}`}},
			wantOut: "no changes\n",
		},
		// diff --format json-patch prints the patch.
		{
			name: "diff/json-patch",
			args: []string{"diff", "local", "k", "--from", "1", "--to", "2", "--format", "json-patch"},
			exs: []exchange{{method: "GET", path: "/v1/agents/default/diff/local/k", query: "from=1&to=2&format=json-patch",
				reply: `[{"op":"replace","path":"/a","value":2}]`}},
			wantOut: "[\n  {\n    \"op\": \"replace\",\n    \"path\": \"/a\",\n    \"value\": 2\n  }\n]\n",
		},
		// diff --format json-patch -o json prints the answer as is.
		{
			name:    "diff/json-patch-json",
			args:    []string{"diff", "local", "k", "--from", "1", "--to", "2", "--format", "json-patch", "-o", "json"},
			exs:     []exchange{{method: "GET", path: "/v1/agents/default/diff/local/k", query: "from=1&to=2&format=json-patch", reply: `[]`}},
			wantOut: "[]\n",
		},
		// An unknown diff format.
		{
			name:     "diff/bad-format",
			args:     []string{"diff", "local", "k", "--from", "1", "--to", "2", "--format", "yaml"},
			wantCode: 2,
			errHas:   []string{`invalid --format "yaml"`},
		},
		{
			// --from and --to are required: the server needs both.
			name:     "diff/missing-versions",
			args:     []string{"diff", "local", "k", "--from", "1"},
			wantCode: 2,
			errHas:   []string{`required flag(s) "to" not set`},
		},
		// History before the oldest kept revision.
		{
			name:     "diff/compacted",
			args:     []string{"diff", "local", "k", "--from", "1", "--to", "2"},
			exs:      []exchange{{method: "GET", path: "/v1/agents/default/diff/local/k", query: "from=1&to=2", status: 410, reply: apiError("compacted", "version 1 was pruned", `{"oldest_revision":77}`)}},
			wantCode: 1,
			errHas:   []string{"error: compacted: version 1 was pruned\n  oldest_revision: 77\n"},
		},
		// rollback.
		{
			name:    "rollback",
			args:    []string{"rollback", "local", "prefs/ui", "--version", "2"},
			exs:     []exchange{{method: "POST", path: "/v1/agents/default/rollback/local/prefs/ui", body: `{"version":2}`, reply: entry("local", "prefs/ui", `{}`, 6, 1100)}},
			wantOut: "restored local/prefs/ui to version 2: now version 6, revision 1100\n",
		},
		// rollback needs --version.
		{
			name:     "rollback/no-version",
			args:     []string{"rollback", "local", "prefs/ui"},
			wantCode: 2,
			errHas:   []string{`"version" not set`},
		},
		// A locked key: the lock from the details.
		{
			name: "locked",
			args: []string{"rm", "shared", "doc"},
			exs: []exchange{{method: "DELETE", path: "/v1/agents/default/state/shared/doc", status: 423,
				reply: apiError("locked", "key is locked", `{"lock":{"id":"l-1","holder":"agent-2"}}`)}},
			wantCode: 1,
			errHas:   []string{"error: locked: key is locked\n", `lock: {"id":"l-1","holder":"agent-2"}`},
		},
		// A proxy's HTML error page still gives a code.
		{
			name:     "proxy-error",
			args:     []string{"get", "local", "k"},
			exs:      []exchange{{method: "GET", path: "/v1/agents/default/state/local/k", status: 502, ctype: "text/html", reply: "<h1>Bad Gateway</h1>"}},
			wantCode: 1,
			errHas:   []string{"error: unavailable: <h1>Bad Gateway</h1>"},
		},
		// --token wins over AGENTSTATE_TOKEN.
		{
			name:   "token-flag",
			args:   []string{"get", "local", "k", "--token", "flagtok", "-q"},
			env:    map[string]string{"AGENTSTATE_TOKEN": "envtok"},
			exs:    []exchange{{method: "GET", path: "/v1/agents/default/state/local/k", auth: "Bearer flagtok", reply: entry("local", "k", "1", 1, 1)}},
			outHas: []string{"1\n"},
		},
		// Unauthenticated.
		{
			name:     "unauthenticated",
			args:     []string{"get", "local", "k"},
			exs:      []exchange{{method: "GET", path: "/v1/agents/default/state/local/k", status: 401, reply: apiError("unauthenticated", "missing bearer token", "")}},
			wantCode: 1,
			errHas:   []string{"error: unauthenticated: missing bearer token\n"},
		},
		// Usage errors: unknown command, unknown flag, bad -o, extra argument.
		{
			name:     "usage/unknown-command",
			args:     []string{"gett", "local", "k"},
			wantCode: 2,
			errHas:   []string{`error: unknown command "gett"`, "get", "Run 'agentstate --help' for usage."},
		},
		{
			name:     "usage/unknown-flag",
			args:     []string{"get", "local", "k", "--nope"},
			wantCode: 2,
			errHas:   []string{"error: unknown flag: --nope", "Run 'agentstate get --help' for usage."},
		},
		{
			name:     "usage/output",
			args:     []string{"get", "local", "k", "-o", "yaml"},
			wantCode: 2,
			errHas:   []string{`error: invalid --output "yaml": want table or json`},
		},
		{
			name:     "usage/extra-arg",
			args:     []string{"get", "local", "k", "v"},
			wantCode: 2,
			errHas:   []string{`error: unexpected argument "v"`},
		},
		{
			name:     "usage/bad-int",
			args:     []string{"history", "local", "k", "--limit", "ten"},
			wantCode: 2,
			errHas:   []string{`invalid argument "ten" for "--limit"`},
		},
		// serve is wired into the root; a wrong serve command line is a
		// usage error (the server is never started by these tests).
		{
			name:     "serve/usage",
			args:     []string{"serve", "extra"},
			wantCode: 2,
			errHas:   []string{"error: ", "Run 'agentstate serve --help' for usage."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.exs...)
			env := map[string]string{"AGENTSTATE_SERVER": f.url}
			for k, v := range tt.env {
				env[k] = v
			}
			code, out, errOut := runCLI(t, tt.args, env, tt.stdin)
			require.Equal(t, tt.wantCode, code, "stderr: %s", errOut)
			if tt.wantOut != "" {
				require.Equal(t, tt.wantOut, out)
			}
			for _, s := range tt.outHas {
				require.Contains(t, out, s)
			}
			for _, s := range tt.errHas {
				require.Contains(t, errOut, s)
			}
			if tt.wantCode != 0 {
				require.Empty(t, out, "nothing on stdout on failure")
			}
			if tt.wantCode == 0 && len(tt.errHas) == 0 {
				require.Empty(t, errOut)
			}
			require.NotContains(t, out+errOut, "\x1b[", "no colours off a terminal")
		})
	}
}

// TestServerFlag checks where the server URL comes from: --server, then
// AGENTSTATE_SERVER, then the default.
func TestServerFlag(t *testing.T) {
	f := newFake(t, exchange{method: "GET", path: "/v1/agents/default/state/local/k", reply: entry("local", "k", "1", 1, 1)})
	code, _, errOut := runCLI(t, []string{"get", "local", "k", "--server", f.url}, map[string]string{"AGENTSTATE_SERVER": "http://127.0.0.1:1"}, "")
	require.Equal(t, 0, code, errOut)

	// Nothing listens at the env's address: a transport error, status 1.
	closed := httptest.NewServer(http.NotFoundHandler())
	addr := closed.URL
	closed.Close()
	code, out, errOut := runCLI(t, []string{"get", "local", "k"}, map[string]string{"AGENTSTATE_SERVER": addr}, "")
	require.Equal(t, 1, code)
	require.Empty(t, out)
	require.Contains(t, errOut, "error: transport: ")
	require.Contains(t, errOut, "is the server running at "+addr)
}

// TestHelp checks that --help lists every command with its description.
func TestHelp(t *testing.T) {
	code, out, _ := runCLI(t, []string{"--help"}, nil, "")
	require.Equal(t, 0, code)
	for _, line := range []string{
		"serve       Start the agentstate server",
		"get         Print the value of a key",
		"put         Write the value of a key",
		"patch       Change part of a value",
		"rm          Delete a key",
		"ls          List keys",
		"history     List the versions of a key",
		"diff        Show what changed",
		"rollback    Write an earlier version's value",
		"stream      Append to and read event streams",
		"watch       Print changes as they are committed",
		"--server", "--token", "--agent", "--output",
		"AGENTSTATE_SERVER", "NO_COLOR",
	} {
		require.Contains(t, out, line)
	}
	code, out, _ = runCLI(t, []string{"serve", "--help"}, nil, "")
	require.Equal(t, 0, code)
	require.Contains(t, out, "agentstate serve")
	require.Contains(t, out, "--listen")
	require.Contains(t, out, "--server", "the client's global flags show under serve too")

	code, out, _ = runCLI(t, []string{"put", "--help"}, nil, "")
	require.Equal(t, 0, code)
	require.Contains(t, out, "agentstate put <tier> <key> [<json> | -]")
	require.Contains(t, out, "--expected-version")
}
