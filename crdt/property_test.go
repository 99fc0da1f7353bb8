package crdt

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// Property tests: every type's merge is a join (commutative, associative,
// idempotent), replicas that see the same ops converge, and the causal
// types agree with a naive reference (unique tags plus tombstones, kept
// forever) at every step of every run.

var actorNames = []string{"a", "b", "c"}

// Element and value pools are small so that ops collide, and hold
// equivalent spellings so that canonicalization is exercised.
var elementPool = []string{`"x"`, `"y"`, `1`, `1.0`, `10`, `null`, `{"a":1,"b":[2]}`, `{"b":[2.0],"a":1}`, `[true]`}

func genElement() *rapid.Generator[json.RawMessage] {
	return rapid.Map(rapid.SampledFrom(elementPool), func(s string) json.RawMessage { return json.RawMessage(s) })
}

// genTimestamp: absent (stamped by the replica) or from a small range, so
// that equal physical times across actors, and equal timestamps of one
// actor, happen often.
func genTimestamp() *rapid.Generator[*Timestamp] {
	return rapid.Custom(func(t *rapid.T) *Timestamp {
		if rapid.Bool().Draw(t, "stamped") {
			return nil
		}
		return &Timestamp{Physical: rapid.Int64Range(0, 3).Draw(t, "physical"), Logical: rapid.Uint32Range(0, 1).Draw(t, "logical")}
	})
}

// opGens draws an op of each type for an actor.
var opGens = map[string]func(actor string) *rapid.Generator[Op]{
	TypeGCounter: func(actor string) *rapid.Generator[Op] {
		return rapid.Custom(func(t *rapid.T) Op {
			return Op{Op: OpIncrement, ActorID: actor, Amount: rapid.Int64Range(0, 5).Draw(t, "amount")}
		})
	},
	TypePNCounter: func(actor string) *rapid.Generator[Op] {
		return rapid.Custom(func(t *rapid.T) Op {
			return Op{Op: rapid.SampledFrom([]string{OpIncrement, OpDecrement}).Draw(t, "op"), ActorID: actor, Amount: rapid.Int64Range(0, 5).Draw(t, "amount")}
		})
	},
	TypeGSet: func(actor string) *rapid.Generator[Op] {
		return rapid.Custom(func(t *rapid.T) Op {
			return Op{Op: OpAdd, ActorID: actor, Element: genElement().Draw(t, "element")}
		})
	},
	TypeORSet: func(actor string) *rapid.Generator[Op] {
		return rapid.Custom(func(t *rapid.T) Op {
			return Op{Op: rapid.SampledFrom([]string{OpAdd, OpAdd, OpRemove}).Draw(t, "op"), ActorID: actor, Element: genElement().Draw(t, "element")}
		})
	},
	TypeLWWRegister: func(actor string) *rapid.Generator[Op] {
		return rapid.Custom(func(t *rapid.T) Op {
			return Op{Op: OpAssign, ActorID: actor, Value: genElement().Draw(t, "value"), Timestamp: genTimestamp().Draw(t, "ts")}
		})
	},
	TypeLWWMap: func(actor string) *rapid.Generator[Op] {
		return rapid.Custom(func(t *rapid.T) Op {
			op := Op{Op: rapid.SampledFrom([]string{OpSet, OpSet, OpDelete}).Draw(t, "op"), ActorID: actor,
				Field: rapid.SampledFrom([]string{"f", "g", "h"}).Draw(t, "field"), Timestamp: genTimestamp().Draw(t, "ts")}
			if op.Op == OpSet {
				op.Value = genElement().Draw(t, "value")
			}
			return op
		})
	},
	TypeMVRegister: func(actor string) *rapid.Generator[Op] {
		return rapid.Custom(func(t *rapid.T) Op {
			return Op{Op: OpAssign, ActorID: actor, Value: genElement().Draw(t, "value")}
		})
	},
}

// naive is the reference for or_set and mv_register: every add or assign
// gets a globally unique tag that is never forgotten, and a remove or an
// overwrite tombstones the live tags it observes. Its merge is a plain
// union. It keeps everything, which is what the real types must not do,
// and so it is obviously right.
type naive struct {
	tags map[int]string // tag → canonical element or value
	dead map[int]bool
}

