package sqlite

import (
	"context"
	"time"
)

// checkpointer copies committed WAL frames into the database file from its
// own goroutine and connection, so that the writer's COMMIT never pays for a
// checkpoint (measured: with SQLite's automatic checkpoint in the commit path,
// group-commit throughput roughly halves). The writer signals it after each
// commit; it runs a PASSIVE checkpoint (which never blocks the writer or the
// readers) at most once per CheckpointInterval. The writer keeps SQLite's
// automatic checkpoint at a high threshold as a safety net.
func (d *sqliteDB) checkpointer() {
	defer close(d.ckptDone)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		select {
		case <-d.ckptKick:
		case <-d.quit:
			return
		}
		d.checkpoint(context.Background())
		timer.Reset(d.opts.checkpointInterval)
		select {
		case <-timer.C:
		case <-d.quit:
			return
		}
	}
}

// checkpoint runs one PASSIVE checkpoint on a reader connection (a
// checkpoint is allowed on a query_only connection). Errors are not fatal:
// the next commit kicks another attempt, and the writer's automatic
// checkpoint remains as a fallback.
func (d *sqliteDB) checkpoint(ctx context.Context) (busy, logFrames, checkpointed int64, err error) {
	err = d.rdb.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &checkpointed)
	if err == nil {
		d.checkpoints.Add(1)
	}
	return busy, logFrames, checkpointed, err
}

// kickCheckpoint tells the checkpointer that new frames were committed.
func (d *sqliteDB) kickCheckpoint() {
	select {
	case d.ckptKick <- struct{}{}:
	default:
	}
}
