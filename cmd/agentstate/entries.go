package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentstate/agentstate/client"
)

const addressHelp = `A key is addressed as "<tier> <key>" or "<tier>/<key>"; the tier is one of
local, shared, session, persistent, and --agent (-a) says whose state it is.`

// parseRef reads a key address at the start of args, "<tier> <key>" or
// "<tier>/<key>" (a tier never contains '/'), and returns the other args.
func parseRef(args []string) (tier, key string, rest []string, err error) {
	if len(args) == 0 {
		return "", "", nil, usageError{errors.New("missing key: give <tier> <key> or <tier>/<key>")}
	}
	if t, k, ok := strings.Cut(args[0], "/"); ok {
		tier, key, rest = t, k, args[1:]
	} else {
		if len(args) < 2 {
			return "", "", nil, usageError{fmt.Errorf("missing key after tier %q", args[0])}
		}
		tier, key, rest = args[0], args[1], args[2:]
	}
	if err := checkTier(tier); err != nil {
		return "", "", nil, err
	}
	if key == "" {
		return "", "", nil, usageError{errors.New("empty key")}
	}
	return tier, key, rest, nil
}

func checkTier(tier string) error {
	if !slices.Contains(client.Tiers, tier) {
		return usageError{fmt.Errorf("unknown tier %q: want local, shared, session or persistent", tier)}
	}
	return nil
}

// parseRefOnly is parseRef for commands that take nothing else.
func parseRefOnly(args []string) (tier, key string, err error) {
	tier, key, rest, err := parseRef(args)
	if err == nil && len(rest) > 0 {
		err = usageError{fmt.Errorf("unexpected argument %q", rest[0])}
	}
	return tier, key, err
}

