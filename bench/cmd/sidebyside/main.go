// Command sidebyside runs the same durable put / linearizable get workload
// against a fresh etcd and a fresh agentstate server, one after the other,
// and prints throughput and latency percentiles side by side.
//
// Run it from the bench/ directory:
//
//	go run ./cmd/sidebyside --duration 10s --markdown /tmp/bench.md
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/agentstate/agentstate/bench/harness"
)

type config struct {
	systems       []string
	ops           []harness.Op
	clients       []int
	duration      time.Duration
	opsPerPhase   int64
	warmup        time.Duration
	keys          int
	valueSize     int
	preloadBatch  int
	opTimeout     time.Duration
	seed          uint64
	etcdBin       string
	etcdEndpoint  string
	etcdConns     int
	agentstateBin string
	agentstateURL string
	agentstateArg string
	token         string
	repo          string
	tier          string
	agentID       string
	workdir       string
	keep          bool
	markdown      string

	// change feed (watch, fanout)
	subscribers    []int
	watchRate      float64
	watchKeys      int
	drain          time.Duration
	fanoutSubs     int
	fanoutRate     float64
	fanoutSystems  []string
	etcdWatchConns int
}

func main() {
	var c config
	var systems, ops, clients, subscribers, fanoutSystems string
	flag.StringVar(&systems, "systems", "etcd,agentstate", "systems to measure, in order")
	flag.StringVar(&ops, "ops", "put,get", "operations to measure, in order (put, get, watch, fanout)")
	flag.StringVar(&subscribers, "subscribers", "1,64", "watch: subscribers per phase, comma-separated")
	flag.Float64Var(&c.watchRate, "watch-rate", 200, "watch: writes per second of the single writer")
	flag.IntVar(&c.watchKeys, "watch-keys", 100, "watch and fanout: keys the writer cycles over (watch-0000…)")
	flag.DurationVar(&c.drain, "drain", 5*time.Second, "watch and fanout: longest wait after the last write for its events")
	flag.IntVar(&c.fanoutSubs, "fanout-subscribers", 1000, "fanout: subscribers")
	flag.Float64Var(&c.fanoutRate, "fanout-rate", 50, "fanout: writes per second of the single writer")
	flag.StringVar(&fanoutSystems, "fanout-systems", "agentstate", "fanout: systems that run the fanout op (etcd is optional)")
	flag.IntVar(&c.etcdWatchConns, "etcd-watch-conns", 1, "watch and fanout: etcd clients (gRPC connections) the watchers share, apart from the writer's")
	flag.StringVar(&clients, "clients", "1,64", "concurrent clients per phase, comma-separated")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "measured time per phase (ignored with --phase-ops)")
	flag.Int64Var(&c.opsPerPhase, "phase-ops", 0, "if > 0, measure this many operations per phase instead of a duration")
	flag.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured warm-up before each phase")
	flag.IntVar(&c.keys, "keys", 100_000, "key space size (all keys are preloaded)")
	flag.IntVar(&c.valueSize, "value-size", 400, "bytes per JSON value")
	flag.IntVar(&c.preloadBatch, "preload-batch", 100, "keys per batch write in the preload (1: single puts; agentstate falls back to single puts if batch/write fails)")
	flag.DurationVar(&c.opTimeout, "op-timeout", 10*time.Second, "timeout of one operation")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the key choice")
	flag.StringVar(&c.etcdBin, "etcd-bin", "/usr/bin/etcd", "etcd binary (Debian: apt-get install etcd-server)")
	flag.StringVar(&c.etcdEndpoint, "etcd-endpoint", "", "use this running etcd instead of starting one (its data is not wiped)")
	flag.IntVar(&c.etcdConns, "etcd-conns", 1, "etcd clients (gRPC connections) shared by the workload goroutines")
	flag.StringVar(&c.agentstateBin, "agentstate-bin", "", "agentstate binary (default: go build ./cmd/agentstate in --repo)")
	flag.StringVar(&c.agentstateURL, "agentstate-url", "", "use this running agentstate (e.g. http://127.0.0.1:7400) instead of starting one")
	flag.StringVar(&c.agentstateArg, "agentstate-args", "", "extra arguments for `agentstate serve`, space-separated")
	flag.StringVar(&c.token, "agentstate-token", "", "bearer token for agentstate, if auth is on")
	flag.StringVar(&c.repo, "repo", "..", "agentstate repository root, to build the server from")
	flag.StringVar(&c.tier, "tier", "persistent", "agentstate tier written and read")
	flag.StringVar(&c.agentID, "agent-id", "bench", "agentstate agent_id")
	flag.StringVar(&c.workdir, "workdir", "", "parent of the temporary data dirs (default: the system temp dir); must be a real disk for durable numbers")
	flag.BoolVar(&c.keep, "keep", false, "keep data dirs and logs")
	flag.StringVar(&c.markdown, "markdown", "", "also write the report as markdown to this file")
	flag.Parse()

	var err error
	if c.systems, err = parseSystems(systems); err == nil {
		if c.ops, err = parseOps(ops); err == nil {
			c.clients, err = parseClients(clients)
		}
	}
	if err == nil {
		c.subscribers, err = parseClients(subscribers)
	}
	if err == nil {
		c.fanoutSystems, err = parseSystems(fanoutSystems)
	}
	if err == nil && (c.watchRate <= 0 || c.fanoutRate <= 0 || c.fanoutSubs < 1) {
		err = errors.New("--watch-rate, --fanout-rate and --fanout-subscribers must be > 0")
	}
	if err == nil && c.keys < 1 {
		err = errors.New("--keys must be >= 1")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sidebyside:", err)
		os.Exit(2)
	}

	raiseNoFile()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, c)
	os.Exit(code)
}

