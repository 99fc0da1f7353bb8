// Package state is the agentstate engine: the state model (agents, four tiers,
// keys), per-tier policies, versioning and the write path. Every face — the
// embedded Go API, the HTTP server, the CLI through the server — calls a
// Manager; none talks to a store directly.
//
// A call validates its input (ids, keys, value limits), asks the Authorizer,
// computes the value's canonical checksum, and hands the store ONE atomic
// request; after the store acknowledges (durably), the audit sink hears of it.
// The engine knows no HTTP: errors are typed (see types.go and package store)
// and mapped to the wire contract at the edge.
package state

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/agentstate/agentstate/audit"
	"github.com/agentstate/agentstate/auth"
	"github.com/agentstate/agentstate/feed"
	"github.com/agentstate/agentstate/jsonvalue"
	"github.com/agentstate/agentstate/keys"
	"github.com/agentstate/agentstate/store"
)

// TierPolicy is the per-tier configuration.
type TierPolicy struct {
	// DefaultTTL applies to writes that give no TTL (0 = none).
	DefaultTTL time.Duration
	// HistoryLimit is how many versions of a key are kept (0 = all).
	HistoryLimit int
}

// DefaultTierPolicies are DESIGN.md's defaults: local keeps 20 versions,
// session 5 with a 1 h TTL, shared and persistent everything.
func DefaultTierPolicies() map[string]TierPolicy {
	return map[string]TierPolicy{
		keys.TierLocal:      {HistoryLimit: 20},
		keys.TierShared:     {},
		keys.TierSession:    {DefaultTTL: time.Hour, HistoryLimit: 5},
		keys.TierPersistent: {},
	}
}

// Options configure a Manager. Zero values take defaults.
type Options struct {
	// Tiers overrides DefaultTierPolicies per tier (missing tiers keep the default).
	Tiers map[string]TierPolicy
	// Limits on values (1 MiB, depth 64 by default).
	Limits jsonvalue.Limits
	// MaxBatchOps bounds a batch write (default 1000).
	MaxBatchOps int
	// Authorizer is consulted on every call (default auth.AllowAll).
	Authorizer auth.Authorizer
	// Audit receives a record of every change (default audit.Nop).
	Audit audit.Sink
	// ReapInterval is how often expired keys are turned into expire
	// tombstones (default 1 s; negative disables the reaper).
	ReapInterval time.Duration
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
	// Streams is the event store (optional; without it the stream calls
	// fail). The Manager owns it: Close closes it.
	Streams store.StreamStore
	// FeedRetention is how long change events are kept (default 24 h;
	// negative: forever). CompactInterval is how often the feed is compacted
	// (default 1 min). FeedBuffer is each subscriber's buffer in events
	// before it is cut off as too slow (default 4096).
	FeedRetention   time.Duration
	CompactInterval time.Duration
	FeedBuffer      int
}

// Manager is the engine. It is safe for concurrent use.
type Manager struct {
	st         store.Store
	streams    store.StreamStore
	tiers      map[string]TierPolicy
	limits     jsonvalue.Limits
	maxBatch   int
	authz      auth.Authorizer
	audit      audit.Sink
	log        *slog.Logger
	now        func() time.Time
	reapEvery  time.Duration
	stop       chan struct{}
	wg         sync.WaitGroup
	closeOnce  sync.Once
	closeErr   error
	closedFlag chan struct{}

	// The change feed (nil when the store keeps none).
	feedStore feedStore
	hub       *feed.Hub
	stopFeed  context.CancelFunc
	retention time.Duration
}

