package sqlite_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
	"github.com/agentstate/agentstate/store/sqlite"
	"github.com/agentstate/agentstate/store/storetest"
)

// newStore opens a fresh store in a temporary directory, closed at cleanup.
func newStore(t testing.TB) store.Store {
	s, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// TestConformance runs the store contract's conformance suite.
func TestConformance(t *testing.T) {
	storetest.Run(t, newStore)
}

// BenchmarkConformance runs the benchmarks shared by every store.
func BenchmarkConformance(b *testing.B) {
	storetest.RunBenchmarks(b, newStore)
}
