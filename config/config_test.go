package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agentstate.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	c, err := Load(write(t, `
listen: 127.0.0.1:9000
tiers:
  session: {default_ttl: 10m}
  local: {history_limit: 3}
limits: {max_value_bytes: 2048}
store: {synchronous: NORMAL}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9000" || c.DataDir != DefaultDataDir || c.Limits.MaxValueBytes != 2048 || c.Store.Synchronous != "NORMAL" {
		t.Fatalf("unexpected config %+v", c)
	}
	p := c.TierPolicies()
	if p["session"].DefaultTTL != 10*time.Minute || p["session"].HistoryLimit != 5 {
		t.Fatalf("session policy %+v: the file's TTL over the default history limit", p["session"])
	}
	if p["local"].HistoryLimit != 3 || p["shared"].HistoryLimit != 0 {
		t.Fatalf("policies %+v", p)
	}
}

func TestLoadRejects(t *testing.T) {
	tests := []struct{ name, body string }{
		{"unknown key", "listn: x\n"},
		{"unknown tier", "tiers: {global: {history_limit: 1}}\n"},
		{"negative history", "tiers: {local: {history_limit: -1}}\n"},
		{"bad duration", "tiers: {session: {default_ttl: soon}}\n"},
		{"bad synchronous", "store: {synchronous: OFF}\n"},
		{"bad yaml", "tiers: [\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Load(write(t, tc.body)); err == nil {
				t.Fatalf("Load accepted %q", tc.body)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("Load accepted a missing file")
	}
}
