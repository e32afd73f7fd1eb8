package auth_test

import (
	"context"
	"testing"
	"time"

	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/users"
)

// DeleteExpired removes sessions past their expiry and only those.
func TestDeleteExpiredSessions(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		clock := newTestClock()
		us := users.NewStore(db, clock.Now, nil)
		s := auth.NewSessions(db, clock.Now, time.Hour, nil)
		u, err := us.Create(ctx, users.NewUser{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		old, _, err := s.Issue(ctx, u.ID, auth.Origin{Method: auth.MethodEmail})
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(50 * time.Minute)
		live, _, err := s.Issue(ctx, u.ID, auth.Origin{Method: auth.MethodEmail})
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(20 * time.Minute) // old is 70 min old, live 20
		n, err := s.DeleteExpired(ctx)
		if err != nil || n != 1 {
			t.Fatalf("DeleteExpired = %d, %v; want 1", n, err)
		}
		var left int64
		if err := db.Model(&auth.Session{}).Count(&left).Error; err != nil || left != 1 {
			t.Fatalf("%d sessions left, %v; want 1", left, err)
		}
		if _, err := s.Check(ctx, live); err != nil {
			t.Fatalf("the live session: %v", err)
		}
		if _, err := s.Check(ctx, old); err == nil {
			t.Fatal("the expired session still checks")
		}
	})
}
