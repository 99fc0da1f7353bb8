package server

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

var benchBody = []byte(fmt.Sprintf(`{"value":{"agent":"bench","step":42,"notes":%q,"tags":["a","b","c"]}}`, strings.Repeat("x", 300)))

// BenchmarkHTTPPut measures a PUT through the whole server (decode, engine,
// store, encode) over loopback HTTP, 64 concurrent clients.
func BenchmarkHTTPPut(b *testing.B) {
	e := newEnv(b)
	tr := &http.Transport{MaxIdleConnsPerHost: 128}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var n atomic.Int64
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/v1/agents/bench/state/persistent/k/%d", e.ts.URL, i%100000), bytes.NewReader(benchBody))
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 300 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}
