package state_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/feed"
	"github.com/agentstate/agentstate/state"
	"github.com/agentstate/agentstate/store"
)

// A subscriber that stops reading is cut off with a resume point, never
// skipped silently, and resuming from it loses and repeats nothing — over
// the real embedded store.
func TestFeedSlowConsumerGetsResumeFrom(t *testing.T) {
	m := newManager(t, state.Options{FeedBuffer: 8})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sub, err := m.Subscribe(ctx, feed.SubscribeRequest{FromRevision: 0})
	require.NoError(t, err)
	defer sub.Close()
	// Attach live: the first event comes from the store or the hub.
	put(t, m, "local", "k", `0`)
	d, err := sub.Next(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, d.Revision)

	const total = 100
	for i := 1; i < total; i++ {
		put(t, m, "local", "k", fmt.Sprint(i))
	}
	seen := []int64{1}
	var lag *feed.LaggedError
	for {
		d, err := sub.Next(ctx)
		if err != nil {
			require.True(t, errors.As(err, &lag), "want a LaggedError, got %v", err)
			break
		}
		seen = append(seen, d.Revision)
	}
	require.Less(t, len(seen), total, "the consumer must have been cut off")
	require.Equal(t, seen[len(seen)-1], lag.ResumeFrom, "resume from the last revision delivered")
	require.ErrorIs(t, lag, store.ErrUnavailable)

	again, err := m.Subscribe(ctx, feed.SubscribeRequest{FromRevision: lag.ResumeFrom})
	require.NoError(t, err)
	defer again.Close()
	for len(seen) < total {
		d, err := again.Next(ctx)
		require.NoError(t, err)
		seen = append(seen, d.Revision)
	}
	for i, r := range seen {
		require.EqualValues(t, i+1, r, "every revision once, in order")
	}
}

// Compaction by retention: events older than the retention go, the newest
// stays, and a subscriber from before the oldest kept revision is told.
func TestFeedRetention(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	m := newManager(t, state.Options{Now: clock, FeedRetention: time.Hour, CompactInterval: -1})
	for i := 0; i < 5; i++ {
		_, err := m.Put(bg, state.PutRequest{AgentID: "a1", Tier: "persistent", Key: "k", Value: json.RawMessage(fmt.Sprint(i))})
		require.NoError(t, err)
	}
	oldest, err := m.CompactFeed(bg, 0)
	require.NoError(t, err)
	require.EqualValues(t, 1, oldest, "nothing is older than the retention yet")

	now = now.Add(2 * time.Hour)
	oldest, err = m.CompactFeed(bg, 0)
	require.NoError(t, err)
	require.EqualValues(t, 5, oldest, "all but the newest revision compacted")
	_, err = m.Subscribe(bg, feed.SubscribeRequest{FromRevision: 1})
	var ce *store.CompactedError
	require.ErrorAs(t, err, &ce)
	require.EqualValues(t, 5, ce.OldestRevision)
	// History within the tier's limit is untouched by compaction.
	h, err := m.History(bg, state.HistoryRequest{AgentID: "a1", Tier: "persistent", Key: "k"})
	require.NoError(t, err)
	require.Len(t, h.Versions, 5)
}
