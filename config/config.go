// Package config owns the server's configuration file: its shape, its
// defaults and its checks. A file is YAML (or JSON, which YAML reads too),
// loaded with koanf; flags and environment variables given on the command
// line override what the file says.
//
//	listen: 127.0.0.1:7400
//	data_dir: ./agentstate-data
//	tiers:
//	  local:   {history_limit: 20}
//	  session: {default_ttl: 1h, history_limit: 5}
//	limits:
//	  max_value_bytes: 1048576
//	  max_depth: 64
//	  max_batch_ops: 1000
//	store:
//	  synchronous: FULL   # NORMAL trades durability of the last commits for speed
//	feed:
//	  retention: 24h      # change events kept this long
//	  buffer: 4096        # events a subscriber may lag before resume_from
//	reap_interval: 1s
//	shutdown_timeout: 30s
package config

import (
	"fmt"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/agentstate/agentstate/keys"
	"github.com/agentstate/agentstate/state"
)

// Tier is one tier's policy in the file.
type Tier struct {
	DefaultTTL   *time.Duration `koanf:"default_ttl"`
	HistoryLimit *int           `koanf:"history_limit"`
}

// Limits bound requests.
type Limits struct {
	MaxValueBytes int `koanf:"max_value_bytes"`
	MaxDepth      int `koanf:"max_depth"`
	MaxBatchOps   int `koanf:"max_batch_ops"`
}

// Store configures the embedded store.
type Store struct {
	// Synchronous is SQLite's synchronous pragma: FULL (durable on
	// acknowledgement, the default) or NORMAL (opt-in, faster, may lose the
	// last commits on power loss).
	Synchronous string `koanf:"synchronous"`
}

// Feed configures the change feed.
type Feed struct {
	// Retention is how long change events are kept (default 24h; a negative
	// value keeps them forever).
	Retention time.Duration `koanf:"retention"`
	// Buffer is how many events a subscriber may fall behind before it is
	// cut off with resume_from (default 4096).
	Buffer int `koanf:"buffer"`
}

// Config is the whole file.
type Config struct {
	Listen          string          `koanf:"listen"`
	DataDir         string          `koanf:"data_dir"`
	PostgresURL     string          `koanf:"postgres_url"`
	RedisURL        string          `koanf:"redis_url"`
	Insecure        bool            `koanf:"insecure"`
	LogLevel        string          `koanf:"log_level"`
	Tiers           map[string]Tier `koanf:"tiers"`
	Limits          Limits          `koanf:"limits"`
	Store           Store           `koanf:"store"`
	Feed            Feed            `koanf:"feed"`
	ReapInterval    time.Duration   `koanf:"reap_interval"`
	ShutdownTimeout time.Duration   `koanf:"shutdown_timeout"`
}

// Defaults of API.md's "Server command line".
const (
	DefaultListen  = "127.0.0.1:7400"
	DefaultDataDir = "./agentstate-data"
)

// Default returns the configuration used when no file is given.
func Default() Config {
	return Config{
		Listen:          DefaultListen,
		DataDir:         DefaultDataDir,
		LogLevel:        "info",
		Store:           Store{Synchronous: "FULL"},
		ReapInterval:    time.Second,
		ShutdownTimeout: 30 * time.Second,
	}
}

// Load reads a file over the defaults. Unknown keys are errors: a typo in a
// config file should stop the server, not be silently ignored.
func Load(path string) (Config, error) {
	c := Default()
	if path == "" {
		return c, nil
	}
	k := koanf.New(".")
	if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	err := k.UnmarshalWithConf("", &c, koanf.UnmarshalConf{DecoderConfig: &mapstructure.DecoderConfig{
		DecodeHook:       mapstructure.StringToTimeDurationHookFunc(),
		ErrorUnused:      true,
		WeaklyTypedInput: true,
		Result:           &c,
		TagName:          "koanf",
	}})
	if err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Validate checks values that parse but make no sense.
func (c Config) Validate() error {
	for name, t := range c.Tiers {
		if err := keys.ValidateTier(name); err != nil {
			return fmt.Errorf("tiers: %w", err)
		}
		if t.DefaultTTL != nil && *t.DefaultTTL < 0 {
			return fmt.Errorf("tiers.%s.default_ttl must not be negative", name)
		}
		if t.HistoryLimit != nil && *t.HistoryLimit < 0 {
			return fmt.Errorf("tiers.%s.history_limit must not be negative (0 keeps every version)", name)
		}
	}
	if c.Limits.MaxValueBytes < 0 || c.Limits.MaxDepth < 0 || c.Limits.MaxBatchOps < 0 {
		return fmt.Errorf("limits must not be negative")
	}
	if c.Feed.Buffer < 0 {
		return fmt.Errorf("feed.buffer must not be negative")
	}
	switch c.Store.Synchronous {
	case "", "FULL", "NORMAL", "EXTRA":
	default:
		return fmt.Errorf("store.synchronous must be FULL, EXTRA or NORMAL, not %q", c.Store.Synchronous)
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level must be debug, info, warn or error, not %q", c.LogLevel)
	}
	return nil
}

// TierPolicies merges the file's tier settings over the engine's defaults.
func (c Config) TierPolicies() map[string]state.TierPolicy {
	out := state.DefaultTierPolicies()
	for name, t := range c.Tiers {
		p := out[name]
		if t.DefaultTTL != nil {
			p.DefaultTTL = *t.DefaultTTL
		}
		if t.HistoryLimit != nil {
			p.HistoryLimit = *t.HistoryLimit
		}
		out[name] = p
	}
	return out
}
