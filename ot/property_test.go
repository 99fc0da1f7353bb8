package ot

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// Documents and ops are kept short so that concurrent ops often touch the
// same positions, and inserts often land on the same one.

var (
	docRunes     = []rune("abé😀 ")
	contentRunes = []rune("XYü🙂")
	docValues    = []string{`1`, `"x"`, `null`, `{"a":[1]}`, `true`, `"é"`}
	contentVals  = []string{`7`, `"new"`, `[null]`, `{"k":"🙂"}`}
)

func genDoc(t *rapid.T, array bool) json.RawMessage {
	if array {
		vs := rapid.SliceOfN(rapid.SampledFrom(docValues), 0, 8).Draw(t, "doc")
		return json.RawMessage("[" + strings.Join(vs, ",") + "]")
	}
	return str(rapid.StringOfN(rapid.RuneFrom(docRunes), 0, 8, -1).Draw(t, "doc"))
}

func genContent(t *rapid.T, array bool, label string) Content {
	if array {
		return Values(vals(rapid.SliceOfN(rapid.SampledFrom(contentVals), 1, 3).Draw(t, label)...)...)
	}
	return Text(rapid.StringOfN(rapid.RuneFrom(contentRunes), 1, 3, -1).Draw(t, label))
}

// genOp draws a valid op on a document of length n, in wire form: replaces,
// adjacent components of a type, deletes before inserts, trailing retains,
// and ops that stop short of the end all occur.
func genOp(t *rapid.T, n int, array bool, label string) Op {
	op := Op{}
	pos := 0
	steps := rapid.IntRange(0, 6).Draw(t, label+".steps")
	for range steps {
		kind := rapid.IntRange(0, 3).Draw(t, label+".type")
		if kind == 1 {
			op = append(op, Insert(genContent(t, array, label+".content")))
			continue
		}
		if pos == n {
			continue
		}
		k := rapid.IntRange(1, n-pos).Draw(t, label+".length")
		pos += k
		switch kind {
		case 0:
			op = append(op, Retain(k))
		case 2:
			op = append(op, Delete(k))
		case 3:
			op = append(op, Replace(k, genContent(t, array, label+".content")))
		}
	}
	return op
}

// tb is what the helpers need of *testing.T and *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

func docLen(t tb, doc json.RawMessage) int {
	d, err := decodeDoc(doc)
	if err != nil {
		t.Fatal(err)
	}
	return d.length()
}

func apply(t tb, doc json.RawMessage, op Op) json.RawMessage {
	t.Helper()
	out, err := Apply(doc, op)
	if err != nil {
		t.Fatalf("Apply(%s, %v): %v", doc, op, err)
	}
	return out
}

func TestPropTP1(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		array := rapid.Bool().Draw(t, "array")
		s := genDoc(t, array)
		n := docLen(t, s)
		a, b := genOp(t, n, array, "a"), genOp(t, n, array, "b")
		aFirst := rapid.Bool().Draw(t, "aFirst")
		ap, bp := Transform(a, b, aFirst)
		x := apply(t, apply(t, s, a), bp)
		y := apply(t, apply(t, s, b), ap)
		if string(x) != string(y) {
			t.Fatalf("TP1: a then b' = %s, b then a' = %s\na=%v b=%v a'=%v b'=%v", x, y, a, b, ap, bp)
		}
		// The other way round is the same transformation.
		bp2, ap2 := Transform(b, a, !aFirst)
		if !sameOp(ap, ap2) || !sameOp(bp, bp2) {
			t.Fatalf("Transform(b, a, !aFirst) = %v, %v; want %v, %v", bp2, ap2, bp, ap)
		}
		if !isNormal(ap) || !isNormal(bp) {
			t.Fatalf("not normal: %v %v", ap, bp)
		}
	})
}

func TestPropCompose(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		array := rapid.Bool().Draw(t, "array")
		s := genDoc(t, array)
		a := genOp(t, docLen(t, s), array, "a")
		sa := apply(t, s, a)
		b := genOp(t, docLen(t, sa), array, "b")
		sab := apply(t, sa, b)
		c := genOp(t, docLen(t, sab), array, "c")
		ab := Compose(a, b)
		if got := apply(t, s, ab); string(got) != string(sab) {
			t.Fatalf("compose: %s, sequential: %s\na=%v b=%v ab=%v", got, sab, a, b, ab)
		}
		// Associative in effect.
		want := apply(t, sab, c)
		if x, y := apply(t, s, Compose(ab, c)), apply(t, s, Compose(a, Compose(b, c))); string(x) != string(want) || string(y) != string(want) {
			t.Fatalf("(ab)c = %s, a(bc) = %s, want %s", x, y, want)
		}
	})
}

