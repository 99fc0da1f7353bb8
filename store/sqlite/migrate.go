package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// migrate applies every pending migration of the spec's migrations directory
// to db, versioned in the spec's goose table (goose's default when empty).
func migrate(ctx context.Context, db *sql.DB, spec dbSpec) error {
	sub, err := fs.Sub(spec.migrations, spec.migrationsDir)
	if err != nil {
		return fmt.Errorf("store/sqlite: %smigrations: %w", spec.prefix(), err)
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if spec.versionTable != "" {
		opts = append(opts, goose.WithTableName(spec.versionTable))
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, sub, opts...)
	if err != nil {
		return fmt.Errorf("store/sqlite: %smigrations: %w", spec.prefix(), err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("store/sqlite: migrate%s: %w", spec.suffix(), err)
	}
	return nil
}
