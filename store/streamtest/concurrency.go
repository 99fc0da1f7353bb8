package streamtest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
)

// Sized for a 2-core machine: enough goroutines to share transactions,
// few enough appends to stay quick on a store that syncs every commit.
const (
	racers        = 8
	raceRounds    = 10
	appenders     = 16
	appendsEach   = 15
	appendStreams = 4
)

func testConcurrency(t *testing.T, newStore factory) {
	t.Run("SameExpectedVersionOneWins", func(t *testing.T) {
		// Each round, racers goroutines append to one stream expecting its
		// current version (ExpectNoStream in the first round): exactly one
		// wins, every other fails with the winner's version as current.
		s := newStore(t)
		const stream = "race"
		expected := store.ExpectNoStream
		for round := range raceRounds {
			type outcome struct {
				racer int
				res   *store.AppendResult
				err   error
			}
			outcomes := make([]outcome, racers)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for r := range racers {
				wg.Go(func() {
					<-start
					res, err := s.Append(t.Context(), store.AppendRequest{StreamID: stream, ExpectedVersion: ver(expected),
						Events: []store.NewStreamEvent{ev("won", fmt.Sprintf(`{"round":%d,"racer":%d}`, round, r))}})
					outcomes[r] = outcome{r, res, err}
				})
			}
			close(start)
			wg.Wait()
			winner := -1
			for _, o := range outcomes {
				if o.err == nil {
					require.Equal(t, -1, winner, "round %d: racers %d and %d both won", round, winner, o.racer)
					winner = o.racer
					require.Equal(t, expected+1, o.res.NextVersion, "round %d: the winner's NextVersion", round)
				}
			}
			require.NotEqual(t, -1, winner, "round %d: nobody won", round)
			for _, o := range outcomes {
				if o.racer != winner {
					requireWrongVersion(t, o.err, stream, expected, expected+1)
				}
			}
			got := readStream(t, s, stream)
			require.Len(t, got, round+1, "round %d: one event per round", round)
			requireJSON(t, fmt.Sprintf(`{"round":%d,"racer":%d}`, round, winner), got[round].Data,
				fmt.Sprintf("round %d: the winner's event", round))
			expected++
		}
	})

	t.Run("SameEventIDOneWins", func(t *testing.T) {
		// Racing appends to different streams with one event id: one wins,
		// the others fail with ErrInvalid, even within one transaction.
		s := newStore(t)
		errs := make([]error, racers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for r := range racers {
			wg.Go(func() {
				<-start
				_, errs[r] = s.Append(t.Context(), store.AppendRequest{StreamID: fmt.Sprintf("id-race-%d", r),
					Events: []store.NewStreamEvent{withID("contested")}})
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for r, err := range errs {
			if err == nil {
				won++
				continue
			}
			require.ErrorIs(t, err, store.ErrInvalid, "racer %d", r)
		}
		require.Equal(t, 1, won, "exactly one append with the contested id commits")
		require.Len(t, readAll(t, s, ""), 1, "one event stored")
	})

	t.Run("AnyVersionDense", func(t *testing.T) {
		// Many goroutines append 1-3 events at a time, without expectation,
		// to a few streams: every append commits; positions are 1..N, one
		// per append; each stream's versions are dense from 0 in position
		// order; every result names its events.
		s := newStore(t)
		type appended struct {
			stream string
			n      int
			tag    string
			res    *store.AppendResult
		}
		var (
			mu   sync.Mutex
			done []appended
			errs []error
			wg   sync.WaitGroup
		)
		start := make(chan struct{})
		for g := range appenders {
			wg.Go(func() {
				<-start
				for i := range appendsEach {
					a := appended{stream: fmt.Sprintf("multi-%d", (g+i)%appendStreams), n: 1 + (g+i)%3,
						tag: fmt.Sprintf("g%d-%d", g, i)}
					res, err := s.Append(t.Context(), store.AppendRequest{StreamID: a.stream, Events: evs(a.tag, a.n)})
					mu.Lock()
					if err != nil {
						errs = append(errs, fmt.Errorf("appender %d, append %d: %w", g, i, err))
					} else {
						a.res = res
						done = append(done, a)
					}
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		require.NoError(t, errors.Join(errs...))
		require.Len(t, done, appenders*appendsEach)

		// Positions of the results: exactly 1..N.
		positions := make([]int64, len(done))
		for i, a := range done {
			positions[i] = a.res.Position
		}
		slices.Sort(positions)
		for i, p := range positions {
			require.Equal(t, int64(i+1), p, "positions are dense from 1 and unique")
		}

		all := readAll(t, s, "")
		requireWholeAppends(t, all, "ReadAll")
		byPos := map[int64][]store.StreamEvent{}
		for _, e := range all {
			byPos[e.Position] = append(byPos[e.Position], e)
		}
		require.Len(t, byPos, len(done), "one position per append")
		for _, a := range done {
			got := byPos[a.res.Position]
			require.Len(t, got, a.n, "append %s: its events at its position", a.tag)
			for i, e := range got {
				require.Equal(t, a.stream, e.StreamID, "append %s", a.tag)
				require.Equal(t, a.tag, e.Type, "append %s: position %d holds another append's events", a.tag, a.res.Position)
				require.Equal(t, a.res.NextVersion-int64(a.n-1-i), e.Version, "append %s event %d: version", a.tag, i)
			}
		}
		next := map[string]int64{}
		for _, e := range all {
			require.Equal(t, next[e.StreamID], e.Version, "stream %s: versions dense in position order", e.StreamID)
			next[e.StreamID]++
		}
		for stream, n := range next {
			got := readStream(t, s, stream)
			require.Len(t, got, int(n), "ReadStream %s agrees with ReadAll", stream)
		}
	})
}
