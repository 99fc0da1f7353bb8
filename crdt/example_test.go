package crdt_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/agentstate/agentstate/crdt"
)

// Two replicas of an or_set: one removes an element while the other,
// concurrently, adds it again. After they exchange states, the add wins on
// both.
func Example() {
	a, _ := crdt.New(crdt.TypeORSet)
	op, _ := crdt.ParseOp([]byte(`{"type":"or_set","op":"add","actor_id":"agent-1","element":{"task":"write","id":7}}`))
	_ = a.Apply(op)

	// Replica b starts from a's state, as sent in a merge op.
	b, _ := crdt.Decode(crdt.TypeORSet, a.State())

	_ = a.Apply(crdt.Op{Op: crdt.OpRemove, ActorID: "agent-1", Element: json.RawMessage(`{"id":7,"task":"write"}`)})
	_ = b.Apply(crdt.Op{Op: crdt.OpAdd, ActorID: "agent-2", Element: json.RawMessage(`{"id":7,"task":"write"}`)})

	_ = a.Merge(b)
	_ = b.Merge(a)
	fmt.Println(string(a.Value()))
	fmt.Println(string(b.State()))
	// Output:
	// [{"id":7,"task":"write"}]
	// {"vv":{"agent-1":1,"agent-2":1},"entries":[{"element":{"id":7,"task":"write"},"dots":[["agent-2",1]]}]}
}

// A server stamps last-writer-wins ops with its hybrid logical clock, so a
// later write wins even if the wall clock stepped back in between.
func ExampleClock() {
	var clock crdt.Clock
	r, _ := crdt.New(crdt.TypeLWWRegister)
	for i, wall := range []int64{1_700_000_000_500, 1_700_000_000_400} {
		op := crdt.Op{Op: crdt.OpAssign, ActorID: "server", Value: json.RawMessage(fmt.Sprint(i))}
		clock.Stamp(&op, time.UnixMilli(wall))
		_ = r.Apply(op)
	}
	fmt.Println(string(r.Value()))
	fmt.Println(string(r.State()))
	// Output:
	// 1
	// {"timestamp":{"physical":1700000000500,"logical":1,"actor":"server"},"value":1}
}
