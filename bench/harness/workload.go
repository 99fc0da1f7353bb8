// Package harness runs the same key-value workload against agentstate and
// etcd and reports throughput and latency percentiles side by side.
//
// The workload is deliberately small and symmetric: durable single-key puts
// and strongly consistent (linearizable) single-key gets of fixed-size JSON
// values over a fixed key space, at a given number of concurrent clients.
package harness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one kind of operation in a phase.
type Op string

const (
	OpPut Op = "put"
	OpGet Op = "get"
)

// ParseOp accepts "put", "get", "watch" or "fanout".
func ParseOp(s string) (Op, error) {
	switch op := Op(strings.TrimSpace(s)); op {
	case OpPut, OpGet, OpWatch, OpFanout:
		return op, nil
	}
	return "", fmt.Errorf("harness: unknown op %q (want put, get, watch or fanout)", s)
}

// Target is one system under test as the workload sees it. Implementations
// must be safe for concurrent use by many goroutines.
type Target interface {
	// Name is the system's short name in reports ("etcd", "agentstate").
	Name() string
	// Put durably writes value (a JSON document) under key.
	Put(ctx context.Context, key string, value []byte) error
	// Get reads key with the system's strongest read consistency and
	// fails if the key is absent.
	Get(ctx context.Context, key string) error
	// Read returns the stored value of key; it is used to verify the
	// preload, not on the hot path.
	Read(ctx context.Context, key string) ([]byte, error)
	// PutBatch writes many keys at once (used by the preload only).
	// It returns ErrBatchUnsupported when the system has no batch write,
	// in which case the preload falls back to concurrent single puts.
	PutBatch(ctx context.Context, keys []string, values [][]byte) error
	Close() error
}

// ErrBatchUnsupported is returned by Target.PutBatch when the system cannot
// write a batch.
var ErrBatchUnsupported = errors.New("harness: batch write unsupported")

// Keys returns the n key names of the workload's key space.
func Keys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%07d", i)
	}
	return keys
}

// minValueSize is the size of MakeValue's JSON skeleton with an empty note.
var minValueSize = len(MakeValue(nil, 0, 0, 0))

// MakeValue appends to dst a JSON object of exactly size bytes (or the
// smallest possible, ~70 bytes, if size is smaller) whose content depends on
// worker and seq, so that consecutive writes of one key differ.
func MakeValue(dst []byte, size, worker int, seq uint64) []byte {
	start := len(dst)
	dst = fmt.Appendf(dst, `{"kind":"agent_memory","worker":"w%04d","seq":"%012d","note":"`, worker%10000, seq%1_000_000_000_000)
	pad := size - (len(dst) - start) - len(`"}`)
	for i := 0; i < pad; i++ {
		dst = append(dst, 'a'+byte((i+int(seq))%26))
	}
	return append(dst, `"}`...)
}

// PhaseSpec describes one measured phase.
type PhaseSpec struct {
	Op      Op
	Clients int
	// Duration of the measured window; ignored when Ops > 0.
	Duration time.Duration
	// Ops, when > 0, is the total number of operations (all clients
	// together) of the measured window.
	Ops int64
	// Warmup runs the same load, unmeasured, before the measured window.
	Warmup time.Duration
	// Keys is the key space; operations pick keys uniformly at random.
	Keys []string
	// ValueSize is the size in bytes of each JSON value written.
	ValueSize int
	// OpTimeout bounds each operation (0: 10 s).
	OpTimeout time.Duration
	// Seed makes key choice reproducible.
	Seed uint64
}

// Result is the outcome of one phase.
type Result struct {
	System  string
	Op      Op
	Clients int
	// Ops is the number of successful operations in the measured window.
	Ops int64
	// Errors is the number of failed operations in the measured window.
	Errors int64
	// ErrorSamples counts failures by message (at most maxErrorKinds kinds;
	// the rest are counted under "other").
	ErrorSamples map[string]int64
	Elapsed      time.Duration
	// latencies of successful operations, sorted ascending.
	latencies []time.Duration
	// ServerCPU is the CPU time the server process used during the
	// measured window, when known (0 otherwise).
	ServerCPU time.Duration
	// Watch holds the change-feed figures of a watch or fan-out phase
	// (nil for put and get). There, Ops is the number of (subscriber,
	// event) pairs delivered, the latencies are write start to event
	// read, and Errors counts write errors plus every missed, duplicated,
	// out-of-order or foreign event and every broken stream.
	Watch *WatchStats
}

