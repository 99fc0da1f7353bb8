package merge_test

import (
	"encoding/json"
	"fmt"

	"github.com/agentstate/agentstate/merge"
)

// A writer read version 3, changed the plan's status and appended a note;
// meanwhile another writer bumped the step and appended its own note.
func ExampleMerge() {
	base := json.RawMessage(`{"plan":{"status":"draft","step":1},"notes":["start"]}`)
	ours := json.RawMessage(`{"plan":{"status":"draft","step":2},"notes":["start","from A"]}`)
	theirs := json.RawMessage(`{"plan":{"status":"ready","step":1},"notes":["start","from B"]}`)
	res, err := merge.Merge(base, ours, theirs)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(res.Value), len(res.Conflicts))

	// Both changed the step: a conflict, reported and not resolved.
	theirs = json.RawMessage(`{"plan":{"status":"draft","step":3},"notes":["start"]}`)
	res, _ = merge.Merge(base, ours, theirs)
	for _, c := range res.Conflicts {
		fmt.Println(c.Path, string(c.Base), string(c.Ours), string(c.Theirs))
	}
	// Output:
	// {"notes":["start","from A","from B"],"plan":{"status":"ready","step":2}} 0
	// /plan/step 1 2 3
}
