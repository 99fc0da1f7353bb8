package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"

	"github.com/gowebpki/jcs"
)

// TestChecksumIsOverCanonicalJSON checks API.md's "checksum is over the
// value's canonical JSON (RFC 8785)": for values whose spelling differs from
// their canonical form (member order, number spelling, escapes), the entry's
// checksum is sha256 of the RFC 8785 form, whichever way the value was sent,
// and the same value spelled differently gets the same checksum.
func TestChecksumIsOverCanonicalJSON(t *testing.T) {
	p := startServer(t, t.TempDir())
	for i, c := range []struct {
		value, sameValue string
	}{
		{`{"b": 2, "a": 1}`, `{"a":1,"b":2}`},
		{`{"n": 1.0, "e": 1e2, "neg": -0.0}`, `{"e":100,"n":1,"neg":0}`},
		{`{"u": "\u00e9", "tab": "a\tb", "slash": "\/"}`, `{"slash":"/","tab":"a\u0009b","u":"é"}`},
		{`[3, {"z": null, "y": [true, false]}, "x"]`, `[3,{"y":[true,false],"z":null},"x"]`},
		{`"just a string"`, `"just a string"`},
		{`null`, `null`},
	} {
		canon, err := jcs.Transform([]byte(c.value))
		if err != nil {
			t.Fatalf("jcs.Transform(%s): %v", c.value, err)
		}
		sum := sha256.Sum256(canon)
		want := "sha256:" + hex.EncodeToString(sum[:])
		var e1, e2 entry
		key := "sum/" + string(rune('a'+i))
		p.must(t, http.MethodPut, statePath("sum-agent", "local", key), `{"value": `+c.value+`}`, http.StatusCreated).decode(t, &e1)
		p.must(t, http.MethodPut, statePath("sum-agent", "local", key), `{"value": `+c.sameValue+`}`, http.StatusOK).decode(t, &e2)
		if e1.Checksum != want {
			t.Errorf("PUT value %s: checksum %q; want %q (sha256 of the RFC 8785 form %s)", c.value, e1.Checksum, want, canon)
		}
		if e2.Checksum != e1.Checksum {
			t.Errorf("the same value spelled %s and %s got checksums %q and %q", c.value, c.sameValue, e1.Checksum, e2.Checksum)
		}
		if !jsonEqual(e2.Value, []byte(c.value)) {
			t.Errorf("PUT %s read back as %s", c.sameValue, e2.Value)
		}
	}
}