func newNaive() *naive { return &naive{tags: map[int]string{}, dead: map[int]bool{}} }

func (n *naive) clone() *naive {
	return &naive{tags: maps.Clone(n.tags), dead: maps.Clone(n.dead)}
}

func (n *naive) merge(o *naive) {
	maps.Copy(n.tags, o.tags)
	maps.Copy(n.dead, o.dead)
}

// live returns the live tags whose payload satisfies keep.
func (n *naive) live(keep func(string) bool) []int {
	var out []int
	for tag, v := range n.tags {
		if !n.dead[tag] && keep(v) {
			out = append(out, tag)
		}
	}
	return out
}

// apply performs op at this replica and returns its delta. An or_set add
// also tombstones the element's observed tags, as the real add supersedes
// the dots it observed; an mv_register assign tombstones every live tag.
func (n *naive) apply(typ string, op Op, nextTag *int) *naive {
	d := newNaive()
	var payload string
	switch typ {
	case TypeORSet:
		payload, _ = canonical(op.Element)
		for _, tag := range n.live(func(v string) bool { return v == payload }) {
			d.dead[tag] = true
		}
	case TypeMVRegister:
		payload, _ = canonical(op.Value)
		for _, tag := range n.live(func(string) bool { return true }) {
			d.dead[tag] = true
		}
	}
	if op.Op != OpRemove {
		*nextTag++
		d.tags[*nextTag] = payload
	}
	n.merge(d)
	return d
}

func (n *naive) value() string {
	var vals []string
	for _, tag := range n.live(func(string) bool { return true }) {
		vals = append(vals, n.tags[tag])
	}
	return string(sortedArray(vals))
}

// delivery is a delta on its way to a replica.
type delivery struct {
	to    int
	delta CRDT
	naive *naive
}

// sim is one run: each actor makes its ops, in order, at its own replica
// (replica i is actorNames[i]'s; the last replica only merges); every op's
// delta is sent to every other replica and delivered in a random order,
// possibly twice, with full-state merges between random replicas in
// between.
type sim struct {
	typ      string
	reps     []CRDT
	naives   []*naive // nil unless the type has a naive reference
	pending  []delivery
	deltas   []CRDT // every delta made, for expected values and merge laws
	pool     []CRDT // snapshots of replicas along the way, for merge laws
	ops      []Op
	nextTag  int
	hasNaive bool
}

func newSim(t *rapid.T, typ string, nActors int) *sim {
	s := &sim{typ: typ, hasNaive: typ == TypeORSet || typ == TypeMVRegister}
	for range nActors + 1 {
		c, err := New(typ)
		if err != nil {
			t.Fatal(err)
		}
		s.reps = append(s.reps, c)
		if s.hasNaive {
			s.naives = append(s.naives, newNaive())
		}
	}
	return s
}

// do applies op at replica r, checks that the op equals merging its delta
// (m(X) = X ⊔ mδ(X)), and sends the delta to every other replica.
func (s *sim) do(t *rapid.T, r int, op Op) {
	before := s.reps[r].Clone()
	delta, err := s.reps[r].ApplyDelta(op)
	if err != nil {
		t.Fatalf("apply %+v: %v", op, err)
	}
	if err := before.Merge(delta); err != nil {
		t.Fatal(err)
	}
	if got, want := string(before.State()), string(s.reps[r].State()); got != want {
		t.Fatalf("state ⊔ delta != state after op %+v:\n%s\n%s", op, got, want)
	}
	var nd *naive
	if s.hasNaive {
		nd = s.naives[r].apply(s.typ, op, &s.nextTag)
	}
	s.ops = append(s.ops, op)
	s.deltas = append(s.deltas, delta)
	for to := range s.reps {
		if to != r {
			s.pending = append(s.pending, delivery{to: to, delta: delta, naive: nd})
		}
	}
}

