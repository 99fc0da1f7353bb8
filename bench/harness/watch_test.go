package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestWatchValue(t *testing.T) {
	v := MakeWatchValue(nil, 400, 123456)
	if len(v) != 400 || !json.Valid(v) {
		t.Fatalf("len %d valid %v: %s", len(v), json.Valid(v), v)
	}
	if n, ok := parseSeq(v); !ok || n != 123456 {
		t.Fatalf("parseSeq = %d, %v", n, ok)
	}
	// The server may re-encode the value with spaces.
	if n, ok := parseSeq([]byte(`{"old_value":null,"new_value":{"bench_seq": 42}}`)); !ok || n != 42 {
		t.Fatalf("parseSeq with a space = %d, %v", n, ok)
	}
	if _, ok := parseSeq([]byte(`{"x":1}`)); ok {
		t.Fatal("parseSeq found a seq in a foreign value")
	}
}

// watchSpec is a short phase: 400 writes/s for 300 ms after 50 ms warm-up.
func watchSpec(subs int) WatchSpec {
	return WatchSpec{Op: OpWatch, Subscribers: subs, Rate: 400, Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond,
		Drain: 2 * time.Second, Keys: WatchKeys(10), ValueSize: 200}
}

func TestAgentstateWatch(t *testing.T) {
	ctx := context.Background()
	s := newStandin()
	a := newTestTarget(t, s, 1)
	// A fake RSS: 10 MiB before, +4 KiB per open stream after.
	var rssCalls atomic.Int64
	probe := ServerProbe{RSS: func() (int64, bool) {
		if rssCalls.Add(1) == 1 {
			return 10 << 20, true
		}
		return 10<<20 + s.opens.Load()*4096, true
	}}
	res, err := RunWatch(ctx, a, watchSpec(4), probe)
	if err != nil {
		t.Fatal(err)
	}
	w := res.Watch
	if w.Writes < 60 || w.WriteErrors != 0 {
		t.Fatalf("writes %d, errors %d (want ~120 at 400/s for 300 ms)", w.Writes, w.WriteErrors)
	}
	// Every subscriber sees every measured write exactly once.
	if w.Delivered != 4*w.Writes || res.Ops != w.Delivered || int64(res.Samples()) != w.Delivered {
		t.Fatalf("delivered %d, writes %d, ops %d, samples %d", w.Delivered, w.Writes, res.Ops, res.Samples())
	}
	if w.Anomalies() != 0 || res.Errors != 0 || w.OfFailedWrites != 0 || w.DrainTimedOut {
		t.Fatalf("anomalies: %+v %v", w, res.ErrorSamples)
	}
	if w.Expected != 4*w.AllWrites || w.AllWrites <= w.Writes {
		t.Fatalf("expected %d, all writes %d, measured %d", w.Expected, w.AllWrites, w.Writes)
	}
	if res.Percentile(50) <= 0 || res.Percentile(99) < res.Percentile(50) || res.Percentile(99) > time.Second {
		t.Fatalf("p50 %v p99 %v", res.Percentile(50), res.Percentile(99))
	}
	if w.WriteP50 <= 0 || res.Throughput() <= 0 {
		t.Fatalf("write p50 %v, events/s %v", w.WriteP50, res.Throughput())
	}
	if got := s.opens.Load(); got != 4 {
		t.Fatalf("stand-in saw %d streams, want 4", got)
	}
	if got := w.RSSPerSubscriber(); got != 4096 {
		t.Fatalf("RSS per subscriber %v, want 4096 (before %d idle %d)", got, w.RSSBefore, w.RSSIdle)
	}
	checkNoBad(t, s)
}

func TestAgentstateWatchResumesAfterDisconnect(t *testing.T) {
	s := newStandin()
	s.dropAfter = 10
	a := newTestTarget(t, s, 1)
	res, err := RunWatch(context.Background(), a, watchSpec(2), ServerProbe{})
	if err != nil {
		t.Fatal(err)
	}
	w := res.Watch
	// The broken stream is counted, and the resume (from_revision) loses
	// and repeats nothing.
	if w.StreamErrors != 1 || w.Missed != 0 || w.Duplicates != 0 || w.OutOfOrder != 0 {
		t.Fatalf("%+v %v", w, res.ErrorSamples)
	}
	if s.opens.Load() != 3 {
		t.Fatalf("streams opened %d, want 3", s.opens.Load())
	}
	if res.Errors != 1 || len(res.ErrorSamples) != 1 {
		t.Fatalf("errors %d %v", res.Errors, res.ErrorSamples)
	}
	for k := range res.ErrorSamples {
		if !strings.Contains(k, "server closed the stream") {
			t.Fatalf("error sample %q", k)
		}
	}
}