func newGetCmd(a *app) *cobra.Command {
	var (
		version, atRevision int64
		quiet               bool
	)
	cmd := &cobra.Command{
		Use:     "get <tier> <key>",
		Short:   "Print the value of a key",
		GroupID: groupState,
		Long: `Print the value of a key, pretty-printed, after a line with its version,
revision and last update. --version reads an earlier version, --at-revision
the key as it was at a store revision.

` + addressHelp,
		Example: `  agentstate get local prefs/ui
  agentstate get -a agent-1 local/prefs/ui --version 2
  agentstate get local prefs/ui -q > ui.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			tier, key, err := parseRefOnly(args)
			if err != nil {
				return err
			}
			if version < 0 || atRevision < 0 {
				return usageError{errors.New("--version and --at-revision must be positive")}
			}
			s, err := a.start(cmd)
			if err != nil {
				return err
			}
			defer s.cancel()
			e, err := s.c.Get(s.ctx, s.agent, tier, key, &client.GetOptions{Version: version, AtRevision: atRevision})
			if err != nil {
				return err
			}
			if s.json() {
				s.printRaw()
				return nil
			}
			if !quiet {
				fmt.Fprintln(s.out, paint(s.color, ansiDim, entryLine(e)))
			}
			fmt.Fprintln(s.out, prettyJSON(e.Value, s.color))
			return nil
		},
	}
	f := cmd.Flags()
	f.Int64Var(&version, "version", 0, "read this version of the key")
	f.Int64Var(&atRevision, "at-revision", 0, "read the key as it was at this store revision")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the value, without the header line")
	return cmd
}

// entryLine is the header line of get: address, version, revision, update.
func entryLine(e *client.Entry) string {
	s := fmt.Sprintf("%s/%s  version %d  revision %d  updated %s", e.Tier, e.Key, e.Version, e.Revision, formatTime(e.UpdatedAt))
	if e.CreatedBy != "" {
		s += " by " + e.CreatedBy
	}
	if e.ExpiresAt != nil {
		s += "  expires " + formatTime(*e.ExpiresAt)
	}
	return s
}

// writeFlags are the flags shared by put and patch.
type writeFlags struct {
	expected int64
	summary  string
	metadata string
	lockID   string
}

func (w *writeFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.Int64Var(&w.expected, "expected-version", 0, "write only if the key is at this version (0: only if it does not exist)")
	f.StringVarP(&w.summary, "summary", "m", "", "change summary recorded in the history")
	f.StringVar(&w.metadata, "metadata", "", "metadata of the version, a JSON object")
	f.StringVar(&w.lockID, "lock-id", "", "id of the lock held on the key")
}

// expectedVersion is nil unless --expected-version was given.
func (w *writeFlags) expectedVersion(cmd *cobra.Command) *int64 {
	if !cmd.Flags().Changed("expected-version") {
		return nil
	}
	return client.Version(w.expected)
}

func (w *writeFlags) meta() (map[string]any, error) {
	if w.metadata == "" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(w.metadata), &m); err != nil || m == nil {
		return nil, usageError{errors.New("--metadata must be a JSON object")}
	}
	return m, nil
}

func newPutCmd(a *app) *cobra.Command {
	var (
		wf       writeFlags
		file     string
		asString bool
		ttl      time.Duration
		strategy string
	)
	cmd := &cobra.Command{
		Use:     "put <tier> <key> [<json> | -]",
		Short:   "Write the value of a key",
		GroupID: groupState,
		Long: `Write a JSON value as the new version of a key. The value is the last
argument, or read from a file with --file, or from standard input with "-".
--string stores the text as a JSON string instead of parsing it.

Without --expected-version the write is unconditional (last writer wins);
--expected-version 0 only creates, --expected-version N only writes over
version N and fails with version_conflict otherwise (see --strategy).

` + addressHelp,
		Example: `  agentstate put local prefs/ui '{"theme":"dark"}'
  agentstate put -a agent-1 session s1/step 3 --ttl 10m
  agentstate put shared/plan -f plan.json --expected-version 4 -m "add step 5"
  echo 'hello' | agentstate put local note - --string
  agentstate put local counter -- -1`,
		RunE: func(cmd *cobra.Command, args []string) error {
			tier, key, rest, err := parseRef(args)
			if err != nil {
				return err
			}
			meta, err := wf.meta()
			if err != nil {
				return err
			}
			if ttl < 0 {
				return usageError{errors.New("--ttl must be positive")}
			}
			value, err := readValue(cmd.InOrStdin(), rest, file, asString)
			if err != nil {
				return err
			}
			s, err := a.start(cmd)
			if err != nil {
				return err
			}
			defer s.cancel()
			res, err := s.c.Put(s.ctx, s.agent, tier, key, value, &client.PutOptions{
				ExpectedVersion: wf.expectedVersion(cmd),
				TTL:             ttl,
				ChangeSummary:   wf.summary,
				Metadata:        meta,
				Strategy:        client.Strategy(strategy),
				LockID:          wf.lockID,
			})
			if err != nil {
				return err
			}
			if s.json() {
				s.printRaw()
				return nil
			}
			addr := tier + "/" + key
			switch {
			case res.ConflictID != "":
				fmt.Fprintf(s.out, "%s %s: not written; conflict %s recorded for manual resolution\n",
					paint(s.color, ansiYellow, "conflict"), addr, res.ConflictID)
			case res.Entry == nil:
				fmt.Fprintf(s.out, "%s %s: not written yet (HTTP 202)\n", paint(s.color, ansiYellow, "accepted"), addr)
			case res.Conflict != nil:
				fmt.Fprintf(s.out, "%s %s: kept version %d (first_writer_wins; expected version %d)\n",
					paint(s.color, ansiYellow, "not written"), addr, res.Entry.Version, res.Conflict.LocalVersion)
			default:
				verb := "updated"
				if res.Created {
					verb = "created"
				}
				fmt.Fprintf(s.out, "%s %s: version %d, revision %d\n", paint(s.color, ansiGreen, verb), addr, res.Entry.Version, res.Entry.Revision)
			}
			return nil
		},
	}
	wf.add(cmd)
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", `read the value from a file ("-" for standard input)`)
	f.BoolVar(&asString, "string", false, "store the value as a JSON string (one trailing newline of a file is dropped)")
	f.DurationVar(&ttl, "ttl", 0, "expire the key after this long, e.g. 90s, 10m, 2h")
	f.StringVar(&strategy, "strategy", "", "on a version conflict: fail, last_writer_wins, first_writer_wins, merge or manual")
	return cmd
}

// readValue reads put's value from its argument, a file or standard input.
func readValue(stdin io.Reader, args []string, file string, asString bool) (json.RawMessage, error) {
	if len(args) > 1 {
		return nil, usageError{fmt.Errorf("unexpected argument %q (quote a value with spaces)", args[1])}
	}
	if len(args) == 1 && file != "" {
		return nil, usageError{errors.New("give the value as an argument or with --file, not both")}
	}
	var (
		data     []byte
		fromText bool // from a file or stdin: a trailing newline is not part of a --string
		err      error
	)
	switch {
	case len(args) == 1 && args[0] != "-":
		data = []byte(args[0])
	case len(args) == 1 || file == "-":
		data, err = io.ReadAll(stdin)
		fromText = true
	case file != "":
		data, err = os.ReadFile(file)
		fromText = true
	default:
		return nil, usageError{errors.New(`missing value: give it as an argument, with --file FILE, or "-" for standard input`)}
	}
	if err != nil {
		return nil, fmt.Errorf("read value: %w", err)
	}
	if asString {
		if fromText {
			data = bytes.TrimSuffix(data, []byte("\n"))
			data = bytes.TrimSuffix(data, []byte("\r"))
		}
		b, err := json.Marshal(string(data))
		return b, err
	}
	return parseJSON("value", data, `to store text, quote it as '"text"' or use --string`)
}

// parseJSON checks that data is one JSON value and returns it trimmed.
func parseJSON(what string, data []byte, hint string) (json.RawMessage, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, fmt.Errorf("empty %s", what)
	}
	if !json.Valid(data) {
		err := json.Unmarshal(data, new(any))
		msg := fmt.Sprintf("%s is not valid JSON: %v", what, err)
		if hint != "" {
			msg += " (" + hint + ")"
		}
		return nil, errors.New(msg)
	}
	return json.RawMessage(data), nil
}

func newPatchCmd(a *app) *cobra.Command {
	var (
		wf             writeFlags
		merge, jsonOps string
	)
	cmd := &cobra.Command{
		Use:     "patch <tier> <key> (--merge <json> | --json-patch <ops>)",
		Short:   "Change part of a value with a merge patch or a JSON Patch",
		GroupID: groupState,
		Long: `Apply a JSON merge patch (RFC 7386, --merge) or a JSON Patch (RFC 6902,
--json-patch) to the current value of a key, atomically. Give "-" to read the
patch from standard input. A failing "test" op fails with version_conflict.

` + addressHelp,
		Example: `  agentstate patch local prefs/ui --merge '{"theme":"light","font":null}'
  agentstate patch local prefs/ui --json-patch '[{"op":"replace","path":"/theme","value":"light"}]'
  agentstate patch shared/plan --json-patch - --expected-version 5 < ops.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			tier, key, err := parseRefOnly(args)
			if err != nil {
				return err
			}
			meta, err := wf.meta()
			if err != nil {
				return err
			}
			var p client.Patch
			if cmd.Flags().Changed("merge") {
				doc, err := readFlagJSON(cmd.InOrStdin(), "--merge", merge)
				if err != nil {
					return err
				}
				p.MergePatch = doc
			} else {
				doc, err := readFlagJSON(cmd.InOrStdin(), "--json-patch", jsonOps)
				if err != nil {
					return err
				}
				ops := []client.PatchOp{}
				if err := json.Unmarshal(doc, &ops); err != nil {
					return errors.New("--json-patch must be a JSON array of RFC 6902 operations")
				}
				p.JSONPatch = ops
			}
			s, err := a.start(cmd)
			if err != nil {
				return err
			}
			defer s.cancel()
			e, err := s.c.Patch(s.ctx, s.agent, tier, key, p, &client.PatchOptions{
				ExpectedVersion: wf.expectedVersion(cmd),
				ChangeSummary:   wf.summary,
				Metadata:        meta,
				LockID:          wf.lockID,
			})
			if err != nil {
				return err
			}
			if s.json() {
				s.printRaw()
				return nil
			}
			fmt.Fprintf(s.out, "%s %s/%s: version %d, revision %d\n", paint(s.color, ansiGreen, "patched"), tier, key, e.Version, e.Revision)
			return nil
		},
	}
	wf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&merge, "merge", "", `a JSON merge patch (RFC 7386); "-" reads standard input`)
	f.StringVar(&jsonOps, "json-patch", "", `a JSON Patch, an array of RFC 6902 ops; "-" reads standard input`)
	cmd.MarkFlagsMutuallyExclusive("merge", "json-patch")
	cmd.MarkFlagsOneRequired("merge", "json-patch")
	return cmd
}