func TestPropInvert(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		array := rapid.Bool().Draw(t, "array")
		s := genDoc(t, array)
		op := genOp(t, docLen(t, s), array, "op")
		inv, err := Invert(op, s)
		if err != nil {
			t.Fatal(err)
		}
		if back := apply(t, apply(t, s, op), inv); string(back) != string(apply(t, s, nil)) {
			t.Fatalf("undo gives %s, want %s (op %v, inverse %v)", back, s, op, inv)
		}
	})
}

func TestPropNormalize(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		array := rapid.Bool().Draw(t, "array")
		s := genDoc(t, array)
		op := genOp(t, docLen(t, s), array, "op")
		norm := Normalize(op)
		if x, y := apply(t, s, op), apply(t, s, norm); string(x) != string(y) {
			t.Fatalf("op gives %s, normalized %s (%v → %v)", x, y, op, norm)
		}
		if !isNormal(norm) || !sameOp(Normalize(norm), norm) {
			t.Fatalf("not idempotent: %v", norm)
		}
		if norm.InputLen() > op.InputLen() {
			t.Fatalf("InputLen grew: %v → %v", op, norm)
		}
		// The wire form round-trips exactly.
		raw, err := json.Marshal(op)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseOp(raw)
		if err != nil || !sameOp(back, op) {
			t.Fatalf("round trip %s: %v %v", raw, back, err)
		}
	})
}

// TestPropTransformAgainst checks the server's rebase against a client
// that holds op as pending and receives the committed ops one by one.
func TestPropTransformAgainst(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		array := rapid.Bool().Draw(t, "array")
		s := genDoc(t, array)
		op := genOp(t, docLen(t, s), array, "op")
		actor := rapid.SampledFrom([]string{"a", "m", "z"}).Draw(t, "actor")
		server := s
		var committed []Committed
		for i := range rapid.IntRange(0, 5).Draw(t, "committed") {
			c := Committed{Op: genOp(t, docLen(t, server), array, fmt.Sprint("c", i)), ActorID: rapid.SampledFrom([]string{"a", "m", "z"}).Draw(t, "cActor")}
			server = apply(t, server, c.Op)
			committed = append(committed, c)
		}
		if got := BaseLength(docLen(t, server), committed); got != docLen(t, s) {
			t.Fatalf("BaseLength = %d, want %d", got, docLen(t, s))
		}
		rebased := TransformAgainst(op, actor, committed)
		server = apply(t, server, rebased)

		client, pending := apply(t, s, op), op
		for _, c := range committed {
			var cp Op
			pending, cp = TransformActors(pending, actor, c.Op, c.ActorID)
			client = apply(t, client, cp)
		}
		if string(client) != string(server) || !sameOp(Normalize(pending), rebased) {
			t.Fatalf("server %s (op %v), client %s (pending %v)", server, rebased, client, pending)
		}
	})
}

// edit is one actor's op in the convergence test, with what it means on the
// base document: the base elements it deletes and where its marker goes.
type edit struct {
	actor   string
	op      Op
	deletes map[int]bool
	at      int // base position of the marker
}

// genEdit makes an op on a base of n elements that deletes some of them and
// inserts marker (once) at a base position.
func genEdit(t *rapid.T, n int, actor string, marker Content) edit {
	e := edit{actor: actor, deletes: map[int]bool{}}
	e.at = rapid.IntRange(0, n).Draw(t, actor+".at")
	var b builder
	b.reset(nil)
	for pos := 0; pos <= n; pos++ {
		if pos == e.at {
			b.insert(marker)
		}
		if pos == n {
			break
		}
		if rapid.IntRange(0, 3).Draw(t, actor+".del") == 0 {
			e.deletes[pos] = true
			b.delete(1)
		} else {
			b.retain(1)
		}
	}
	e.op = b.done()
	return e
}