func parseSystems(s string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		switch p {
		case "etcd", "agentstate":
			out = append(out, p)
		case "":
		default:
			return nil, fmt.Errorf("unknown system %q (want etcd, agentstate)", p)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no system given")
	}
	return out, nil
}

func parseOps(s string) ([]harness.Op, error) {
	var out []harness.Op
	for _, p := range strings.Split(s, ",") {
		op, err := harness.ParseOp(p)
		if err != nil {
			return nil, err
		}
		out = append(out, op)
	}
	return out, nil
}

func parseClients(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad client count %q", p)
		}
		out = append(out, n)
	}
	return out, nil
}

// raiseNoFile sets the soft limit of open files to the hard limit: the
// fan-out phase holds a connection per subscriber in the harness and in the
// server, and the servers started by the harness inherit the limit.
func raiseNoFile() {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			logf("raising RLIMIT_NOFILE: %v", err)
		}
	}
}

// openFilesLimit is the soft RLIMIT_NOFILE, or 0.
func openFilesLimit() uint64 {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return 0
	}
	return l.Cur
}

func hasOp(ops []harness.Op, want ...harness.Op) bool {
	for _, o := range ops {
		if slices.Contains(want, o) {
			return true
		}
	}
	return false
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func run(ctx context.Context, c config) int {
	work, err := os.MkdirTemp(c.workdir, "agentstate-bench-")
	if err != nil {
		logf("workdir: %v", err)
		return 1
	}
	if c.keep {
		logf("data dirs and logs kept in %s", work)
	} else {
		defer os.RemoveAll(work)
	}

	rep := &harness.Report{
		Started: time.Now(),
		Command: commandLine(),
		Machine: harness.MachineFacts(ctx, work),
	}
	rep.Machine.Etcd = "not run"
	rep.Machine.Agentstate = "not run"
	phase := fmt.Sprintf("%v per phase", c.duration)
	if c.opsPerPhase > 0 {
		phase = fmt.Sprintf("%d ops per phase", c.opsPerPhase)
	}
	if hasOp(c.ops, harness.OpPut, harness.OpGet) {
		rep.Workload = []string{
			fmt.Sprintf("%d keys preloaded, %d-byte JSON values, keys chosen uniformly at random; %s after %v warm-up", c.keys, c.valueSize, phase, c.warmup),
			"put: durable single-key write (etcd Put: raft + WAL fsync; agentstate PUT " + "/v1/agents/" + c.agentID + "/state/" + c.tier + "/{key} with the server's default durability)",
			"get: single-key read, etcd linearizable Get (not serializable); agentstate GET with default strong consistency",
		}
	}
	rep.Workload = append(rep.Workload, fmt.Sprintf("systems run one after the other, each from a fresh data dir; etcd: one shared client (%d gRPC conn); agentstate: net/http keep-alive, one connection per client", c.etcdConns))
	if hasOp(c.ops, harness.OpWatch, harness.OpFanout) {
		rep.Workload = append(rep.Workload,
			fmt.Sprintf("watch: subscribers %v, one writer putting %d-byte JSON values at %.0f/s over %d keys (%s0000…) for %v after %v warm-up; each value carries the writer's sequence number, the writer keeps each write's start time; "+
				"agentstate: one SSE connection per subscriber, GET /v1/events?agent_id=%s&tier=%s&key=%s*; etcd: clientv3 Watch(WithPrefix) per subscriber, all watchers on %d client(s) (gRPC conns) of their own",
				c.subscribers, c.valueSize, c.watchRate, c.watchKeys, harness.WatchKeyPrefix, c.duration, c.warmup,
				c.agentID, c.tier, harness.WatchKeyPrefix, c.etcdWatchConns),
			"watch rows of the main table: ops/s = (subscriber, event) pairs delivered per second, p50/p99 = time from the start of the write to the event read by the subscriber, srv cpu/op = server CPU per delivered event, errors = write errors + missed + duplicate + out-of-order + foreign events + broken streams",
		)
		if hasOp(c.ops, harness.OpFanout) {
			rep.Workload = append(rep.Workload, fmt.Sprintf("fanout (%s): %d subscribers, one writer at %.0f/s for %v after %v warm-up; server RSS sampled before subscribing and 1 s after the last subscription (idle), harness open-files limit %d (inherited by the servers)",
				strings.Join(c.fanoutSystems, ", "), c.fanoutSubs, c.fanoutRate, c.duration, c.warmup, openFilesLimit()))
		}
	}

	keys := harness.Keys(c.keys)
	failed := false
	for _, sys := range c.systems {
		if ctx.Err() != nil {
			break
		}
		var err error
		switch sys {
		case "etcd":
			err = runEtcd(ctx, c, work, keys, rep)
		case "agentstate":
			err = runAgentstate(ctx, c, work, keys, rep)
		}
		if err != nil {
			failed = true
			logf("%s: %v", sys, err)
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: FAILED: %v", sys, firstLine(err.Error())))
		}
	}
	if ctx.Err() != nil {
		logf("interrupted")
		failed = true
	}

	if err := rep.WriteText(os.Stdout); err != nil {
		logf("write report: %v", err)
	}
	if c.markdown != "" {
		var buf bytes.Buffer
		if err := rep.WriteMarkdown(&buf); err == nil {
			err = os.WriteFile(c.markdown, buf.Bytes(), 0o644)
			if err != nil {
				logf("markdown: %v", err)
				failed = true
			} else {
				logf("markdown written to %s", c.markdown)
			}
		}
	}
	if failed {
		return 1
	}
	return 0
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func commandLine() string {
	args := []string{"go run ./cmd/sidebyside"}
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " \t'\"$") {
			a = strconv.Quote(a)
		}
		args = append(args, a)
	}
	return strings.Join(args, " ")
}