// readFlagJSON returns a flag's JSON, read from stdin for "-".
func readFlagJSON(stdin io.Reader, flag, v string) (json.RawMessage, error) {
	data := []byte(v)
	if v == "-" {
		var err error
		if data, err = io.ReadAll(stdin); err != nil {
			return nil, fmt.Errorf("read %s: %w", flag, err)
		}
	}
	return parseJSON(flag, data, "")
}

func newRmCmd(a *app) *cobra.Command {
	var expected int64
	cmd := &cobra.Command{
		Use:     "rm <tier> <key>",
		Short:   "Delete a key (its history is kept)",
		GroupID: groupState,
		Long: `Delete a key. Its history is kept: "history" still lists it, "rollback"
brings a version back, and a later put continues the version numbering.

` + addressHelp,
		Example: `  agentstate rm local prefs/ui
  agentstate rm shared/plan --expected-version 7`,
		RunE: func(cmd *cobra.Command, args []string) error {
			tier, key, err := parseRefOnly(args)
			if err != nil {
				return err
			}
			s, err := a.start(cmd)
			if err != nil {
				return err
			}
			defer s.cancel()
			var opts client.DeleteOptions
			if cmd.Flags().Changed("expected-version") {
				opts.ExpectedVersion = client.Version(expected)
			}
			res, err := s.c.Delete(s.ctx, s.agent, tier, key, &opts)
			if err != nil {
				return err
			}
			if s.json() {
				s.printRaw()
				return nil
			}
			fmt.Fprintf(s.out, "%s %s/%s: tombstone version %d, revision %d\n", paint(s.color, ansiRed, "deleted"), tier, key, res.Version, res.Revision)
			return nil
		},
	}
	cmd.Flags().Int64Var(&expected, "expected-version", 0, "delete only if the key is at this version")
	return cmd
}

