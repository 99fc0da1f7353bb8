package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The change-feed workload: N subscribers each hold one subscription to the
// bench's watch keys while one writer puts values at a fixed rate; every
// (subscriber, event) pair is timed from the start of the write to the
// moment the subscriber has read the event, and every subscriber must see
// every write exactly once, in order.

const (
	// OpWatch measures write-to-subscriber latency with few subscribers.
	OpWatch Op = "watch"
	// OpFanout measures one write stream fanned out to many subscribers
	// (throughput and the server's memory per subscriber).
	OpFanout Op = "fanout"
)

// WatchKeyPrefix is the prefix of the keys the watch writer writes; the
// preloaded key space ("key-…") does not overlap it.
const WatchKeyPrefix = "watch-"

// WatchKeys returns the n keys the watch writer cycles over.
func WatchKeys(n int) []string {
	keys := make([]string, max(n, 1))
	for i := range keys {
		keys[i] = fmt.Sprintf("%s%04d", WatchKeyPrefix, i)
	}
	return keys
}

// Change is one change event as a subscriber sees it.
type Change struct {
	Key      string
	Seq      int64     // the writer's sequence number, from the value (0: not a bench value)
	Revision int64     // the system's revision of the change
	At       time.Time // when the subscriber had read it
}

// Subscription is one subscriber's stream of changes.
type Subscription interface {
	// Next returns the next changes, waiting for them. An error ends the
	// current stream (a disconnect, an error message from the server);
	// calling Next again resumes after the last change returned, as a
	// client of the system would (agentstate: from_revision; etcd: a new
	// watch from the next revision). Next returns ctx.Err() once the
	// context given to Watch is done.
	Next() ([]Change, error)
	Close() error
}

// WatchTarget is a Target with a change feed.
type WatchTarget interface {
	Target
	// Watch subscribes to changes of the keys that start with
	// WatchKeyPrefix and returns once the subscription is live (every
	// write started after that is delivered).
	Watch(ctx context.Context) (Subscription, error)
}

// bench values of the watch workload start with the writer's sequence
// number: {"bench_seq":N,…}.
var seqField = []byte(`"bench_seq":`)

// MakeWatchValue appends to dst a JSON object of about size bytes that
// carries seq.
func MakeWatchValue(dst []byte, size int, seq int64) []byte {
	start := len(dst)
	dst = fmt.Appendf(dst, `{"bench_seq":%d,"kind":"agent_memory","note":"`, seq)
	pad := size - (len(dst) - start) - len(`"}`)
	for i := 0; i < pad; i++ {
		dst = append(dst, 'a'+byte((i+int(seq))%26))
	}
	return append(dst, `"}`...)
}

// parseSeq finds "bench_seq": in b and returns the integer after it.
func parseSeq(b []byte) (int64, bool) {
	i := bytes.Index(b, seqField)
	if i < 0 {
		return 0, false
	}
	b = b[i+len(seqField):]
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	j := 0
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	n, err := strconv.ParseInt(string(b[:j]), 10, 64)
	return n, err == nil && j > 0
}

// WatchSpec describes one watch or fan-out phase.
type WatchSpec struct {
	Op          Op // OpWatch or OpFanout (only a label)
	Subscribers int
	// Rate is the writer's target writes per second.
	Rate float64
	// Warmup: writes during the first Warmup are delivered and checked
	// but not timed.
	Warmup time.Duration
	// Duration of the measured window of writes.
	Duration time.Duration
	// Drain bounds the wait, after the last write, for its events (0: 5 s).
	Drain time.Duration
	// Keys the writer cycles over (default WatchKeys(100)).
	Keys      []string
	ValueSize int
	// OpTimeout bounds each write (0: 10 s).
	OpTimeout time.Duration
	// SubscribeParallel is how many subscriptions are opened at once
	// (default 32).
	SubscribeParallel int
	// IdleSettle is the pause between the last subscription and the
	// idle-memory sample (default 1 s when RSS is sampled).
	IdleSettle time.Duration
}

