package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/agentstate/agentstate/state"
)

// timeFormat is RFC 3339 in UTC with fixed nanosecond fractional seconds:
// always fractional (API.md: "with fractional seconds", which RFC3339Nano
// drops on a whole second), fixed width so strings sort like times, and
// parseable by time.RFC3339Nano.
const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

// entryJSON is the entry object of API.md, field for field. Value is omitted
// only in keys-only lists (values=false); everywhere else it is present (JSON
// null is a value).
type entryJSON struct {
	AgentID   string          `json:"agent_id"`
	Tier      string          `json:"tier"`
	Key       string          `json:"key"`
	Value     json.RawMessage `json:"value,omitempty"`
	Version   int64           `json:"version"`
	Revision  int64           `json:"revision"`
	CreatedAt string          `json:"created_at"`
	UpdatedAt string          `json:"updated_at"`
	ExpiresAt *string         `json:"expires_at"`
	CreatedBy string          `json:"created_by"`
	Checksum  string          `json:"checksum"`
	Metadata  json.RawMessage `json:"metadata"`
	// Conflict is set on a first_writer_wins answer that kept the current
	// value: the details a 409 would have carried.
	Conflict map[string]any `json:"conflict,omitempty"`
}

func entryOut(e *state.Entry, withValue bool) *entryJSON {
	out := &entryJSON{
		AgentID:   e.AgentID,
		Tier:      e.Tier,
		Key:       e.Key.Key,
		Version:   e.Version,
		Revision:  e.Revision,
		CreatedAt: formatTime(e.CreatedAt),
		UpdatedAt: formatTime(e.UpdatedAt),
		CreatedBy: e.CreatedBy,
		Checksum:  e.Checksum,
		Metadata:  e.Metadata,
	}
	if withValue {
		out.Value = rawOrNull(e.Value)
	}
	if e.ExpiresAt != nil {
		s := formatTime(*e.ExpiresAt)
		out.ExpiresAt = &s
	}
	if len(bytes.TrimSpace(out.Metadata)) == 0 || bytes.Equal(out.Metadata, []byte("null")) {
		out.Metadata = json.RawMessage("{}")
	}
	return out
}

func entriesOut(es []*state.Entry, withValue bool) []*entryJSON {
	out := make([]*entryJSON, 0, len(es))
	for _, e := range es {
		if e != nil {
			out = append(out, entryOut(e, withValue))
		}
	}
	return out
}

// listJSON is a list page; NextCursor is null on the last page.
type listJSON struct {
	Entries    []*entryJSON `json:"entries"`
	NextCursor *string      `json:"next_cursor"`
}

type batchGetJSON struct {
	Entries []*entryJSON    `json:"entries"`
	Missing []state.TierKey `json:"missing"`
}

type batchWriteJSON struct {
	Revision int64               `json:"revision"`
	Results  []state.BatchResult `json:"results"`
}

type deleteJSON struct {
	Version  int64 `json:"version"`
	Revision int64 `json:"revision"`
}

type historyJSON struct {
	CurrentVersion int64         `json:"current_version"`
	Versions       []versionJSON `json:"versions"`
	// Branches is always [] until branches land.
	Branches []any `json:"branches"`
}

type versionJSON struct {
	Version int64 `json:"version"`
	// ParentVersion is null for a key's first version.
	ParentVersion *int64 `json:"parent_version"`
	Revision      int64  `json:"revision"`
	ChangeType    string `json:"change_type"`
	CreatedAt     string `json:"created_at"`
	CreatedBy     string `json:"created_by"`
	ChangeSummary string `json:"change_summary"`
	Checksum      string `json:"checksum"`
	// Diff is present only with include_diff=true: a *state.Changes, or
	// JSON null when the parent version was pruned.
	Diff any `json:"diff,omitempty"`
}

func historyOut(h *state.HistoryResult, includeDiff bool) *historyJSON {
	out := &historyJSON{CurrentVersion: h.CurrentVersion, Versions: make([]versionJSON, 0, len(h.Versions)), Branches: []any{}}
	for _, v := range h.Versions {
		vj := versionJSON{
			Version: v.Version, Revision: v.Revision, ChangeType: v.ChangeType,
			CreatedAt: formatTime(v.CreatedAt), CreatedBy: v.CreatedBy,
			ChangeSummary: v.ChangeSummary, Checksum: v.Checksum,
		}
		if v.ParentVersion > 0 {
			p := v.ParentVersion
			vj.ParentVersion = &p
		}
		if includeDiff {
			vj.Diff = json.RawMessage("null")
			if v.Diff != nil {
				vj.Diff = changesOut(v.Diff)
			}
		}
		out.Versions = append(out.Versions, vj)
	}
	return out
}

// changesOut fills nil maps and slices so the diff always has its three
// members as {} / [] rather than null.
func changesOut(c *state.Changes) *state.Changes {
	out := *c
	if out.Added == nil {
		out.Added = map[string]json.RawMessage{}
	}
	if out.Modified == nil {
		out.Modified = map[string]state.Change{}
	}
	if out.Removed == nil {
		out.Removed = []string{}
	}
	return &out
}

type statusJSON struct {
	Status string `json:"status"`
}

// writeJSON encodes v and answers it with status. The body is encoded before
// anything is written, so an encoding failure is still a clean 500.
// HTML characters are not escaped: values come back byte for byte as stored.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		if _, isErr := v.(errorBody); isErr {
			// Encoding the error itself failed: answer a fixed body.
			s.log.Error("server: encoding an error answer", "err", err)
			buf.Reset()
			buf.WriteString(`{"error":{"code":"internal","message":"internal error","details":{}}}` + "\n")
			status = http.StatusInternalServerError
		} else {
			s.fail(w, r, err, nil)
			return
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
