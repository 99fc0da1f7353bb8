// Package sqlite is agentstate's embedded store: the store.Store contract on
// one SQLite database file (dir/agentstate.db), no server needed.
//
// It owns the schema (goose migrations embedded under migrations/), the
// translation of the store contract into SQL (dense versions, compare-and-set,
// tombstones, expiry, history pruning, point-in-time reads, the change feed)
// and group commit.
//
// Why SQLite: the modernc.org/sqlite driver is pure Go (static binary, no
// cgo), it is durable on acknowledgement (WAL with synchronous=FULL), and it
// has the same SQL model as the production PostgreSQL store, so both stores
// share one schema design. Measured on this project's 2-core machines
// (/work/shared/DEPENDENCIES.md): ~9-10k durable commits/s with one write per
// transaction, ~60k writes/s with 100 writes per transaction, ~70-80k random
// reads/s. Rowid tables are used on purpose (WITHOUT ROWID measured 2.5x
// slower for ~500 B rows).
//
// Concurrency: two database/sql handles on the same file. The writer handle
// has exactly one connection, owned by one goroutine that drains every queued
// WriteRequest into one transaction (group commit: one fsync for many
// writers); each request runs inside its own SAVEPOINT so a failing request is
// undone alone. Preconditions (compare-and-set, delete of an absent key) are
// all checked before a request writes anything. The reader handle is a pool
// of query_only connections; WAL gives them snapshot reads that never wait
// behind the writer. WAL checkpoints run in the background (checkpoint.go),
// not in the writer's COMMIT, and the writer caches current rows
// (cache.go). A flock on dir/agentstate.lock keeps a second store (in this
// or another process) off the same directory, since the writer's revision
// counter and row cache assume they are the only writer.
//
// Storage layout (migrations/00001_init.sql): every value is stored once, in
// its state_versions row, keyed by an integer key id (agent_states.id); a
// key's current state is its newest version row. agent_states only names the
// key and keeps the columns the list and reaper filters need, so a plain
// update writes one version row and nothing else. The version rows are also
// the change feed (events.go): history pruning only hides versions at once
// (keep_from), and a row is deleted when the feed is compacted past it too,
// by the writer for the key it writes or by CompactEvents. Requests of
// a batch run without savepoints; a database error in the middle of a request
// rolls the batch back and re-runs it with a savepoint per request.
//
// Measured on a 2-core machine with synchronous=FULL and ~400 B values
// (BenchmarkWrite): ~6-7k durable writes/s from one goroutine, ~31-40k/s from
// 64 goroutines at ~28 writes per transaction.
package sqlite

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentstate/agentstate/store"
)

// FileName is the database file created in the directory given to Open.
// LockFileName, beside it, is held locked while a Store is open.
const (
	FileName     = "agentstate.db"
	LockFileName = "agentstate.lock"
)

// Defaults of Options.
const (
	DefaultSynchronous   = "FULL"
	DefaultMaxBatch      = 256
	DefaultMaxBatchBytes = 1 << 20
	DefaultBusyTimeout   = 5 * time.Second
	DefaultRowCacheBytes = 8 << 20
	// DefaultCheckpointInterval is the minimum time between two background
	// checkpoints.
	DefaultCheckpointInterval = 50 * time.Millisecond
	// autocheckpointPages is the writer's own (fallback) automatic checkpoint
	// threshold in WAL pages; the background checkpointer normally keeps the
	// WAL far below it.
	autocheckpointPages = 10000
	// journalSizeLimit truncates the WAL file back to this size after a reset.
	journalSizeLimit = 64 << 20
)

// Options tune the store. The zero value is durable and sensible.
type Options struct {
	// Synchronous is SQLite's synchronous pragma: "FULL" (default; every
	// acknowledged write is on stable storage), "EXTRA", or "NORMAL" (opt-in,
	// faster: a power loss may lose the last acknowledged writes, though never
	// corrupts the database).
	Synchronous string
	// MaxBatch is the maximum number of write requests committed in one
	// transaction (default 256).
	MaxBatch int
	// MaxBatchBytes bounds the payload (values, metadata, keys) of one
	// transaction (default 1 MiB). A single larger request still commits alone.
	MaxBatchBytes int
	// ReadConns is the size of the reader pool (default max(4, 2*GOMAXPROCS)).
	ReadConns int
	// BusyTimeout is SQLite's busy_timeout (default 5s).
	BusyTimeout time.Duration
	// RowCacheBytes bounds the writer's cache of current rows (default 8 MiB;
	// negative disables it).
	RowCacheBytes int
	// CheckpointInterval is the minimum time between two background WAL
	// checkpoints (default 50ms).
	CheckpointInterval time.Duration
	// Now is the writer's clock: the commit time of a write (UpdatedAt, TTL
	// base, the expiry check of writes). Default time.Now; tests may inject a
	// fake clock so that it agrees with the Now they pass to reads.
	Now func() time.Time
}