// deliver merges pending delta i; with again, it stays pending, to be
// delivered a second time later.
func (s *sim) deliver(t *rapid.T, i int, again bool) {
	p := s.pending[i]
	if err := s.reps[p.to].Merge(p.delta); err != nil {
		t.Fatal(err)
	}
	if s.hasNaive {
		s.naives[p.to].merge(p.naive)
	}
	if !again {
		s.pending = slices.Delete(s.pending, i, i+1)
	}
}

// mergeState merges replica from's full state into replica to, through
// its JSON half the time (as a merge op from a client would).
func (s *sim) mergeState(t *rapid.T, from, to int, viaJSON bool) {
	src := s.reps[from]
	if viaJSON {
		var err error
		src, err = Decode(s.typ, s.reps[from].State())
		if err != nil {
			t.Fatalf("decode %s: %v", s.reps[from].State(), err)
		}
	}
	before := string(s.reps[from].State())
	if err := s.reps[to].Merge(src); err != nil {
		t.Fatal(err)
	}
	if after := string(s.reps[from].State()); after != before {
		t.Fatalf("merge modified its argument: %s -> %s", before, after)
	}
	if s.hasNaive {
		s.naives[to].merge(s.naives[from].clone())
	}
}

// check verifies each replica's invariants and, for the causal types, that
// its value is the naive reference's.
func (s *sim) check(t *rapid.T) {
	for i, c := range s.reps {
		checkInvariants(t, c)
		if s.hasNaive {
			if got, want := string(c.Value()), s.naives[i].value(); got != want {
				t.Fatalf("replica %d value %s, naive reference %s\nstate %s", i, got, want, c.State())
			}
		}
	}
}

// run draws the ops and the schedule and plays them, then delivers every
// pending delta in a random order.
func (s *sim) run(t *rapid.T, nActors int) {
	queues := make([][]Op, nActors)
	for a := range nActors {
		queues[a] = rapid.SliceOfN(opGens[s.typ](actorNames[a]), 0, 8).Draw(t, "ops_"+actorNames[a])
	}
	for {
		var ready []int
		for a, q := range queues {
			if len(q) > 0 {
				ready = append(ready, a)
			}
		}
		if len(ready) == 0 {
			break
		}
		switch step := rapid.IntRange(0, 9).Draw(t, "step"); {
		case step < 5:
			a := rapid.SampledFrom(ready).Draw(t, "actor")
			s.do(t, a, queues[a][0])
			queues[a] = queues[a][1:]
		case step < 8 && len(s.pending) > 0:
			i := rapid.IntRange(0, len(s.pending)-1).Draw(t, "delivery")
			s.deliver(t, i, step == 7)
		default:
			from := rapid.IntRange(0, len(s.reps)-1).Draw(t, "from")
			to := rapid.IntRange(0, len(s.reps)-1).Draw(t, "to")
			s.mergeState(t, from, to, rapid.Bool().Draw(t, "json"))
		}
		s.check(t)
		s.pool = append(s.pool, s.reps[rapid.IntRange(0, len(s.reps)-1).Draw(t, "snapshot")].Clone())
	}
	for len(s.pending) > 0 {
		s.deliver(t, rapid.IntRange(0, len(s.pending)-1).Draw(t, "final delivery"), false)
		s.check(t)
	}
}

// expected is the value every replica must converge to, computed from the
// ops and deltas rather than by merging.
func (s *sim) expected() string {
	switch s.typ {
	case TypeGCounter, TypePNCounter:
		var sum int64
		for _, op := range s.ops {
			if op.Op == OpDecrement {
				sum -= int64(op.amount())
			} else {
				sum += int64(op.amount())
			}
		}
		return fmt.Sprint(sum)
	case TypeGSet:
		var elems []string
		for _, op := range s.ops {
			e, _ := canonical(op.Element)
			elems = append(elems, e)
		}
		return string(sortedArray(elems))
	case TypeLWWRegister:
		// The write with the greatest timestamp, as stamped by its replica.
		var best *lwwEntry
		for _, d := range s.deltas {
			e := d.(*LWWRegister).e
			if best == nil || e.compare(*best) > 0 {
				best = &e
			}
		}
		if best == nil {
			return "null"
		}
		return best.value
	case TypeLWWMap:
		best := map[string]lwwEntry{}
		for _, d := range s.deltas {
			for f, e := range d.(*LWWMap).fields {
				if cur, ok := best[f]; !ok || e.compare(cur) > 0 {
					best[f] = e
				}
			}
		}
		var parts []string
		for _, f := range slices.Sorted(maps.Keys(best)) {
			if !best[f].deleted {
				parts = append(parts, fmt.Sprintf("%q:%s", f, best[f].value))
			}
		}
		return "{" + strings.Join(parts, ",") + "}"
	case TypeORSet, TypeMVRegister:
		return s.naives[0].value()
	}
	panic("no expectation for " + s.typ)
}

