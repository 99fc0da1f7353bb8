package keys

import (
	"fmt"
	"strings"
)

// Glob is a compiled key pattern. Syntax: segments joined by "/"; in a
// segment, "*" matches any run of characters other than "/" and "?" one such
// character; a segment that is exactly "**" matches zero or more whole
// segments. Everything else matches itself.
//
//	prefs/*        matches prefs/ui, not prefs/ui/theme
//	prefs/**       matches prefs, prefs/ui and prefs/ui/theme
//	**/theme       matches theme, ui/theme, a/b/theme
//	tool-?/state   matches tool-1/state
type Glob struct {
	pattern string
	segs    []string
}

// CompileGlob checks and compiles a pattern.
func CompileGlob(pattern string) (*Glob, error) {
	if pattern == "" {
		return nil, &SyntaxError{Field: "pattern", Value: pattern, Reason: "must not be empty"}
	}
	if len(pattern) > MaxKeyLen*2 {
		return nil, &SyntaxError{Field: "pattern", Value: pattern, Reason: fmt.Sprintf("longer than %d bytes", MaxKeyLen*2)}
	}
	segs := strings.Split(pattern, "/")
	for i, s := range segs {
		if s == "" {
			return nil, &SyntaxError{Field: "pattern", Value: pattern, Reason: "has an empty segment"}
		}
		if s == "." || s == ".." {
			return nil, &SyntaxError{Field: "pattern", Value: pattern, Reason: fmt.Sprintf("has a %q segment", s)}
		}
		for j := 0; j < len(s); j++ {
			if c := s[j]; c != '*' && c != '?' && !keyChar(c) {
				return nil, &SyntaxError{Field: "pattern", Value: pattern, Reason: fmt.Sprintf("character %q is not allowed", c)}
			}
		}
		// "**" inside a longer segment has no cross-segment meaning; it is the
		// same as "*". Normalise so the matcher has one notion per segment.
		if s != "**" {
			for strings.Contains(s, "**") {
				s = strings.ReplaceAll(s, "**", "*")
			}
			segs[i] = s
		}
	}
	return &Glob{pattern: pattern, segs: segs}, nil
}

// String returns the pattern as given.
func (g *Glob) String() string { return g.pattern }

// LiteralPrefix is the longest prefix every matching key starts with; a store
// scans that range and filters with Match.
func (g *Glob) LiteralPrefix() string {
	var b strings.Builder
	for i, s := range g.segs {
		if k := strings.IndexAny(s, "*?"); k >= 0 {
			b.WriteString(s[:k])
			return b.String()
		}
		b.WriteString(s)
		// "a/**" matches "a" itself, so the slash before a "**" segment is
		// not part of the prefix.
		if i < len(g.segs)-1 && g.segs[i+1] != "**" {
			b.WriteByte('/')
		}
	}
	return b.String()
}

// Match reports whether key matches the pattern.
//
// Both levels use the classic linear wildcard algorithm with one backtrack
// point (the latest star), which is exact for patterns whose only
// variable-length token is a star: "**" over segments, "*" within one.
func (g *Glob) Match(key string) bool {
	ks := strings.Split(key, "/")
	ps := g.segs
	pi, ki := 0, 0
	starP, starK := -1, 0
	for ki < len(ks) {
		switch {
		case pi < len(ps) && ps[pi] == "**":
			starP, starK = pi, ki
			pi++
		case pi < len(ps) && matchSegment(ps[pi], ks[ki]):
			pi++
			ki++
		case starP >= 0:
			starK++
			pi, ki = starP+1, starK
		default:
			return false
		}
	}
	for pi < len(ps) && ps[pi] == "**" {
		pi++
	}
	return pi == len(ps)
}

// matchSegment matches one key segment against one pattern segment with "*"
// and "?".
func matchSegment(p, s string) bool {
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			starP, starS = pi, si
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case starP >= 0:
			starS++
			pi, si = starP+1, starS
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
