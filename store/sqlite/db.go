package sqlite

// The part of a store that the key/value store (Store) and the event store
// (StreamStore) share: the data directory's lock, the database file's writer
// handle (one connection, for the store's writer goroutine) and reader pool
// (query_only), the goose migrations, the background checkpointer
// (checkpoint.go) and the close sequence. Each store keeps its own schema,
// statements, writer goroutine and methods.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/agentstate/agentstate/store"
)

// dbSpec names one store's files, migrations and error-message label.
type dbSpec struct {
	fileName      string // database file in the data directory
	lockName      string // lock file beside it
	migrations    fs.FS
	migrationsDir string // directory of the migrations in migrations
	versionTable  string // goose version table; "" is goose's default
	label         string // "" or e.g. "streams", in error messages
}

// prefix and suffix return the label as a word before or after another.
func (sp dbSpec) prefix() string {
	if sp.label == "" {
		return ""
	}
	return sp.label + " "
}

func (sp dbSpec) suffix() string {
	if sp.label == "" {
		return ""
	}
	return " " + sp.label
}

// dbOptions are the options (defaults already set) that openDB uses.
type dbOptions struct {
	synchronous        string
	readConns          int
	busyTimeout        time.Duration
	checkpointInterval time.Duration
}

// setCommonDefaults normalizes and defaults the options that Options and
// StreamOptions share.
func setCommonDefaults(synchronous *string, maxBatch, maxBatchBytes, readConns *int,
	busyTimeout, checkpointInterval *time.Duration, now *func() time.Time) error {
	*synchronous = strings.ToUpper(strings.TrimSpace(*synchronous))
	switch *synchronous {
	case "":
		*synchronous = DefaultSynchronous
	case "FULL", "EXTRA", "NORMAL":
	default:
		return fmt.Errorf("store/sqlite: synchronous %q: want FULL, EXTRA or NORMAL: %w", *synchronous, store.ErrInvalid)
	}
	if *maxBatch <= 0 {
		*maxBatch = DefaultMaxBatch
	}
	if *maxBatchBytes <= 0 {
		*maxBatchBytes = DefaultMaxBatchBytes
	}
	if *readConns <= 0 {
		*readConns = max(4, 2*runtime.GOMAXPROCS(0))
	}
	if *busyTimeout <= 0 {
		*busyTimeout = DefaultBusyTimeout
	}
	if *checkpointInterval <= 0 {
		*checkpointInterval = DefaultCheckpointInterval
	}
	if *now == nil {
		*now = time.Now
	}
	return nil
}

// sqliteDB is one open database file of a store.
type sqliteDB struct {
	spec dbSpec
	opts dbOptions
	path string
	lock *os.File // flock on spec.lockName

	wdb *sql.DB // writer handle: one connection, used only by the writer goroutine
	rdb *sql.DB // reader pool (query_only)

	quit chan struct{} // closed by Close: the writer stops taking requests

	ckptKick chan struct{} // the writer committed new WAL frames
	ckptDone chan struct{} // closed when the checkpointer has exited

	checkpoints atomic.Int64 // background checkpoints run

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// openDB creates dir if needed, locks it, opens the writer handle, applies
// pending migrations and opens the reader pool. The checkpointer is started
// by startCheckpointer once the store is ready. On error everything opened
// is closed again.
func openDB(ctx context.Context, dir string, spec dbSpec, o dbOptions) (*sqliteDB, error) {
	if dir == "" {
		return nil, fmt.Errorf("store/sqlite: empty data directory: %w", store.ErrInvalid)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("store/sqlite: create data directory: %w", err)
	}
	path, err := filepath.Abs(filepath.Join(dir, spec.fileName))
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, spec.lockName))
	if err != nil {
		return nil, err
	}
	d := &sqliteDB{
		spec:     spec,
		opts:     o,
		path:     path,
		lock:     lock,
		quit:     make(chan struct{}),
		ckptKick: make(chan struct{}, 1),
		ckptDone: make(chan struct{}),
	}
	if err := d.open(ctx); err != nil {
		d.closeDBs(nil)
		return nil, err
	}
	return d, nil
}

// dsn builds a file: URI for path carrying the driver's pragma parameters,
// which the driver applies to every connection it opens.
func dsn(path string, params url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: params.Encode()}
	return u.String()
}

func (d *sqliteDB) open(ctx context.Context) error {
	busy := fmt.Sprint(d.opts.busyTimeout.Milliseconds())

	wp := url.Values{}
	wp.Set("_busy_timeout", busy)
	wp.Set("_journal_mode", "WAL")
	wp.Set("_synchronous", d.opts.synchronous)
	wp.Set("_txlock", "immediate")
	wp.Add("_pragma", "foreign_keys(0)")
	wp.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", autocheckpointPages))
	wp.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", journalSizeLimit))
	wdb, err := sql.Open("sqlite", dsn(d.path, wp))
	if err != nil {
		return fmt.Errorf("store/sqlite: open %swriter: %w", d.spec.prefix(), err)
	}
	d.wdb = wdb
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)

	if err := migrate(ctx, wdb, d.spec); err != nil {
		return err
	}

	rp := url.Values{}
	rp.Set("_busy_timeout", busy)
	rp.Set("_query_only", "1")
	rdb, err := sql.Open("sqlite", dsn(d.path, rp))
	if err != nil {
		return fmt.Errorf("store/sqlite: open %sreaders: %w", d.spec.prefix(), err)
	}
	d.rdb = rdb
	rdb.SetMaxOpenConns(d.opts.readConns)
	rdb.SetMaxIdleConns(d.opts.readConns)
	rdb.SetConnMaxLifetime(0)
	rdb.SetConnMaxIdleTime(0)
	return nil
}

// startCheckpointer starts the background checkpointer.
func (d *sqliteDB) startCheckpointer() { go d.checkpointer() }

// shutdown marks the store closed, closes quit, waits for the writer
// (writerDone) and the checkpointer, then closes the store's own resources
// (closeOwn) and the databases. Calling it again returns the first result.
func (d *sqliteDB) shutdown(writerDone <-chan struct{}, closeOwn func() []error) error {
	d.closeOnce.Do(func() {
		d.closed.Store(true)
		close(d.quit)
		<-writerDone
		<-d.ckptDone
		d.closeErr = d.closeDBs(closeOwn())
	})
	return d.closeErr
}

// closeDBs closes the reader pool, the writer handle and the lock, after
// the store's own resources whose close errors are errs.
func (d *sqliteDB) closeDBs(errs []error) error {
	if d.rdb != nil {
		errs = append(errs, d.rdb.Close())
	}
	if d.wdb != nil {
		errs = append(errs, d.wdb.Close())
	}
	errs = append(errs, unlockDir(d.lock))
	d.lock = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store/sqlite: close%s: %w", d.spec.suffix(), err)
	}
	return nil
}

// readErr maps an error of the reader pool to the store's errors.
func (d *sqliteDB) readErr(ctx context.Context, what string, err error) error {
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound
	case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || isInterrupt(err)):
		return ctx.Err()
	case d.closed.Load():
		return store.ErrClosed
	}
	return fmt.Errorf("store/sqlite: %s: %w: %w", what, store.ErrUnavailable, err)
}

func isInterrupt(err error) bool {
	return err != nil && strings.Contains(err.Error(), "interrupt")
}
