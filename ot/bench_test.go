package ot

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// benchText is about size bytes of text, mostly ASCII with some two- and
// four-byte code points, and its length in code points.
func benchText(size int) (string, int) {
	var sb strings.Builder
	words := []string{"lorem ", "ipsum ", "dolor ", "sït ", "amet, ", "😀 ", "wörld\n"}
	rng := rand.New(rand.NewPCG(1, 2))
	n := 0
	for sb.Len() < size {
		w := words[rng.IntN(len(words))]
		sb.WriteString(w)
		n += len([]rune(w))
	}
	return sb.String(), n
}

// benchHistory is k ops committed one after another on a document of n
// code points: each inserts a few characters, deletes a few, or replaces.
func benchHistory(n, k int) []Committed {
	rng := rand.New(rand.NewPCG(3, 4))
	out := make([]Committed, k)
	for i := range out {
		pos := rng.IntN(n - 10)
		op := Op{Retain(pos)}
		switch rng.IntN(3) {
		case 0:
			op = append(op, InsertText(strings.Repeat("x", 1+rng.IntN(8))))
			n += len(op[1].Content.Text())
		case 1:
			d := 1 + rng.IntN(5)
			op = append(op, Delete(d))
			n -= d
		default:
			op = append(op, ReplaceText(2, "yé"))
		}
		// Stored as the server commits them: in normal form.
		out[i] = Committed{Op: Normalize(op), ActorID: fmt.Sprintf("agent-%d", rng.IntN(50))}
	}
	return out
}

// benchClientOp is a 10-component op spread over a document of n code
// points.
func benchClientOp(n int) Op {
	step := n / 6
	return Op{
		Retain(step), InsertText("hello"),
		Retain(step), Delete(3),
		Retain(step), ReplaceText(2, "wörld"),
		Retain(step), InsertText("😀"),
		Retain(step), Delete(1),
	}
}

// BenchmarkTransformAgainst: a client's 10-component op against 1,000 ops
// committed since its base version, on a 100 KB text.
func BenchmarkTransformAgainst(b *testing.B) {
	_, n := benchText(100 << 10)
	history := benchHistory(n, 1000)
	op := benchClientOp(n)
	b.ReportAllocs()
	for b.Loop() {
		TransformAgainst(op, "client", history)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(history)), "ns/step")
}

// BenchmarkTransform: one pair, both sides.
func BenchmarkTransform(b *testing.B) {
	_, n := benchText(100 << 10)
	a := benchClientOp(n)
	c := Normalize(benchHistory(n, 1)[0].Op)
	b.ReportAllocs()
	for b.Loop() {
		Transform(a, c, true)
	}
}

// BenchmarkApplyText: a 10-component op on a 100 KB text.
func BenchmarkApplyText(b *testing.B) {
	text, n := benchText(100 << 10)
	doc := str(text)
	op := benchClientOp(n)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Apply(doc, op); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyArray: a 10-component op on a 10,000-element array.
func BenchmarkApplyArray(b *testing.B) {
	elems := make([]string, 10000)
	for i := range elems {
		elems[i] = fmt.Sprintf(`{"i":%d,"s":"item"}`, i)
	}
	doc := json.RawMessage("[" + strings.Join(elems, ",") + "]")
	step := len(elems) / 6
	v := json.RawMessage(`{"new":true}`)
	op := Op{Retain(step), InsertValues(v), Retain(step), Delete(3), Retain(step), ReplaceValues(2, v, v), Retain(step), InsertValues(v), Retain(step), Delete(1)}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Apply(doc, op); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompose: folding 100 committed ops into one.
func BenchmarkCompose(b *testing.B) {
	_, n := benchText(100 << 10)
	history := benchHistory(n, 100)
	b.ReportAllocs()
	for b.Loop() {
		var acc Op
		for _, c := range history {
			acc = Compose(acc, c.Op)
		}
	}
}

// TestBenchSetup checks that the benchmarks' history is a valid sequence of
// commits and the rebased client op applies to its result.
func TestBenchSetup(t *testing.T) {
	text, n := benchText(100 << 10)
	doc := str(text)
	history := benchHistory(n, 1000)
	var all Op // Compose is property-tested; applying 1,000 ops one by one is slow
	for _, c := range history {
		all = Compose(all, c.Op)
	}
	doc = apply(t, doc, all)
	apply(t, doc, TransformAgainst(benchClientOp(n), "client", history))
}
