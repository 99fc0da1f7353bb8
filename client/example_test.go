package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/agentstate/agentstate/client"
)

// A read-modify-write loop: read the current version, change the value and
// write it back only if nobody wrote in between.
func Example() {
	ctx := context.Background()
	c, err := client.New("http://127.0.0.1:7400", client.WithToken("…"))
	if err != nil {
		log.Fatal(err)
	}
	type counter struct{ N int }
	for {
		e, err := c.Get(ctx, "agent-1", client.TierPersistent, "stats/runs", nil)
		var cur counter
		expected := client.Version(0) // create if absent
		switch {
		case errors.Is(err, client.ErrNotFound):
		case err != nil:
			log.Fatal(err)
		default:
			if cur, err = client.ValueAs[counter](e); err != nil {
				log.Fatal(err)
			}
			expected = client.Version(e.Version)
		}
		cur.N++
		_, err = c.Put(ctx, "agent-1", client.TierPersistent, "stats/runs", cur,
			&client.PutOptions{ExpectedVersion: expected, ChangeSummary: "one more run"})
		if errors.Is(err, client.ErrVersionConflict) || errors.Is(err, client.ErrAlreadyExists) {
			continue // somebody else wrote: read again
		}
		if err != nil {
			log.Fatal(err)
		}
		break
	}
}

// Iterating over every key under a prefix, page after page.
func ExampleClient_ListAll() {
	ctx := context.Background()
	c, _ := client.New("http://127.0.0.1:7400")
	for e, err := range c.ListAll(ctx, "agent-1", client.TierLocal, &client.ListOptions{Prefix: "notes/"}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Key, e.Version)
	}
}

// Telling conflicts apart and reading their details.
func ExampleError_Conflict() {
	ctx := context.Background()
	c, _ := client.New("http://127.0.0.1:7400")
	_, err := c.Put(ctx, "agent-1", client.TierShared, "plan", map[string]any{"step": 2},
		&client.PutOptions{ExpectedVersion: client.Version(4)})
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		if d, ok := apiErr.Conflict(); ok {
			fmt.Printf("expected version %d, key is at %d (%s)\n", d.LocalVersion, d.RemoteVersion, d.ConflictType)
		}
	} else if errors.Is(err, client.ErrTransport) {
		fmt.Println("server unreachable; the write may or may not have happened:", err)
	}
}

// Following every change of an agent's local tier, and going on after a
// restart of the program from the last revision handled.
func ExampleClient_Watch() {
	ctx := context.Background()
	c, _ := client.New("http://127.0.0.1:7400")
	from := int64(0) // or the revision saved by the previous run
	w := c.Watch(ctx, client.WatchFilter{AgentIDs: []string{"agent-1"}, Tiers: []string{client.TierLocal}}, from)
	defer w.Close()
	for {
		e, err := w.Next(ctx)
		if errors.Is(err, client.ErrCompacted) {
			log.Fatal("history before revision ", from, " is gone: start from a snapshot")
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Revision, e.ChangeType, e.StateKey, string(e.NewValue))
		// Save w.Revision() to go on from there next time.
	}
}

// Appending to an event stream with optimistic concurrency.
func ExampleClient_AppendEvents() {
	ctx := context.Background()
	c, _ := client.New("http://127.0.0.1:7400")
	next, err := c.AppendEvents(ctx, "order-1", []client.NewEvent{{EventType: "OrderPlaced", EventData: map[string]any{"total": 12}}},
		client.Version(client.NoStream))
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		if v, ok := apiErr.CurrentVersion(); ok {
			fmt.Println("the stream exists, at version", v)
		}
		return
	}
	_, err = c.AppendEvents(ctx, "order-1", []client.NewEvent{{EventType: "OrderPaid"}}, client.Version(next))
	if err != nil {
		log.Fatal(err)
	}
}
