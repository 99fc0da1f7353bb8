package diff

import (
	"encoding/json"

	jsonpatch "github.com/evanphx/json-patch/v5"
)

// ApplyPatch applies an RFC 6902 patch to any JSON document, scalars
// included. evanphx/json-patch only patches objects and arrays, so the
// document is wrapped as {"v": doc} and every path (and from) is prefixed
// with "/v"; operations on the root ("") then work as RFC 6902 says.
func ApplyPatch(doc json.RawMessage, p jsonpatch.Patch, opts *jsonpatch.ApplyOptions) (json.RawMessage, error) {
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
		return nil, err
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
