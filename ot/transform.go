package ot

import "encoding/json"

// Transform returns a' and b' for two concurrent ops a and b made on the
// same document s, such that
//
//	Apply(Apply(s, a), b') == Apply(Apply(s, b), a')
//
// (TP1). Where both insert at the same position, a's insert goes first if
// aFirst, b's otherwise. The work is linear in the number of components, not
// in the document's length. Results are in normal form.
func Transform(a, b Op, aFirst bool) (aPrime, bPrime Op) {
	a, b = normal(a), normal(b)
	var ab, bb builder
	ab.reset(make(Op, 0, len(a)+len(b)))
	bb.reset(make(Op, 0, len(a)+len(b)))
	transform(a, b, aFirst, &ab, &bb)
	return ab.done(), bb.done()
}

// TransformActors is Transform with same-position inserts ordered by actor
// id: a's go first if aActor < bActor; b's go first otherwise, equal ids
// included.
func TransformActors(a Op, aActor string, b Op, bActor string) (aPrime, bPrime Op) {
	return Transform(a, b, aActor < bActor)
}

// Committed is an op as committed to a document's log, with its author.
type Committed struct {
	Op      Op
	ActorID string
}

// TransformAgainst transforms op, made by actorID on the document at some
// version, against the ops committed since that version (oldest first), so
// that it applies to the current document. Same-position inserts are
// ordered as TransformActors orders them, with op as a: on equal actor ids
// the committed op's insert goes first. The result is in normal form.
//
// op must fit the document it was made on, and transformation cannot tell
// (see the package documentation): check first that op.InputLen() is at most
// BaseLength(current, committed), current being the length of the document
// the committed ops lead to.
//
// A client holding op as a pending change computes the same op', and the
// committed ops transformed for its own document, with TransformActors(op,
// actorID, c.Op, c.ActorID) step by step.
func TransformAgainst(op Op, actorID string, committed []Committed) Op {
	cur := normal(op)
	// Each step reads the previous step's result and writes a fresh one;
	// two builders taking turns keep the work free of allocation once their
	// buffers have grown.
	var bufs [2]builder
	for i, c := range committed {
		out := &bufs[i%2]
		out.reset(out.ops)
		transform(cur, normal(c.Op), actorID < c.ActorID, out, nil)
		cur = out.done()
	}
	return cur
}

// BaseLength is the length of the document the committed ops were applied
// to, given the length of the document they lead to: an op's effect on
// length does not depend on the document.
func BaseLength(current int, committed []Committed) int {
	for _, c := range committed {
		current -= c.Op.Delta()
	}
	return current
}

// Compose returns one op with the effect of a followed by b:
//
//	Apply(s, Compose(a, b)) == Apply(Apply(s, a), b)
//
// whenever the right side succeeds. b is read against a's result. The
// result is in normal form.
func Compose(a, b Op) Op {
	a, b = normal(a), normal(b)
	var out builder
	out.reset(make(Op, 0, len(a)+len(b)))
	ia, ib := iter{op: a}, iter{op: b}
	for {
		ta, na := ia.peek()
		tb, nb := ib.peek()
		switch {
		case ta == 0 && tb == 0:
			return out.done()
		case ta == TypeDelete: // deleted by a: b never sees it
			ia.skip(na)
			out.delete(na)
		case tb == TypeInsert: // inserted by b: a never saw it
			out.insert(ib.take(nb))
		case ta == 0: // a retains the rest: the rest of b
			ib.skip(nb)
			out.add(tb, nb, Content{})
			out.appendOps(b[ib.i:])
			return out.done()
		case tb == 0: // b retains the rest: the rest of a
			out.add(ta, na, ia.take(na))
			out.appendOps(a[ia.i:])
			return out.done()
		default:
			n := min(na, nb)
			c := ia.take(n)
			ib.skip(n)
			switch {
			case tb == TypeDelete && ta == TypeRetain:
				out.delete(n)
			case tb == TypeRetain:
				out.add(ta, n, c)
			}
			// An insert of a deleted by b leaves no trace.
		}
	}
}

func normal(op Op) Op {
	if isNormal(op) {
		return op
	}
	return Normalize(op)
}

// transform writes a' to ab and, unless bb is nil, b' to bb. a and b are
// normal.
func transform(a, b Op, aFirst bool, ab, bb *builder) {
	ia, ib := iter{op: a}, iter{op: b}
	for {
		ta, na := ia.peek()
		tb, nb := ib.peek()
		switch {
		case ta == 0 && tb == 0:
			return
		case ta == TypeInsert && (aFirst || tb != TypeInsert):
			ab.insert(ia.take(na))
			if bb != nil {
				bb.retain(na)
			}
		case tb == TypeInsert:
			c := ib.take(nb)
			ab.retain(nb)
			if bb != nil {
				bb.insert(c)
			}
		case ta == 0: // a retains the rest: b' is the rest of b, a' is done
			if bb != nil {
				ib.skip(nb)
				bb.add(tb, nb, Content{})
				bb.appendOps(b[ib.i:])
			}
			return
		case tb == 0: // b retains the rest: a' is the rest of a, b' is done
			ia.skip(na)
			ab.add(ta, na, Content{})
			ab.appendOps(a[ia.i:])
			return
		default: // retains and deletes over the same stretch of s
			n := min(na, nb)
			ia.skip(n)
			ib.skip(n)
			switch {
			case ta == TypeRetain && tb == TypeRetain:
				ab.retain(n)
				if bb != nil {
					bb.retain(n)
				}
			case ta == TypeDelete && tb == TypeRetain:
				ab.delete(n)
			case ta == TypeRetain && tb == TypeDelete:
				if bb != nil {
					bb.delete(n)
				}
			}
			// Deleted by both: gone from both sides.
		}
	}
}

