package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/agentstate/agentstate/client"
)

// Output formats.
const (
	outputTable = "table"
	outputJSON  = "json"
)

const defaultTimeout = 30 * time.Second

// app holds the global flags and what the client commands share.
type app struct {
	getenv         func(string) string
	stdout, stderr io.Writer

	// Global flags.
	server, token, agent, output string
	timeout                      time.Duration

	// bodies are the answers' bodies, in order, for -o json.
	bodies [][]byte
}

// session is what a client command runs with, made by app.start.
type session struct {
	*app
	c      *client.Client
	ctx    context.Context
	out    io.Writer
	color  bool
	cancel context.CancelFunc
}

// start resolves the global flags (a flag given on the command line wins
// over the environment, which wins over the default) and makes a client,
// with opts after the CLI's own options.
func (a *app) start(cmd *cobra.Command, opts ...client.Option) (*session, error) {
	flags := cmd.Flags()
	fromEnv := func(flag, env string, dst *string) {
		if !flags.Changed(flag) {
			if v := a.getenv(env); v != "" {
				*dst = v
			}
		}
	}
	fromEnv("server", "AGENTSTATE_SERVER", &a.server)
	fromEnv("token", "AGENTSTATE_TOKEN", &a.token)
	fromEnv("agent", "AGENTSTATE_AGENT", &a.agent)
	switch a.output {
	case outputTable, outputJSON:
	default:
		return nil, usageError{fmt.Errorf("invalid --output %q: want table or json", a.output)}
	}
	if a.agent == "" {
		return nil, usageError{errors.New("empty --agent")}
	}
	c, err := client.New(a.server, append([]client.Option{
		client.WithToken(a.token),
		client.WithUserAgent("agentstate-cli/1"),
		client.WithResponseHook(func(_ *http.Response, body []byte) { a.bodies = append(a.bodies, body) }),
	}, opts...)...)
	if err != nil {
		return nil, usageError{err}
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	cancel := context.CancelFunc(func() {})
	if a.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, a.timeout)
	}
	out := cmd.OutOrStdout()
	return &session{app: a, c: c, ctx: ctx, out: out, color: a.useColor(out), cancel: cancel}, nil
}

// json reports whether -o json was asked for.
func (s *session) json() bool { return s.output == outputJSON }

// printRaw prints the last answer's body as it came, for -o json.
func (s *session) printRaw() {
	if len(s.bodies) == 0 {
		return
	}
	b := s.bodies[len(s.bodies)-1]
	s.out.Write(b)
	if len(b) == 0 || b[len(b)-1] != '\n' {
		io.WriteString(s.out, "\n")
	}
}

// useColor reports whether w is a terminal that colours may be written to:
// never with NO_COLOR set (https://no-color.org) or TERM=dumb.
func (a *app) useColor(w io.Writer) bool {
	if a.getenv("NO_COLOR") != "" || a.getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// printUsageError reports a wrong command line.
func (a *app) printUsageError(cmd *cobra.Command, err error) {
	color := a.useColor(a.stderr)
	fmt.Fprintf(a.stderr, "%s %s\n", paint(color, ansiRed+ansiBold, "error:"), strings.TrimRight(err.Error(), "\n"))
	path := "agentstate"
	if cmd != nil {
		path = cmd.CommandPath()
	}
	fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", path)
}

// printError reports a failed command: "error: <code>: <message>" for an
// error answered by the server, followed by what its details say.
func (a *app) printError(err error) {
	color := a.useColor(a.stderr)
	w := a.stderr
	prefix := paint(color, ansiRed+ansiBold, "error:")
	var e *client.Error
	switch {
	case errors.As(err, &e):
		fmt.Fprintf(w, "%s %s: %s\n", prefix, e.Code, e.Message)
		for _, line := range detailLines(e) {
			fmt.Fprintf(w, "  %s\n", line)
		}
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(w, "%s interrupted\n", prefix)
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(w, "%s timed out after %v (see --timeout)\n", prefix, a.timeout)
	case errors.Is(err, client.ErrTransport):
		msg := strings.TrimPrefix(err.Error(), client.ErrTransport.Error()+": ")
		fmt.Fprintf(w, "%s transport: %s\n", prefix, msg)
		if errors.Is(err, syscall.ECONNREFUSED) {
			fmt.Fprintf(w, "  is the server running at %s? (set --server or AGENTSTATE_SERVER)\n", a.server)
		}
	default:
		fmt.Fprintf(w, "%s %v\n", prefix, err)
	}
}

// detailLines renders the details of an API error: expected and current
// version of a conflict, failed validations, the lock or rule in the way,
// and anything else as compact JSON.
func detailLines(e *client.Error) []string {
	var lines []string
	if d, ok := e.Conflict(); ok && (d.StateKey != "" || d.RemoteVersion != 0 || d.ConflictType != "" || len(d.Conflicts) > 0 || d.Op != nil) {
		if d.Op != nil {
			lines = append(lines, fmt.Sprintf("batch op:          %d", *d.Op))
		}
		if d.StateKey != "" {
			lines = append(lines, "key:               "+d.StateKey)
		}
		// local_version is the expected_version sent; 0 means "create only"
		// for already_exists and "none sent" otherwise (a failed test op).
		switch {
		case e.Code == client.CodeAlreadyExists:
			lines = append(lines, "expected version:  0 (create only)")
		case d.LocalVersion != 0:
			lines = append(lines, fmt.Sprintf("expected version:  %d", d.LocalVersion))
		}
		if e.Code == client.CodeAlreadyExists || d.RemoteVersion != 0 {
			lines = append(lines, fmt.Sprintf("current version:   %d", d.RemoteVersion))
		}
		if d.ConflictType != "" {
			lines = append(lines, "conflict type:     "+d.ConflictType)
		}
		if len(d.Conflicts) > 0 {
			lines = append(lines, "conflicting paths: "+strings.Join(d.Conflicts, ", "))
		}
		if len(d.RemoteValue) > 0 {
			lines = append(lines, "current value:     "+preview(d.RemoteValue, 120))
		}
		return lines
	}
	if errs := e.ValidationErrors(); len(errs) > 0 {
		for _, v := range errs {
			p := v.Path
			if p == "" {
				p = "/"
			}
			lines = append(lines, p+": "+v.Message)
		}
		return lines
	}
	if len(e.Details) == 0 {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(e.Details, &m) != nil || len(m) == 0 {
		return nil
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		lines = append(lines, k+": "+preview(m[k], 200))
	}
	return lines
}
