package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
)

// A SQLite path whose folder does not exist is an error naming the path;
// the folder is not created (a typo would otherwise put the data where
// nobody looks).
func TestOpenSQLiteRefusesMissingFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "no-such-folder")
	path := filepath.Join(dir, "walletauth.db")
	db, err := storage.Open(context.Background(), "sqlite://"+path, storage.Options{})
	if err == nil {
		_ = db.Close()
		t.Fatal("Open of a SQLite file in a missing folder succeeded")
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("error %q does not say that the folder of %s does not exist", err, path)
	}
	if strings.Contains(err.Error(), "storage:") {
		t.Errorf("error %q carries a Go package prefix", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the missing folder was created (stat: %v)", err)
	}
}

func TestAppliedMigrations(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		got, err := db.AppliedMigrations(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, m := range storage.Migrations() {
			want = append(want, m.ID)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("AppliedMigrations = %q, want %q", got, want)
		}
	})
	db, err := storage.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "fresh.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got, err := db.AppliedMigrations(context.Background()); err != nil || len(got) != 0 {
		t.Errorf("AppliedMigrations of a fresh database = %q, %v; want none", got, err)
	}
}
