package main

import (
	"github.com/spf13/cobra"
)

// Defaults of the global flags.
const (
	defaultServer = "http://127.0.0.1:7400"
	defaultAgent  = "default"
)

const rootLong = `agentstate is a state store for AI agents: it keeps each agent's state as JSON
values under keys, in four tiers, versions every change, streams changes to
subscribers, and rolls any key back to an earlier version.

Tiers:
  local        one agent's working state (until deleted)
  shared       a space shared by many agents; --agent names the space
  session      one agent's short-lived state, grouped as <session_id>/...; expires
  persistent   one agent's long-lived configuration and learned state

Run "agentstate serve" to start a server; the other commands talk to it over
HTTP. A key is addressed as "<tier> <key>" or "<tier>/<key>":

  agentstate put local prefs/ui '{"theme":"dark"}'
  agentstate get local/prefs/ui
  agentstate ls local --prefix prefs/
  agentstate watch --tier shared

Global flags can also be set in the environment: AGENTSTATE_SERVER,
AGENTSTATE_TOKEN, AGENTSTATE_AGENT. Colours are used only on a terminal and
never when NO_COLOR is set.

Exit status: 0 on success, 1 when the command fails, 2 on a usage error.`

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "agentstate",
		Short:         "A versioned state store for AI agents",
		Long:          rootLong,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.server, "server", defaultServer, "URL of the agentstate server (env AGENTSTATE_SERVER)")
	pf.StringVar(&a.token, "token", "", "bearer token for the server (env AGENTSTATE_TOKEN)")
	pf.StringVarP(&a.agent, "agent", "a", defaultAgent, "agent id, or shared space for the shared tier (env AGENTSTATE_AGENT)")
	pf.StringVarP(&a.output, "output", "o", outputTable, "output format: table or json (the server's answer as is)")
	pf.DurationVar(&a.timeout, "timeout", defaultTimeout, "time limit of the whole command; 0 for none")

	root.AddGroup(
		&cobra.Group{ID: groupState, Title: "State commands:"},
		&cobra.Group{ID: groupHistory, Title: "History commands:"},
		&cobra.Group{ID: groupEvents, Title: "Event commands:"},
		&cobra.Group{ID: groupServer, Title: "Server commands:"},
	)
	serve := newServeCmd()
	serve.GroupID = groupServer
	root.AddCommand(
		serve,
		newGetCmd(a),
		newPutCmd(a),
		newPatchCmd(a),
		newRmCmd(a),
		newLsCmd(a),
		newHistoryCmd(a),
		newDiffCmd(a),
		newRollbackCmd(a),
		newWatchCmd(a),
		newStreamCmd(a),
	)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	markRuntime(root)
	return root
}

// Command groups of the help.
const (
	groupState   = "state"
	groupHistory = "history"
	groupEvents  = "events"
	groupServer  = "server"
)
