package streamtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
)

// Bounds of the WaitAppend cases: how long a waiter must stay blocked, and
// how long a wake-up may take at most.
const (
	blockedFor = 50 * time.Millisecond
	wakeWithin = 5 * time.Second
)

func testWaitAppend(t *testing.T, newStore factory) {
	t.Run("AlreadyPast", func(t *testing.T) {
		s := newStore(t)
		mustAppend(t, s, "s", anyVersion, evs("e", 1)...)
		mustAppend(t, s, "s", anyVersion, evs("e", 1)...)
		for _, after := range []int64{0, 1} {
			pos, err := s.WaitAppend(t.Context(), after)
			require.NoError(t, err, "WaitAppend after %d", after)
			require.Equal(t, int64(2), pos, "WaitAppend after %d returns the current position", after)
		}
	})

	cases := []struct {
		name    string
		prior   int // appends before waiting
		waiters int
	}{
		// The first append of a store wakes a waiter for position > 0.
		{name: "empty store", prior: 0, waiters: 1},
		{name: "one waiter", prior: 2, waiters: 1},
		// One append wakes every waiter.
		{name: "many waiters", prior: 1, waiters: 8},
	}
	for _, tc := range cases {
		t.Run("Wakes/"+tc.name, func(t *testing.T) {
			s := newStore(t)
			for range tc.prior {
				mustAppend(t, s, "s", anyVersion, evs("e", 1)...)
			}
			after := int64(tc.prior)
			type woke struct {
				pos int64
				err error
			}
			results := make(chan woke, tc.waiters)
			var wg sync.WaitGroup
			t.Cleanup(wg.Wait)
			for range tc.waiters {
				wg.Go(func() {
					pos, err := s.WaitAppend(t.Context(), after)
					results <- woke{pos, err}
				})
			}
			select {
			case w := <-results:
				t.Fatalf("WaitAppend after %d returned %d, %v before any append", after, w.pos, w.err)
			case <-time.After(blockedFor):
			}
			res := mustAppend(t, s, "s", anyVersion, evs("wake", 2)...)
			timeout := time.After(wakeWithin)
			for i := range tc.waiters {
				select {
				case w := <-results:
					require.NoError(t, w.err, "waiter %d", i)
					require.GreaterOrEqual(t, w.pos, res.Position, "waiter %d: the position of the append or later", i)
				case <-timeout:
					t.Fatalf("waiter %d not woken within %s by the append at position %d", i, wakeWithin, res.Position)
				}
			}
			wg.Wait()
		})
	}

	t.Run("HonoursContext", func(t *testing.T) {
		s := newStore(t)
		mustAppend(t, s, "s", anyVersion, evs("e", 1)...)

		ctx, cancel := context.WithTimeout(t.Context(), blockedFor)
		defer cancel()
		start := time.Now()
		_, err := s.WaitAppend(ctx, 1)
		require.ErrorIs(t, err, context.DeadlineExceeded, "WaitAppend with nothing to wait for ends with its context")
		require.Less(t, time.Since(start), wakeWithin, "WaitAppend returned long after its deadline")

		ctx, cancel = context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := s.WaitAppend(ctx, 1)
			done <- err
		}()
		time.Sleep(blockedFor / 5)
		cancel()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled, "a cancelled WaitAppend")
		case <-time.After(wakeWithin):
			t.Fatal("WaitAppend ignored the cancellation of its context")
		}

		// The store still works and wakes later waiters.
		res := mustAppend(t, s, "s", anyVersion, evs("e", 1)...)
		pos, err := s.WaitAppend(t.Context(), 1)
		require.NoError(t, err)
		require.Equal(t, res.Position, pos)
	})

	t.Run("PositionVisibleToReads", func(t *testing.T) {
		// Once WaitAppend reports a position, ReadAll returns its append.
		s := newStore(t)
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() {
			for range 5 {
				if _, err := s.Append(context.Background(), store.AppendRequest{StreamID: "s", Events: evs("e", 2)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
		ctx, cancel := context.WithTimeout(t.Context(), wakeWithin)
		defer cancel()
		var after int64
		for after < 5 {
			pos, err := s.WaitAppend(ctx, after)
			require.NoError(t, err)
			got, err := s.ReadAll(t.Context(), "", after, 1000)
			require.NoError(t, err)
			require.NotEmpty(t, got, "WaitAppend reported %d after %d but ReadAll sees nothing", pos, after)
			require.GreaterOrEqual(t, got[len(got)-1].Position, pos, "ReadAll sees the reported position")
			after = got[len(got)-1].Position
		}
	})
}
