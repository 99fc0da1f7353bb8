package diff

import (
	"encoding/json"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
)

// ApplyPatch applies an RFC 6902 patch to any JSON document, scalars
// included. evanphx/json-patch only patches objects and arrays, so the
// document is wrapped as {"v": doc} and every path (and from) is prefixed
// with "/v"; operations on the root ("") then work as RFC 6902 says.
//
// Objects and arrays patched with no root operation take the direct path, so
// the library's error messages quote the caller's own paths.
func ApplyPatch(doc json.RawMessage, p jsonpatch.Patch, opts *jsonpatch.ApplyOptions) (json.RawMessage, error) {
	if isContainer(doc) && !touchesRoot(p) {
		return p.ApplyWithOptions(doc, opts)
	}
	wrapped := make(jsonpatch.Patch, len(p))
	for i, op := range p {
		c := make(jsonpatch.Operation, len(op))
		for k, v := range op {
			c[k] = v
		}
		for _, field := range []string{"path", "from"} {
			raw, ok := op[field]
			if !ok || raw == nil {
				continue
			}
			var s string
			if err := json.Unmarshal(*raw, &s); err != nil {
				continue // left as is: the library reports the bad field
			}
			b, _ := json.Marshal("/v" + s)
			m := json.RawMessage(b)
			c[field] = &m
		}
		wrapped[i] = c
	}
	w := make([]byte, 0, len(doc)+6)
	w = append(append(append(w, `{"v":`...), doc...), '}')
	out, err := wrapped.ApplyWithOptions(w, opts)
	if err != nil {
		return nil, unwrapPaths(err)
	}
	var res struct {
		V json.RawMessage `json:"v"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, err
	}
	if res.V == nil {
		// The patch removed the whole document.
		return nil, jsonpatch.ErrMissing
	}
	return res.V, nil
}

func isContainer(doc json.RawMessage) bool {
	for _, c := range doc {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{', '[':
			return true
		}
		return false
	}
	return false
}

func touchesRoot(p jsonpatch.Patch) bool {
	for _, op := range p {
		for _, field := range []string{"path", "from"} {
			if raw, ok := op[field]; ok && raw != nil && string(*raw) == `""` {
				return true
			}
		}
	}
	return false
}

// patchPathError keeps the library's error (for errors.Is, e.g.
// ErrTestFailed) but says the caller's paths, not the wrapped ones.
type patchPathError struct {
	msg string
	err error
}

func (e *patchPathError) Error() string { return e.msg }
func (e *patchPathError) Unwrap() error { return e.err }

func unwrapPaths(err error) error {
	msg := err.Error()
	for _, r := range [][2]string{{"'/v/", "'/"}, {"'/v'", "''"}, {" /v/", " /"}, {" /v ", " (root) "}, {"\"/v/", "\"/"}, {"\"/v\"", "\"\""}} {
		msg = strings.ReplaceAll(msg, r[0], r[1])
	}
	return &patchPathError{msg: msg, err: err}
}
