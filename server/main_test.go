package server

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test leaves no goroutine behind: SSE loops, WebSocket pumps and
// writers, the engine's hub and reaper all stop.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
