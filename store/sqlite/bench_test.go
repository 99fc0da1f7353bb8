package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentstate/agentstate/store"
)

// benchValue is a ~400 B JSON object, the size of a typical agent state value.
var benchValue = []byte(`{"role":"assistant","step":42,"tools":["search","calc"],"notes":"` +
	strings.Repeat("x", 300) + `","done":false}`)

func benchOpen(b *testing.B) *Store {
	b.Helper()
	s, err := Open(context.Background(), b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkWrite: 64 concurrent writers (on 2 cores: parallelism 32) each
// updating its own keys with unconditional puts of benchValue, durable
// (synchronous=FULL), history limited to 20 versions as in the local tier.
//
// The compact variant also compacts the change feed every 50ms down to the
// last 10,000 revisions, as a deployment that bounds its feed would: writes
// then also delete the rows no view needs any more (writer.cleanup, and
// compaction's cleanup between batches).
func BenchmarkWrite(b *testing.B) {
	for _, bc := range []struct {
		writers int
		compact bool
	}{{1, false}, {64, false}, {64, true}} {
		writers := bc.writers
		name := fmt.Sprintf("writers=%d", writers)
		if bc.compact {
			name += "/compact"
		}
		b.Run(name, func(b *testing.B) {
			s := benchOpen(b)
			if bc.compact {
				stop := make(chan struct{})
				done := make(chan struct{})
				go func() {
					defer close(done)
					t := time.NewTicker(50 * time.Millisecond)
					defer t.Stop()
					for {
						select {
						case <-stop:
							return
						case <-t.C:
							if rev := s.committed.Load() - 10000; rev > 0 {
								if err := s.CompactEvents(context.Background(), rev); err != nil {
									b.Error(err)
									return
								}
							}
						}
					}
				}()
				b.Cleanup(func() { close(stop); <-done })
			}
			var next atomic.Int64
			before := s.Stats()
			b.SetBytes(int64(len(benchValue)))
			b.SetParallelism(max(1, writers/max(1, runtimeProcs())))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				g := next.Add(1)
				i := 0
				for pb.Next() {
					i++
					op := store.WriteOp{Kind: store.OpPut, Value: benchValue, Checksum: "sha256:bench", CreatedBy: "bench",
						HistoryLimit: 20, Key: store.Key{AgentID: "agent-1", Tier: "local", Key: fmt.Sprintf("g%02d/k%04d", g, i%100)}}
					if _, err := s.Write(context.Background(), store.WriteRequest{Ops: []store.WriteOp{op}}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			st := s.Stats()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
			if n := st.Batches - before.Batches; n > 0 {
				b.ReportMetric(float64(st.Requests-before.Requests)/float64(n), "writes/txn")
			}
		})
	}
}

// BenchmarkGet: parallel random reads of 10,000 current entries.
func BenchmarkGet(b *testing.B) {
	s := benchOpen(b)
	const keys = 10000
	for start := 0; start < keys; start += 250 {
		ops := make([]store.WriteOp, 0, 250)
		for i := start; i < start+250; i++ {
			ops = append(ops, store.WriteOp{Kind: store.OpPut, Value: benchValue, Checksum: "sha256:bench",
				Key: store.Key{AgentID: "agent-1", Tier: "local", Key: fmt.Sprintf("k%05d", i)}})
		}
		if _, err := s.Write(context.Background(), store.WriteRequest{Ops: ops}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 1))
		for pb.Next() {
			k := store.Key{AgentID: "agent-1", Tier: "local", Key: fmt.Sprintf("k%05d", r.IntN(keys))}
			if _, err := s.Get(context.Background(), store.GetRequest{Key: k}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