// checkInvariants checks what the representation promises: every dot
// covered by the context, no empty entry, a normal context, and a state
// that decodes to itself.
func checkInvariants(t *rapid.T, c CRDT) {
	var ctx *causalContext
	var dots []Dot
	switch c := c.(type) {
	case *ORSet:
		ctx = &c.ctx
		for e, ds := range c.entries {
			if len(ds) == 0 || !slices.IsSortedFunc(ds, Dot.compare) {
				t.Fatalf("element %s: dots %v", e, ds)
			}
			dots = append(dots, ds...)
		}
	case *MVRegister:
		ctx = &c.ctx
		for _, e := range c.entries {
			dots = append(dots, e.dot)
		}
	}
	if ctx != nil {
		for _, d := range dots {
			if !ctx.has(d) {
				t.Fatalf("dot %v not in context in %s", d, c.State())
			}
		}
		for a, n := range ctx.vv {
			if n == 0 {
				t.Fatalf("zero vv entry %q", a)
			}
		}
		for d := range ctx.cloud {
			if d.Counter <= ctx.vv[d.Actor]+1 {
				t.Fatalf("cloud dot %v not normal (vv %d)", d, ctx.vv[d.Actor])
			}
		}
	}
	d, err := Decode(c.Type(), c.State())
	if err != nil {
		t.Fatalf("state does not decode: %v\n%s", err, c.State())
	}
	if got, want := string(d.State()), string(c.State()); got != want {
		t.Fatalf("state round trip:\n%s\n%s", got, want)
	}
}

// TestConvergence: replicas that receive every op (as deltas, in any order,
// some twice, with full-state merges in between) end in the same state,
// with the expected value, and the causal types with an empty cloud.
func TestConvergence(t *testing.T) {
	for _, typ := range Types() {
		t.Run(typ, func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				nActors := rapid.IntRange(1, 3).Draw(t, "actors")
				s := newSim(t, typ, nActors)
				s.run(t, nActors)
				want := string(s.reps[0].State())
				for i, c := range s.reps {
					if got := string(c.State()); got != want {
						t.Fatalf("replica %d diverged:\n%s\nreplica 0:\n%s", i, got, want)
					}
					if got, want := string(c.Value()), s.expected(); got != want {
						t.Fatalf("replica %d value %s, want %s", i, got, want)
					}
				}
				switch c := s.reps[0].(type) {
				case *ORSet:
					if len(c.ctx.cloud) > 0 {
						t.Fatalf("cloud left after every delta arrived: %s", c.State())
					}
				case *MVRegister:
					if len(c.ctx.cloud) > 0 {
						t.Fatalf("cloud left after every delta arrived: %s", c.State())
					}
				}
			})
		})
	}
}

