package storetest

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agentstate/agentstate/store"
)

// Benchmark sizes, for a 2-core machine.
const (
	benchKeys       = 1000 // keys written before read benchmarks
	benchWriters    = 64   // goroutines of the parallel put benchmark
	benchHistory    = 20   // HistoryLimit of benchmark writes (the local tier's default)
	benchListPage   = 100
	benchValueCount = 64 // distinct values cycled through
)

// benchValues are ~400-byte compact JSON objects with their checksums.
var benchValues = func() []store.WriteOp {
	ops := make([]store.WriteOp, benchValueCount)
	for i := range ops {
		v := fmt.Sprintf(`{"id":"%08d","kind":"note","tags":["agent","memory","bench"],"score":%d.5,"text":"%s"}`,
			i, i, strings.Repeat("lorem ipsum ", 27))
		ops[i] = store.WriteOp{Kind: store.OpPut, Value: []byte(v), Checksum: checksum(v), CreatedBy: "bench", HistoryLimit: benchHistory}
	}
	return ops
}()

func benchPut(k store.Key, i int) store.WriteOp {
	op := benchValues[i%benchValueCount]
	op.Key = k
	return op
}

func benchKey(i int) store.Key { return key(fmt.Sprintf("bench/%05d", i%benchKeys)) }

// fill writes benchKeys keys in batches of 100.
func fill(b *testing.B, s store.Store) {
	b.Helper()
	for start := 0; start < benchKeys; start += 100 {
		ops := make([]store.WriteOp, 0, 100)
		for i := start; i < start+100 && i < benchKeys; i++ {
			ops = append(ops, benchPut(benchKey(i), i))
		}
		if _, err := s.Write(b.Context(), store.WriteRequest{Ops: ops}); err != nil {
			b.Fatalf("fill: %v", err)
		}
	}
}

// RunBenchmarks runs the benchmarks every store shares: sequential puts,
// puts from 64 goroutines, gets and list pages, with ~400-byte JSON values.
// newStore is as for Run (a fresh store, cleaned up by itself).
func RunBenchmarks(b *testing.B, newStore func(b testing.TB) store.Store) {
	b.Run("PutSequential", func(b *testing.B) {
		s := newStore(b)
		b.SetBytes(int64(len(benchValues[0].Value)))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := s.Write(b.Context(), store.WriteRequest{Ops: []store.WriteOp{benchPut(benchKey(i), i)}}); err != nil {
				b.Fatalf("put: %v", err)
			}
			i++
		}
	})

	b.Run(fmt.Sprintf("PutParallel%d", benchWriters), func(b *testing.B) {
		s := newStore(b)
		b.SetBytes(int64(len(benchValues[0].Value)))
		b.ReportAllocs()
		var (
			next     atomic.Int64
			wg       sync.WaitGroup
			firstErr atomic.Pointer[error]
		)
		b.ResetTimer()
		for w := range benchWriters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= b.N || firstErr.Load() != nil {
						return
					}
					// Each writer has its own keys: no conflicts, only contention.
					k := key(fmt.Sprintf("bench/w%02d/%03d", w, i%100))
					if _, err := s.Write(b.Context(), store.WriteRequest{Ops: []store.WriteOp{benchPut(k, i)}}); err != nil {
						firstErr.CompareAndSwap(nil, &err)
						return
					}
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		if err := firstErr.Load(); err != nil {
			b.Fatalf("put: %v", *err)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	})

	b.Run("Get", func(b *testing.B) {
		s := newStore(b)
		fill(b, s)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := s.Get(b.Context(), store.GetRequest{Key: benchKey(i * 7)}); err != nil {
				b.Fatalf("get: %v", err)
			}
			i++
		}
	})

	b.Run(fmt.Sprintf("List%d", benchListPage), func(b *testing.B) {
		s := newStore(b)
		fill(b, s)
		b.ReportAllocs()
		after := ""
		for b.Loop() {
			res, err := s.List(b.Context(), store.ListRequest{AgentID: agent, Tier: tier, Prefix: "bench/", After: after, Limit: benchListPage})
			if err != nil {
				b.Fatalf("list: %v", err)
			}
			if res.More {
				after = res.Entries[len(res.Entries)-1].Key.Key
			} else {
				after = ""
			}
		}
	})
}
