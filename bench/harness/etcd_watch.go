package harness

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

var _ WatchTarget = (*EtcdTarget)(nil)

// watchClient returns the client for the next watcher: the watchers are
// spread round-robin over WatchConns clients of their own (gRPC
// connections apart from the writer's), created on first use.
func (e *EtcdTarget) watchClient(ctx context.Context) (*clientv3.Client, error) {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if len(e.watchers) == 0 {
		for range max(e.watchConns, 1) {
			c, err := clientv3.New(clientv3.Config{
				Endpoints:   e.endpoints,
				DialTimeout: 5 * time.Second,
				Logger:      zap.NewNop(),
				Context:     context.WithoutCancel(ctx),
			})
			if err != nil {
				return nil, fmt.Errorf("etcd watch client: %w", err)
			}
			e.watchers = append(e.watchers, c)
		}
	}
	c := e.watchers[e.wnext%len(e.watchers)]
	e.wnext++
	return c, nil
}

// Watch starts a clientv3 Watch of the prefix WatchKeyPrefix (under the
// target's prefix) and returns once etcd has confirmed it (WithCreatedNotify).
func (e *EtcdTarget) Watch(ctx context.Context) (Subscription, error) {
	c, err := e.watchClient(ctx)
	if err != nil {
		return nil, err
	}
	s := &etcdSub{c: c, ctx: ctx, key: e.prefix + WatchKeyPrefix}
	if err := s.open(0); err != nil {
		return nil, err
	}
	return s, nil
}

type etcdSub struct {
	c    *clientv3.Client
	ctx  context.Context
	key  string
	wctx context.Context
	stop context.CancelFunc
	ch   clientv3.WatchChan
	rev  int64 // last revision delivered
}

func (s *etcdSub) open(fromRev int64) error {
	s.wctx, s.stop = context.WithCancel(clientv3.WithRequireLeader(s.ctx))
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCreatedNotify()}
	if fromRev > 0 {
		opts = append(opts, clientv3.WithRev(fromRev))
	}
	s.ch = s.c.Watch(s.wctx, s.key, opts...)
	select {
	case r, ok := <-s.ch:
		if !ok {
			s.stop()
			if err := s.ctx.Err(); err != nil {
				return err
			}
			return fmt.Errorf("etcd watch closed before it was created")
		}
		if err := r.Err(); err != nil {
			s.stop()
			return err
		}
		if !r.Created {
			s.stop()
			return fmt.Errorf("etcd watch: first response is not the creation")
		}
		return nil
	case <-s.ctx.Done():
		s.stop()
		return s.ctx.Err()
	}
}

func (s *etcdSub) Next() ([]Change, error) {
	if s.ch == nil {
		if err := s.open(s.rev + 1); err != nil {
			return nil, fmt.Errorf("re-watch from revision %d: %w", s.rev+1, err)
		}
	}
	for {
		r, ok := <-s.ch
		at := time.Now()
		if !ok || r.Err() != nil || r.Canceled {
			s.stop()
			s.ch = nil
			if err := s.ctx.Err(); err != nil {
				return nil, err
			}
			if ok && r.Err() != nil {
				return nil, fmt.Errorf("etcd watch after revision %d: %w", s.rev, r.Err())
			}
			return nil, fmt.Errorf("etcd watch channel closed after revision %d", s.rev)
		}
		if len(r.Events) == 0 {
			continue // progress notification
		}
		out := make([]Change, 0, len(r.Events))
		for _, ev := range r.Events {
			c := Change{Key: string(ev.Kv.Key), Revision: ev.Kv.ModRevision, At: at}
			c.Seq, _ = parseSeq(ev.Kv.Value)
			out = append(out, c)
			s.rev = max(s.rev, ev.Kv.ModRevision)
		}
		return out, nil
	}
}

func (s *etcdSub) Close() error {
	if s.stop != nil {
		s.stop()
	}
	return nil
}
