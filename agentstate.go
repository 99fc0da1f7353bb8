// Package agentstate is state management for AI agents: four tiers of
// versioned JSON state (local, shared, session, persistent) with history,
// diffs, rollback, optimistic concurrency and TTLs.
//
// This package is the embedded entry point: Open gives an engine over the
// embedded store in a directory, usable in-process with no server. The same
// engine serves `agentstate serve` (package server) and, through it, the Go
// client (package client) and the CLI.
//
// Layout:
//
//	state/          the engine: tiers, policies, versioning, the write path
//	store/          the storage contract; store/storetest its conformance suite
//	store/sqlite/   the embedded store (default): SQLite with group commit
//	server/         the HTTP API of API.md
//	client/         the Go client SDK
//	cmd/agentstate  the CLI and server binary
//	keys, jsonvalue, diff  pure packages: identifiers and globs, value limits and checksums, JSON diffs
package agentstate

import (
	"context"

	"github.com/agentstate/agentstate/state"
	"github.com/agentstate/agentstate/store/sqlite"
)

// Options configure Open.
type Options struct {
	State state.Options
	Store sqlite.Options
}

// Open opens (creating if needed) the embedded store and event store in dir
// and returns the engine over them. Close the Manager to release them.
func Open(ctx context.Context, dir string, opts Options) (*state.Manager, error) {
	st, err := sqlite.Open(ctx, dir, opts.Store)
	if err != nil {
		return nil, err
	}
	if opts.State.Streams == nil {
		streams, err := sqlite.OpenStreams(ctx, dir, sqlite.StreamOptions{Synchronous: opts.Store.Synchronous})
		if err != nil {
			st.Close()
			return nil, err
		}
		opts.State.Streams = streams
	}
	m, err := state.New(st, opts.State)
	if err != nil {
		st.Close()
		return nil, err
	}
	return m, nil
}
