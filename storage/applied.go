package storage

import (
	"context"
	"fmt"
)

// migrationsTable is where gormigrate records the applied migrations.
const migrationsTable = "schema_migrations"

// AppliedMigrations returns the IDs of the migrations recorded as applied,
// oldest first; none on a database never migrated.
func (db *DB) AppliedMigrations(ctx context.Context) ([]string, error) {
	tx := db.WithContext(ctx)
	if !tx.Migrator().HasTable(migrationsTable) {
		return nil, nil
	}
	var ids []string
	if err := tx.Table(migrationsTable).Order("id").Pluck("id", &ids).Error; err != nil {
		return nil, fmt.Errorf("storage: read applied migrations: %w", err)
	}
	return ids, nil
}
