package e2e

import (
	"errors"
	"testing"

	"github.com/agentstate/agentstate/client"
)

// TestSDKAgainstServer drives the real server through the Go SDK once, so
// the SDK and the server are known to agree on the contract: create-only,
// read, conditional writes and their conflict details, patch, list, history
// and delete.
func TestSDKAgainstServer(t *testing.T) {
	p := startServer(t, t.TempDir())
	c, err := client.New(p.base)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const agent, tier = "sdk-agent", client.TierPersistent

	res, err := c.Put(ctx, agent, tier, "prefs/ui", map[string]any{"theme": "dark"}, &client.PutOptions{ExpectedVersion: client.Version(0)})
	if err != nil || !res.Created || res.Entry.Version != 1 {
		t.Fatalf("Put create-only = %+v, %v; want created version 1", res, err)
	}
	_, err = c.Put(ctx, agent, tier, "prefs/ui", map[string]any{"theme": "light"}, &client.PutOptions{ExpectedVersion: client.Version(0)})
	if !errors.Is(err, client.ErrAlreadyExists) {
		t.Errorf("second create-only Put: %v; want ErrAlreadyExists", err)
	}
	res, err = c.Put(ctx, agent, tier, "prefs/ui", map[string]any{"theme": "light"}, &client.PutOptions{ExpectedVersion: client.Version(1)})
	if err != nil || res.Created || res.Entry.Version != 2 {
		t.Fatalf("conditional Put = %+v, %v; want version 2", res, err)
	}
	_, err = c.Put(ctx, agent, tier, "prefs/ui", map[string]any{"theme": "blue"}, &client.PutOptions{ExpectedVersion: client.Version(1)})
	var apiErr *client.Error
	if !errors.Is(err, client.ErrVersionConflict) || !errors.As(err, &apiErr) {
		t.Fatalf("stale Put: %v; want ErrVersionConflict", err)
	}
	if d, ok := apiErr.Conflict(); !ok || d.LocalVersion != 1 || d.RemoteVersion != 2 || d.ConflictType != client.ConflictConcurrentModification || !jsonEqual(d.RemoteValue, []byte(`{"theme":"light"}`)) {
		t.Errorf("conflict details = %+v (ok %v); want local 1, remote 2, remote value {theme: light}, concurrent_modification", d, ok)
	}

	e, err := c.Get(ctx, agent, tier, "prefs/ui", nil)
	if err != nil || e.Version != 2 || !jsonEqual(e.Value, []byte(`{"theme":"light"}`)) || e.Checksum == "" {
		t.Fatalf("Get = %+v, %v; want version 2 {theme: light} with a checksum", e, err)
	}
	if old, err := c.Get(ctx, agent, tier, "prefs/ui", &client.GetOptions{Version: 1}); err != nil || !jsonEqual(old.Value, []byte(`{"theme":"dark"}`)) {
		t.Errorf("Get version 1 = %+v, %v; want {theme: dark}", old, err)
	}
	if pe, err := c.Patch(ctx, agent, tier, "prefs/ui", client.Patch{MergePatch: map[string]any{"font": "mono"}}, nil); err != nil || pe.Version != 3 || !jsonEqual(pe.Value, []byte(`{"theme":"light","font":"mono"}`)) {
		t.Errorf("Patch = %+v, %v; want version 3 {theme: light, font: mono}", pe, err)
	}
	if _, err := c.Put(ctx, agent, tier, "prefs/other", 1, nil); err != nil {
		t.Fatal(err)
	}
	l, err := c.List(ctx, agent, tier, &client.ListOptions{Prefix: "prefs/"})
	if err != nil || len(l.Entries) != 2 || l.Entries[0].Key != "prefs/other" || l.Entries[1].Key != "prefs/ui" || l.NextCursor != "" {
		t.Errorf("List prefix prefs/ = %+v, %v; want prefs/other, prefs/ui in byte order, no next cursor", l, err)
	}
	d, err := c.Delete(ctx, agent, tier, "prefs/ui", &client.DeleteOptions{ExpectedVersion: client.Version(3)})
	if err != nil || d.Version != 4 {
		t.Errorf("Delete = %+v, %v; want tombstone version 4", d, err)
	}
	if _, err := c.Get(ctx, agent, tier, "prefs/ui", nil); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Get after Delete: %v; want ErrNotFound", err)
	}
	h, err := c.History(ctx, agent, tier, "prefs/ui", nil)
	if err != nil || len(h.Versions) != 4 {
		t.Fatalf("History = %+v, %v; want 4 versions", h, err)
	}
	for i, want := range []string{client.ChangeDelete, client.ChangeUpdate, client.ChangeUpdate, client.ChangeCreate} {
		if h.Versions[i].ChangeType != want || h.Versions[i].Version != int64(4-i) {
			t.Errorf("History versions[%d] = version %d %q; want version %d %q", i, h.Versions[i].Version, h.Versions[i].ChangeType, 4-i, want)
		}
	}
	// A write after a delete continues the numbering.
	if res, err := c.Put(ctx, agent, tier, "prefs/ui", "back", nil); err != nil || res.Entry.Version != 5 {
		t.Errorf("Put after Delete = %+v, %v; want version 5", res, err)
	}
}