func runEtcd(ctx context.Context, c config, work string, keys []string, rep *harness.Report) error {
	endpoint := c.etcdEndpoint
	var probe harness.ServerProbe
	var srv *harness.EtcdServer
	binVersion := harness.EtcdBinaryVersion(ctx, c.etcdBin)
	if endpoint == "" {
		dir := filepath.Join(work, "etcd")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		var err error
		logf("[etcd] starting %s (%s)", c.etcdBin, binVersion)
		srv, err = harness.StartEtcd(ctx, c.etcdBin, dir)
		if err != nil {
			return err
		}
		endpoint = srv.Endpoint
		probe = harness.ServerProbe{CPU: srv.CPUTime, RSS: srv.RSS}
		logf("[etcd] healthy at %s, data %s", endpoint, srv.DataDir)
	}
	t, err := harness.NewEtcdTarget(ctx, harness.EtcdOptions{Endpoints: []string{endpoint}, Conns: c.etcdConns, WatchConns: c.etcdWatchConns})
	if err != nil {
		if srv != nil {
			_ = srv.Stop(10 * time.Second)
		}
		return err
	}
	v, verr := t.ServerVersion(ctx, endpoint)
	if verr != nil {
		v = "unknown (" + verr.Error() + ")"
	}
	rep.Machine.Etcd = fmt.Sprintf("server %s (binary: %s), default durable settings", v, binVersion)
	if srv == nil {
		rep.Machine.Etcd += fmt.Sprintf(" at %s (not started by the harness)", endpoint)
	}
	if readBufferCopyBug(v) && hasOp(c.ops, harness.OpGet) {
		rep.Notes = append(rep.Notes, "etcd "+v+" predates 3.4.24: every read copies the backend's whole read buffer, "+
			"which grows with write bursts (about 60% of etcd CPU in a profile of this get phase on a 2-core machine); fixed upstream by "+
			"etcd-io/etcd#12933, backported to 3.4.24 by #15195. Its get numbers understate etcd >= 3.4.24/3.5; "+
			"use --etcd-bin with a newer etcd for published comparisons")
	}
	err = runPhases(ctx, c, t, keys, probe, rep)
	t.Close()
	if srv != nil {
		if rss, ok := srv.PeakRSS(); ok {
			rep.Notes = append(rep.Notes, fmt.Sprintf("etcd peak RSS %.0f MiB", float64(rss)/(1<<20)))
		}
		if serr := srv.Stop(10 * time.Second); serr != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("etcd stop: %v", serr))
		}
	}
	return err
}