// genCausalState draws an arbitrary valid or_set or mv_register state,
// not necessarily one a run reaches: clouds with gaps, several dots of one
// actor on an element, one dot on several elements or with different
// values in different states. The join must be a join on these too, since
// a client can send any of them.
func genCausalState(t *rapid.T, typ string) CRDT {
	var covered []Dot
	vv := map[string]uint64{}
	var cloud []Dot
	for _, a := range actorNames[:2] {
		n := rapid.Uint64Range(0, 3).Draw(t, "vv_"+a)
		if n > 0 {
			vv[a] = n
		}
		for i := uint64(1); i <= n; i++ {
			covered = append(covered, Dot{a, i})
		}
		for _, c := range rapid.SliceOfNDistinct(rapid.Uint64Range(n+1, n+5), 0, 2, rapid.ID).Draw(t, "cloud_"+a) {
			cloud = append(cloud, Dot{a, c})
			covered = append(covered, Dot{a, c})
		}
	}
	pickDots := func(label string) []Dot {
		if len(covered) == 0 {
			return nil
		}
		idx := rapid.SliceOfNDistinct(rapid.IntRange(0, len(covered)-1), 1, 3, rapid.ID).Draw(t, label)
		out := make([]Dot, len(idx))
		for i, j := range idx {
			out[i] = covered[j]
		}
		return out
	}
	w := map[string]any{"vv": vv, "cloud": cloud}
	var entries []map[string]any
	if typ == TypeORSet {
		seen := map[string]bool{}
		for _, e := range rapid.SliceOfN(rapid.SampledFrom(elementPool), 0, 3).Draw(t, "elements") {
			key, _ := canonical([]byte(e))
			if dots := pickDots("dots"); len(dots) > 0 && !seen[key] {
				seen[key] = true
				entries = append(entries, map[string]any{"element": json.RawMessage(e), "dots": dots})
			}
		}
	} else {
		for _, d := range pickDots("dots") {
			entries = append(entries, map[string]any{"dot": d, "value": json.RawMessage(rapid.SampledFrom(elementPool).Draw(t, "value"))})
		}
	}
	w["entries"] = entries
	raw, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Decode(typ, raw)
	if err != nil {
		t.Fatalf("generated state %s: %v", raw, err)
	}
	return c
}

// TestMergeLaws: merge is commutative, associative and idempotent on
// states reached by runs (replica snapshots and deltas) and, for the
// causal types, on arbitrary valid states.
func TestMergeLaws(t *testing.T) {
	for _, typ := range Types() {
		t.Run(typ, func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				nActors := rapid.IntRange(1, 3).Draw(t, "actors")
				s := newSim(t, typ, nActors)
				s.run(t, nActors)
				pool := slices.Concat(s.pool, s.deltas, s.reps)
				empty, _ := New(typ)
				pool = append(pool, empty)
				draw := func(label string) CRDT {
					if (typ == TypeORSet || typ == TypeMVRegister) && rapid.Bool().Draw(t, label+"_arbitrary") {
						return genCausalState(t, typ)
					}
					return pool[rapid.IntRange(0, len(pool)-1).Draw(t, label)]
				}
				a, b, c := draw("a"), draw("b"), draw("c")
				join := func(xs ...CRDT) CRDT {
					out := xs[0].Clone()
					for _, x := range xs[1:] {
						if err := out.Merge(x); err != nil {
							t.Fatal(err)
						}
					}
					checkInvariants(t, out)
					return out
				}
				eq := func(law string, x, y CRDT) {
					if xs, ys := string(x.State()), string(y.State()); xs != ys {
						t.Fatalf("%s fails:\n%s\n%s\na=%s\nb=%s\nc=%s", law, xs, ys, a.State(), b.State(), c.State())
					}
					if xv, yv := string(x.Value()), string(y.Value()); xv != yv {
						t.Fatalf("%s fails on values: %s vs %s", law, xv, yv)
					}
				}
				eq("commutativity", join(a, b), join(b, a))
				eq("associativity", join(join(a, b), c), join(a, join(b, c)))
				eq("idempotence", join(a, a), a)
				eq("absorption", join(join(a, b), b), join(a, b))
				eq("empty is the identity", join(a, empty), a)
			})
		})
	}
}

// orSetPair draws two replicas of an or_set that share a random history
// in which both have seen element x added.
func orSetPair(t *rapid.T) (a, b *ORSet, x json.RawMessage) {
	a, b = NewORSet(), NewORSet()
	x = genElement().Draw(t, "x")
	apply := func(s *ORSet, op Op) {
		if err := s.Apply(op); err != nil {
			t.Fatal(err)
		}
	}
	for _, op := range rapid.SliceOfN(opGens[TypeORSet]("a"), 0, 6).Draw(t, "history_a") {
		apply(a, op)
	}
	for _, op := range rapid.SliceOfN(opGens[TypeORSet]("b"), 0, 6).Draw(t, "history_b") {
		apply(b, op)
	}
	apply(rapid.SampledFrom([]*ORSet{a, b}).Draw(t, "adder"), Op{Op: OpAdd, ActorID: "a", Element: x})
	must(t, a.Merge(b))
	must(t, b.Merge(a))
	return a, b, x
}

