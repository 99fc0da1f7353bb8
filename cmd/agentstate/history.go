package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/agentstate/agentstate/client"
)

func newHistoryCmd(a *app) *cobra.Command {
	var opts client.HistoryOptions
	cmd := &cobra.Command{
		Use:     "history <tier> <key>",
		Short:   "List the versions of a key, newest first",
		GroupID: groupHistory,
		Long: `List the versions of a key, newest first: version, change type (create,
update, delete, expire, restore), store revision, author, time and summary.
--diff shows what each version changed. Versions beyond the tier's history
limit are pruned.

` + addressHelp,
		Example: `  agentstate history local prefs/ui
  agentstate history shared/plan --limit 5 --diff
  agentstate history shared/plan --before 20`,
		RunE: func(cmd *cobra.Command, args []string) error {
			tier, key, err := parseRefOnly(args)
			if err != nil {
				return err
			}
			if opts.Limit < 0 || opts.BeforeVersion < 0 {
				return usageError{errors.New("--limit and --before must be positive")}
			}
			s, err := a.start(cmd)
			if err != nil {
				return err
			}
			defer s.cancel()
			h, err := s.c.History(s.ctx, s.agent, tier, key, &opts)
			if err != nil {
				return err
			}
			if s.json() {
				s.printRaw()
				return nil
			}
			fmt.Fprintln(s.out, paint(s.color, ansiDim, fmt.Sprintf("%s/%s  current version %d", tier, key, h.CurrentVersion)))
			if len(h.Versions) == 0 {
				fmt.Fprintln(s.out, "no versions")
				return nil
			}
			if opts.IncludeDiff {
				for _, v := range h.Versions {
					line := fmt.Sprintf("version %d  %s  revision %d  by %s  %s",
						v.Version, paint(s.color, changeStyle(v.ChangeType), v.ChangeType), v.Revision, orDash(v.CreatedBy), formatTime(v.CreatedAt))
					if v.ChangeSummary != "" {
						line += "  " + strconv.Quote(v.ChangeSummary)
					}
					fmt.Fprintln(s.out, line)
					for _, l := range diffLines(v.Diff, s.color) {
						fmt.Fprintln(s.out, "  "+l)
					}
				}
				return nil
			}
			t := newTable("VERSION", "CHANGE", "REVISION", "CREATED_BY", "WHEN", "SUMMARY")
			for _, v := range h.Versions {
				t.add(fmt.Sprint(v.Version), paint(s.color, changeStyle(v.ChangeType), v.ChangeType), fmt.Sprint(v.Revision),
					orDash(v.CreatedBy), formatTime(v.CreatedAt), v.ChangeSummary)
			}
			t.write(s.out, s.color)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.Limit, "limit", 0, "versions to list (server default 50)")
	f.Int64Var(&opts.BeforeVersion, "before", 0, "only versions older than this one")
	f.BoolVar(&opts.IncludeDiff, "diff", false, "show what each version changed")
	return cmd
}

func changeStyle(changeType string) string {
	switch changeType {
	case client.ChangeCreate:
		return ansiGreen
	case client.ChangeDelete, client.ChangeExpire:
		return ansiRed
	case client.ChangeRestore:
		return ansiCyan
	}
	return ansiYellow
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// diffLines renders a diff, one change per line: "+ path: value" added,
// "~ path: old -> new" modified, "- path" removed. It takes both shapes the
// API uses, the added/modified/removed object and an RFC 6902 patch, and
// shows anything else as compact JSON.
func diffLines(raw json.RawMessage, color bool) []string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	const width = 100
	var lines []string
	if raw[0] == '[' {
		var ops []client.PatchOp
		if json.Unmarshal(raw, &ops) == nil {
			for _, op := range ops {
				lines = append(lines, patchOpLine(op, color))
			}
			return lines
		}
	}
	var d client.Diff
	if raw[0] == '{' && json.Unmarshal(raw, &d) == nil {
		type change struct{ path, line string }
		var cs []change
		for p, v := range d.Added {
			cs = append(cs, change{p, paint(color, ansiGreen, "+ "+pointer(p)+": "+preview(v, width))})
		}
		for p, v := range d.Modified {
			cs = append(cs, change{p, paint(color, ansiYellow, "~ "+pointer(p)+": "+preview(v.Old, width/2)+" -> "+preview(v.New, width/2))})
		}
		for _, p := range d.Removed {
			cs = append(cs, change{p, paint(color, ansiRed, "- "+pointer(p))})
		}
		sort.SliceStable(cs, func(i, j int) bool { return cs[i].path < cs[j].path })
		for _, c := range cs {
			lines = append(lines, c.line)
		}
		if len(lines) == 0 && (d.Added != nil || d.Modified != nil || d.Removed != nil) {
			return []string{"no changes"}
		}
		if len(lines) > 0 {
			return lines
		}
	}
	return []string{preview(raw, 200)}
}

// pointer shows a JSON Pointer; the empty one is the whole value.
func pointer(p string) string {
	if p == "" {
		return "(root)"
	}
	return p
}

// patchOpLine renders one RFC 6902 op in the style of diffLines.
func patchOpLine(op client.PatchOp, color bool) string {
	op.Path, op.From = pointer(op.Path), pointer(op.From)
	switch op.Op {
	case "add":
		return paint(color, ansiGreen, "+ "+op.Path+": "+preview(op.Value, 100))
	case "remove":
		return paint(color, ansiRed, "- "+op.Path)
	case "replace":
		return paint(color, ansiYellow, "~ "+op.Path+": "+preview(op.Value, 100))
	case "move", "copy":
		return op.Op + " " + op.From + " -> " + op.Path
	}
	s := op.Op + " " + op.Path
	if len(op.Value) > 0 {
		s += ": " + preview(op.Value, 100)
	}
	return s
}

func newDiffCmd(a *app) *cobra.Command {
	var (
		opts   client.DiffOptions
		format string
	)
	cmd := &cobra.Command{
		Use:     "diff <tier> <key> --from <version> --to <version>",
		Short:   "Show what changed in a key between two versions",
		GroupID: groupHistory,
		Long: `Show what changed in a key's value from one version to another, one JSON
Pointer per line: "+" added, "~" modified (old -> new), "-" removed.
--format json-patch prints the RFC 6902 patch from --from to --to instead,
which "agentstate patch --json-patch -" can apply.

` + addressHelp,
		Example: `  agentstate diff local prefs/ui --from 2 --to 5
  agentstate diff shared/plan --from 1 --to 3 --format json-patch`,
		RunE: func(cmd *cobra.Command, args []string) error {
			tier, key, err := parseRefOnly(args)
			if err != nil {
				return err
			}
			if format != "" && format != "json-patch" {
				return usageError{fmt.Errorf("invalid --format %q: want json-patch, or nothing for the added/modified/removed form", format)}
			}
			if opts.From < 1 || opts.To < 1 {
				return usageError{errors.New("--from and --to must be versions >= 1")}
			}
			s, err := a.start(cmd)
			if err != nil {
				return err
			}
			defer s.cancel()
			if format == "json-patch" {
				ops, err := s.c.DiffJSONPatch(s.ctx, s.agent, tier, key, &opts)
				if err != nil {
					return err
				}
				if s.json() {
					s.printRaw()
					return nil
				}
				b, err := json.Marshal(ops)
				if err != nil {
					return err
				}
				fmt.Fprintln(s.out, prettyJSON(b, s.color))
				return nil
			}
			d, err := s.c.Diff(s.ctx, s.agent, tier, key, &opts)
			if err != nil {
				return err
			}
			if s.json() {
				s.printRaw()
				return nil
			}
			if d.Empty() {
				fmt.Fprintln(s.out, "no changes")
				return nil
			}
			b, err := json.Marshal(d)
			if err != nil {
				return err
			}
			for _, l := range diffLines(b, s.color) {
				fmt.Fprintln(s.out, l)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.Int64Var(&opts.From, "from", 0, "the version to compare from")
	f.Int64Var(&opts.To, "to", 0, "the version to compare to")
	f.StringVar(&format, "format", "", `"json-patch" for an RFC 6902 patch`)
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func newRollbackCmd(a *app) *cobra.Command {
	var version int64
	cmd := &cobra.Command{
		Use:     "rollback <tier> <key> --version <n>",
		Short:   "Write an earlier version's value as a new version",
		GroupID: groupHistory,
		Long: `Roll a key back: write the value of an earlier version as a new version
(change type "restore"). Nothing is lost; the rollback itself can be rolled
back.

` + addressHelp,
		Example: `  agentstate rollback local prefs/ui --version 2`,
		RunE: func(cmd *cobra.Command, args []string) error {
			tier, key, err := parseRefOnly(args)
			if err != nil {
				return err
			}
			if version <= 0 {
				return usageError{errors.New("--version must be positive")}
			}
			s, err := a.start(cmd)
			if err != nil {
				return err
			}
			defer s.cancel()
			e, err := s.c.Rollback(s.ctx, s.agent, tier, key, version)
			if err != nil {
				return err
			}
			if s.json() {
				s.printRaw()
				return nil
			}
			fmt.Fprintf(s.out, "%s %s/%s to version %d: now version %d, revision %d\n",
				paint(s.color, ansiCyan, "restored"), tier, key, version, e.Version, e.Revision)
			return nil
		},
	}
	cmd.Flags().Int64Var(&version, "version", 0, "the version to restore (required)")
	_ = cmd.MarkFlagRequired("version")
	return cmd
}
