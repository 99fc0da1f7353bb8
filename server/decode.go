package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/agentstate/agentstate/jsonvalue"
	"github.com/agentstate/agentstate/state"
)

// bodyDepthSlack is how much deeper than a value a request body may nest:
// the body object, a batch's ops array and op object, a JSON Patch array and
// op object wrap the value. Bodies nested deeper are refused before parsing.
const bodyDepthSlack = 8

// maxTTLSeconds bounds ttl_seconds (100 years): beyond it, expiry times
// overflow the stores' timestamp range.
const maxTTLSeconds = 100 * 365 * 24 * 3600

func invalidArg(field, format string, args ...any) error {
	return &state.InvalidArgumentError{Field: field, Op: -1, Message: fmt.Sprintf(format, args...)}
}

// readBody reads the request body, at most limit bytes (413 beyond), and
// checks what every JSON body must be before it is parsed: UTF-8, not empty,
// and not nested deeper than the value limit allows (a 10,000-deep body is
// refused by a linear scan, never by the recursive decoder).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &state.TooLargeError{Message: fmt.Sprintf("request body is %d bytes; the limit is %d", r.ContentLength, limit), Limit: int(limit), Actual: int(r.ContentLength), Op: -1}
	}
	if s.opts.BodyReadTimeout > 0 {
		rc := http.NewResponseController(w)
		if rc.SetReadDeadline(time.Now().Add(s.opts.BodyReadTimeout)) == nil {
			// Clear it once the body is in: a deadline left armed would
			// cancel the request's context when it passes.
			defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, &state.TooLargeError{Message: fmt.Sprintf("request body is larger than %d bytes", limit), Limit: int(limit), Op: -1}
		}
		return nil, invalidArg("body", "reading the request body failed: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, invalidArg("body", "request body is empty; expected a JSON object")
	}
	if !utf8.Valid(body) {
		return nil, invalidArg("body", "request body is not valid UTF-8")
	}
	maxDepth := s.m.Limits().MaxDepth
	if maxDepth <= 0 {
		maxDepth = jsonvalue.DefaultMaxDepth
	}
	if d := jsonvalue.Depth(body); d > maxDepth+bodyDepthSlack {
		return nil, invalidArg("body", "request body nests %d levels deep; values may nest at most %d levels", d, maxDepth)
	}
	return body, nil
}

// decodeObject decodes one JSON object into dst, strictly: unknown fields,
// wrong types and trailing data are 400s naming the field. prefix and op
// locate an object inside a batch ("ops[3].", 3); "" and -1 elsewhere.
func decodeObject(data []byte, dst any, prefix string, op int) error {
	fail := func(field, msg string) error {
		if op >= 0 {
			msg = fmt.Sprintf("op %d: %s", op, msg)
		}
		return &state.InvalidArgumentError{Field: field, Op: op, Message: msg}
	}
	where, whole := "request body", "body"
	if prefix != "" {
		where = strings.TrimSuffix(prefix, ".")
		whole = where
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return fail(whole, where+" must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var (
			syn *json.SyntaxError
			ute *json.UnmarshalTypeError
		)
		switch {
		case errors.As(err, &syn):
			return fail(whole, fmt.Sprintf("%s is not valid JSON: %v (at byte %d)", where, syn, syn.Offset))
		case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
			return fail(whole, where+" is truncated JSON")
		case errors.As(err, &ute):
			field := prefix + ute.Field
			return fail(field, fmt.Sprintf("%s must be %s, not %s", field, jsonKind(ute.Type), ute.Value))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return fail(prefix+name, fmt.Sprintf("unknown field %q in %s", prefix+name, where))
		}
		return fail(whole, fmt.Sprintf("%s: %v", where, err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail(whole, where+" has data after the JSON object")
	}
	return nil
}

// jsonKind names the JSON a Go type accepts, for messages.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a different type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer (in range)"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a different type"
}

// nonNegative checks an expected_version-like field: an integer >= 0.
func nonNegative(v *int64, field string, op int) error {
	if v != nil && *v < 0 {
		msg := field + " must be an integer >= 0"
		if op >= 0 {
			msg = fmt.Sprintf("op %d: %s", op, msg)
		}
		return &state.InvalidArgumentError{Field: field, Op: op, Message: msg}
	}
	return nil
}

// ttlFrom converts ttl_seconds (an integer >= 1) to a duration; nil stays nil
// (the tier's default applies).
func ttlFrom(sec *int64, field string, op int) (*time.Duration, error) {
	if sec == nil {
		return nil, nil
	}
	if *sec < 1 || *sec > maxTTLSeconds {
		msg := fmt.Sprintf("%s must be an integer between 1 and %d", field, maxTTLSeconds)
		if op >= 0 {
			msg = fmt.Sprintf("op %d: %s", op, msg)
		}
		return nil, &state.InvalidArgumentError{Field: field, Op: op, Message: msg}
	}
	d := time.Duration(*sec) * time.Second
	return &d, nil
}

// nullToNil turns an explicit JSON null into "absent" (for optional objects
// such as metadata, where null means none).
func nullToNil(v json.RawMessage) json.RawMessage {
	if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return nil
	}
	return v
}

