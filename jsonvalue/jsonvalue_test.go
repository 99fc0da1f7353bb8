package jsonvalue

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		name    string
		in      string
		want    string // compacted output when ok
		wantErr error
	}{
		{"object", `{"a": 1, "b": [true, null]}`, `{"a":1,"b":[true,null]}`, nil},
		{"null is a value", `null`, `null`, nil},
		{"string", ` "x" `, `"x"`, nil},
		{"depth at limit", deep(64), deep(64), nil},
		{"depth over limit", deep(65), "", ErrInvalid},
		{"10000 deep", deep(10000), "", ErrInvalid},
		{"brackets in strings do not count", `["` + strings.Repeat("[", 100) + `"]`, `["` + strings.Repeat("[", 100) + `"]`, nil},
		{"escaped quote in string", `["a\"[[["]`, `["a\"[[["]`, nil},
		{"truncated", `{"a": `, "", ErrInvalid},
		{"trailing garbage", `{} x`, "", ErrInvalid},
		{"empty", ``, "", ErrInvalid},
		{"blank", `   `, "", ErrInvalid},
		{"too large", `"` + strings.Repeat("x", DefaultMaxBytes) + `"`, "", ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Check([]byte(tc.in), Limits{})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Check = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if string(got) != tc.want {
				t.Fatalf("Check = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestChecksumIsCanonical(t *testing.T) {
	// RFC 8785: member order, whitespace and number spelling do not change
	// the canonical form.
	a, err := Checksum(json.RawMessage(`{"b": 1.0, "a": "\u0041"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Checksum(json.RawMessage(`{"a":"A","b":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("equivalent values have different checksums: %s vs %s", a, b)
	}
	c, _ := Checksum(json.RawMessage(`{"a":"A","b":2}`))
	if a == c {
		t.Fatal("different values share a checksum")
	}
	if !strings.HasPrefix(a, "sha256:") || len(a) != len("sha256:")+64 {
		t.Fatalf("checksum %q is not sha256:<64 hex>", a)
	}
}

// FuzzCheck: Check never panics; what it accepts is valid JSON within the
// limits, and checking its own output is a fixed point.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `null`, `{"a":[1,2,{"b":"c"}]}`, `[[[[`, `"\u00e9"`, `1e400`, `{"a":}`, strings.Repeat("[", 70) + strings.Repeat("]", 70)} {
		f.Add([]byte(s))
	}
	lim := Limits{MaxBytes: 4096, MaxDepth: 8}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Check(in, lim)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("accepted invalid JSON %q", in)
		}
		if Depth(out) > lim.MaxDepth || len(in) > lim.MaxBytes {
			t.Fatalf("accepted %q beyond limits", in)
		}
		again, err := Check(out, lim)
		if err != nil || string(again) != string(out) {
			t.Fatalf("Check not idempotent on %q: %q, %v", out, again, err)
		}
		_, _ = Checksum(out)
	})
}