// ServerProbe reads the server process's counters; nil funcs are unknown.
type ServerProbe struct {
	CPU func() (time.Duration, bool)
	RSS func() (int64, bool)
}

// WatchStats is the change-feed part of a Result.
type WatchStats struct {
	Subscribers int
	Rate        float64 // target writes/s
	// Writes in the measured window: successful and failed.
	Writes, WriteErrors int64
	// AllWrites counts every write, warm-up included.
	AllWrites int64
	// WriteLatency p50/p99 of the writer's puts in the measured window.
	WriteP50, WriteP99 time.Duration
	// Delivered is the number of (subscriber, event) pairs of measured
	// writes received.
	Delivered int64
	// Expected is subscribers × successful writes (warm-up included).
	Expected int64
	// Missed: successful writes a subscriber never saw (warm-up included).
	Missed int64
	// Duplicates: events a subscriber saw again.
	Duplicates int64
	// OutOfOrder: events older than one the subscriber had already seen.
	OutOfOrder int64
	// Foreign: events that carry no bench sequence number or an unknown one.
	Foreign int64
	// OfFailedWrites: events of writes that answered an error.
	OfFailedWrites int64
	// StreamErrors: streams that ended before the phase did (each is
	// followed by a resume).
	StreamErrors int64
	// SubscribeTime is the time to open every subscription.
	SubscribeTime time.Duration
	// SubscribeErrors: subscriptions that could not be opened.
	SubscribeErrors int64
	// Server RSS before subscribing, with every subscriber idle, and after
	// the phase (0: unknown).
	RSSBefore, RSSIdle, RSSAfter int64
	// HarnessCPU is the harness process's own CPU time (writer and
	// subscribers) during the measured window, when known.
	HarnessCPU time.Duration
	// DrainTimedOut: some subscriber had not received the last write when
	// the drain timed out.
	DrainTimedOut bool
}

// RSSPerSubscriber is (idle RSS − RSS before) / subscribers, or 0.
func (w *WatchStats) RSSPerSubscriber() float64 {
	if w.RSSBefore <= 0 || w.RSSIdle <= 0 || w.Subscribers == 0 {
		return 0
	}
	return float64(w.RSSIdle-w.RSSBefore) / float64(w.Subscribers)
}

// Anomalies is the count of everything that breaks "each subscriber sees
// each write exactly once, in order".
func (w *WatchStats) Anomalies() int64 {
	return w.Missed + w.Duplicates + w.OutOfOrder + w.Foreign + w.StreamErrors + w.SubscribeErrors
}

const (
	wsNone int32 = iota
	wsStarted
	wsOK
	wsFailed
)

type subscriber struct {
	seen   []uint8 // per seq: times seen
	maxSeq atomic.Int64
	lat    []time.Duration
	dup    int64
	ooo    int64
	foreig int64
	failed int64
	deliv  int64
	errs   int64
	errMsg map[string]int64
}

