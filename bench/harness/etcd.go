package harness

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdTarget uses the official etcd v3 Go client. Gets are the client's
// default, linearizable reads (not WithSerializable); puts are plain Puts,
// which etcd commits through raft and fsyncs to its WAL before answering.
type EtcdTarget struct {
	prefix  string
	clients []*clientv3.Client
	next    atomic.Uint64

	endpoints  []string
	watchConns int
	wmu        sync.Mutex
	watchers   []*clientv3.Client // the watchers' clients, made on first Watch
	wnext      int
}

// EtcdOptions configures an EtcdTarget.
type EtcdOptions struct {
	Endpoints []string
	// Prefix is prepended to every key (default "/agentstate-bench/").
	Prefix string
	// Conns is the number of clients (gRPC connections) shared round-robin
	// by the workload's goroutines; 1 is the etcd norm.
	Conns int
	// WatchConns is the number of clients the watch workload's watchers
	// are spread over (default 1), apart from the writer's.
	WatchConns int
}

var _ Target = (*EtcdTarget)(nil)

// NewEtcdTarget connects to etcd and checks that it answers.
func NewEtcdTarget(ctx context.Context, o EtcdOptions) (*EtcdTarget, error) {
	if o.Prefix == "" {
		o.Prefix = "/agentstate-bench/"
	}
	t := &EtcdTarget{prefix: o.Prefix, endpoints: o.Endpoints, watchConns: max(o.WatchConns, 1)}
	for range max(o.Conns, 1) {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   o.Endpoints,
			DialTimeout: 5 * time.Second,
			Logger:      zap.NewNop(),
			Context:     ctx,
		})
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("etcd client: %w", err)
		}
		t.clients = append(t.clients, c)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := t.clients[0].Status(sctx, o.Endpoints[0]); err != nil {
		t.Close()
		return nil, fmt.Errorf("etcd status: %w", err)
	}
	return t, nil
}

func (e *EtcdTarget) Name() string { return "etcd" }

func (e *EtcdTarget) client() *clientv3.Client {
	if len(e.clients) == 1 {
		return e.clients[0]
	}
	return e.clients[e.next.Add(1)%uint64(len(e.clients))]
}

func (e *EtcdTarget) Put(ctx context.Context, key string, value []byte) error {
	_, err := e.client().Put(ctx, e.prefix+key, string(value))
	return err
}

// errEtcdNotFound is a Get of an absent key.
var errEtcdNotFound = errors.New("etcd: key not found")

func (e *EtcdTarget) Get(ctx context.Context, key string) error {
	resp, err := e.client().Get(ctx, e.prefix+key)
	if err != nil {
		return err
	}
	if len(resp.Kvs) != 1 {
		return errEtcdNotFound
	}
	return nil
}

func (e *EtcdTarget) Read(ctx context.Context, key string) ([]byte, error) {
	resp, err := e.client().Get(ctx, e.prefix+key)
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) != 1 {
		return nil, errEtcdNotFound
	}
	return resp.Kvs[0].Value, nil
}

// etcdMaxTxnOps is etcd's default --max-txn-ops.
const etcdMaxTxnOps = 128

// PutBatch writes keys in transactions of at most 128 puts.
func (e *EtcdTarget) PutBatch(ctx context.Context, keys []string, values [][]byte) error {
	for lo := 0; lo < len(keys); lo += etcdMaxTxnOps {
		hi := min(lo+etcdMaxTxnOps, len(keys))
		ops := make([]clientv3.Op, 0, hi-lo)
		for i := lo; i < hi; i++ {
			ops = append(ops, clientv3.OpPut(e.prefix+keys[i], string(values[i])))
		}
		if _, err := e.client().Txn(ctx).Then(ops...).Commit(); err != nil {
			return err
		}
	}
	return nil
}

// ServerVersion asks the endpoint for its version.
func (e *EtcdTarget) ServerVersion(ctx context.Context, endpoint string) (string, error) {
	st, err := e.clients[0].Status(ctx, endpoint)
	if err != nil {
		return "", err
	}
	return st.Version, nil
}

func (e *EtcdTarget) Close() error {
	var errs []error
	for _, c := range e.clients {
		errs = append(errs, c.Close())
	}
	e.wmu.Lock()
	for _, c := range e.watchers {
		errs = append(errs, c.Close())
	}
	e.watchers = nil
	e.wmu.Unlock()
	return errors.Join(errs...)
}