func (o *Options) setDefaults() error {
	if err := setCommonDefaults(&o.Synchronous, &o.MaxBatch, &o.MaxBatchBytes, &o.ReadConns,
		&o.BusyTimeout, &o.CheckpointInterval, &o.Now); err != nil {
		return err
	}
	switch {
	case o.RowCacheBytes == 0:
		o.RowCacheBytes = DefaultRowCacheBytes
	case o.RowCacheBytes < 0:
		o.RowCacheBytes = 0
	}
	return nil
}

func (o *Options) dbOptions() dbOptions {
	return dbOptions{synchronous: o.Synchronous, readConns: o.ReadConns,
		busyTimeout: o.BusyTimeout, checkpointInterval: o.CheckpointInterval}
}

// storeSpec names the key/value store's files and migrations.
var storeSpec = dbSpec{fileName: FileName, lockName: LockFileName,
	migrations: migrationsFS, migrationsDir: "migrations"}

// Store is the SQLite implementation of store.Store. It is safe for
// concurrent use.
type Store struct {
	*sqliteDB // files, lock, writer and reader handles, checkpointer, closing

	opts Options
	w    *writer

	queue chan *writeReq
	done  chan struct{} // closed when the writer goroutine has exited

	compactQ chan *compactReq // CompactEvents, for the writer goroutine

	committed atomic.Int64 // revision of the latest committed request
	oldest    atomic.Int64 // the feed's oldest kept revision

	// commitCh is closed (and replaced) at the next commit when someone
	// waits for it (commitWaited), see WaitCommit.
	commitMu     sync.Mutex
	commitCh     chan struct{}
	commitWaited bool

	stats struct {
		batches  atomic.Int64 // committed transactions that wrote something
		requests atomic.Int64 // committed requests that took a revision
	}

	rs readStmts
}

var _ store.Store = (*Store)(nil)

// Stats are counters of the writer, for metrics and tests.
type Stats struct {
	// Batches is the number of committed write transactions (one fsync each).
	Batches int64
	// Requests is the number of committed WriteRequests that took a revision.
	Requests int64
	// Checkpoints is the number of background WAL checkpoints run.
	Checkpoints int64
}

// Stats returns the writer's counters.
func (s *Store) Stats() Stats {
	return Stats{Batches: s.stats.batches.Load(), Requests: s.stats.requests.Load(),
		Checkpoints: s.checkpoints.Load()}
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Open opens (creating if needed) the store in dir, applies pending schema
// migrations and starts the writer.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	db, err := openDB(ctx, dir, storeSpec, opts.dbOptions())
	if err != nil {
		return nil, err
	}
	s := &Store{
		sqliteDB: db,
		opts:     opts,
		queue:    make(chan *writeReq, 2*opts.MaxBatch),
		done:     make(chan struct{}),

		compactQ: make(chan *compactReq),
		commitCh: make(chan struct{}),
	}
	if err := s.open(ctx); err != nil {
		s.closeDBs(s.closeOwn())
		return nil, err
	}
	go s.w.run()
	s.startCheckpointer()
	return s, nil
}

func (s *Store) open(ctx context.Context) error {
	if err := s.rs.prepare(ctx, s.rdb); err != nil {
		return err
	}
	w, err := newWriter(ctx, s)
	if err != nil {
		return err
	}
	s.w = w
	s.committed.Store(w.rev)
	s.oldest.Store(w.oldest)
	return nil
}

// Close stops the writer (requests not yet taken into a transaction fail
// with store.ErrClosed; a transaction being committed completes), then
// closes the database. Calling Close again returns the first result.
func (s *Store) Close() error {
	return s.shutdown(s.done, s.closeOwn)
}

// closeOwn closes the read statements and the writer.
func (s *Store) closeOwn() []error {
	var errs []error
	s.rs.close()
	if s.w != nil {
		errs = append(errs, s.w.close())
	}
	return errs
}

// CurrentRevision returns the revision of the latest committed request.
func (s *Store) CurrentRevision(ctx context.Context) (int64, error) {
	if s.closed.Load() {
		return 0, store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return s.committed.Load(), nil
}

// Ping checks that the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	var one int
	if err := s.rdb.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return s.readErr(ctx, "ping", err)
	}
	return nil
}

// unixNano converts a stored time to a UTC time.Time (no monotonic reading).
func unixNano(n int64) time.Time { return time.Unix(0, n).UTC() }

// ExpireCreatedBy is the created_by of an expire tombstone that a write to
// an expired key records on the reaper's behalf.
const ExpireCreatedBy = "system:reaper"
