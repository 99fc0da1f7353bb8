package main

import (
	"slices"
	"testing"
)

func TestReadBufferCopyBug(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want bool
	}{
		{"3.4.23", true},  // Debian bookworm's etcd-server
		{"3.4.0", true},   // introduced the copying concurrent read tx
		{"3.4.24", false}, // backport of etcd-io/etcd#12933
		{"3.5.0", false},
		{"3.6.1", false},
		{"unknown", false},
	} {
		if got := readBufferCopyBug(tc.v); got != tc.want {
			t.Errorf("readBufferCopyBug(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	if got, err := parseClients("1, 64"); err != nil || !slices.Equal(got, []int{1, 64}) {
		t.Fatalf("parseClients = %v, %v", got, err)
	}
	for _, bad := range []string{"0", "x", "1,,2"} {
		if _, err := parseClients(bad); err == nil {
			t.Errorf("parseClients(%q) accepted", bad)
		}
	}
	if got, err := parseOps("put,get,watch,fanout"); err != nil || len(got) != 4 || got[2] != "watch" {
		t.Fatalf("parseOps = %v, %v", got, err)
	}
	if _, err := parseOps("put,delete"); err == nil {
		t.Error("parseOps accepted delete")
	}
	if got, err := parseSystems("agentstate"); err != nil || !slices.Equal(got, []string{"agentstate"}) {
		t.Fatalf("parseSystems = %v, %v", got, err)
	}
	if _, err := parseSystems("redis"); err == nil {
		t.Error("parseSystems accepted redis")
	}
}
