package feed

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/agentstate/agentstate/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startHub runs a hub over src until the test ends.
func startHub(t testing.TB, src Source, opts Options) *Hub {
	t.Helper()
	h := NewHub(src, opts)
	ctx := context.WithValue(context.Background(), hubCtxKey{}, true)
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		_ = h.Close()
		// ErrHubClosed: Close came before Run started.
		if err := <-done; err != nil && !errors.Is(err, ErrHubClosed) {
			t.Errorf("Run: %v", err)
		}
	})
	return h
}

func subscribe(t testing.TB, h *Hub, req SubscribeRequest) *Subscription {
	t.Helper()
	// Subscribe's context scopes the subscription: not a timeout here.
	s, err := h.Subscribe(context.Background(), req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func next(t testing.TB, s *Subscription) (Delivery, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := s.Next(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next: no delivery within 10s")
	}
	return d, err
}

func evID(e *store.Event) string {
	return fmt.Sprintf("%d-%d %s v%d %s", e.Revision, e.Index, e.Key, e.Version, e.ChangeType)
}

func ids(evs []store.Event) []string {
	out := make([]string, len(evs))
	for i := range evs {
		out[i] = evID(&evs[i])
	}
	return out
}

// expectExactly reads len(want) events from s, checks they are want in
// order, and that nothing more arrives shortly after.
func expectExactly(t testing.TB, s *Subscription, want []store.Event) {
	t.Helper()
	got := make([]store.Event, 0, len(want))
	for len(got) < len(want) {
		d, err := next(t, s)
		require.NoError(t, err, "after %d of %d events", len(got), len(want))
		require.Equal(t, KindEvent, d.Kind)
		got = append(got, *d.Event)
	}
	require.Equal(t, ids(want), ids(got))
	expectNothing(t, s)
}

// expectNothing checks no delivery arrives within a short time.
func expectNothing(t testing.TB, s *Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	d, err := s.Next(ctx)
	if err == nil {
		t.Fatalf("unexpected delivery %v rev %d", d.Kind, d.Revision)
	}
	require.ErrorIs(t, err, context.DeadlineExceeded)
}
