package crdt

import (
	"encoding/json"
	"fmt"
	"testing"
)

// Benchmarks: ops and merges on a 10,000-element or_set, and pn_counter
// increments. Elements are small objects, so each op pays for
// canonicalization as a request would.

const benchSetSize = 10_000

func benchElement(i int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"id":%d,"kind":"doc"}`, i))
}

func benchORSet(b *testing.B) *ORSet {
	b.Helper()
	s := NewORSet()
	for i := range benchSetSize {
		if err := s.Apply(Op{Op: OpAdd, ActorID: fmt.Sprintf("agent-%d", i%4), Element: benchElement(i)}); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func BenchmarkORSet10k(b *testing.B) {
	base := benchORSet(b)
	ops := make([]Op, 256)
	for i := range ops {
		ops[i] = Op{Op: OpAdd, ActorID: "agent-9", Element: benchElement(i * 37 % benchSetSize)}
	}

	b.Run("add_existing", func(b *testing.B) {
		s := base.Clone()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := s.Apply(ops[i%len(ops)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("remove_then_add", func(b *testing.B) {
		s := base.Clone()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			op := ops[(i/2)%len(ops)]
			if i%2 == 0 {
				op.Op = OpRemove
			}
			if err := s.Apply(op); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("apply_delta", func(b *testing.B) {
		s := base.Clone()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := s.ApplyDelta(ops[i%len(ops)]); err != nil {
				b.Fatal(err)
			}
		}
	})

	// Two replicas that diverged: each removed 100 elements and added 100
	// new ones, by different actors.
	left, right := base.Clone().(*ORSet), base.Clone().(*ORSet)
	for i := range 100 {
		must2(b, left.Apply(Op{Op: OpRemove, ActorID: "l", Element: benchElement(i)}))
		must2(b, left.Apply(Op{Op: OpAdd, ActorID: "l", Element: benchElement(benchSetSize + i)}))
		must2(b, right.Apply(Op{Op: OpRemove, ActorID: "r", Element: benchElement(5000 + i)}))
		must2(b, right.Apply(Op{Op: OpAdd, ActorID: "r", Element: benchElement(2*benchSetSize + i)}))
	}
	b.Run("merge_diverged", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			dst := left.Clone()
			b.StartTimer()
			must2(b, dst.Merge(right))
		}
	})
	b.Run("merge_equal", func(b *testing.B) {
		dst := left.Clone()
		b.ReportAllocs()
		for b.Loop() {
			must2(b, dst.Merge(left))
		}
	})
	b.Run("merge_delta", func(b *testing.B) {
		d, err := right.Clone().ApplyDelta(Op{Op: OpAdd, ActorID: "r", Element: benchElement(1)})
		must2(b, err)
		dst := left.Clone()
		b.ReportAllocs()
		for b.Loop() {
			must2(b, dst.Merge(d))
		}
	})
	state := left.State()
	b.Run("state", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(state)))
		for b.Loop() {
			left.State()
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(state)))
		for b.Loop() {
			if _, err := Decode(TypeORSet, state); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("value", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			left.Value()
		}
	})
}

func BenchmarkPNCounterIncrement(b *testing.B) {
	c := NewPNCounter()
	ops := make([]Op, 8)
	for i := range ops {
		ops[i] = Op{Op: OpIncrement, ActorID: fmt.Sprintf("agent-%d", i), Amount: 3}
		if i%2 == 1 {
			ops[i].Op = OpDecrement
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := c.Apply(ops[i%len(ops)]); err != nil {
			b.Fatal(err)
		}
	}
}

func must2(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
