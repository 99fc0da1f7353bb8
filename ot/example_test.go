package ot_test

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/agentstate/agentstate/ot"
)

// A server takes an op made on an older version: it checks the op against
// that version's length, transforms it against the ops committed since, and
// applies it.
func Example() {
	// Base version "Hello world"; bob has since committed a comma.
	current := json.RawMessage(`"Hello, world"`)
	committed := []ot.Committed{{Op: ot.Op{ot.Retain(5), ot.InsertText(",")}, ActorID: "bob"}}

	// alice, on the base version, replaces "world".
	op, err := ot.ParseOp([]byte(`[{"type":"retain","length":6},{"type":"replace","length":5,"content":"wörld"}]`))
	if err != nil {
		fmt.Println(err) // 400
		return
	}
	n, err := ot.Length(current)
	if err != nil {
		fmt.Println(err)
		return
	}
	if op.InputLen() > ot.BaseLength(n, committed) {
		fmt.Println("does not fit its base version") // 400
		return
	}
	op = ot.TransformAgainst(op, "alice", committed)
	doc, err := ot.Apply(current, op)
	if errors.Is(err, ot.ErrDoesNotFit) {
		fmt.Println(err) // 400
		return
	}
	wire, _ := json.Marshal(op)
	fmt.Println(string(doc))
	fmt.Println(string(wire))
	// Output:
	// "Hello, wörld"
	// [{"type":"retain","length":7},{"type":"insert","content":"wörld"},{"type":"delete","length":5}]
}
