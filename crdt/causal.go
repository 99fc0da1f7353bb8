package crdt

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Dot names one op of one actor: the actor's Counter-th tagged op. A dot is
// unique as long as an actor id is used by one replica at a time (an agent
// and its replica), which is what makes "I have seen this dot and it is not
// here, so it was removed" sound. In JSON it is ["actor", counter].
type Dot struct {
	Actor   string
	Counter uint64
}

func (d Dot) compare(e Dot) int {
	if c := strings.Compare(d.Actor, e.Actor); c != 0 {
		return c
	}
	return cmp.Compare(d.Counter, e.Counter)
}

func (d Dot) String() string { return fmt.Sprintf("[%q,%d]", d.Actor, d.Counter) }

// MarshalJSON writes ["actor", counter].
func (d Dot) MarshalJSON() ([]byte, error) {
	return d.appendJSON(make([]byte, 0, len(d.Actor)+24)), nil
}

func (d Dot) appendJSON(b []byte) []byte {
	b = append(b, '[')
	b = appendJSONString(b, d.Actor)
	b = append(b, ',')
	b = strconv.AppendUint(b, d.Counter, 10)
	return append(b, ']')
}

// UnmarshalJSON reads ["actor", counter]. Range checks (a valid actor,
// counter ≥ 1) are the decoder's, which knows where the dot is.
func (d *Dot) UnmarshalJSON(b []byte) error {
	if fast, ok := parseDot(b); ok {
		*d = fast
		return nil
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(b, &parts); err != nil || len(parts) != 2 {
		return errors.New(`a dot must be ["actor", counter]`)
	}
	var actor string
	var counter uint64
	if isNull(parts[0]) || json.Unmarshal(parts[0], &actor) != nil {
		return errors.New("a dot's actor must be a string")
	}
	if isNull(parts[1]) || json.Unmarshal(parts[1], &counter) != nil {
		return errors.New("a dot's counter must be an integer ≥ 1")
	}
	*d = Dot{Actor: actor, Counter: counter}
	return nil
}

// parseDot reads the common spelling of a dot, ["actor",n] with no
// whitespace and no escapes, without encoding/json: a large set's state has
// one or more dots per element and decoding them dominated decoding it.
// Anything else is left to the general path.
func parseDot(b []byte) (Dot, bool) {
	if len(b) < 6 || b[0] != '[' || b[1] != '"' || b[len(b)-1] != ']' {
		return Dot{}, false
	}
	i := 2
	for i < len(b) && b[i] != '"' {
		if b[i] == '\\' || b[i] < 0x20 {
			return Dot{}, false
		}
		i++
	}
	actor := b[2:i]
	if i+2 >= len(b) || b[i+1] != ',' || !utf8.Valid(actor) {
		return Dot{}, false
	}
	digits := b[i+2 : len(b)-1]
	if len(digits) == 0 || len(digits) > 1 && digits[0] == '0' {
		return Dot{}, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return Dot{}, false
		}
	}
	n, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil {
		return Dot{}, false
	}
	return Dot{Actor: string(actor), Counter: n}, true
}

// checkDot says what is wrong with a decoded dot, or "".
func checkDot(d Dot) string {
	if r := validActor(d.Actor); r != "" {
		return "actor " + r
	}
	if d.Counter == 0 {
		return "counter must be ≥ 1"
	}
	return ""
}

// causalContext is the set of dots a replica has seen, compressed: vv[a] =
// n covers a's dots 1..n, and cloud holds the seen dots beyond them. The
// representation is normal — no zero vv entries, no cloud dot covered by vv
// or next to it (vv[a]+1) — so equal sets serialize equally. Replicas that
// exchange full states only ever have an empty cloud: an actor's dots reach
// them in order. Deltas can arrive out of order and leave gaps, which the
// cloud holds until they fill.
type causalContext struct {
	vv    map[string]uint64
	cloud map[Dot]struct{} // nil when empty
}

func newContext() causalContext { return causalContext{vv: map[string]uint64{}} }

func (c *causalContext) has(d Dot) bool {
	if d.Counter <= c.vv[d.Actor] {
		return true
	}
	_, ok := c.cloud[d]
	return ok
}

// next is the dot for actor's next op: past every dot of actor seen, cloud
// included, so it is new to this replica. ok is false when the counter is
// exhausted (only a hostile state gets there).
func (c *causalContext) next(actor string) (d Dot, ok bool) {
	n := c.vv[actor]
	for e := range c.cloud {
		if e.Actor == actor && e.Counter > n {
			n = e.Counter
		}
	}
	if n == math.MaxUint64 {
		return Dot{}, false
	}
	return Dot{Actor: actor, Counter: n + 1}, true
}

