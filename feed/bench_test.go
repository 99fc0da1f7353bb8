package feed

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkFanout measures live fan-out of one write stream (one event per
// revision) to many subscribers, each drained by its own goroutine. The
// writer stays at most half a buffer ahead of the slowest subscriber, so
// the number is the hub's sustained throughput, not a burst into buffers.
// subs=0 is the fake store's own write cost (allocs included in the others).
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{0, 1, 100, 1000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) { benchFanout(b, n, false) })
	}
	b.Run("subs=1000/NextBatch", func(b *testing.B) { benchFanout(b, 1000, true) })
}

func benchFanout(b *testing.B, nsubs int, batch bool) {
	const buffer = 4096
	f := newFake()
	h := startHub(b, f, Options{BufferSize: buffer, PageSize: 256})
	counts := make([]atomic.Int64, nsubs)
	var wg sync.WaitGroup
	var failed atomic.Value
	for i := range nsubs {
		s := subscribe(b, h, SubscribeRequest{FromRevision: FromNow})
		wg.Go(func() {
			if batch {
				var buf []Delivery
				for n := 0; n < b.N; {
					var err error
					if buf, err = s.NextBatch(context.Background(), buf[:0]); err != nil {
						failed.Store(err)
						return
					}
					n += len(buf)
					counts[i].Store(int64(n))
				}
				return
			}
			for counts[i].Load() < int64(b.N) {
				if _, err := s.Next(context.Background()); err != nil {
					failed.Store(err)
					return
				}
				counts[i].Add(1)
			}
		})
	}
	ops := make([]fop, 64)
	for i := range ops {
		ops[i] = put("a1", "local", fmt.Sprintf("k%d", i), "v")
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		f.write(ops[i%len(ops)])
		if nsubs > 0 && i%256 == 255 {
			for {
				low := int64(i)
				for j := range counts {
					low = min(low, counts[j].Load())
				}
				if int64(i)-low < buffer/2 {
					break
				}
				time.Sleep(50 * time.Microsecond)
			}
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatalf("subscriber: %v", err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(b.N)*float64(nsubs)/elapsed.Seconds(), "deliveries/s")
}
