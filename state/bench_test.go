package state_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agentstate/agentstate/state"
)

// value400 is a ~400-byte JSON object, the benchmark workload's size.
var value400 = json.RawMessage(fmt.Sprintf(`{"agent":"bench","step":42,"notes":%q,"tags":["a","b","c"],"score":0.75}`, strings.Repeat("x", 300)))

// BenchmarkPut measures the engine's durable write path (validation,
// checksum, group-committed SQLite) at 64 concurrent writers.
func BenchmarkPut(b *testing.B) {
	m := newManager(b, state.Options{})
	var n atomic.Int64
	b.SetParallelism(32) // × GOMAXPROCS (2) = 64 writers
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			_, err := m.Put(bg, state.PutRequest{AgentID: "bench", Tier: "persistent", Key: fmt.Sprintf("k/%d", i%100000), Value: value400})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGet measures a strong read of a current value.
func BenchmarkGet(b *testing.B) {
	m := newManager(b, state.Options{})
	for i := 0; i < 1000; i++ {
		put(b, m, "persistent", fmt.Sprintf("k/%d", i), string(value400))
	}
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if _, err := m.Get(bg, state.GetRequest{AgentID: "a1", Tier: "persistent", Key: fmt.Sprintf("k/%d", i%1000)}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
