package harness

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"
)

// TestEtcd runs the workload against a real etcd started by the harness. It
// needs an etcd binary (ETCD_BIN, default /usr/bin/etcd) and is skipped
// without one or with -short.
func TestEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	bin := os.Getenv("ETCD_BIN")
	if bin == "" {
		bin = "/usr/bin/etcd"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no etcd binary: %v", err)
	}
	ctx := context.Background()
	srv, err := StartEtcd(ctx, bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Stop(10 * time.Second); err != nil {
			t.Errorf("etcd stop: %v", err)
		}
	}()
	e, err := NewEtcdTarget(ctx, EtcdOptions{Endpoints: []string{srv.Endpoint}, Conns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if v, err := e.ServerVersion(ctx, srv.Endpoint); err != nil || v == "" {
		t.Fatalf("version %q, %v", v, err)
	}

	keys := Keys(300)
	// 300 keys in batches of 200 exercise the split into 128-op txns.
	pre, err := Preload(ctx, e, PreloadSpec{Keys: keys, ValueSize: 400, Batch: 200, Clients: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !pre.Batched {
		t.Fatalf("etcd preload not batched: %s", pre.Fallback)
	}
	for _, i := range []int{0, 150, 299} {
		got, err := e.Read(ctx, keys[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, PreloadValue(400, i)) {
			t.Fatalf("key %d: %s", i, got)
		}
	}
	for _, op := range []Op{OpPut, OpGet} {
		res, err := RunPhase(ctx, e, PhaseSpec{Op: op, Clients: 4, Ops: 200, Keys: keys, ValueSize: 400}, srv.CPUTime)
		if err != nil {
			t.Fatal(err)
		}
		if res.Ops != 200 || res.Errors != 0 {
			t.Fatalf("%s: ops %d errors %d %v", op, res.Ops, res.Errors, res.ErrorSamples)
		}
		if res.ServerCPU <= 0 {
			t.Logf("%s: server CPU not measured (ticks too coarse?)", op)
		}
	}
	if err := e.Get(ctx, "absent"); err == nil {
		t.Fatal("Get of an absent key succeeded")
	}

	// The watch workload: every watcher sees every write once.
	res, err := RunWatch(ctx, e, WatchSpec{Op: OpWatch, Subscribers: 4, Rate: 200, Warmup: 50 * time.Millisecond,
		Duration: 300 * time.Millisecond, Keys: WatchKeys(10), ValueSize: 400}, ServerProbe{CPU: srv.CPUTime, RSS: srv.RSS})
	if err != nil {
		t.Fatal(err)
	}
	w := res.Watch
	if w.Writes < 30 || w.Delivered != 4*w.Writes || w.Anomalies() != 0 || res.Errors != 0 {
		t.Fatalf("watch: %+v %v", w, res.ErrorSamples)
	}
	if w.RSSBefore <= 0 || w.RSSIdle <= 0 {
		t.Fatalf("watch: no RSS: %+v", w)
	}
}
