package auth_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/users"
)

// Sweep deletes expired sessions on its own, every period, until its
// context ends.
func TestSweepDeletesExpiredSessions(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		clock := newTestClock()
		us := users.NewStore(db, clock.Now, nil)
		s := auth.NewSessions(db, clock.Now, time.Hour, nil)
		u, err := us.Create(ctx, users.NewUser{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Issue(ctx, u.ID, auth.Origin{Method: auth.MethodEmail}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Hour)
		sweepCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.Sweep(sweepCtx, time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
		}()
		count := func() int64 {
			var n int64
			if err := db.Model(&auth.Session{}).Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}
		for deadline := time.Now().Add(10 * time.Second); count() != 0; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the expired session is still there: Sweep did not delete it")
			}
		}
		stop()
		<-done // Sweep returns when its context ends
	})
}
