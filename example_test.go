package agentstate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"

	"github.com/agentstate/agentstate"
	"github.com/agentstate/agentstate/auth"
	"github.com/agentstate/agentstate/state"
)

// Open an embedded store, write a value twice, read it back and look at its
// history — no server involved.
func Example() {
	dir, err := os.MkdirTemp("", "agentstate-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := auth.WithPrincipal(context.Background(), auth.Principal{ID: "agent-1"})
	m, err := agentstate.Open(ctx, dir, agentstate.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	put := func(v string) *state.PutResult {
		r, err := m.Put(ctx, state.PutRequest{AgentID: "agent-1", Tier: "local", Key: "prefs/ui", Value: json.RawMessage(v)})
		if err != nil {
			log.Fatal(err)
		}
		return r
	}
	first := put(`{"theme": "dark"}`)
	second := put(`{"theme": "light", "font": 14}`)
	fmt.Println("created:", first.Created, "version:", first.Entry.Version)
	fmt.Println("updated version:", second.Entry.Version, "by", second.Entry.CreatedBy)

	e, err := m.Get(ctx, state.GetRequest{AgentID: "agent-1", Tier: "local", Key: "prefs/ui", Version: 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("version 1:", string(e.Value))

	h, err := m.History(ctx, state.HistoryRequest{AgentID: "agent-1", Tier: "local", Key: "prefs/ui", IncludeDiff: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, v := range h.Versions {
		fmt.Println(v.Version, v.ChangeType, "modified:", len(v.Diff.Modified), "added:", len(v.Diff.Added))
	}
	// Output:
	// created: true version: 1
	// updated version: 2 by agent-1
	// version 1: {"theme":"dark"}
	// 2 update modified: 1 added: 1
	// 1 create modified: 0 added: 1
}
