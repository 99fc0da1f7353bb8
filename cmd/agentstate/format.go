package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// ANSI styles.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiBlue   = "\x1b[34m"
	ansiCyan   = "\x1b[36m"
)

// paint wraps s in an ANSI style when color is on.
func paint(color bool, style, s string) string {
	if !color || s == "" {
		return s
	}
	return style + s + ansiReset
}

// table renders rows of cells as aligned columns, two spaces apart. The
// first row is the header, bold on a terminal. Widths ignore ANSI styles,
// so cells may be painted.
type table struct {
	rows [][]string
}

func newTable(header ...string) *table { return &table{rows: [][]string{header}} }

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer, color bool) {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], visibleWidth(c))
		}
	}
	var b strings.Builder
	for n, r := range t.rows {
		b.Reset()
		for i, c := range r {
			if n == 0 {
				c = paint(color, ansiBold, c)
			}
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-visibleWidth(c)+2))
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// visibleWidth counts the runes of s outside ANSI escape sequences.
func visibleWidth(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			i += 2
			for i < len(s) && (s[i] < 0x40 || s[i] > 0x7e) {
				i++
			}
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		n++
	}
	return n
}

// formatTime renders a time for tables: UTC to the second.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// compactJSON compacts raw JSON; invalid JSON is returned as is.
func compactJSON(raw []byte) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

// preview renders a value on one line of at most n characters.
func preview(raw json.RawMessage, n int) string {
	if len(raw) == 0 {
		return "-"
	}
	s := compactJSON(raw)
	s = strings.NewReplacer("\n", `\n`, "\t", `\t`).Replace(s)
	if r := []rune(s); len(r) > n {
		s = string(r[:n-1]) + "…"
	}
	return s
}

// formatSize renders a byte count.
func formatSize(n int) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d B", n)
	case n < 1024*1024:
		return fmt.Sprintf("%.1f KiB", float64(n)/1024)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1024*1024))
}

// prettyJSON indents raw JSON by two spaces, coloured on a terminal.
func prettyJSON(raw json.RawMessage, color bool) string {
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		return string(raw)
	}
	if !color {
		return b.String()
	}
	return colorJSON(b.Bytes())
}

// colorJSON colours valid JSON: keys blue, strings green, numbers and
// booleans yellow, null dim.
func colorJSON(src []byte) string {
	var out strings.Builder
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '"':
			j := i + 1
			for j < len(src) && src[j] != '"' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(src))
			k := j
			for k < len(src) && (src[k] == ' ' || src[k] == '\n' || src[k] == '\t' || src[k] == '\r') {
				k++
			}
			style := ansiGreen
			if k < len(src) && src[k] == ':' {
				style = ansiBlue
			}
			out.WriteString(style + string(src[i:j]) + ansiReset)
			i = j
		case c == '-' || c >= '0' && c <= '9' || c == 't' || c == 'f' || c == 'n':
			j := i
			for j < len(src) && strings.IndexByte(",]} \n\t\r", src[j]) < 0 {
				j++
			}
			style := ansiYellow
			if c == 'n' {
				style = ansiDim
			}
			out.WriteString(style + string(src[i:j]) + ansiReset)
			i = j
		default:
			out.WriteByte(c)
			i++
		}
	}
	return out.String()
}