func newLsCmd(a *app) *cobra.Command {
	var (
		opts client.ListOptions
		all  bool
	)
	cmd := &cobra.Command{
		Use:     "ls [<tier>]",
		Short:   "List keys of a tier, or of every tier",
		GroupID: groupState,
		Long: `List the entries of a tier in key order, or of every tier when none is
given, with their version, revision, last update and a preview of the value.
A list stops after one page (--limit entries, default 100) unless --all
follows the pages to the end; the next page's cursor is printed on stderr.

--pattern is a glob: * matches within a segment, ** across segments.`,
		Example: `  agentstate ls
  agentstate ls local --prefix prefs/
  agentstate ls -a team-1 shared --pattern 'docs/**/draft' --all -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{fmt.Errorf("unexpected argument %q", args[1])}
			}
			tiers := client.Tiers
			if len(args) == 1 {
				if err := checkTier(args[0]); err != nil {
					return err
				}
				tiers = args[:1]
			}
			if opts.Cursor != "" && len(tiers) > 1 {
				return usageError{errors.New("--cursor needs a tier")}
			}
			if opts.Limit < 0 {
				return usageError{errors.New("--limit must be positive")}
			}
			s, err := a.start(cmd)
			if err != nil {
				return err
			}
			defer s.cancel()
			return s.list(tiers, opts, all)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Prefix, "prefix", "", "only keys starting with this prefix")
	f.StringVar(&opts.Pattern, "pattern", "", "only keys matching this glob")
	f.IntVar(&opts.Limit, "limit", 0, "entries per page (server default 100, max 1000)")
	f.StringVar(&opts.Cursor, "cursor", "", "continue a list from this cursor")
	f.BoolVar(&all, "all", false, "follow the cursors to the last page")
	f.BoolVar(&opts.KeysOnly, "keys-only", false, "leave values out")
	return cmd
}

// list runs ls over tiers and prints the entries.
func (s *session) list(tiers []string, opts client.ListOptions, all bool) error {
	var (
		entries  []client.Entry
		raws     []json.RawMessage
		more     = map[string]string{} // tier → cursor of the next page
		requests int
	)
	for _, tier := range tiers {
		o := opts
		for {
			page, err := s.c.List(s.ctx, s.agent, tier, &o)
			if err != nil {
				return err
			}
			requests++
			entries = append(entries, page.Entries...)
			var rp struct {
				Entries []json.RawMessage `json:"entries"`
			}
			if json.Unmarshal(s.bodies[len(s.bodies)-1], &rp) == nil {
				raws = append(raws, rp.Entries...)
			}
			if page.NextCursor == "" || page.NextCursor == o.Cursor {
				break
			}
			if !all {
				more[tier] = page.NextCursor
				break
			}
			o.Cursor = page.NextCursor
		}
	}
	for _, tier := range tiers {
		if c, ok := more[tier]; ok {
			fmt.Fprintf(s.stderr, "more entries in %s: use --all, or run again with: %s --cursor %s\n", tier, tier, c)
		}
	}
	if s.json() {
		if requests == 1 {
			s.printRaw()
			return nil
		}
		var next *string
		if len(tiers) == 1 {
			if c, ok := more[tiers[0]]; ok {
				next = &c
			}
		}
		if raws == nil {
			raws = []json.RawMessage{}
		}
		b, err := json.Marshal(struct {
			Entries    []json.RawMessage `json:"entries"`
			NextCursor *string           `json:"next_cursor"`
		}{raws, next})
		if err != nil {
			return err
		}
		fmt.Fprintln(s.out, string(b))
		return nil
	}
	if len(entries) == 0 {
		fmt.Fprintln(s.out, "no entries")
		return nil
	}
	multi := len(tiers) > 1
	cols := []string{"KEY", "VERSION", "REVISION", "UPDATED"}
	if multi {
		cols = append([]string{"TIER"}, cols...)
	}
	if !opts.KeysOnly {
		cols = append(cols, "SIZE", "VALUE")
	}
	t := newTable(cols...)
	for _, e := range entries {
		row := []string{e.Key, fmt.Sprint(e.Version), fmt.Sprint(e.Revision), formatTime(e.UpdatedAt)}
		if multi {
			row = append([]string{e.Tier}, row...)
		}
		if !opts.KeysOnly {
			row = append(row, formatSize(len(compactJSON(e.Value))), preview(e.Value, 60))
		}
		t.add(row...)
	}
	t.write(s.out, s.color)
	return nil
}