// insert adds d, keeping the representation normal.
func (c *causalContext) insert(d Dot) {
	v := c.vv[d.Actor]
	switch {
	case d.Counter <= v:
	case d.Counter == v+1:
		c.vv[d.Actor] = v + 1
		c.fold(d.Actor)
	default:
		if c.cloud == nil {
			c.cloud = map[Dot]struct{}{}
		}
		c.cloud[d] = struct{}{}
	}
}

// fold moves the cloud dots that continue actor's vv entry into it. Each
// moved dot leaves the cloud, so folding costs O(dots moved) overall.
func (c *causalContext) fold(actor string) {
	if len(c.cloud) == 0 {
		return
	}
	v := c.vv[actor]
	for {
		d := Dot{Actor: actor, Counter: v + 1}
		if _, ok := c.cloud[d]; !ok || d.Counter == 0 {
			break
		}
		delete(c.cloud, d)
		v++
	}
	c.vv[actor] = v
}

// join makes c the union of c and o.
func (c *causalContext) join(o *causalContext) {
	raised := false
	for a, n := range o.vv {
		if n > c.vv[a] {
			c.vv[a] = n
			raised = true
		}
	}
	if raised && len(c.cloud) > 0 {
		// Raised vv entries may now cover cloud dots, or reach up to them.
		for d := range c.cloud {
			v := c.vv[d.Actor]
			if d.Counter <= v {
				delete(c.cloud, d)
			} else if d.Counter == v+1 {
				c.fold(d.Actor)
			}
		}
		if len(c.cloud) == 0 {
			c.cloud = nil
		}
	}
	for d := range o.cloud {
		c.insert(d)
	}
}

func (c *causalContext) clone() causalContext {
	out := causalContext{vv: maps.Clone(c.vv)}
	if len(c.cloud) > 0 {
		out.cloud = maps.Clone(c.cloud)
	}
	return out
}

// sortedCloud is the cloud as a sorted slice, for the state's JSON.
func (c *causalContext) sortedCloud() []Dot {
	if len(c.cloud) == 0 {
		return nil
	}
	out := slices.Collect(maps.Keys(c.cloud))
	slices.SortFunc(out, Dot.compare)
	return out
}

// decodeContext validates a state's "vv" and "cloud" and normalizes them
// (zero entries dropped, redundant cloud dots folded).
func decodeContext(typ string, vv map[string]uint64, cloud []Dot) (causalContext, error) {
	c := newContext()
	for a, n := range vv {
		if r := validActor(a); r != "" {
			return c, stateErr(typ, "vv", "actor %q: %s", truncate([]byte(a)), r)
		}
		if n > 0 {
			c.vv[a] = n
		}
	}
	for i, d := range cloud {
		if r := checkDot(d); r != "" {
			return c, stateErr(typ, fmt.Sprintf("cloud[%d]", i), "%s", r)
		}
		c.insert(d)
	}
	return c, nil
}

// joinDots is the causal join of one element's dots: a dot both sides
// have stays; a dot one side has stays unless the other side has seen it
// (then the other side removed it). a and b are sorted and never modified;
// when the result is a, a itself is returned, so the common case of an
// unchanged element does not allocate.
func joinDots(a []Dot, actx *causalContext, b []Dot, bctx *causalContext) []Dot {
	if slices.Equal(a, b) {
		return a
	}
	var out []Dot
	changed := false
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var c int
		switch {
		case j == len(b):
			c = -1
		case i == len(a):
			c = 1
		default:
			c = a[i].compare(b[j])
		}
		switch {
		case c == 0:
			out = append(out, a[i])
			i++
			j++
		case c < 0:
			if !bctx.has(a[i]) {
				out = append(out, a[i])
			} else {
				changed = true
			}
			i++
		default:
			if !actx.has(b[j]) {
				out = append(out, b[j])
				changed = true
			}
			j++
		}
	}
	if !changed {
		return a
	}
	return out
}

// survivors is the part of dots, from a side that has an element the other
// side lacks, that the other side has not seen. It returns dots itself when
// nothing is dropped.
func survivors(dots []Dot, other *causalContext) []Dot {
	for i, d := range dots {
		if other.has(d) {
			out := slices.Clone(dots[:i])
			for _, e := range dots[i+1:] {
				if !other.has(e) {
					out = append(out, e)
				}
			}
			return out
		}
	}
	return dots
}
