package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/agentstate/agentstate/client"
)

func newStreamCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "stream",
		Short:   "Append to and read event streams (event sourcing)",
		GroupID: groupEvents,
		Long: `Event streams are append-only sequences of events, apart from the key/value
state, for event sourcing: append events with an optimistic concurrency check,
read them back in order, and save snapshots of the state folded from them.
A stream's events are numbered from version 0. --agent does not apply.`,
		Args: cobra.NoArgs, // an unknown subcommand is a usage error
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	snap := &cobra.Command{
		Use:   "snapshot",
		Short: "Save or read the snapshot of a stream",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	snap.AddCommand(newStreamSnapshotGetCmd(a), newStreamSnapshotSaveCmd(a))
	cmd.AddCommand(newStreamAppendCmd(a), newStreamReadCmd(a), snap)
	return cmd
}

// streamArg is the one argument of the stream commands.
func streamArg(args []string) (string, error) {
	switch {
	case len(args) == 0:
		return "", usageError{errors.New("missing stream id")}
	case len(args) > 1:
		return "", usageError{fmt.Errorf("unexpected argument %q", args[1])}
	case args[0] == "":
		return "", usageError{errors.New("empty stream id")}
	}
	return args[0], nil
}

// readJSONInput reads a JSON document given by a flag or a file; "-" for
// either reads standard input.
func readJSONInput(stdin io.Reader, what, flag, value, file string, given bool) (json.RawMessage, error) {
	var (
		data []byte
		err  error
	)
	switch {
	case given && file != "":
		return nil, usageError{fmt.Errorf("give the %s with %s or --file, not both", what, flag)}
	case given && value == "-", file == "-":
		data, err = io.ReadAll(stdin)
	case file != "":
		data, err = os.ReadFile(file)
	case given:
		data = []byte(value)
	default:
		return nil, usageError{fmt.Errorf(`missing %s: give it with %s <json>, --file FILE, or "-" for standard input`, what, flag)}
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return parseJSON(what, data, "")
}

func newStreamAppendCmd(a *app) *cobra.Command {
	var (
		ev               client.NewEvent
		data, file, meta string
		expected         int64
		noStream         bool
	)
	cmd := &cobra.Command{
		Use:   "append <stream_id> --type <type> (--data <json> | -f <file>)",
		Short: "Append an event to a stream",
		Long: `Append one event to a stream (created by its first append). Its data is a
JSON value given with --data, read from a file with --file, or from standard
input with "-".

--expected-version N appends only if the stream's last event has version N,
--no-stream only if the stream does not exist yet; both fail with
wrong_expected_version and the stream's current version otherwise. The answer
is the new event's version: the --expected-version of the next append.`,
		Example: `  agentstate stream append order-1 --type OrderPlaced --data '{"total":12}' --no-stream
  agentstate stream append order-1 --type OrderPaid -f paid.json --expected-version 0`,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := streamArg(args)
			if err != nil {
				return err
			}
			if ev.EventType == "" {
				return usageError{errors.New("empty --type")}
			}
			raw, err := readJSONInput(cmd.InOrStdin(), "event data", "--data", data, file, cmd.Flags().Changed("data"))
			if err != nil {
				return err
			}
			ev.EventData = raw
			if meta != "" {
				if err := json.Unmarshal([]byte(meta), &ev.Metadata); err != nil || ev.Metadata == nil {
					return usageError{errors.New("--metadata must be a JSON object")}
				}
			}
			var exp *int64
			switch {
			case noStream:
				exp = client.Version(client.NoStream)
			case cmd.Flags().Changed("expected-version"):
				if expected < client.NoStream {
					return usageError{errors.New("--expected-version must be -1 or more")}
				}
				exp = client.Version(expected)
			}
			s, err := a.start(cmd)
			if err != nil {
				return err
			}
			defer s.cancel()
			next, err := s.c.AppendEvents(s.ctx, id, []client.NewEvent{ev}, exp)
			if err != nil {
				return err
			}
			if s.json() {
				s.printRaw()
				return nil
			}
			fmt.Fprintf(s.out, "%s %s to %s: version %d\n", paint(s.color, ansiGreen, "appended"), ev.EventType, id, next)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&ev.EventType, "type", "", "the event's type (required)")
	f.StringVar(&data, "data", "", `the event's data, a JSON value; "-" reads standard input`)
	f.StringVarP(&file, "file", "f", "", `read the event's data from a file ("-" for standard input)`)
	f.StringVar(&meta, "metadata", "", "the event's metadata, a JSON object")
	f.StringVar(&ev.EventID, "event-id", "", "the event's id, for an idempotent append (default: the server's)")
	f.Int64Var(&expected, "expected-version", 0, "append only if the stream's last event has this version")
	f.BoolVar(&noStream, "no-stream", false, "append only if the stream does not exist")
	_ = cmd.MarkFlagRequired("type")
	cmd.MarkFlagsMutuallyExclusive("expected-version", "no-stream")
	return cmd
}

func newStreamReadCmd(a *app) *cobra.Command {
	var (
		from  int64
		limit int
	)
	cmd := &cobra.Command{
		Use:   "read <stream_id>",
		Short: "List the events of a stream, oldest first",
		Long: `List the events of a stream in version order, from --from (default 0, the
first event), at most --max of them (default: the server's page, 100): version,
type, time and a preview of the data.`,
		Example: `  agentstate stream read order-1
  agentstate stream read order-1 --from 10 --max 5 -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := streamArg(args)
			if err != nil {
				return err
			}
			if from < 0 || limit < 0 {
				return usageError{errors.New("--from and --max must be positive")}
			}
			s, err := a.start(cmd)
			if err != nil {
				return err
			}
			defer s.cancel()
			evs, err := s.c.ReadStream(s.ctx, id, from, limit)
			if err != nil {
				return err
			}
			if s.json() {
				s.printRaw()
				return nil
			}
			if len(evs) == 0 {
				fmt.Fprintln(s.out, "no events")
				return nil
			}
			t := newTable("VERSION", "TYPE", "TIME", "DATA")
			for _, e := range evs {
				t.add(fmt.Sprint(e.Version), e.EventType, formatTime(e.Timestamp), preview(e.EventData, 80))
			}
			t.write(s.out, s.color)
			return nil
		},
	}
	f := cmd.Flags()
	f.Int64Var(&from, "from", 0, "the first version to list")
	f.IntVar(&limit, "max", 0, "events to list at most (server default 100)")
	return cmd
}

func newStreamSnapshotGetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "get <stream_id>",
		Short:   "Print the latest snapshot of a stream",
		Example: `  agentstate stream snapshot get order-1`,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := streamArg(args)
			if err != nil {
				return err
			}
			s, err := a.start(cmd)
			if err != nil {
				return err
			}
			defer s.cancel()
			snap, err := s.c.LoadSnapshot(s.ctx, id)
			if err != nil {
				return err
			}
			if s.json() {
				s.printRaw()
				return nil
			}
			fmt.Fprintln(s.out, paint(s.color, ansiDim, fmt.Sprintf("%s  version %d  created %s", snap.StreamID, snap.Version, formatTime(snap.CreatedAt))))
			fmt.Fprintln(s.out, prettyJSON(snap.State, s.color))
			return nil
		},
	}
}

func newStreamSnapshotSaveCmd(a *app) *cobra.Command {
	var (
		version int64
		file    string
	)
	cmd := &cobra.Command{
		Use:   "save <stream_id> --version <n> [<json> | -] [-f file]",
		Short: "Save the state of a stream at a version",
		Long: `Save a snapshot: the state folded from a stream's events up to --version, a
JSON value given as the last argument, read from a file with --file, or from
standard input with "-".`,
		Example: `  agentstate stream snapshot save order-1 --version 7 '{"total":12,"paid":true}'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("missing stream id")}
			}
			id := args[0]
			if id == "" {
				return usageError{errors.New("empty stream id")}
			}
			if version < 0 {
				return usageError{errors.New("--version must be positive")}
			}
			state, err := readValue(cmd.InOrStdin(), args[1:], file, false)
			if err != nil {
				return err
			}
			s, err := a.start(cmd)
			if err != nil {
				return err
			}
			defer s.cancel()
			snap, err := s.c.SaveSnapshot(s.ctx, id, version, state)
			if err != nil {
				return err
			}
			if s.json() {
				s.printRaw()
				return nil
			}
			fmt.Fprintf(s.out, "%s snapshot of %s at version %d\n", paint(s.color, ansiGreen, "saved"), id, snap.Version)
			return nil
		},
	}
	f := cmd.Flags()
	f.Int64Var(&version, "version", 0, "the stream version the state is at (required)")
	f.StringVarP(&file, "file", "f", "", `read the state from a file ("-" for standard input)`)
	_ = cmd.MarkFlagRequired("version")
	return cmd
}