// New returns a Manager over st and starts its TTL reaper. The Manager owns
// st: Close closes it.
func New(st store.Store, opts Options) (*Manager, error) {
	if st == nil {
		return nil, fmt.Errorf("state: nil store")
	}
	tiers := DefaultTierPolicies()
	for t, p := range opts.Tiers {
		if err := keys.ValidateTier(t); err != nil {
			return nil, fmt.Errorf("state: tier policy: %w", err)
		}
		if p.HistoryLimit < 0 || p.DefaultTTL < 0 {
			return nil, fmt.Errorf("state: tier %s: negative history limit or TTL", t)
		}
		tiers[t] = p
	}
	m := &Manager{
		st:         st,
		streams:    opts.Streams,
		tiers:      tiers,
		limits:     opts.Limits,
		maxBatch:   opts.MaxBatchOps,
		authz:      opts.Authorizer,
		audit:      opts.Audit,
		log:        opts.Logger,
		now:        opts.Now,
		reapEvery:  opts.ReapInterval,
		stop:       make(chan struct{}),
		closedFlag: make(chan struct{}),
	}
	if m.limits.MaxBytes <= 0 {
		m.limits.MaxBytes = jsonvalue.DefaultMaxBytes
	}
	if m.limits.MaxDepth <= 0 {
		m.limits.MaxDepth = jsonvalue.DefaultMaxDepth
	}
	if m.maxBatch <= 0 {
		m.maxBatch = 1000
	}
	if m.authz == nil {
		m.authz = auth.AllowAll{}
	}
	if m.audit == nil {
		m.audit = audit.Nop{}
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.reapEvery == 0 {
		m.reapEvery = time.Second
	}
	if m.reapEvery > 0 {
		m.wg.Add(1)
		go m.reapLoop()
	}
	m.startFeed(opts)
	return m, nil
}

// Limits returns the value limits in force.
func (m *Manager) Limits() jsonvalue.Limits { return m.limits }

// TierPolicy returns the policy of a tier.
func (m *Manager) TierPolicy(tier string) TierPolicy { return m.tiers[tier] }

// Revision is the store's current revision.
func (m *Manager) Revision(ctx context.Context) (int64, error) {
	if err := m.checkOpen(); err != nil {
		return 0, err
	}
	return m.st.CurrentRevision(ctx)
}

// Ready reports whether the engine can serve: open, and its store answers.
func (m *Manager) Ready(ctx context.Context) error {
	if err := m.checkOpen(); err != nil {
		return err
	}
	return m.st.Ping(ctx)
}

// Close stops the reaper and closes the store. It is idempotent.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		close(m.closedFlag)
		close(m.stop)
		if m.stopFeed != nil {
			m.stopFeed()
		}
		m.wg.Wait()
		m.closeErr = m.st.Close()
		if c, ok := m.streams.(interface{ Close() error }); ok && m.streams != nil {
			m.closeErr = errors.Join(m.closeErr, c.Close())
		}
	})
	return m.closeErr
}

func (m *Manager) checkOpen() error {
	select {
	case <-m.closedFlag:
		return ErrClosed
	default:
		return nil
	}
}

// reapLoop turns expired keys into expire tombstones. Reads already treat
// an expired key as absent; the reaper makes the expiry a version and an
// event, as API.md asks.
func (m *Manager) reapLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.reapEvery)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-m.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		n, err := m.Reap(ctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			m.log.Warn("state: reaping expired keys", "err", err)
		} else if n > 0 {
			m.log.Debug("state: expired keys reaped", "count", n)
		}
	}
}

// Reap writes expire tombstones for keys whose TTL has passed and returns
// how many it wrote. The reaper calls it; tests may call it directly.
func (m *Manager) Reap(ctx context.Context) (int, error) {
	total := 0
	for {
		exp, err := m.st.ExpiredKeys(ctx, m.now(), 256)
		if err != nil {
			return total, err
		}
		if len(exp) == 0 {
			return total, nil
		}
		wrote := 0
		for _, e := range exp {
			v := e.Version
			res, err := m.st.Write(ctx, store.WriteRequest{Ops: []store.WriteOp{{
				Kind:            store.OpExpire,
				Key:             e.Key,
				ExpectedVersion: &v,
				CreatedBy:       "system:reaper",
				ChangeSummary:   "expired",
				HistoryLimit:    m.tiers[e.Key.Tier].HistoryLimit,
			}}})
			if err != nil {
				return total, err
			}
			if r := res.Results[0]; !r.Skipped {
				wrote++
				m.audit.Record(ctx, audit.Record{
					Time: m.now(), Principal: "system:reaper", Action: "expire",
					AgentID: e.Key.AgentID, Tier: e.Key.Tier, Key: e.Key.Key,
					Version: r.Entry.Version, Revision: res.Revision, Outcome: "ok",
				})
			}
		}
		total += wrote
		// Keys whose expire op was skipped were rewritten meanwhile; if the
		// whole page was skipped, stop rather than spin on the same page.
		if wrote == 0 || len(exp) < 256 {
			return total, nil
		}
	}
}