// Throughput is successful operations per second.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

// Percentile returns the p-th percentile (0 < p <= 100) of the latencies of
// successful operations by the nearest-rank method, or 0 without samples.
func (r *Result) Percentile(p float64) time.Duration {
	return percentile(r.latencies, p)
}

// Samples is the number of recorded latencies.
func (r *Result) Samples() int { return len(r.latencies) }

// ServerCPUPerOp is the server's CPU time per operation (successful or not),
// or 0 when unknown.
func (r *Result) ServerCPUPerOp() time.Duration {
	n := r.Ops + r.Errors
	if r.Watch != nil {
		n = r.Ops // per delivered event
	}
	if r.ServerCPU <= 0 || n == 0 {
		return 0
	}
	return r.ServerCPU / time.Duration(n)
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// nearest rank: the smallest value with at least p% of values <= it.
	rank := int(float64(n)*p/100 + 0.999999999)
	rank = max(1, min(rank, n))
	return sorted[rank-1]
}

const maxErrorKinds = 8

type worker struct {
	id     int
	rng    *rand.Rand
	buf    []byte
	seq    uint64
	lat    []time.Duration
	ok     int64
	failed int64
	errs   map[string]int64
}

func (w *worker) recordErr(err error) {
	w.failed++
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	if _, ok := w.errs[msg]; !ok && len(w.errs) >= maxErrorKinds {
		msg = "other"
	}
	w.errs[msg]++
}

// RunPhase runs spec against t and returns its result. cpu, if not nil,
// reports the server's cumulative CPU time; it is sampled around the
// measured window.
func RunPhase(ctx context.Context, t Target, spec PhaseSpec, cpu func() (time.Duration, bool)) (*Result, error) {
	if spec.Clients < 1 {
		return nil, fmt.Errorf("harness: clients must be >= 1, got %d", spec.Clients)
	}
	if len(spec.Keys) == 0 {
		return nil, errors.New("harness: empty key space")
	}
	if spec.Ops <= 0 && spec.Duration <= 0 {
		return nil, errors.New("harness: phase needs a duration or an op count")
	}
	if spec.OpTimeout <= 0 {
		spec.OpTimeout = 10 * time.Second
	}
	workers := make([]*worker, spec.Clients)
	for i := range workers {
		workers[i] = &worker{
			id:   i,
			rng:  rand.New(rand.NewPCG(spec.Seed, uint64(i)+1)),
			errs: map[string]int64{},
		}
	}

	if spec.Warmup > 0 {
		deadline := time.Now().Add(spec.Warmup)
		runWorkers(ctx, t, spec, workers, func() bool { return time.Now().Before(deadline) }, false)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}

	var more func() bool
	var claimed atomic.Int64
	var deadline time.Time
	if spec.Ops > 0 {
		more = func() bool { return claimed.Add(1) <= spec.Ops }
	} else {
		more = func() bool { return time.Now().Before(deadline) }
	}
	cpu0, cpuOK := sampleCPU(cpu)
	start := time.Now()
	deadline = start.Add(spec.Duration)
	runWorkers(ctx, t, spec, workers, more, true)
	elapsed := time.Since(start)
	cpu1, cpuOK1 := sampleCPU(cpu)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	res := &Result{System: t.Name(), Op: spec.Op, Clients: spec.Clients, Elapsed: elapsed, ErrorSamples: map[string]int64{}}
	n := 0
	for _, w := range workers {
		n += len(w.lat)
	}
	res.latencies = make([]time.Duration, 0, n)
	for _, w := range workers {
		res.Ops += w.ok
		res.Errors += w.failed
		res.latencies = append(res.latencies, w.lat...)
		for k, v := range w.errs {
			res.ErrorSamples[k] += v
		}
	}
	slices.Sort(res.latencies)
	if cpuOK && cpuOK1 {
		res.ServerCPU = cpu1 - cpu0
	}
	return res, nil
}

func sampleCPU(cpu func() (time.Duration, bool)) (time.Duration, bool) {
	if cpu == nil {
		return 0, false
	}
	return cpu()
}

