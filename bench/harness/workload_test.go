package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

func TestMakeValue(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		want int
	}{
		// The benchmark's size: exact.
		{"400 bytes", 400, 400},
		// Larger values are exact too.
		{"4 KiB", 4096, 4096},
		// Smaller than the skeleton: the skeleton.
		{"too small", 10, minValueSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := MakeValue(nil, tc.size, 7, 12345)
			if len(v) != tc.want {
				t.Fatalf("len = %d, want %d: %s", len(v), tc.want, v)
			}
			if !json.Valid(v) {
				t.Fatalf("not JSON: %s", v)
			}
			if w := MakeValue(nil, tc.size, 7, 12346); bytes.Equal(v, w) {
				t.Fatal("consecutive seqs give the same value")
			}
		})
	}
	// Appends, does not clobber.
	if got := MakeValue([]byte("x"), 400, 0, 0); len(got) != 401 || got[0] != 'x' {
		t.Fatalf("append: %q", got[:10])
	}
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		// No samples: zero.
		{"empty", nil, 50, 0},
		// One sample is every percentile.
		{"one p50", ms(5), 50, 5 * time.Millisecond},
		{"one p99", ms(5), 99, 5 * time.Millisecond},
		// Nearest rank on 1..100 ms.
		{"p50 of 100", hundred, 50, 50 * time.Millisecond},
		{"p99 of 100", hundred, 99, 99 * time.Millisecond},
		{"p100 of 100", hundred, 100, 100 * time.Millisecond},
		// p99 of 10 samples is the largest.
		{"p99 of 10", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"p50 of 10", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 50, 5 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Fatalf("percentile(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func newTestTarget(t testing.TB, s *standin, clients int) *AgentstateTarget {
	t.Helper()
	srv := httptest.NewServer(s.handler())
	t.Cleanup(srv.Close)
	a := NewAgentstateTarget(AgentstateOptions{BaseURL: srv.URL, MaxConns: clients})
	t.Cleanup(func() { a.Close() })
	return a
}

func checkNoBad(t *testing.T, s *standin) {
	t.Helper()
	if n := s.bad.Load(); n > 0 {
		t.Fatalf("stand-in saw %d malformed requests, last: %s", n, *s.badWhy.Load())
	}
}

func TestAgentstateWorkload(t *testing.T) {
	for _, tc := range []struct {
		name    string
		noBatch bool
	}{
		// The server has batch/write: the preload uses it.
		{"batched preload", false},
		// No batch/write: the preload falls back to single PUTs.
		{"single-put preload", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := newStandin()
			s.noBatch = tc.noBatch
			a := newTestTarget(t, s, 8)
			keys := Keys(1000)

			pre, err := Preload(ctx, a, PreloadSpec{Keys: keys, ValueSize: 400, Batch: 64, Clients: 4})
			if err != nil {
				t.Fatal(err)
			}
			if pre.Batched == tc.noBatch {
				t.Fatalf("Batched = %v with noBatch = %v (fallback %q)", pre.Batched, tc.noBatch, pre.Fallback)
			}
			if s.count() != len(keys) {
				t.Fatalf("stand-in holds %d keys, want %d", s.count(), len(keys))
			}
			for _, i := range []int{0, 500, 999} {
				got, err := a.Read(ctx, keys[i])
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, PreloadValue(400, i)) {
					t.Fatalf("key %d: read %s", i, got)
				}
			}

			// Put phase by op count: exactly that many PUTs are measured.
			puts0 := s.puts.Load()
			res, err := RunPhase(ctx, a, PhaseSpec{Op: OpPut, Clients: 4, Ops: 500, Keys: keys, ValueSize: 400, Warmup: 20 * time.Millisecond}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Ops != 500 || res.Errors != 0 || res.Samples() != 500 {
				t.Fatalf("put: ops %d errors %d samples %d: %v", res.Ops, res.Errors, res.Samples(), res.ErrorSamples)
			}
			if got := s.puts.Load() - puts0; got < 500 {
				t.Fatalf("stand-in saw %d PUTs, want >= 500", got)
			}
			sizes := 0
			s.sizes.Range(func(k, _ any) bool {
				sizes++
				if k.(int) != 400 {
					t.Errorf("value of %d bytes written", k.(int))
				}
				return true
			})
			if sizes == 0 {
				t.Fatal("no value sizes recorded")
			}
			if res.Percentile(50) <= 0 || res.Percentile(99) < res.Percentile(50) || res.Throughput() <= 0 {
				t.Fatalf("put: p50 %v p99 %v tput %v", res.Percentile(50), res.Percentile(99), res.Throughput())
			}
			if res.System != "agentstate" || res.Op != OpPut || res.Clients != 4 {
				t.Fatalf("labels: %+v", res)
			}

			// Get phase by duration.
			gets0 := s.gets.Load()
			res, err = RunPhase(ctx, a, PhaseSpec{Op: OpGet, Clients: 8, Duration: 200 * time.Millisecond, Keys: keys, ValueSize: 400}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Ops == 0 || res.Errors != 0 {
				t.Fatalf("get: ops %d errors %d: %v", res.Ops, res.Errors, res.ErrorSamples)
			}
			if res.Elapsed < 200*time.Millisecond || res.Elapsed > 2*time.Second {
				t.Fatalf("get: elapsed %v", res.Elapsed)
			}
			if got := s.gets.Load() - gets0; got < res.Ops {
				t.Fatalf("stand-in saw %d GETs, harness counted %d", got, res.Ops)
			}
			checkNoBad(t, s)
		})
	}
}

func TestErrorsAreCountedNotTimed(t *testing.T) {
	ctx := context.Background()
	s := newStandin()
	s.failEvery = 3
	a := newTestTarget(t, s, 2)
	res, err := RunPhase(ctx, a, PhaseSpec{Op: OpPut, Clients: 2, Ops: 300, Keys: Keys(10), ValueSize: 400}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops+res.Errors != 300 || res.Errors != 100 || res.Samples() != int(res.Ops) {
		t.Fatalf("ops %d errors %d samples %d", res.Ops, res.Errors, res.Samples())
	}
	if len(res.ErrorSamples) != 1 {
		t.Fatalf("error kinds: %v", res.ErrorSamples)
	}
	for k, v := range res.ErrorSamples {
		if !strings.Contains(k, "HTTP 503") || !strings.Contains(k, "unavailable") || v != 100 {
			t.Fatalf("error sample %q × %d", k, v)
		}
	}
	// A get of a missing key is an error, not a success.
	res, err = RunPhase(ctx, a, PhaseSpec{Op: OpGet, Clients: 1, Ops: 5, Keys: []string{"absent"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 5 || res.Ops != 0 {
		t.Fatalf("missing key: ops %d errors %d", res.Ops, res.Errors)
	}
}

func TestRunPhaseRejectsBadSpecs(t *testing.T) {
	a := newTestTarget(t, newStandin(), 1)
	for _, tc := range []struct {
		name string
		spec PhaseSpec
	}{
		// No clients.
		{"zero clients", PhaseSpec{Op: OpGet, Clients: 0, Ops: 1, Keys: Keys(1)}},
		// No keys.
		{"no keys", PhaseSpec{Op: OpGet, Clients: 1, Ops: 1}},
		// Neither a duration nor an op count.
		{"unbounded", PhaseSpec{Op: OpGet, Clients: 1, Keys: Keys(1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := RunPhase(context.Background(), a, tc.spec, nil); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestPreloadFailureAborts(t *testing.T) {
	s := newStandin()
	s.noBatch = true
	s.failEvery = 50
	a := newTestTarget(t, s, 4)
	_, err := Preload(context.Background(), a, PreloadSpec{Keys: Keys(500), ValueSize: 400, Batch: 100, Clients: 4})
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != 503 {
		t.Fatalf("err = %v, want an HTTP 503", err)
	}
}

func TestStartAgentstateProcess(t *testing.T) {
	// The test binary acts as the server (see TestMain).
	t.Setenv("BENCH_STANDIN_SERVE", "1")
	ctx := context.Background()
	srv, err := StartAgentstate(ctx, os.Args[0], t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := NewAgentstateTarget(AgentstateOptions{BaseURL: srv.BaseURL, MaxConns: 2})
	defer a.Close()
	res, err := RunPhase(ctx, a, PhaseSpec{Op: OpPut, Clients: 2, Ops: 50, Keys: Keys(5), ValueSize: 400}, srv.CPUTime)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops != 50 || res.Errors != 0 {
		t.Fatalf("ops %d errors %d %v", res.Ops, res.Errors, res.ErrorSamples)
	}
	if _, ok := srv.CPUTime(); !ok {
		t.Fatal("no CPU time from /proc")
	}
	if _, ok := srv.PeakRSS(); !ok {
		t.Fatal("no peak RSS from /proc")
	}
	if err := srv.Stop(5 * time.Second); err != nil {
		t.Fatalf("stop: %v\n%s", err, srv.LogTail(10))
	}
}

func TestStartAgentstateReportsEarlyExit(t *testing.T) {
	// `false` exits at once: the harness must say so, not wait a minute.
	t0 := time.Now()
	_, err := StartAgentstate(context.Background(), "/bin/false", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "exited before becoming healthy") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(t0) > 10*time.Second {
		t.Fatal("took too long to notice")
	}
}

func TestReport(t *testing.T) {
	mk := func(sys string, op Op, c int, ops int64, lat ...time.Duration) *Result {
		return &Result{System: sys, Op: op, Clients: c, Ops: ops, Elapsed: time.Second, latencies: lat, ErrorSamples: map[string]int64{}}
	}
	ms := time.Millisecond
	e := mk("etcd", OpPut, 1, 1000, ms, 2*ms)
	a := mk("agentstate", OpPut, 1, 2000, ms/2, ms)
	a.Errors = 3
	a.ErrorSamples["put: HTTP 500: boom"] = 3
	r := &Report{Started: time.Unix(0, 0), Command: "go run ./cmd/sidebyside", Workload: []string{"w"}, Results: []*Result{e, a}}
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"2.00x", "0.50x", "HTTP 500: boom", "1000", "2000", "0.500 ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	buf.Reset()
	if err := r.WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{"| system | op | clients |", "| agentstate | put | 1 | 2000 |", "| put | 1 | 2.00x | 0.50x | 0.50x |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
