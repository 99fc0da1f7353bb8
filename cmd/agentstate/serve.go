package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/agentstate/agentstate/config"
	"github.com/agentstate/agentstate/jsonvalue"
	"github.com/agentstate/agentstate/server"
	"github.com/agentstate/agentstate/state"
	"github.com/agentstate/agentstate/store/sqlite"
)

// serveFlags are the flags of `agentstate serve` (API.md "Server command
// line"). Precedence: flag > environment variable > config file > default.
type serveFlags struct {
	listen, dataDir, postgresURL, redisURL, configPath, logLevel string
	insecure                                                     bool
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Start the agentstate server",
		Long: `Start the agentstate HTTP server on the embedded store.

The server answers the API of docs/api.md on --listen (127.0.0.1:7400 by
default) and keeps its data under --data-dir. Every acknowledged write is on
disk. SIGTERM or Ctrl-C drains open requests and exits 0.

Flags may also be given as environment variables (AGENTSTATE_LISTEN,
AGENTSTATE_DATA_DIR, AGENTSTATE_CONFIG, ...) or in a config file (--config);
a flag beats its variable, which beats the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := resolveServeConfig(cmd, f)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return runServer(ctx, cfg, cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "", "address to serve HTTP on (env AGENTSTATE_LISTEN; default "+config.DefaultListen+")")
	fl.StringVar(&f.dataDir, "data-dir", "", "where the embedded store keeps its files (env AGENTSTATE_DATA_DIR; default "+config.DefaultDataDir+")")
	fl.StringVar(&f.postgresURL, "postgres-url", "", "use PostgreSQL instead of the embedded store (env AGENTSTATE_POSTGRES_URL; not available yet)")
	fl.StringVar(&f.redisURL, "redis-url", "", "shared L2 cache (env AGENTSTATE_REDIS_URL; not available yet)")
	fl.StringVar(&f.configPath, "config", "", "config file: tiers' TTL and history limits, limits, ... (env AGENTSTATE_CONFIG)")
	fl.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (env AGENTSTATE_LOG_LEVEL; default info)")
	fl.BoolVar(&f.insecure, "insecure", false, "allow listening on a non-loopback address without auth")
	return cmd
}

// resolveServeConfig applies file, then environment, then flags.
func resolveServeConfig(cmd *cobra.Command, f serveFlags) (config.Config, error) {
	path := pick(cmd, "config", f.configPath, "AGENTSTATE_CONFIG", "")
	cfg, err := config.Load(path)
	if err != nil {
		return cfg, err
	}
	cfg.Listen = pick(cmd, "listen", f.listen, "AGENTSTATE_LISTEN", cfg.Listen)
	cfg.DataDir = pick(cmd, "data-dir", f.dataDir, "AGENTSTATE_DATA_DIR", cfg.DataDir)
	cfg.PostgresURL = pick(cmd, "postgres-url", f.postgresURL, "AGENTSTATE_POSTGRES_URL", cfg.PostgresURL)
	cfg.RedisURL = pick(cmd, "redis-url", f.redisURL, "AGENTSTATE_REDIS_URL", cfg.RedisURL)
	cfg.LogLevel = pick(cmd, "log-level", f.logLevel, "AGENTSTATE_LOG_LEVEL", cfg.LogLevel)
	if cmd.Flags().Changed("insecure") {
		cfg.Insecure = f.insecure
	} else if v := os.Getenv("AGENTSTATE_INSECURE"); v == "1" || v == "true" {
		cfg.Insecure = true
	}
	if cfg.PostgresURL != "" {
		return cfg, errors.New("--postgres-url: the PostgreSQL store is not available in this version; omit it to use the embedded store")
	}
	if cfg.RedisURL != "" {
		return cfg, errors.New("--redis-url: the Redis cache is not available in this version; omit it")
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return cfg, fmt.Errorf("--listen %q: %w", cfg.Listen, err)
	}
	// Auth is off on loopback; anywhere else an open server must be asked for.
	if !isLoopback(host) && !cfg.Insecure {
		return cfg, fmt.Errorf("--listen %s is not a loopback address and auth is not configured: anyone who can reach it could read and write all state; pass --insecure to allow it", cfg.Listen)
	}
	return cfg, nil
}

func pick(cmd *cobra.Command, flag, flagVal, env, fallback string) string {
	if cmd.Flags().Changed(flag) {
		return flagVal
	}
	if v, ok := os.LookupEnv(env); ok && v != "" {
		return v
	}
	return fallback
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// runServer opens the store and serves until ctx ends, then drains.
func runServer(ctx context.Context, cfg config.Config, logOut io.Writer) error {
	level := slog.LevelInfo
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))

	st, err := sqlite.Open(ctx, cfg.DataDir, sqlite.Options{Synchronous: cfg.Store.Synchronous})
	if err != nil {
		return fmt.Errorf("opening the store in %s: %w", cfg.DataDir, err)
	}
	streams, err := sqlite.OpenStreams(ctx, cfg.DataDir, sqlite.StreamOptions{Synchronous: cfg.Store.Synchronous})
	if err != nil {
		st.Close()
		return fmt.Errorf("opening the event store in %s: %w", cfg.DataDir, err)
	}
	m, err := state.New(st, state.Options{
		Tiers:         cfg.TierPolicies(),
		Limits:        jsonvalue.Limits{MaxBytes: cfg.Limits.MaxValueBytes, MaxDepth: cfg.Limits.MaxDepth},
		MaxBatchOps:   cfg.Limits.MaxBatchOps,
		ReapInterval:  cfg.ReapInterval,
		Logger:        log,
		Streams:       streams,
		FeedRetention: cfg.Feed.Retention,
		FeedBuffer:    cfg.Feed.Buffer,
	})
	if err != nil {
		st.Close()
		streams.Close()
		return err
	}
	defer m.Close()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	srv := server.New(m, server.Options{Logger: log, ShutdownTimeout: cfg.ShutdownTimeout})
	log.Info("agentstate serving", "listen", ln.Addr().String(), "data_dir", cfg.DataDir, "store", "sqlite")
	// Serve returns once ctx ends and open requests have drained.
	if err := srv.Serve(ctx, ln); err != nil {
		return err
	}
	log.Info("drained; closing the store")
	if err := m.Close(); err != nil {
		return fmt.Errorf("closing the store: %w", err)
	}
	log.Info("stopped")
	return nil
}