// RunWatch runs one watch/fan-out phase: it opens spec.Subscribers
// subscriptions, writes at spec.Rate for spec.Warmup + spec.Duration, waits
// up to spec.Drain for the last events, then checks what every subscriber
// saw.
func RunWatch(ctx context.Context, t WatchTarget, spec WatchSpec, probe ServerProbe) (*Result, error) {
	if spec.Subscribers < 1 {
		return nil, fmt.Errorf("harness: subscribers must be >= 1, got %d", spec.Subscribers)
	}
	if spec.Rate <= 0 || spec.Duration <= 0 {
		return nil, errors.New("harness: watch phase needs a rate and a duration")
	}
	if spec.Op == "" {
		spec.Op = OpWatch
	}
	if len(spec.Keys) == 0 {
		spec.Keys = WatchKeys(100)
	}
	if spec.OpTimeout <= 0 {
		spec.OpTimeout = 10 * time.Second
	}
	if spec.Drain <= 0 {
		spec.Drain = 5 * time.Second
	}
	if spec.SubscribeParallel <= 0 {
		spec.SubscribeParallel = 32
	}
	if spec.IdleSettle <= 0 {
		spec.IdleSettle = time.Second
	}
	interval := time.Duration(float64(time.Second) / spec.Rate)
	capacity := int((spec.Warmup+spec.Duration)/max(interval, 1)) + 2

	ws := &WatchStats{Subscribers: spec.Subscribers, Rate: spec.Rate}
	res := &Result{System: t.Name(), Op: spec.Op, Clients: spec.Subscribers, ErrorSamples: map[string]int64{}, Watch: ws}
	errSample := func(m map[string]int64, msg string) {
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		if _, ok := m[msg]; !ok && len(m) >= maxErrorKinds {
			msg = "other"
		}
		m[msg]++
	}

	ws.RSSBefore = sampleRSS(probe.RSS)

	// Open the subscriptions.
	sctx, cancelSubs := context.WithCancel(ctx)
	defer cancelSubs()
	subs := make([]Subscription, spec.Subscribers)
	var subErrMu sync.Mutex
	subErrs := map[string]int64{}
	t0 := time.Now()
	sem := make(chan struct{}, spec.SubscribeParallel)
	var wg sync.WaitGroup
	for i := range subs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s, err := t.Watch(sctx)
			if err != nil {
				subErrMu.Lock()
				errSample(subErrs, "subscribe: "+err.Error())
				subErrMu.Unlock()
				return
			}
			subs[i] = s
		}()
	}
	wg.Wait()
	ws.SubscribeTime = time.Since(t0)
	// closeAll is called once no goroutine reads the subscriptions.
	closeAll := func() {
		cancelSubs()
		for _, s := range subs {
			if s != nil {
				s.Close()
			}
		}
	}
	if err := ctx.Err(); err != nil {
		closeAll()
		return nil, err
	}
	for k, v := range subErrs {
		ws.SubscribeErrors += v
		res.ErrorSamples[k] += v
	}
	if ws.RSSBefore > 0 {
		select {
		case <-time.After(spec.IdleSettle):
		case <-ctx.Done():
		}
		ws.RSSIdle = sampleRSS(probe.RSS)
	}

	// Writer bookkeeping shared with the subscribers: per seq, when the
	// write started (ns since base) and how it went.
	base := time.Now()
	starts := make([]atomic.Int64, capacity+1)
	status := make([]atomic.Int32, capacity+1)
	var measuredFrom atomic.Int64 // first timed seq; 0 until the window opens
	measuredFrom.Store(int64(capacity + 1))

	// Subscribers.
	ss := make([]*subscriber, len(subs))
	var swg sync.WaitGroup
	for i, s := range subs {
		st := &subscriber{seen: make([]uint8, capacity+1), errMsg: map[string]int64{}}
		ss[i] = st
		if s == nil {
			continue
		}
		swg.Add(1)
		go func() {
			defer swg.Done()
			var last int64
			for {
				batch, err := s.Next()
				for _, c := range batch {
					seq := c.Seq
					if seq <= 0 || seq > int64(capacity) || status[seq].Load() == wsNone {
						st.foreig++
						continue
					}
					if st.seen[seq] > 0 {
						st.dup++
						st.seen[seq]++
						continue
					}
					st.seen[seq] = 1
					if seq < last {
						st.ooo++
					}
					last = max(last, seq)
					if status[seq].Load() == wsFailed {
						st.failed++
					}
					if seq >= measuredFrom.Load() {
						st.deliv++
						st.lat = append(st.lat, c.At.Sub(base)-time.Duration(starts[seq].Load()))
					}
					st.maxSeq.Store(max(st.maxSeq.Load(), seq))
				}
				if err != nil {
					if sctx.Err() != nil {
						return
					}
					st.errs++
					errSample(st.errMsg, "stream: "+err.Error())
					select { // do not spin on a server that refuses at once
					case <-time.After(50 * time.Millisecond):
					case <-sctx.Done():
						return
					}
				}
			}
		}()
	}

	// The writer.
	var buf []byte
	var writeLat []time.Duration
	var lastOK, written int64
	var measStart, measEnd time.Time
	var cpu0, self0 time.Duration
	var cpuOK, selfOK bool
	werrs := map[string]int64{}
	start := time.Now()
	warmEnd := start.Add(spec.Warmup)
	end := warmEnd.Add(spec.Duration)
	for i := 0; i < capacity; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		now := time.Now()
		if !now.Before(end) {
			break
		}
		seq := int64(i + 1)
		timed := !now.Before(warmEnd)
		if timed && measStart.IsZero() {
			measStart = now
			measuredFrom.Store(seq)
			cpu0, cpuOK = sampleCPU(probe.CPU)
			self0, selfOK = procCPUTime(os.Getpid())
		}
		buf = MakeWatchValue(buf[:0], spec.ValueSize, seq)
		key := spec.Keys[i%len(spec.Keys)]
		octx, cancel := context.WithTimeout(ctx, spec.OpTimeout)
		status[seq].Store(wsStarted)
		w0 := time.Now()
		starts[seq].Store(int64(w0.Sub(base)))
		err := t.Put(octx, key, buf)
		wd := time.Since(w0)
		cancel()
		written = seq
		if err != nil {
			status[seq].Store(wsFailed)
			if ctx.Err() != nil {
				break
			}
			if timed {
				ws.WriteErrors++
				errSample(werrs, "write: "+err.Error())
			}
			continue
		}
		status[seq].Store(wsOK)
		lastOK = seq
		if timed {
			ws.Writes++
			writeLat = append(writeLat, wd)
		}
	}
	measEnd = time.Now()
	cpu1, cpuOK1 := sampleCPU(probe.CPU)
	if self1, ok := procCPUTime(os.Getpid()); ok && selfOK {
		ws.HarnessCPU = self1 - self0
	}
	if measStart.IsZero() {
		measStart = measEnd
	}
	ws.AllWrites = written
	res.Elapsed = measEnd.Sub(measStart)
	if cpuOK && cpuOK1 {
		res.ServerCPU = cpu1 - cpu0
	}

	// Drain: wait until every live subscriber has the last successful
	// write, or the drain timeout.
	deadline := time.Now().Add(spec.Drain)
	for ctx.Err() == nil {
		done := true
		for i, st := range ss {
			if subs[i] != nil && st.maxSeq.Load() < lastOK {
				done = false
				break
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			ws.DrainTimedOut = true
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancelSubs() // ends every Next
	swg.Wait()
	closeAll()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ws.RSSAfter = sampleRSS(probe.RSS)

	// Check and merge.
	var okWrites int64
	for seq := int64(1); seq <= written; seq++ {
		if status[seq].Load() == wsOK {
			okWrites++
		}
	}
	ws.Expected = okWrites * int64(len(subs))
	n := 0
	for _, st := range ss {
		n += len(st.lat)
	}
	res.latencies = make([]time.Duration, 0, n)
	for i, st := range ss {
		if subs[i] == nil {
			ws.Missed += okWrites
			continue
		}
		for seq := int64(1); seq <= written; seq++ {
			if status[seq].Load() == wsOK && st.seen[seq] == 0 {
				ws.Missed++
			}
		}
		ws.Duplicates += st.dup
		ws.OutOfOrder += st.ooo
		ws.Foreign += st.foreig
		ws.OfFailedWrites += st.failed
		ws.Delivered += st.deliv
		ws.StreamErrors += st.errs
		res.latencies = append(res.latencies, st.lat...)
		for k, v := range st.errMsg {
			res.ErrorSamples[k] += v
		}
	}
	for k, v := range werrs {
		res.ErrorSamples[k] += v
	}
	slices.Sort(res.latencies)
	slices.Sort(writeLat)
	ws.WriteP50, ws.WriteP99 = percentile(writeLat, 50), percentile(writeLat, 99)
	res.Ops = ws.Delivered
	res.Errors = ws.Anomalies() + ws.WriteErrors
	return res, nil
}

func sampleRSS(rss func() (int64, bool)) int64 {
	if rss == nil {
		return 0
	}
	v, ok := rss()
	if !ok {
		return 0
	}
	return v
}
