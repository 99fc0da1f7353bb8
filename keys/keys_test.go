package keys

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func TestValidateKey(t *testing.T) {
	long := strings.Repeat("a", MaxKeyLen)
	tests := []struct {
		key string
		ok  bool
	}{
		{"a", true},             // one char
		{"prefs/ui", true},      // two segments
		{"a.b:c@d-e_f/0", true}, // every allowed punctuation
		{".hidden", true},       // dot-leading segment is fine
		{"a/..b", true},         // ".." only forbidden as a whole segment
		{long, true},            // exactly the limit
		{"", false},             // empty
		{long + "a", false},     // over the limit
		{"/a", false},           // leading slash
		{"a/", false},           // trailing slash
		{"a//b", false},         // empty segment
		{"a/./b", false},        // dot segment
		{"a/../b", false},       // dotdot segment
		{"..", false},           // dotdot alone
		{"a b", false},          // space
		{"a%2Fb", false},        // percent
		{"ключ", false},         // non-ASCII
		{"a\x00b", false},       // NUL
		{"a?b", false},          // glob char
		{"a*b", false},          // glob char
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			err := ValidateKey(tc.key)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidateKey(%q) = %v, want ok=%v", tc.key, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
		})
	}
}

func TestValidateAgentID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"agent-1", true},
		{"team.alpha:conv_9", true},
		{strings.Repeat("x", 128), true},
		{strings.Repeat("x", 129), false}, // too long
		{"", false},                       // empty
		{"a/b", false},                    // slash
		{"a@b", false},                    // @ is a key char, not an id char
		{"a b", false},                    // space
	}
	for _, tc := range tests {
		if err := ValidateAgentID(tc.id); (err == nil) != tc.ok {
			t.Errorf("ValidateAgentID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
	}
}

func TestValidateTier(t *testing.T) {
	for _, tier := range Tiers {
		if err := ValidateTier(tier); err != nil {
			t.Errorf("ValidateTier(%q) = %v", tier, err)
		}
	}
	for _, bad := range []string{"", "Local", "global", "local "} {
		if err := ValidateTier(bad); err == nil {
			t.Errorf("ValidateTier(%q) accepted", bad)
		}
	}
}

func TestValidatePrefix(t *testing.T) {
	tests := []struct {
		p  string
		ok bool
	}{
		{"", true}, {"a", true}, {"a/", true}, {"a/b", true}, {"a/.", true}, {"a/..x", true},
		{"/", false}, {"/a", false}, {"a//", false}, {"a/../", false}, {"a b", false}, {"a*", false},
	}
	for _, tc := range tests {
		if err := ValidatePrefix(tc.p); (err == nil) != tc.ok {
			t.Errorf("ValidatePrefix(%q) = %v, want ok=%v", tc.p, err, tc.ok)
		}
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, key string
		match        bool
	}{
		{"prefs/*", "prefs/ui", true},
		{"prefs/*", "prefs/ui/theme", false}, // * stays in its segment
		{"prefs/**", "prefs/ui/theme", true},
		{"prefs/**", "prefs", true}, // ** matches zero segments
		{"**/theme", "theme", true},
		{"**/theme", "a/b/theme", true},
		{"**/theme", "a/b/themes", false},
		{"a/**/z", "a/z", true},
		{"a/**/z", "a/b/c/z", true},
		{"a/**/z", "a/b/c/y", false},
		{"tool-?/state", "tool-1/state", true},
		{"tool-?/state", "tool-10/state", false},
		{"*.json", "x.json", true},
		{"*.json", "dir/x.json", false},
		{"a**b", "axxb", true}, // ** inside a segment is *
		{"a**b", "ax/xb", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"*", "a", true},
		{"**", "a/b/c", true},
	}
	for _, tc := range tests {
		g, err := CompileGlob(tc.pattern)
		if err != nil {
			t.Fatalf("CompileGlob(%q): %v", tc.pattern, err)
		}
		if got := g.Match(tc.key); got != tc.match {
			t.Errorf("%q.Match(%q) = %v, want %v", tc.pattern, tc.key, got, tc.match)
		}
	}
	for _, bad := range []string{"", "a//b", "/a", "a/", "a/../b", "a b", "a[b]"} {
		if _, err := CompileGlob(bad); err == nil {
			t.Errorf("CompileGlob(%q) accepted", bad)
		}
	}
}

func TestLiteralPrefix(t *testing.T) {
	tests := map[string]string{
		"prefs/*":       "prefs/",
		"prefs/ui":      "prefs/ui",
		"**/x":          "",
		"a/b?c/d":       "a/b",
		"tools/**/x.js": "tools",
	}
	for p, want := range tests {
		g, err := CompileGlob(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := g.LiteralPrefix(); got != want {
			t.Errorf("%q.LiteralPrefix() = %q, want %q", p, got, want)
		}
	}
}

// refMatch is an independent reference: the obvious recursive definition
// over segments ("**" takes zero or more whole segments), with each other
// segment matched by a regular expression.
func refMatch(ps, ks []string) bool {
	if len(ps) == 0 {
		return len(ks) == 0
	}
	if ps[0] == "**" {
		return refMatch(ps[1:], ks) || (len(ks) > 0 && refMatch(ps, ks[1:]))
	}
	if len(ks) == 0 {
		return false
	}
	var b strings.Builder
	b.WriteString("^")
	for _, c := range ps[0] {
		switch c {
		case '*':
			b.WriteString("[^/]*")
		case '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String()).MatchString(ks[0]) && refMatch(ps[1:], ks[1:])
}

// Property: Match agrees with the regular-expression reference, and every
// matching key starts with LiteralPrefix.
func TestGlobMatchesReference(t *testing.T) {
	seg := rapid.SampledFrom([]string{"a", "b", "ab", "x.y", "-"})
	patSeg := rapid.SampledFrom([]string{"a", "b", "ab", "*", "a*", "*b", "?", "**", "x.y", "a?"})
	rapid.Check(t, func(t *rapid.T) {
		pat := strings.Join(rapid.SliceOfN(patSeg, 1, 5).Draw(t, "pattern"), "/")
		key := strings.Join(rapid.SliceOfN(seg, 1, 6).Draw(t, "key"), "/")
		g, err := CompileGlob(pat)
		if err != nil {
			t.Fatalf("CompileGlob(%q): %v", pat, err)
		}
		want := refMatch(g.segs, strings.Split(key, "/"))
		got := g.Match(key)
		if got != want {
			t.Fatalf("%q.Match(%q) = %v, reference says %v", pat, key, got, want)
		}
		if got && !strings.HasPrefix(key, g.LiteralPrefix()) {
			t.Fatalf("%q matches %q but its literal prefix is %q", pat, key, g.LiteralPrefix())
		}
	})
}

// FuzzKey checks the key, id and prefix parsers never panic and agree with
// the documented syntax.
func FuzzKey(f *testing.F) {
	for _, s := range []string{"a", "prefs/ui", "a//b", "a/../b", "..", "/", "a/", strings.Repeat("a/", 300), "k@v:1.2-3_x", "\xff"} {
		f.Add(s)
	}
	segOK := regexp.MustCompile(`^[A-Za-z0-9_.:@-]+$`)
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateKey(s)
		want := len(s) >= 1 && len(s) <= MaxKeyLen
		if want {
			for _, seg := range strings.Split(s, "/") {
				if !segOK.MatchString(seg) || seg == "." || seg == ".." {
					want = false
					break
				}
			}
		}
		if (err == nil) != want {
			t.Fatalf("ValidateKey(%q) = %v, reference ok=%v", s, err, want)
		}
		_ = ValidateAgentID(s)
		if ValidatePrefix(s) != nil && err == nil {
			t.Fatalf("valid key %q rejected as a prefix", s)
		}
		if g, err := CompileGlob(s); err == nil {
			g.Match(s)
			g.LiteralPrefix()
		}
	})
}
