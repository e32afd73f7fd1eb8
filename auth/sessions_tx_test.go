package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/cache"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/users"
)

// A session issued in a transaction is cached once the transaction has
// committed (Committed), so its first check reads nothing; never one whose
// transaction rolled back, nor one raced by a revocation.
func TestTxIssueCachesAfterCommit(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		u, err := users.NewStore(db, nil, nil).Create(ctx, users.NewUser{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		bus := cache.NewLocalBus()
		sc := NewMemorySessionCache(bus, 1<<20, time.Minute, time.Now)
		s := NewSessions(db, nil, time.Hour, sc)
		// cachedOnly: the token checks out with its row gone from the
		// database, which only the cache can answer.
		// It must also answer what the row said.
		cachedOnly := func(tok string) bool {
			t.Helper()
			h := HashToken(tok)
			var row Session
			err := db.Where("token_hash = ?", h[:]).Take(&row).Error
			if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
				t.Fatal(err)
			}
			if err := db.Where("token_hash = ?", h[:]).Delete(&Session{}).Error; err != nil {
				t.Fatal(err)
			}
			got, err := s.Check(ctx, tok)
			if err != nil && !errors.Is(err, api.ErrUnauthorized) {
				t.Fatal(err)
			}
			if err == nil && (got.UserID != u.ID || got.ExpiresAt == nil || row.ExpiresAt == nil || !got.ExpiresAt.Equal(*row.ExpiresAt)) {
				t.Fatalf("cached session %+v, want user %s expiring at %v", got, u.ID, row.ExpiresAt)
			}
			return err == nil
		}
		issueIn := func(ti *TxIssue, rollback bool) string {
			t.Helper()
			var tok string
			err := db.Transaction(func(tx *gorm.DB) error {
				var err error
				if tok, _, err = ti.Issue(ctx, tx, u.ID); err != nil {
					return err
				}
				if rollback {
					return errors.New("roll back")
				}
				return nil
			})
			if rollback != (err != nil) {
				t.Fatalf("transaction: %v", err)
			}
			return tok
		}

		ti := s.NewTxIssue(Origin{Method: MethodEmail})
		tok := issueIn(ti, false)
		ti.Committed()
		if !cachedOnly(tok) {
			t.Fatal("a committed session was not cached")
		}

		// Two attempts, the first rolled back: only the last is cached.
		ti = s.NewTxIssue(Origin{Method: MethodEmail})
		lost := issueIn(ti, true)
		tok = issueIn(ti, false)
		ti.Committed()
		if cachedOnly(lost) {
			t.Fatal("the session of a rolled-back attempt was cached")
		}
		if !cachedOnly(tok) {
			t.Fatal("the committed attempt's session was not cached")
		}

		// A revocation between the start and the commit keeps it out.
		ti = s.NewTxIssue(Origin{Method: MethodEmail})
		tok = issueIn(ti, false)
		if err := sc.ForgetUser(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		ti.Committed()
		if cachedOnly(tok) {
			t.Fatal("a session raced by a revocation was cached")
		}
	})
}
