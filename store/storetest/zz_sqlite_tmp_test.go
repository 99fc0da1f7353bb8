package storetest_test

// TEMPORARY: runs the suite against the SQLite store until store/sqlite calls it.

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate/store"
	"github.com/agentstate/agentstate/store/sqlite"
	"github.com/agentstate/agentstate/store/storetest"
)

func newSQLite(t testing.TB) store.Store {
	s, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestSQLiteTmp(t *testing.T)      { storetest.Run(t, newSQLite) }
func BenchmarkSQLiteTmp(b *testing.B) { storetest.RunBenchmarks(b, newSQLite) }
