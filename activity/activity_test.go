package activity_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/walletauth/walletauth/activity"
	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/internal/clocktest"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/users"
)

func newUser(t *testing.T, db *storage.DB, now func() time.Time) string {
	t.Helper()
	u, err := users.NewStore(db, now, nil).Create(context.Background(), users.NewUser{}, nil)
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	return u.ID
}

// A hostile User-Agent (NUL, control characters, invalid UTF-8, too long)
// is stored cleaned on both backends, never refused.
func TestRecordCleansUserAgent(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		clock := clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		l := activity.New(db, clock.Now)
		uid := newUser(t, db, clock.Now)
		ua := "evil\x00agent\x1b[31m\xff" + strings.Repeat("é", 400)
		if err := l.RecordAlone(context.Background(), activity.Event{UserID: uid, Type: activity.LoginFailed, UserAgent: ua, Method: "email", IP: "192.0.2.1"}); err != nil {
			t.Fatalf("RecordAlone: %v", err)
		}
		p, err := l.List(context.Background(), uid, 10, "")
		if err != nil || len(p.Events) != 1 {
			t.Fatalf("List: %+v, %v", p, err)
		}
		got := *p.Events[0].UserAgent
		if len(got) > 512 || strings.ContainsAny(got, "\x00\x1b") || !utf8.ValidString(got) || !strings.HasPrefix(got, "evilagent[31m") {
			t.Errorf("stored User-Agent %q (%d bytes)", got, len(got))
		}
		if string(p.Events[0].Detail) != "null" {
			t.Errorf("detail %s, want null", p.Events[0].Detail)
		}
	})
}

// Record writes in the caller's transaction: a rollback takes the event.
func TestRecordRollsBackWithTheChange(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		l := activity.New(db, nil)
		uid := newUser(t, db, nil)
		boom := errors.New("boom")
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := l.Record(tx, activity.Event{UserID: uid, Type: activity.PasswordChanged}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("transaction: %v", err)
		}
		p, err := l.List(context.Background(), uid, 10, "")
		if err != nil || len(p.Events) != 0 {
			t.Fatalf("after a rollback: %+v, %v", p, err)
		}
	})
}

// A cursor that is not one of List's is invalid_cursor.
func TestListRefusesMadeUpCursors(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		l := activity.New(db, nil)
		for _, c := range []string{"!!", api.EncodeCursor([]byte("x' OR 1=1")), api.EncodeCursor([]byte(strings.Repeat("g", 32)))} {
			if _, err := l.List(context.Background(), "u", 10, c); !errors.Is(err, api.ErrInvalidCursor) {
				t.Errorf("cursor %q: %v, want ErrInvalidCursor", c, err)
			}
		}
	})
}