func runAgentstate(ctx context.Context, c config, work string, keys []string, rep *harness.Report) error {
	base := c.agentstateURL
	var probe harness.ServerProbe
	var srv *harness.AgentstateServer
	if base == "" {
		dir := filepath.Join(work, "agentstate")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		bin := c.agentstateBin
		if bin == "" {
			bin = filepath.Join(work, "agentstate-bin")
			abs, _ := filepath.Abs(c.repo)
			logf("[agentstate] go build ./cmd/agentstate in %s", abs)
			if err := harness.BuildAgentstate(ctx, c.repo, bin); err != nil {
				return err
			}
			rep.Machine.Agentstate = "built by the harness from " + abs
		} else {
			rep.Machine.Agentstate = "binary " + bin
		}
		var extra []string
		if c.agentstateArg != "" {
			extra = strings.Fields(c.agentstateArg)
			rep.Machine.Agentstate += ", serve " + c.agentstateArg
		}
		rep.Machine.Agentstate += ", embedded store, default settings"
		logf("[agentstate] starting %s serve", bin)
		var err error
		srv, err = harness.StartAgentstate(ctx, bin, dir, extra...)
		if err != nil {
			return err
		}
		base = srv.BaseURL
		probe = harness.ServerProbe{CPU: srv.CPUTime, RSS: srv.RSS}
		logf("[agentstate] healthy at %s, data %s", base, srv.DataDir)
	} else {
		rep.Machine.Agentstate = "running server at " + base + " (not started by the harness)"
	}
	maxClients := 1
	for _, n := range c.clients {
		maxClients = max(maxClients, n)
	}
	t := harness.NewAgentstateTarget(harness.AgentstateOptions{
		BaseURL: base, AgentID: c.agentID, Tier: c.tier, Token: c.token, MaxConns: maxClients,
	})
	err := runPhases(ctx, c, t, keys, probe, rep)
	t.Close()
	if srv != nil {
		if exited, werr := srv.Exited(); exited {
			rep.Notes = append(rep.Notes, fmt.Sprintf("agentstate exited during the run (%v); log tail:\n%s", werr, srv.LogTail(10)))
		} else {
			if rss, ok := srv.PeakRSS(); ok {
				rep.Notes = append(rep.Notes, fmt.Sprintf("agentstate peak RSS %.0f MiB", float64(rss)/(1<<20)))
			}
			if serr := srv.Stop(15 * time.Second); serr != nil {
				rep.Notes = append(rep.Notes, fmt.Sprintf("agentstate stop after SIGTERM: %v (log %s)", serr, srv.LogPath))
			} else {
				rep.Notes = append(rep.Notes, "agentstate exited 0 on SIGTERM")
			}
		}
	}
	return err
}

// readBufferCopyBug reports whether etcd version v (e.g. "3.4.23") copies
// the read buffer on every read: 3.4.0 (which introduced the concurrent read
// transaction) to 3.4.23; 3.5.0 already has the fix (etcd-io/etcd#13036).
func readBufferCopyBug(v string) bool {
	rest, ok := strings.CutPrefix(v, "3.4.")
	if !ok {
		return false
	}
	patch, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
	return err == nil && patch < 24
}

