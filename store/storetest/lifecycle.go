package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
)

func testLifecycle(t *testing.T, newStore factory) {
	t.Run("Ping", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.Ping(t.Context()), "Ping on a fresh store")
	})

	t.Run("CanceledContext", func(t *testing.T) {
		// A Write may notice the cancelled context or not; if it returns an
		// error, it must have written nothing.
		s := newStore(t)
		k := key("k")
		mustPut(t, s, k, `1`)
		before := takeSnapshot(t, s, k)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		res, err := s.Write(ctx, store.WriteRequest{Ops: []store.WriteOp{putOp(k, `2`)}})
		if err != nil {
			require.ErrorIs(t, err, context.Canceled, "a Write failing on a cancelled context reports it")
			requireUnchanged(t, s, before, "a Write that failed on a cancelled context")
			return
		}
		require.Equal(t, before.revision+1, res.Revision, "a Write that succeeded despite the cancelled context")
		requireValue(t, []byte(`2`), mustGet(t, s, k).Value, "Get")
	})

	t.Run("Closed", func(t *testing.T) {
		// Calls after Close fail with ErrClosed. (newStore's cleanup closes
		// the store again afterwards.)
		s := newStore(t)
		k := key("k")
		mustPut(t, s, k, `1`)
		require.NoError(t, s.Close(), "Close")
		ctx := t.Context()
		calls := []struct {
			name string
			call func() error
		}{
			{"Ping", func() error { return s.Ping(ctx) }},
			{"Write", func() error {
				_, err := s.Write(ctx, store.WriteRequest{Ops: []store.WriteOp{putOp(k, `2`)}})
				return err
			}},
			{"Get", func() error { _, err := s.Get(ctx, store.GetRequest{Key: k}); return err }},
			{"BatchGet", func() error { _, err := s.BatchGet(ctx, []store.Key{k}, time.Now()); return err }},
			{"List", func() error {
				_, err := s.List(ctx, store.ListRequest{AgentID: agent, Tier: tier, Limit: 10})
				return err
			}},
			{"History", func() error { _, err := s.History(ctx, store.HistoryRequest{Key: k, Limit: 10}); return err }},
			{"ExpiredKeys", func() error { _, err := s.ExpiredKeys(ctx, time.Now(), 10); return err }},
			{"CurrentRevision", func() error { _, err := s.CurrentRevision(ctx); return err }},
		}
		for _, c := range calls {
			require.ErrorIs(t, c.call(), store.ErrClosed, "%s after Close", c.name)
		}
	})
}
