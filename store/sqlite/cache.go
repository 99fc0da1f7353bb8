package sqlite

import "github.com/agentstate/agentstate/store"

// rowCache holds current rows of agent_states for the writer, so that a
// write to a recently written key skips the SELECT of its current row
// (measured as about a third of the writer's time per request). It is
// coherent because the writer is the only one to change agent_states: rows
// staged by a request enter the cache only once its savepoint is released,
// and a failed transaction empties the cache. Only the writer goroutine uses
// it. Eviction is random (Go's map iteration order) once the byte budget is
// exceeded; hot keys are re-cached by their next write.
type rowCache struct {
	rows  map[store.Key]*curRow
	bytes int
	max   int // <= 0: disabled
}

type stagedRow struct {
	key store.Key
	row curRow
}

func newRowCache(maxBytes int) *rowCache {
	return &rowCache{rows: make(map[store.Key]*curRow), max: maxBytes}
}

func (c *rowCache) get(k store.Key) (*curRow, bool) {
	r, ok := c.rows[k]
	return r, ok
}

func (c *rowCache) put(k store.Key, r *curRow) {
	if c.max <= 0 {
		return
	}
	size := r.size(k)
	if size > c.max/16 {
		c.del(k)
		return
	}
	if old, ok := c.rows[k]; ok {
		c.bytes -= old.size(k)
	}
	c.rows[k] = r
	c.bytes += size
	if c.bytes > c.max {
		for ek, er := range c.rows {
			if c.bytes <= c.max*7/8 {
				break
			}
			if ek == k {
				continue
			}
			c.bytes -= er.size(ek)
			delete(c.rows, ek)
		}
	}
}

func (c *rowCache) del(k store.Key) {
	if old, ok := c.rows[k]; ok {
		c.bytes -= old.size(k)
		delete(c.rows, k)
	}
}

func (c *rowCache) reset() {
	clear(c.rows)
	c.bytes = 0
}

func (c *rowCache) len() int { return len(c.rows) }