func runWorkers(ctx context.Context, t Target, spec PhaseSpec, workers []*worker, more func() bool, record bool) {
	var wg sync.WaitGroup
	for _, w := range workers {
		if record {
			w.lat = w.lat[:0]
			w.ok, w.failed = 0, 0
			clear(w.errs)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && more() {
				key := spec.Keys[w.rng.IntN(len(spec.Keys))]
				opCtx, cancel := context.WithTimeout(ctx, spec.OpTimeout)
				var err error
				var d time.Duration
				switch spec.Op {
				case OpPut:
					w.seq++
					w.buf = MakeValue(w.buf[:0], spec.ValueSize, w.id, w.seq)
					t0 := time.Now()
					err = t.Put(opCtx, key, w.buf)
					d = time.Since(t0)
				default:
					t0 := time.Now()
					err = t.Get(opCtx, key)
					d = time.Since(t0)
				}
				cancel()
				if !record {
					continue
				}
				if err != nil {
					if ctx.Err() != nil {
						return // interrupted, not a server error
					}
					w.recordErr(err)
					continue
				}
				w.ok++
				w.lat = append(w.lat, d)
			}
		}()
	}
	wg.Wait()
}

// PreloadSpec describes how to fill the key space before the get phases.
type PreloadSpec struct {
	Keys      []string
	ValueSize int
	// Batch is the number of keys per batch write (<= 1: single puts).
	Batch int
	// Clients is the number of concurrent writers.
	Clients int
	// OpTimeout bounds each write or batch (0: 30 s).
	OpTimeout time.Duration
}

// PreloadResult tells how the preload went.
type PreloadResult struct {
	Keys     int
	Elapsed  time.Duration
	Batched  bool // false if single puts were used
	Fallback string
}

// Preload writes every key once. It uses t.PutBatch when spec.Batch > 1 and
// the target supports it, else concurrent single puts. Any failure aborts.
func Preload(ctx context.Context, t Target, spec PreloadSpec) (*PreloadResult, error) {
	if spec.Clients < 1 {
		spec.Clients = 1
	}
	if spec.OpTimeout <= 0 {
		spec.OpTimeout = 30 * time.Second
	}
	start := time.Now()
	res := &PreloadResult{Keys: len(spec.Keys)}
	batch := max(spec.Batch, 1)
	if batch > 1 {
		// Probe with the first batch to learn whether batches work.
		n := min(batch, len(spec.Keys))
		err := putBatch(ctx, t, spec, spec.Keys[:n], 0)
		switch {
		case errors.Is(err, ErrBatchUnsupported):
			res.Fallback = err.Error()
			batch = 1
		case err != nil:
			return nil, fmt.Errorf("preload %s: %w", t.Name(), err)
		default:
			res.Batched = true
		}
	}

	var next atomic.Int64
	if res.Batched {
		next.Store(int64(min(batch, len(spec.Keys))))
	}
	errc := make(chan error, spec.Clients)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range spec.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for cctx.Err() == nil {
				lo := int(next.Add(int64(batch))) - batch
				if lo >= len(spec.Keys) {
					return
				}
				hi := min(lo+batch, len(spec.Keys))
				var err error
				if batch > 1 {
					err = putBatch(cctx, t, spec, spec.Keys[lo:hi], lo)
				} else {
					buf = MakeValue(buf[:0], spec.ValueSize, 0, uint64(lo))
					octx, ocancel := context.WithTimeout(cctx, spec.OpTimeout)
					err = t.Put(octx, spec.Keys[lo], buf)
					ocancel()
				}
				if err != nil {
					errc <- fmt.Errorf("preload %s key %s: %w", t.Name(), spec.Keys[lo], err)
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

func putBatch(ctx context.Context, t Target, spec PreloadSpec, keys []string, first int) error {
	values := make([][]byte, len(keys))
	for i := range keys {
		values[i] = MakeValue(nil, spec.ValueSize, 0, uint64(first+i))
	}
	octx, cancel := context.WithTimeout(ctx, spec.OpTimeout)
	defer cancel()
	return t.PutBatch(octx, keys, values)
}

// PreloadValue is the value Preload writes for the i-th key, so a caller can
// verify what was stored.
func PreloadValue(size, i int) []byte {
	return MakeValue(nil, size, 0, uint64(i))
}
