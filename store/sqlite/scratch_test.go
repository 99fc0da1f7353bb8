package sqlite

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/agentstate/agentstate/store"
	"modernc.org/sqlite"
)

func TestScratchFrames(t *testing.T) {
	s := openTest(t, Options{})
	var wg sync.WaitGroup
	start := time.Now()
	for g := range 64 {
		wg.Go(func() {
			for i := range 30 {
				op := store.WriteOp{Kind: store.OpPut, Value: benchValue, Checksum: "sha256:bench", CreatedBy: "bench",
					HistoryLimit: 20, Key: store.Key{AgentID: "agent-1", Tier: "local", Key: fmt.Sprintf("g%02d/k%04d", g, i%1000)}}
				if _, err := s.Write(context.Background(), store.WriteRequest{Ops: []store.WriteOp{op}}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	fi, _ := os.Stat(s.Path() + "-wal")
	st := s.Stats()
	t.Logf("wal %d bytes = %d frames, %d txns, %.1f frames/txn, %.1f writes/txn, %v, commit %v/txn", fi.Size(), fi.Size()/4120, st.Batches, float64(fi.Size()/4120)/float64(st.Batches), float64(st.Requests)/float64(st.Batches), el, time.Duration(DebugCommitNs.Load()/st.Batches))
}

func init() {
	if os.Getenv("FDATASYNC") != "" {
		sqlite.Fdatasync(true)
	}
}
