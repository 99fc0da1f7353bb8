package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentstate/agentstate/client"
)

var changeTypes = []string{client.ChangeCreate, client.ChangeUpdate, client.ChangeDelete, client.ChangeExpire, client.ChangeRestore}

func newWatchCmd(a *app) *cobra.Command {
	var (
		filter       client.WatchFilter
		agents       []string
		fromRevision int64
	)
	cmd := &cobra.Command{
		Use:     "watch",
		Short:   "Print changes as they are committed",
		GroupID: groupEvents,
		Long: `Print the changes of the store as they are committed, one line each: time,
revision, change type, key, version and a preview of the new value. With
-o json, each change event is printed as the server sent it, one JSON object
per line. Ctrl-C ends the watch (exit status 0).

Unlike the other commands, watch shows every agent unless told otherwise:
--agent (-a, repeatable) or AGENTSTATE_AGENT restricts it to those agents;
the built-in default agent "default" does not, and -a '' watches every agent
even with AGENTSTATE_AGENT set. --tier and --change-type are repeatable too;
--key is a glob (* within a segment, ** across).

--from-revision R first prints the changes after revision R from history,
then the live ones. If R is older than the history the server keeps, the
watch fails with "compacted", unless --on-compacted snapshot, which prints
the current value of each watched key first ("snapshot" lines).

The watch reconnects by itself when the connection is lost, and resumes
where it stopped, without missing or repeating a change; it says so on
standard error. --timeout, when given, ends the watch after that long
(exit status 0); by default a watch has no time limit.`,
		Example: `  agentstate watch
  agentstate watch -a agent-1 --tier local --key 'prefs/**'
  agentstate watch --change-type delete --change-type expire -o json
  agentstate watch --from-revision 1200 --on-compacted snapshot`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unexpected argument %q", args[0])}
			}
			for _, t := range filter.Tiers {
				if err := checkTier(t); err != nil {
					return err
				}
			}
			for _, c := range filter.ChangeTypes {
				if !slices.Contains(changeTypes, c) {
					return usageError{fmt.Errorf("unknown change type %q: want %s", c, strings.Join(changeTypes, ", "))}
				}
			}
			switch filter.OnCompacted {
			case "", client.OnCompactedFail, client.OnCompactedSnapshot:
			default:
				return usageError{fmt.Errorf("invalid --on-compacted %q: want fail or snapshot", filter.OnCompacted)}
			}
			from := client.FromNow
			if cmd.Flags().Changed("from-revision") {
				if fromRevision < 0 {
					return usageError{errors.New("--from-revision must be positive")}
				}
				from = fromRevision
			}
			// The global --agent defaults to "default", which would watch
			// one agent nobody named: filter only by agents given.
			filter.AgentIDs = nil
			if cmd.Flags().Changed("agent") {
				filter.AgentIDs = slices.DeleteFunc(agents, func(s string) bool { return s == "" })
			} else if env := a.getenv("AGENTSTATE_AGENT"); env != "" {
				filter.AgentIDs = []string{env}
			}
			if !cmd.Flags().Changed("timeout") {
				a.timeout = 0
			}
			stderrColor := a.useColor(a.stderr)
			s, err := a.start(cmd, client.WithReconnectHook(func(err error, d time.Duration) {
				fmt.Fprintf(a.stderr, "%s %s; reconnecting in %v\n", paint(stderrColor, ansiYellow, "watch:"), oneLine(err), d.Round(time.Millisecond))
			}))
			if err != nil {
				return err
			}
			defer s.cancel()
			w := s.c.Watch(s.ctx, filter, from)
			defer w.Close()
			p := &eventPrinter{out: s.out, color: s.color, json: s.json(), agents: len(filter.AgentIDs) != 1}
			p.header()
			for {
				e, err := w.Next(s.ctx)
				switch {
				case err == nil:
					p.print(e)
				case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded) && a.timeout > 0:
					return nil // Ctrl-C, or --timeout: the end asked for
				default:
					return err
				}
			}
		},
	}
	f := cmd.Flags()
	// Shadows the global --agent: a list, and no default.
	f.StringArrayVarP(&agents, "agent", "a", nil, "watch this agent (or shared space) only; repeatable (env AGENTSTATE_AGENT)")
	f.StringArrayVar(&filter.Tiers, "tier", nil, "watch this tier only; repeatable")
	f.StringVar(&filter.Key, "key", "", "watch the keys matching this glob only")
	f.StringArrayVar(&filter.ChangeTypes, "change-type", nil, "watch this change type only (create, update, delete, expire, restore); repeatable")
	f.Int64Var(&fromRevision, "from-revision", 0, "print the changes after this revision first (default: from now)")
	f.StringVar(&filter.OnCompacted, "on-compacted", "", `when --from-revision is no longer kept: "fail" (default) or "snapshot"`)
	return cmd
}