func TestAgentstateWatchCountsDuplicates(t *testing.T) {
	s := newStandin()
	s.dupEvery = 7
	a := newTestTarget(t, s, 1)
	res, err := RunWatch(context.Background(), a, watchSpec(1), ServerProbe{})
	if err != nil {
		t.Fatal(err)
	}
	w := res.Watch
	if want := w.AllWrites / 7; w.Duplicates != want || w.Missed != 0 {
		t.Fatalf("duplicates %d, want %d; missed %d", w.Duplicates, want, w.Missed)
	}
	if res.Errors < w.Duplicates {
		t.Fatalf("errors %d < duplicates %d", res.Errors, w.Duplicates)
	}
}

func TestAgentstateWatchCountsMissed(t *testing.T) {
	s := newStandin()
	a := newTestTarget(t, s, 1)
	// Another agent's writes to the same keys are filtered out by the
	// server; the writer's own go to agent "bench". A target writing to an
	// agent nobody watches makes every write a miss.
	other := NewAgentstateTarget(AgentstateOptions{BaseURL: strings.TrimSuffix(a.root, "/"), AgentID: "other"})
	defer other.Close()
	w := &splitTarget{AgentstateTarget: a, writer: other}
	spec := watchSpec(2)
	spec.Drain = 100 * time.Millisecond
	res, err := RunWatch(context.Background(), w, spec, ServerProbe{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Watch.Missed != 2*res.Watch.AllWrites || !res.Watch.DrainTimedOut || res.Watch.Delivered != 0 {
		t.Fatalf("%+v", res.Watch)
	}
	var buf bytes.Buffer
	r := &Report{Results: []*Result{res}}
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "(drain timed out)") {
		t.Fatalf("report:\n%s", buf.String())
	}
}

// splitTarget watches with one target and writes with another.
type splitTarget struct {
	*AgentstateTarget
	writer *AgentstateTarget
}

func (s *splitTarget) Put(ctx context.Context, key string, value []byte) error {
	return s.writer.Put(ctx, key, value)
}

func TestAgentstateWatchSubscribeFails(t *testing.T) {
	// A server without /v1/events: the subscriptions fail and every write
	// is a miss, reported rather than hidden.
	a := NewAgentstateTarget(AgentstateOptions{BaseURL: "http://127.0.0.1:1"})
	defer a.Close()
	spec := watchSpec(2)
	spec.Duration = 20 * time.Millisecond
	spec.OpTimeout = 100 * time.Millisecond
	res, err := RunWatch(context.Background(), a, spec, ServerProbe{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Watch.SubscribeErrors != 2 || res.Errors == 0 {
		t.Fatalf("%+v", res.Watch)
	}
}

func TestWatchReport(t *testing.T) {
	ms := time.Millisecond
	mk := func(sys string, p50 time.Duration) *Result {
		return &Result{System: sys, Op: OpWatch, Clients: 64, Ops: 1000, Elapsed: time.Second, latencies: []time.Duration{p50, 2 * p50},
			ErrorSamples: map[string]int64{}, Watch: &WatchStats{Subscribers: 64, Rate: 200, Writes: 200, Delivered: 1000,
				RSSBefore: 10 << 20, RSSIdle: 10<<20 + 64*10240}}
	}
	r := &Report{Started: time.Unix(0, 0), Command: "go run ./cmd/sidebyside --ops watch", Results: []*Result{mk("etcd", 2*ms), mk("agentstate", ms)}}
	var buf bytes.Buffer
	if err := r.WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{"| watch | 64 | 1.00x | 0.50x | 0.50x |", "| agentstate | watch | 64 | 200 (target 200) |", "10.0 KiB", "--ops watch"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