// parseQuery parses the query string strictly (a malformed one is a 400,
// not silently dropped pairs).
func parseQuery(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, invalidArg("query", "malformed query string: %v", err)
	}
	return q, nil
}

// queryInt reads an integer query parameter. Absent or empty: (0, false).
// Not an integer, or below min: 400 naming the parameter.
func queryInt(q url.Values, name string, min int64) (int64, bool, error) {
	s := q.Get(name)
	if s == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, invalidArg(name, "query parameter %s must be an integer >= %d, not %q", name, min, s)
	}
	if n < min {
		return 0, false, invalidArg(name, "query parameter %s must be an integer >= %d, not %d", name, min, n)
	}
	return n, true, nil
}

// queryBool reads a boolean query parameter: true/false (also 1/0).
func queryBool(q url.Values, name string, def bool) (bool, error) {
	switch s := q.Get(name); s {
	case "":
		return def, nil
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	default:
		return false, invalidArg(name, "query parameter %s must be true or false, not %q", name, s)
	}
}

// queryConsistency reads ?consistency=strong|eventual ("" = strong).
func queryConsistency(q url.Values) (string, error) {
	switch c := q.Get("consistency"); c {
	case "", state.ConsistencyStrong, state.ConsistencyEventual:
		return c, nil
	default:
		return "", invalidArg("consistency", "query parameter consistency must be strong or eventual, not %q", c)
	}
}

// ifMatch reads If-Match: "<version>" (API.md) as an expected version. A bare
// integer is accepted too. A list, "*" and weak tags are 400s: the store's
// precondition is one exact version.
func ifMatch(r *http.Request) (*int64, error) {
	vals := r.Header.Values("If-Match")
	if len(vals) == 0 {
		return nil, nil
	}
	v := strings.TrimSpace(strings.Join(vals, ","))
	switch {
	case v == "":
		return nil, nil
	case strings.Contains(v, ","):
		return nil, invalidArg("If-Match", `If-Match must name exactly one version, as "<version>"`)
	case v == "*":
		return nil, invalidArg("If-Match", `If-Match: * is not supported; send If-Match: "<version>"`)
	case strings.HasPrefix(v, "W/"):
		return nil, invalidArg("If-Match", `If-Match takes a strong entity tag "<version>", not a weak one`)
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return nil, invalidArg("If-Match", `If-Match must be "<version>" with an integer version >= 0, not %q`, r.Header.Get("If-Match"))
	}
	return &n, nil
}

// expectedVersion merges the expected_version of the body or query with
// If-Match: either may be given; both must then agree.
func expectedVersion(r *http.Request, given *int64) (*int64, error) {
	if err := nonNegative(given, "expected_version", -1); err != nil {
		return nil, err
	}
	im, err := ifMatch(r)
	if err != nil {
		return nil, err
	}
	switch {
	case im == nil:
		return given, nil
	case given == nil:
		return im, nil
	case *im != *given:
		return nil, invalidArg("If-Match", "If-Match (%d) and expected_version (%d) disagree; send one of them", *im, *given)
	}
	return given, nil
}

// ifNoneMatchCreate reads If-None-Match on a PUT: "*" means create only
// (expected_version 0). Anything else is a 400 rather than silently ignored,
// since ignoring a precondition could overwrite data.
func ifNoneMatchCreate(r *http.Request, exp *int64) (*int64, error) {
	vals := r.Header.Values("If-None-Match")
	if len(vals) == 0 {
		return exp, nil
	}
	if v := strings.TrimSpace(strings.Join(vals, ",")); v != "*" {
		return nil, invalidArg("If-None-Match", `on a write, If-None-Match must be * (create only)`)
	}
	if exp != nil && *exp != 0 {
		return nil, invalidArg("If-None-Match", "If-None-Match: * (create only) and expected version %d disagree", *exp)
	}
	zero := int64(0)
	return &zero, nil
}