// oneLine is an error's text on one line.
func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// eventPrinter prints the events of a watch as they come: aligned columns
// whose widths are fixed in advance, or NDJSON.
type eventPrinter struct {
	out    io.Writer
	color  bool
	json   bool
	agents bool // an AGENT column: the watch is not of one agent
}

// Column widths; longer cells push the next columns right.
const (
	wTime     = 20
	wRevision = 8
	wChange   = 8
	wAgent    = 12
	wKey      = 24
	wVersion  = 7
)

func (p *eventPrinter) header() {
	if p.json {
		return
	}
	cells := []string{"TIME", "REVISION", "CHANGE"}
	if p.agents {
		cells = append(cells, "AGENT")
	}
	cells = append(cells, "KEY", "VERSION", "VALUE")
	for i, c := range cells {
		cells[i] = paint(p.color, ansiBold, c)
	}
	p.line(cells)
}

func (p *eventPrinter) print(e client.Event) {
	if p.json {
		fmt.Fprintln(p.out, compactJSON(e.Raw))
		return
	}
	switch e.Type {
	case client.EventSnapshotBegin:
		fmt.Fprintln(p.out, paint(p.color, ansiDim, fmt.Sprintf("-- snapshot at revision %d: the current state follows --", e.Revision)))
		return
	case client.EventSnapshotEnd:
		fmt.Fprintln(p.out, paint(p.color, ansiDim, fmt.Sprintf("-- snapshot complete at revision %d --", e.Revision)))
		return
	}
	var (
		when             time.Time
		change           = e.ChangeType
		agent, tier, key string
		version          int64
		value            = "-"
	)
	if s := e.Snapshot; s != nil {
		when, change, agent, tier, key, version = s.UpdatedAt, "snapshot", s.AgentID, s.Tier, s.Key, s.Version
		value = preview(s.Value, 60)
	} else {
		when, agent, tier, key, version = e.Timestamp, e.AgentID, e.Tier, e.StateKey, e.Version
		if change != client.ChangeDelete && change != client.ChangeExpire {
			value = preview(e.NewValue, 60)
		}
	}
	style := changeStyle(change)
	if e.Snapshot != nil {
		style = ansiBlue
	}
	cells := []string{formatTime(when), fmt.Sprint(e.Revision), paint(p.color, style, orDash(change))}
	if p.agents {
		cells = append(cells, agent)
	}
	cells = append(cells, tier+"/"+key, fmt.Sprint(version), value)
	p.line(cells)
}

// line writes cells padded to the column widths, two spaces apart.
func (p *eventPrinter) line(cells []string) {
	widths := []int{wTime, wRevision, wChange}
	if p.agents {
		widths = append(widths, wAgent)
	}
	widths = append(widths, wKey, wVersion)
	var b strings.Builder
	for i, c := range cells {
		b.WriteString(c)
		if i < len(widths) {
			b.WriteString(strings.Repeat(" ", max(widths[i]-visibleWidth(c), 0)+2))
		}
	}
	fmt.Fprintln(p.out, strings.TrimRight(b.String(), " "))
}