// runPhases preloads the key space (when put or get is measured), checks a
// few keys, then runs every (op, clients) phase.
func runPhases(ctx context.Context, c config, t harness.Target, keys []string, probe harness.ServerProbe, rep *harness.Report) error {
	name := t.Name()
	if hasOp(c.ops, harness.OpPut, harness.OpGet) {
		if err := preload(ctx, c, t, keys, rep); err != nil {
			return err
		}
	}
	for _, op := range c.ops {
		switch op {
		case harness.OpWatch, harness.OpFanout:
			counts, rate := c.subscribers, c.watchRate
			if op == harness.OpFanout {
				if !slices.Contains(c.fanoutSystems, name) {
					logf("[%s] fanout skipped (--fanout-systems %s)", name, strings.Join(c.fanoutSystems, ","))
					continue
				}
				counts, rate = []int{c.fanoutSubs}, c.fanoutRate
			}
			wt, ok := t.(harness.WatchTarget)
			if !ok {
				return fmt.Errorf("%s has no change feed in this harness", name)
			}
			for _, n := range counts {
				if err := ctx.Err(); err != nil {
					return err
				}
				logf("[%s] %s: %d subscribers, writer at %.0f/s", name, op, n, rate)
				res, err := harness.RunWatch(ctx, wt, harness.WatchSpec{
					Op: op, Subscribers: n, Rate: rate, Warmup: c.warmup, Duration: c.duration, Drain: c.drain,
					Keys: harness.WatchKeys(c.watchKeys), ValueSize: c.valueSize, OpTimeout: c.opTimeout,
				}, probe)
				if err != nil {
					return err
				}
				rep.Results = append(rep.Results, res)
				w := res.Watch
				logf("[%s] %s subs=%d: %d writes (%d failed), %d events delivered in %v: %.0f events/s, p50 %v, p99 %v; missed %d, dup %d, out of order %d, foreign %d, stream errors %d; subscribe %v; RSS/sub %.1f KiB",
					name, op, n, w.Writes, w.WriteErrors, w.Delivered, res.Elapsed.Round(time.Millisecond), res.Throughput(),
					res.Percentile(50).Round(time.Microsecond), res.Percentile(99).Round(time.Microsecond),
					w.Missed, w.Duplicates, w.OutOfOrder, w.Foreign, w.StreamErrors+w.SubscribeErrors,
					w.SubscribeTime.Round(time.Millisecond), w.RSSPerSubscriber()/1024)
			}
		default:
			for _, n := range c.clients {
				if err := ctx.Err(); err != nil {
					return err
				}
				res, err := harness.RunPhase(ctx, t, harness.PhaseSpec{
					Op: op, Clients: n, Duration: c.duration, Ops: c.opsPerPhase, Warmup: c.warmup,
					Keys: keys, ValueSize: c.valueSize, OpTimeout: c.opTimeout, Seed: c.seed,
				}, probe.CPU)
				if err != nil {
					return err
				}
				rep.Results = append(rep.Results, res)
				logf("[%s] %s c=%d: %d ok, %d errors in %v: %.0f ops/s, p50 %v, p99 %v",
					name, op, n, res.Ops, res.Errors, res.Elapsed.Round(time.Millisecond), res.Throughput(),
					res.Percentile(50).Round(time.Microsecond), res.Percentile(99).Round(time.Microsecond))
			}
		}
	}
	return nil
}

func preload(ctx context.Context, c config, t harness.Target, keys []string, rep *harness.Report) error {
	name := t.Name()
	logf("[%s] preloading %d keys", name, len(keys))
	pre, err := harness.Preload(ctx, t, harness.PreloadSpec{
		Keys: keys, ValueSize: c.valueSize, Batch: c.preloadBatch, Clients: 16, OpTimeout: 60 * time.Second,
	})
	if err != nil {
		return err
	}
	how := "single puts, 16 writers"
	if pre.Batched {
		how = fmt.Sprintf("batches of %d, 16 writers", c.preloadBatch)
	}
	logf("[%s] preload done in %v (%s, %.0f keys/s)", name, pre.Elapsed.Round(time.Millisecond), how, float64(pre.Keys)/pre.Elapsed.Seconds())
	note := fmt.Sprintf("%s preload: %d keys in %v (%s)", name, pre.Keys, pre.Elapsed.Round(time.Millisecond), how)
	if pre.Fallback != "" {
		note += "; batch write not used: " + pre.Fallback
	}
	rep.Notes = append(rep.Notes, note)
	if err := verify(ctx, t, keys, c.valueSize); err != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s: VERIFY FAILED after preload: %v", name, err))
		logf("[%s] verify failed: %v", name, err)
	}
	return nil
}

// verify reads back the first, middle and last preloaded keys and compares
// them (as JSON) with what was written.
func verify(ctx context.Context, t harness.Target, keys []string, size int) error {
	for _, i := range []int{0, len(keys) / 2, len(keys) - 1} {
		got, err := t.Read(ctx, keys[i])
		if err != nil {
			return fmt.Errorf("key %s: %w", keys[i], err)
		}
		var a, b any
		if err := json.Unmarshal(got, &a); err != nil {
			return fmt.Errorf("key %s: stored value is not JSON: %w", keys[i], err)
		}
		_ = json.Unmarshal(harness.PreloadValue(size, i), &b)
		if !reflect.DeepEqual(a, b) {
			return fmt.Errorf("key %s: read %s, wrote %s", keys[i], got, harness.PreloadValue(size, i))
		}
	}
	return nil
}
