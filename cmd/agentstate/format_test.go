package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		tier, key string
		rest      []string
		wantErr   string
	}{
		// Two arguments.
		{name: "separate", args: []string{"local", "prefs/ui", "v"}, tier: "local", key: "prefs/ui", rest: []string{"v"}},
		// One argument: the tier is everything before the first slash.
		{name: "joined", args: []string{"shared/docs/a/b", "v"}, tier: "shared", key: "docs/a/b", rest: []string{"v"}},
		// A key may look like a tier.
		{name: "key named like a tier", args: []string{"local", "session"}, tier: "local", key: "session", rest: []string{}},
		// Errors.
		{name: "nothing", args: nil, wantErr: "missing key"},
		{name: "tier only", args: []string{"local"}, wantErr: `missing key after tier "local"`},
		{name: "bad tier", args: []string{"cache/k"}, wantErr: `unknown tier "cache"`},
		{name: "empty key", args: []string{"local/"}, wantErr: "empty key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tier, key, rest, err := parseRef(tt.args)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.ErrorAs(t, err, new(usageError))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.tier, tier)
			require.Equal(t, tt.key, key)
			require.Equal(t, tt.rest, rest)
		})
	}
}

func TestUseColor(t *testing.T) {
	file, err := os.Create(filepath.Join(t.TempDir(), "out"))
	require.NoError(t, err)
	t.Cleanup(func() { file.Close() })
	tests := []struct {
		name string
		env  map[string]string
		w    any
	}{
		// A buffer is not a terminal.
		{"buffer", nil, &bytes.Buffer{}},
		// Nor is a regular file.
		{"file", nil, file},
		// NO_COLOR and TERM=dumb turn colours off whatever the output.
		{"no_color", map[string]string{"NO_COLOR": "1"}, os.Stdout},
		{"dumb", map[string]string{"TERM": "dumb"}, os.Stdout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &app{getenv: func(k string) string { return tt.env[k] }}
			w := tt.w.(interface{ Write([]byte) (int, error) })
			require.False(t, a.useColor(w))
		})
	}
}

func TestColorJSON(t *testing.T) {
	got := prettyJSON([]byte(`{"k":"v\"x","n":-1.5,"t":true,"z":null,"a":[1]}`), true)
	want := "{\n" +
		"  " + ansiBlue + `"k"` + ansiReset + ": " + ansiGreen + `"v\"x"` + ansiReset + ",\n" +
		"  " + ansiBlue + `"n"` + ansiReset + ": " + ansiYellow + "-1.5" + ansiReset + ",\n" +
		"  " + ansiBlue + `"t"` + ansiReset + ": " + ansiYellow + "true" + ansiReset + ",\n" +
		"  " + ansiBlue + `"z"` + ansiReset + ": " + ansiDim + "null" + ansiReset + ",\n" +
		"  " + ansiBlue + `"a"` + ansiReset + ": [\n    " + ansiYellow + "1" + ansiReset + "\n  ]\n}"
	require.Equal(t, want, got)
	require.Equal(t, "{\n  \"k\": 1\n}", prettyJSON([]byte(`{"k":1}`), false))
}

// TestTableColors checks that painted cells do not break the alignment.
func TestTableColors(t *testing.T) {
	tb := newTable("A", "B", "C")
	tb.add(paint(true, ansiGreen, "create"), "x", "end")
	tb.add("update", paint(true, ansiRed, "yy"), "")
	var b bytes.Buffer
	tb.write(&b, true)
	var plain []string
	for _, l := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		var s strings.Builder
		for i := 0; i < len(l); i++ {
			if l[i] == 0x1b {
				for l[i] != 'm' {
					i++
				}
				continue
			}
			s.WriteByte(l[i])
		}
		plain = append(plain, s.String())
	}
	require.Equal(t, []string{"A       B   C", "create  x   end", "update  yy"}, plain)
}

func TestPreviewAndSize(t *testing.T) {
	require.Equal(t, `{"a":[1,2]}`, preview([]byte("{\n \"a\": [1, 2]\n}"), 50))
	require.Equal(t, `"abcdefghi…`, preview([]byte(`"abcdefghijklmnop"`), 11))
	require.Equal(t, "-", preview(nil, 10))
	require.Equal(t, "12 B", formatSize(12))
	require.Equal(t, "1.5 KiB", formatSize(1536))
	require.Equal(t, "2.0 MiB", formatSize(2<<20))
}
