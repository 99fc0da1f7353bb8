package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestResolveServeConfig checks the server's configuration precedence (flag
// > environment > file > default) and the refusals that keep a server from
// starting in a state the user did not ask for.
func TestResolveServeConfig(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfgFile, []byte("listen: 127.0.0.1:7001\ndata_dir: /from/file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantListen string
		wantDir    string
		wantErr    string
	}{
		{name: "defaults", wantListen: "127.0.0.1:7400", wantDir: "./agentstate-data"},
		{name: "file", args: []string{"--config", cfgFile}, wantListen: "127.0.0.1:7001", wantDir: "/from/file"},
		{name: "env beats file", args: []string{"--config", cfgFile}, env: map[string]string{"AGENTSTATE_LISTEN": "127.0.0.1:7002"}, wantListen: "127.0.0.1:7002", wantDir: "/from/file"},
		{name: "flag beats env", args: []string{"--listen", "127.0.0.1:7003"}, env: map[string]string{"AGENTSTATE_LISTEN": "127.0.0.1:7002"}, wantListen: "127.0.0.1:7003", wantDir: "./agentstate-data"},
		{name: "config from env", env: map[string]string{"AGENTSTATE_CONFIG": cfgFile}, wantListen: "127.0.0.1:7001", wantDir: "/from/file"},
		{name: "non-loopback needs --insecure", args: []string{"--listen", "0.0.0.0:7400"}, wantErr: "--insecure"},
		{name: "non-loopback with --insecure", args: []string{"--listen", "0.0.0.0:7400", "--insecure"}, wantListen: "0.0.0.0:7400", wantDir: "./agentstate-data"},
		{name: "localhost is loopback", args: []string{"--listen", "localhost:7400"}, wantListen: "localhost:7400", wantDir: "./agentstate-data"},
		{name: "postgres not yet", args: []string{"--postgres-url", "postgres://x"}, wantErr: "not available"},
		{name: "redis not yet", env: map[string]string{"AGENTSTATE_REDIS_URL": "redis://x"}, wantErr: "not available"},
		{name: "bad listen", args: []string{"--listen", "nonsense"}, wantErr: "--listen"},
		{name: "bad log level", args: []string{"--log-level", "loud"}, wantErr: "log_level"},
		{name: "missing config file", args: []string{"--config", "/does/not/exist.yaml"}, wantErr: "config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"AGENTSTATE_LISTEN", "AGENTSTATE_DATA_DIR", "AGENTSTATE_CONFIG", "AGENTSTATE_POSTGRES_URL", "AGENTSTATE_REDIS_URL", "AGENTSTATE_LOG_LEVEL", "AGENTSTATE_INSECURE"} {
				t.Setenv(k, tc.env[k])
			}
			cmd := newServeCmd()
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			var f serveFlags
			f.listen, _ = cmd.Flags().GetString("listen")
			f.dataDir, _ = cmd.Flags().GetString("data-dir")
			f.postgresURL, _ = cmd.Flags().GetString("postgres-url")
			f.redisURL, _ = cmd.Flags().GetString("redis-url")
			f.configPath, _ = cmd.Flags().GetString("config")
			f.logLevel, _ = cmd.Flags().GetString("log-level")
			f.insecure, _ = cmd.Flags().GetBool("insecure")
			cfg, err := resolveServeConfig(cmd, f)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Listen != tc.wantListen || cfg.DataDir != tc.wantDir {
				t.Fatalf("listen %q data dir %q, want %q %q", cfg.Listen, cfg.DataDir, tc.wantListen, tc.wantDir)
			}
		})
	}
}
