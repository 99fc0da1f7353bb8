package client

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: a
// watcher's connection or backoff left behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