// iter walks a normal op in pieces; past its end it reports type 0, which
// stands for retaining the rest of the document.
type iter struct {
	op   Op
	i    int // current component
	off  int // code points or elements of it consumed
	boff int // bytes of its text consumed
}

func (it *iter) peek() (Type, int) {
	if it.i >= len(it.op) {
		return 0, 0
	}
	c := &it.op[it.i]
	if c.Type == TypeInsert {
		return TypeInsert, c.Content.Len() - it.off
	}
	return c.Type, c.Length - it.off
}

// skip consumes n, at most what peek reported, of the current retain or
// delete.
func (it *iter) skip(n int) {
	it.off += n
	if it.off >= it.op[it.i].Length {
		it.i++
		it.off = 0
	}
}

// take consumes n, at most what peek reported, of the current component and
// returns the consumed content if it is an insert.
func (it *iter) take(n int) Content {
	c := &it.op[it.i]
	if c.Type != TypeInsert {
		it.skip(n)
		return Content{}
	}
	var out Content
	out, it.boff = c.Content.slice(it.off, it.boff, n)
	it.off += n
	if it.off >= c.Content.Len() {
		it.i++
		it.off, it.boff = 0, 0
	}
	return out
}

// slice returns n elements of c from element off (byte offset boff for
// text) and the byte offset after them.
func (c Content) slice(off, boff, n int) (Content, int) {
	if c.array {
		return Content{items: c.items[off : off+n : off+n], array: true}, 0
	}
	if off == 0 && n == c.runes {
		return c, len(c.text)
	}
	if off+n == c.runes {
		return Content{text: c.text[boff:], runes: n}, len(c.text)
	}
	end, _ := advance(c.text, boff, n)
	return Content{text: c.text[boff:end], runes: n}, end
}

// builder assembles an op in normal form.
type builder struct {
	ops Op
	// pend is the index of the insert whose content is being accumulated in
	// text or items (-1: none), so that merging many pieces into one insert
	// costs linear, not quadratic, time.
	pend  int
	text  []byte
	items []json.RawMessage
}

func (b *builder) reset(ops Op) {
	b.ops = ops[:0]
	b.pend = -1
}

func (b *builder) add(t Type, n int, c Content) {
	switch t {
	case TypeRetain:
		b.retain(n)
	case TypeDelete:
		b.delete(n)
	case TypeInsert:
		b.insert(c)
	}
}

// appendOps appends the components of rest, a normal op, in bulk once the
// junction with what is already built is normal.
func (b *builder) appendOps(rest Op) {
	for k, c := range rest {
		b.add(c.Type, c.Length, c.Content)
		if n := len(b.ops); n > 0 && b.ops[n-1].Type == c.Type {
			// The last component is c, maybe merged with its predecessor:
			// it relates to rest[k+1] as c does in rest.
			b.ops = append(b.ops, rest[k+1:]...)
			return
		}
	}
}

func (b *builder) retain(n int) {
	if n <= 0 {
		return
	}
	if k := len(b.ops) - 1; k >= 0 && b.ops[k].Type == TypeRetain {
		b.ops[k].Length += n
		return
	}
	b.ops = append(b.ops, Component{Type: TypeRetain, Length: n})
}

func (b *builder) delete(n int) {
	if n <= 0 {
		return
	}
	if k := len(b.ops) - 1; k >= 0 && b.ops[k].Type == TypeDelete {
		b.ops[k].Length += n
		return
	}
	b.ops = append(b.ops, Component{Type: TypeDelete, Length: n})
}

func (b *builder) insert(c Content) {
	if c.Len() == 0 {
		return
	}
	k := len(b.ops) - 1
	if k >= 0 && b.ops[k].Type == TypeDelete {
		// Insert-then-delete is the normal order of the same edit.
		if k >= 1 && b.ops[k-1].Type == TypeInsert && b.ops[k-1].Content.array == c.array {
			b.extend(k-1, c)
			return
		}
		d := b.ops[k]
		b.ops[k] = Component{Type: TypeInsert, Content: c}
		b.ops = append(b.ops, d)
		return
	}
	if k >= 0 && b.ops[k].Type == TypeInsert && b.ops[k].Content.array == c.array {
		b.extend(k, c)
		return
	}
	b.ops = append(b.ops, Component{Type: TypeInsert, Content: c})
}

// extend appends c to the content of the insert at k.
func (b *builder) extend(k int, c Content) {
	cur := &b.ops[k].Content
	if b.pend != k {
		b.flush()
		b.pend = k
		if cur.array {
			b.items = append(make([]json.RawMessage, 0, 2*(len(cur.items)+len(c.items))), cur.items...)
		} else {
			b.text = append(b.text[:0], cur.text...)
		}
	}
	if c.array {
		b.items = append(b.items, c.items...)
		cur.items = b.items[:len(b.items):len(b.items)]
	} else {
		b.text = append(b.text, c.text...)
		cur.runes += c.runes
	}
}

// flush stores the accumulated content in its insert.
func (b *builder) flush() {
	if b.pend < 0 {
		return
	}
	if c := &b.ops[b.pend].Content; !c.array {
		c.text = string(b.text)
	}
	b.items = nil // now owned by the op
	b.pend = -1
}

func (b *builder) done() Op {
	b.flush()
	if k := len(b.ops) - 1; k >= 0 && b.ops[k].Type == TypeRetain {
		b.ops = b.ops[:k]
	}
	return b.ops
}