func must(t *rapid.T, err error) {
	if err != nil {
		t.Fatal(err)
	}
}

// concurrentNoise applies random ops that do not involve x.
func concurrentNoise(t *rapid.T, s *ORSet, actor string, x json.RawMessage) {
	key, _ := canonical(x)
	for _, op := range rapid.SliceOfN(opGens[TypeORSet](actor), 0, 4).Draw(t, "noise_"+actor) {
		if k, _ := canonical(op.Element); k != key {
			must(t, s.Apply(op))
		}
	}
}

// TestORSetAddWins: an add concurrent with a remove of the same element
// wins, whichever way the merge goes.
func TestORSetAddWins(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, x := orSetPair(t)
		must(t, a.Apply(Op{Op: OpRemove, ActorID: "a", Element: x}))
		must(t, b.Apply(Op{Op: OpAdd, ActorID: "b", Element: x}))
		concurrentNoise(t, a, "a", x)
		concurrentNoise(t, b, "b", x)
		ab, ba := a.Clone(), b.Clone()
		must(t, ab.Merge(b))
		must(t, ba.Merge(a))
		if !ab.(*ORSet).Has(x) || !ba.(*ORSet).Has(x) {
			t.Fatalf("concurrent add lost to remove: %s", ab.State())
		}
		if string(ab.State()) != string(ba.State()) {
			t.Fatalf("diverged:\n%s\n%s", ab.State(), ba.State())
		}
	})
}

// TestORSetObservedRemove: a remove after the add was observed removes
// the element everywhere, even merged with a replica that still has it.
func TestORSetObservedRemove(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, x := orSetPair(t)
		must(t, b.Apply(Op{Op: OpRemove, ActorID: "b", Element: x}))
		concurrentNoise(t, a, "a", x)
		concurrentNoise(t, b, "b", x)
		ab, ba := a.Clone(), b.Clone()
		must(t, ab.Merge(b))
		must(t, ba.Merge(a))
		if ab.(*ORSet).Has(x) || ba.(*ORSet).Has(x) {
			t.Fatalf("removed element came back: %s", ab.State())
		}
		if string(ab.State()) != string(ba.State()) {
			t.Fatalf("diverged:\n%s\n%s", ab.State(), ba.State())
		}
	})
}

// TestORSetCompaction: however many elements were added and removed, the
// state of a set emptied by removes is its version vector and nothing
// else: no tombstones.
func TestORSetCompaction(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 300).Draw(t, "elements")
		reps := []*ORSet{NewORSet(), NewORSet(), NewORSet()}
		for i := range n {
			r := rapid.IntRange(0, 2).Draw(t, "adder")
			must(t, reps[r].Apply(Op{Op: OpAdd, ActorID: actorNames[r], Element: json.RawMessage(fmt.Sprint(i))}))
			if rapid.IntRange(0, 9).Draw(t, "sync") == 0 {
				must(t, reps[rapid.IntRange(0, 2).Draw(t, "to")].Merge(reps[r]))
			}
		}
		for _, r := range reps[1:] {
			must(t, reps[0].Merge(r))
		}
		for i := range n {
			must(t, reps[0].Apply(Op{Op: OpRemove, ActorID: "a", Element: json.RawMessage(fmt.Sprint(i))}))
		}
		for _, r := range reps[1:] {
			must(t, r.Merge(reps[0]))
			must(t, reps[0].Merge(r))
		}
		for i, r := range reps {
			st := string(r.State())
			if r.Len() != 0 || len(r.ctx.cloud) != 0 || !strings.HasSuffix(st, `},"entries":[]}`) || len(st) > 80 {
				t.Fatalf("replica %d after removing %d elements: %s", i, n, st)
			}
		}
	})
}
