package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agentstate/agentstate/auth"
	"github.com/agentstate/agentstate/feed"
	"github.com/agentstate/agentstate/store"
)

// The change feed: every committed change is an event in the store (written
// in the same transaction as the version), and a hub tails the store to fan
// events out to subscribers. Retention: events older than FeedRetention are
// compacted away, and with them the storage of versions already pruned from
// their key's history (see store.EventCompactor).

// Feed defaults.
const (
	DefaultFeedRetention   = 24 * time.Hour
	DefaultCompactInterval = time.Minute
)

// ErrNoFeed is returned when the store keeps no change feed.
var ErrNoFeed = fmt.Errorf("%w: this store keeps no change feed", ErrInvalidArgument)

// feedStore is what the engine needs from a store for the feed.
type feedStore interface {
	feed.Source
	store.EventCompactor
}

// startFeed starts the hub and the compactor when the store keeps a feed.
func (m *Manager) startFeed(opts Options) {
	fs, ok := m.st.(feedStore)
	if !ok {
		return
	}
	m.feedStore = fs
	m.hub = feed.NewHub(fs, feed.Options{BufferSize: opts.FeedBuffer, Logger: m.log})
	ctx, cancel := context.WithCancel(context.Background())
	m.stopFeed = cancel
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.hub.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			m.log.Warn("state: change feed hub stopped", "err", err)
		}
	}()
	m.retention = opts.FeedRetention
	if m.retention == 0 {
		m.retention = DefaultFeedRetention
	}
	every := opts.CompactInterval
	if every == 0 {
		every = DefaultCompactInterval
	}
	if m.retention > 0 && every > 0 {
		m.wg.Add(1)
		go m.compactLoop(ctx, every)
	}
}

// Subscribe opens a change-feed subscription (API.md "Change events").
func (m *Manager) Subscribe(ctx context.Context, req feed.SubscribeRequest) (*feed.Subscription, error) {
	if err := m.checkOpen(); err != nil {
		return nil, err
	}
	if m.hub == nil {
		return nil, ErrNoFeed
	}
	if err := req.Filter.Validate(); err != nil {
		return nil, &InvalidArgumentError{Field: "filter", Op: -1, Message: err.Error()}
	}
	if req.FromRevision < feed.FromNow {
		return nil, &InvalidArgumentError{Field: "from_revision", Op: -1, Message: "from_revision must be an integer >= 0"}
	}
	p := auth.FromContext(ctx)
	// Until RBAC, one check per named agent (or one store-wide) is enough:
	// the allow-all authorizer answers yes, and a real one will filter.
	if len(req.Filter.AgentIDs) == 0 {
		if err := m.authz.Authorize(ctx, p, auth.ActionRead, auth.Resource{}); err != nil {
			return nil, err
		}
	}
	for _, a := range req.Filter.AgentIDs {
		if err := m.authz.Authorize(ctx, p, auth.ActionRead, auth.Resource{AgentID: a}); err != nil {
			return nil, err
		}
	}
	return m.hub.Subscribe(ctx, req)
}

// OldestRevision is the oldest revision the feed still holds.
func (m *Manager) OldestRevision(ctx context.Context) (int64, error) {
	if m.feedStore == nil {
		return 0, ErrNoFeed
	}
	return m.feedStore.OldestRevision(ctx)
}

// CompactFeed drops the feed's events older than the retention (or all up to
// through, when through > 0) and returns the new oldest revision.
func (m *Manager) CompactFeed(ctx context.Context, through int64) (int64, error) {
	if err := m.checkOpen(); err != nil {
		return 0, err
	}
	if m.feedStore == nil {
		return 0, ErrNoFeed
	}
	if through <= 0 {
		var err error
		if through, err = m.retentionCutoff(ctx); err != nil {
			return 0, err
		}
	}
	if through > 0 {
		if err := m.feedStore.CompactEvents(ctx, through); err != nil {
			return 0, err
		}
	}
	return m.feedStore.OldestRevision(ctx)
}

// retentionCutoff finds the newest revision older than the retention by
// reading the feed from its oldest event (timestamps grow with revisions).
// It reads at most a bounded number of pages per call; the next run goes on.
func (m *Manager) retentionCutoff(ctx context.Context) (int64, error) {
	cut := m.now().Add(-m.retention)
	oldest, err := m.feedStore.OldestRevision(ctx)
	if err != nil {
		return 0, err
	}
	after, through := oldest-1, int64(0)
	for page := 0; page < 64; page++ {
		res, err := m.feedStore.ReadEvents(ctx, store.EventsRequest{AfterRevision: after, Limit: 1000})
		if err != nil {
			return 0, err
		}
		for i := range res.Events {
			e := &res.Events[i]
			if !e.Timestamp.Before(cut) {
				return through, nil
			}
			through = e.Revision
		}
		if !res.More || len(res.Events) == 0 {
			// Every kept event is older than the retention; keep the newest
			// revision so that resuming from "now" stays possible.
			if through == res.Revision {
				through--
			}
			return through, nil
		}
		after = res.Events[len(res.Events)-1].Revision
	}
	return through, nil
}

func (m *Manager) compactLoop(ctx context.Context, every time.Duration) {
	defer m.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if oldest, err := m.CompactFeed(ctx, 0); err != nil && ctx.Err() == nil {
			m.log.Warn("state: compacting the change feed", "err", err)
		} else if err == nil {
			m.log.Debug("state: change feed compacted", "oldest_revision", oldest)
		}
	}
}
