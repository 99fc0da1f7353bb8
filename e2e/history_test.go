package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
)

// TestHistoryDiffRollback checks the history face over HTTP: reads by
// version and by revision, history paging, both diff formats (each must turn
// the from version into the to version) and rollback, which writes the old
// value as a new "restore" version.
func TestHistoryDiffRollback(t *testing.T) {
	const agent, tier, key = "hist-agent", "persistent", "doc"
	p := startServer(t, t.TempDir())
	target := statePath(agent, tier, key)
	v1 := `{"a": 1, "b": [1, 2], "c": "x", "n": {"keep": 1, "drop": 2}}`
	v2 := `{"a": 2, "b": [1, 2, 3], "d": true, "n": {"keep": 1}}`
	var e1, e2 entry
	p.must(t, http.MethodPut, target, `{"value": `+v1+`}`, http.StatusCreated).decode(t, &e1)
	p.must(t, http.MethodPut, target, `{"value": `+v2+`, "change_summary": "second"}`, http.StatusOK).decode(t, &e2)

	// Reads of the past.
	for _, c := range []struct {
		query string
		want  string
	}{
		{"?version=1", v1},
		{"?version=2", v2},
		{"?at_revision=" + strconv.FormatInt(e1.Revision, 10), v1},
		{"?at_revision=" + strconv.FormatInt(e2.Revision, 10), v2},
	} {
		var e entry
		p.must(t, http.MethodGet, target+c.query, nil, http.StatusOK).decode(t, &e)
		if !jsonEqual(e.Value, []byte(c.want)) {
			t.Errorf("GET %s%s = %s; want %s", target, c.query, e.Value, c.want)
		}
	}
	if e1.Revision > 1 {
		checkErrorAnswer(t, p.do(t, http.MethodGet, target+"?at_revision="+strconv.FormatInt(e1.Revision-1, 10), nil), http.StatusNotFound, "not_found")
	}

	// Diff, both formats, must take v1 to v2.
	var d struct {
		Added    map[string]json.RawMessage `json:"added"`
		Modified map[string]struct {
			Old json.RawMessage `json:"old"`
			New json.RawMessage `json:"new"`
		} `json:"modified"`
		Removed []string `json:"removed"`
	}
	dr := p.must(t, http.MethodGet, "/v1/agents/"+agent+"/diff/"+tier+"/"+key+"?from=1&to=2", nil, http.StatusOK)
	dr.decode(t, &d)
	if len(d.Added)+len(d.Modified)+len(d.Removed) == 0 {
		t.Errorf("%s\nwant a non-empty diff", dr)
	}
	for path, val := range d.Added {
		if got, ok := pointerGet(t, v2, path); !ok || !jsonEqual(got, val) {
			t.Errorf("%s\nadded %q: the path must point into version 2 at the added value %s; it resolves to %s (found %v)", dr, path, val, got, ok)
		}
	}
	for path, ch := range d.Modified {
		old, ok1 := pointerGet(t, v1, path)
		nw, ok2 := pointerGet(t, v2, path)
		if !ok1 || !ok2 || !jsonEqual(old, ch.Old) || !jsonEqual(nw, ch.New) {
			t.Errorf("%s\nmodified %q: want old %s (version 1) and new %s (version 2)", dr, path, old, nw)
		}
	}
	for _, path := range d.Removed {
		if _, ok := pointerGet(t, v1, path); !ok {
			t.Errorf("%s\nremoved %q does not exist in version 1", dr, path)
		}
		if _, ok := pointerGet(t, v2, path); ok {
			t.Errorf("%s\nremoved %q still exists in version 2", dr, path)
		}
	}
	pr := p.must(t, http.MethodGet, "/v1/agents/"+agent+"/diff/"+tier+"/"+key+"?from=1&to=2&format=json-patch", nil, http.StatusOK)
	patch, err := jsonpatch.DecodePatch(pr.Body)
	if err != nil {
		t.Fatalf("%s\nnot an RFC 6902 patch: %v", pr, err)
	}
	if got, err := patch.Apply([]byte(v1)); err != nil || !jsonEqual(got, []byte(v2)) {
		t.Errorf("%s\napplied to version 1 gives %s (err %v); want version 2 %s", pr, got, err, v2)
	}

	// Rollback writes version 1's value as version 3, a restore.
	rr := p.must(t, http.MethodPost, "/v1/agents/"+agent+"/rollback/"+tier+"/"+key, `{"version": 1}`, http.StatusOK, http.StatusCreated)
	var e3 entry
	rr.decode(t, &e3)
	if e3.Version != 3 || !jsonEqual(e3.Value, []byte(v1)) || e3.Revision <= e2.Revision {
		t.Errorf("%s\nwant version 3 with version 1's value and a new revision", rr)
	}
	var h historyAnswer
	hr := p.must(t, http.MethodGet, historyPath(agent, tier, key), nil, http.StatusOK)
	hr.decode(t, &h)
	wantTypes := []string{"restore", "update", "create"}
	if h.CurrentVersion != 3 || len(h.Versions) != 3 {
		t.Fatalf("%s\nwant current_version 3 and 3 versions", hr)
	}
	for i, v := range h.Versions {
		if v.Version != int64(3-i) || v.ChangeType != wantTypes[i] {
			t.Errorf("%s\nversions[%d] = %d %q; want %d %q", hr, i, v.Version, v.ChangeType, 3-i, wantTypes[i])
		}
	}
	// Paging: limit and before_version.
	var page historyAnswer
	pg := p.must(t, http.MethodGet, historyPath(agent, tier, key)+"?limit=1&before_version=3", nil, http.StatusOK)
	pg.decode(t, &page)
	if len(page.Versions) != 1 || page.Versions[0].Version != 2 {
		t.Errorf("%s\nwant exactly version 2", pg)
	}
	// Rollback to a version that never existed.
	checkErrorAnswer(t, p.do(t, http.MethodPost, "/v1/agents/"+agent+"/rollback/"+tier+"/"+key, `{"version": 99}`), http.StatusNotFound, "not_found")
	if cur, _ := p.getEntry(t, agent, tier, key); cur.Version != 3 {
		t.Errorf("a failed rollback moved the key to version %d; want 3", cur.Version)
	}
}

// pointerGet resolves an RFC 6901 JSON Pointer in doc.
func pointerGet(t testing.TB, doc, ptr string) (json.RawMessage, bool) {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("bad test document %s: %v", doc, err)
	}
	if ptr == "" {
		return json.RawMessage(doc), true
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil, false
	}
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch cur := v.(type) {
		case map[string]any:
			next, ok := cur[tok]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(cur) || tok != fmt.Sprint(i) {
				return nil, false
			}
			v = cur[i]
		default:
			return nil, false
		}
	}
	b, _ := json.Marshal(v)
	return b, true
}