// converge runs the server over edits in arrival order and checks the final
// document: every marker once, every base element deleted by someone gone,
// the others kept in order, and each marker between the surviving base
// elements before and after its base position. It returns the document's
// elements in order, as marker or base indices.
func converge(t tb, base []string, array bool, edits []edit) []string {
	encode := func(elems []string) json.RawMessage {
		if array {
			return json.RawMessage("[" + strings.Join(elems, ",") + "]")
		}
		return str(strings.Join(elems, ""))
	}
	decode := func(doc json.RawMessage) []string {
		if array {
			var vs []json.RawMessage
			if err := json.Unmarshal(doc, &vs); err != nil {
				t.Fatal(err)
			}
			out := make([]string, len(vs))
			for i, v := range vs {
				out[i] = string(v)
			}
			return out
		}
		var s string
		if err := json.Unmarshal(doc, &s); err != nil {
			t.Fatal(err)
		}
		return strings.Split(s, "")
	}
	doc := encode(base)
	var committed []Committed
	for _, e := range edits {
		op := TransformAgainst(e.op, e.actor, committed)
		doc = apply(t, doc, op)
		committed = append(committed, Committed{Op: op, ActorID: e.actor})
	}
	final := decode(doc)
	if len(base) == 0 && !array && len(final) == 1 && final[0] == "" {
		final = nil
	}
	index := map[string]int{}
	for i, x := range final {
		if _, dup := index[x]; dup {
			t.Fatalf("%q twice in %s", x, doc)
		}
		index[x] = i
	}
	deleted := map[int]bool{}
	for _, e := range edits {
		for p := range e.deletes {
			deleted[p] = true
		}
	}
	var kept []int
	for p, x := range base {
		_, present := index[x]
		if present == deleted[p] {
			t.Fatalf("base element %d (%s): present %v, deleted %v; doc %s", p, x, present, deleted[p], doc)
		}
		if present {
			kept = append(kept, index[x])
		}
	}
	if !slices.IsSorted(kept) {
		t.Fatalf("base elements reordered: %s", doc)
	}
	if len(final) != len(kept)+len(edits) {
		t.Fatalf("%d elements, want %d kept + %d markers: %s", len(final), len(kept), len(edits), doc)
	}
	for _, e := range edits {
		m := markerOf(e.actor, array)
		i, ok := index[m]
		if !ok {
			t.Fatalf("marker %s missing: %s", m, doc)
		}
		for p, x := range base {
			if j, ok := index[x]; ok && (p < e.at) != (j < i) {
				t.Fatalf("marker %s (base position %d) on the wrong side of base element %d: %s", m, e.at, p, doc)
			}
		}
	}
	return final
}

func markerOf(actor string, array bool) string {
	if array {
		return `{"m":"` + actor + `"}`
	}
	return strings.ToUpper(actor)
}

func baseOf(n int, array bool) []string {
	out := make([]string, n)
	for i := range out {
		if array {
			out[i] = fmt.Sprint(i)
		} else {
			out[i] = string(rune('a' + i))
		}
	}
	return out
}

// TestConvergence: 8 actors edit the same base version concurrently; the
// server commits their ops in arrival order, each transformed against the
// ones committed before it.
func TestConvergence(t *testing.T) {
	actors := []string{"h", "c", "f", "a", "g", "b", "e", "d"} // arrival order
	t.Run("all insert at one position", func(t *testing.T) {
		for _, array := range []bool{false, true} {
			base := baseOf(3, array)
			var edits []edit
			for _, a := range actors {
				m := Values(json.RawMessage(markerOf(a, true)))
				if !array {
					m = Text(markerOf(a, false))
				}
				edits = append(edits, edit{actor: a, op: Op{Retain(1), Insert(m)}, deletes: map[int]bool{}, at: 1})
			}
			final := converge(t, base, array, edits)
			// Same-position inserts end up ordered by actor id, whatever the
			// arrival order.
			var want []string
			for _, a := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
				want = append(want, markerOf(a, array))
			}
			if got := final[1:9]; !slices.Equal(got, want) {
				t.Fatalf("markers in order %v, want %v", got, want)
			}
		}
	})
	t.Run("random edits", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			array := rapid.Bool().Draw(t, "array")
			base := baseOf(rapid.IntRange(0, 10).Draw(t, "n"), array)
			order := rapid.Permutation(actors).Draw(t, "arrival")
			var edits []edit
			for _, a := range order {
				m := Values(json.RawMessage(markerOf(a, true)))
				if !array {
					m = Text(markerOf(a, false))
				}
				edits = append(edits, genEdit(t, len(base), a, m))
			}
			converge(t, base, array, edits)
		})
	})
}
