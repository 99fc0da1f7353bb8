package storetest

import (
	"testing"

	"github.com/agentstate/agentstate/store"
)

// The suite runs against its in-memory reference store, which tests the
// suite itself.
func newMemTestStore(t testing.TB) store.Store {
	s := newMemStore()
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestMemStore(t *testing.T) { Run(t, newMemTestStore) }

func BenchmarkMemStore(b *testing.B) { RunBenchmarks(b, newMemTestStore) }
