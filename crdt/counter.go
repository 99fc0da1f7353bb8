package crdt

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"math/bits"
	"strconv"
)

// counts is a grow-only map of per-actor totals: each actor only ever
// raises its own entry, so the join of two is the per-actor maximum.
type counts map[string]uint64

// add raises actor's count by n and returns the new count; ok is false if
// it would overflow (the count is left unchanged).
func (c counts) add(actor string, n uint64) (uint64, bool) {
	sum, carry := bits.Add64(c[actor], n, 0)
	if carry != 0 {
		return 0, false
	}
	c[actor] = sum
	return sum, true
}

func (c counts) join(o counts) {
	for a, n := range o {
		if n > c[a] {
			c[a] = n
		}
	}
}

// sum is the total; ok is false when it overflows uint64, and the caller
// falls back to big.
func (c counts) sum() (uint64, bool) {
	var s uint64
	for _, n := range c {
		var carry uint64
		s, carry = bits.Add64(s, n, 0)
		if carry != 0 {
			return 0, false
		}
	}
	return s, true
}

func (c counts) bigSum() *big.Int {
	s := new(big.Int)
	for _, n := range c {
		s.Add(s, new(big.Int).SetUint64(n))
	}
	return s
}

// decodeCounts validates per-actor counts from a state; zero counts are
// dropped so that equal counters serialize equally. Negative or fractional
// counts fail in encoding/json before this (uint64).
func decodeCounts(typ, path string, in map[string]uint64) (counts, error) {
	out := make(counts, len(in))
	for a, n := range in {
		if r := validActor(a); r != "" {
			return nil, stateErr(typ, path, "actor %q: %s", truncate([]byte(a)), r)
		}
		if n > 0 {
			out[a] = n
		}
	}
	return out, nil
}

func overflow(typ string, op Op) error {
	return &OpError{Type: typ, Op: op.Op, Field: "amount", Reason: fmt.Sprintf("%d would overflow actor %q's count", op.amount(), op.ActorID), Err: ErrInvalidOp}
}

// GCounter is a grow-only counter: per-actor counts, value their sum.
// State: {"counts": {"actor": n}}.
type GCounter struct {
	counts counts
}

// NewGCounter returns a zero counter.
func NewGCounter() *GCounter { return &GCounter{counts: counts{}} }

func (c *GCounter) Type() string { return TypeGCounter }

func (c *GCounter) Apply(op Op) error {
	_, err := c.apply(op, false)
	return err
}

func (c *GCounter) ApplyDelta(op Op) (CRDT, error) { return c.apply(op, true) }

func (c *GCounter) apply(op Op, wantDelta bool) (CRDT, error) {
	if err := checkOp(TypeGCounter, op); err != nil {
		return nil, err
	}
	if op.Op == OpMerge {
		return applyMerge(c, op)
	}
	n, ok := c.counts.add(op.ActorID, op.amount())
	if !ok {
		return nil, overflow(TypeGCounter, op)
	}
	if !wantDelta {
		return nil, nil
	}
	// The actor's new total: max-joining it anywhere raises that actor's
	// count to here, which is the increment if the receiver had the rest.
	return &GCounter{counts: counts{op.ActorID: n}}, nil
}

func (c *GCounter) Merge(other CRDT) error {
	o, ok := other.(*GCounter)
	if !ok || o == nil {
		return mismatch(c, other)
	}
	c.counts.join(o.counts)
	return nil
}

func (c *GCounter) Value() json.RawMessage {
	if s, ok := c.counts.sum(); ok {
		return strconv.AppendUint(nil, s, 10)
	}
	return []byte(c.counts.bigSum().String())
}

type gCounterWire struct {
	Counts map[string]uint64 `json:"counts"`
}

func (c *GCounter) State() json.RawMessage {
	return mustMarshal(gCounterWire{Counts: c.counts})
}

func (c *GCounter) decodeState(data []byte) error {
	var w gCounterWire
	if err := strictUnmarshal(data, &w); err != nil {
		return stateErr(TypeGCounter, "", "%s", jsonErr(err))
	}
	cs, err := decodeCounts(TypeGCounter, "counts", w.Counts)
	if err != nil {
		return err
	}
	c.counts = cs
	return nil
}

func (c *GCounter) Clone() CRDT { return &GCounter{counts: maps.Clone(c.counts)} }

// PNCounter is a counter that also decrements: two grow-only counts, one of
// increments and one of decrements, value their difference.
// State: {"increments": {"actor": n}, "decrements": {"actor": n}}.
type PNCounter struct {
	p, n counts
}

// NewPNCounter returns a zero counter.
func NewPNCounter() *PNCounter { return &PNCounter{p: counts{}, n: counts{}} }

func (c *PNCounter) Type() string { return TypePNCounter }

func (c *PNCounter) Apply(op Op) error {
	_, err := c.apply(op, false)
	return err
}

func (c *PNCounter) ApplyDelta(op Op) (CRDT, error) { return c.apply(op, true) }

func (c *PNCounter) apply(op Op, wantDelta bool) (CRDT, error) {
	if err := checkOp(TypePNCounter, op); err != nil {
		return nil, err
	}
	if op.Op == OpMerge {
		return applyMerge(c, op)
	}
	side := c.p
	if op.Op == OpDecrement {
		side = c.n
	}
	total, ok := side.add(op.ActorID, op.amount())
	if !ok {
		return nil, overflow(TypePNCounter, op)
	}
	if !wantDelta {
		return nil, nil
	}
	d := NewPNCounter()
	if op.Op == OpDecrement {
		d.n[op.ActorID] = total
	} else {
		d.p[op.ActorID] = total
	}
	return d, nil
}

func (c *PNCounter) Merge(other CRDT) error {
	o, ok := other.(*PNCounter)
	if !ok || o == nil {
		return mismatch(c, other)
	}
	c.p.join(o.p)
	c.n.join(o.n)
	return nil
}

func (c *PNCounter) Value() json.RawMessage {
	p, pok := c.p.sum()
	n, nok := c.n.sum()
	switch {
	case pok && nok && p >= n:
		return strconv.AppendUint(nil, p-n, 10)
	case pok && nok:
		return strconv.AppendUint([]byte{'-'}, n-p, 10)
	}
	return []byte(new(big.Int).Sub(c.p.bigSum(), c.n.bigSum()).String())
}

type pnCounterWire struct {
	Increments map[string]uint64 `json:"increments"`
	Decrements map[string]uint64 `json:"decrements"`
}

func (c *PNCounter) State() json.RawMessage {
	return mustMarshal(pnCounterWire{Increments: c.p, Decrements: c.n})
}

func (c *PNCounter) decodeState(data []byte) error {
	var w pnCounterWire
	if err := strictUnmarshal(data, &w); err != nil {
		return stateErr(TypePNCounter, "", "%s", jsonErr(err))
	}
	p, err := decodeCounts(TypePNCounter, "increments", w.Increments)
	if err != nil {
		return err
	}
	n, err := decodeCounts(TypePNCounter, "decrements", w.Decrements)
	if err != nil {
		return err
	}
	c.p, c.n = p, n
	return nil
}

func (c *PNCounter) Clone() CRDT {
	return &PNCounter{p: maps.Clone(c.p), n: maps.Clone(c.n)}
}
