package auth

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/walletauth/walletauth/activity"
	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
	"github.com/walletauth/walletauth/users"
)

// gate holds the first session INSERT until opened, and counts them all.
type gate struct {
	inserts atomic.Int64
	once    sync.Once
	entered chan struct{}
	open    chan struct{}
}

func newGate(w *sessionWriter) *gate {
	g := &gate{entered: make(chan struct{}), open: make(chan struct{})}
	w.beforeExec = func(int) {
		g.inserts.Add(1)
		g.once.Do(func() {
			close(g.entered)
			<-g.open
		})
	}
	return g
}

// queued waits until n rows wait in w's queue.
func queued(t *testing.T, w *sessionWriter, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		got := len(w.queue)
		w.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func writerFixture(t *testing.T, db *storage.DB, nUsers int) (*Sessions, *gate, []string) {
	t.Helper()
	us := users.NewStore(db, nil, nil)
	var ids []string
	for range nUsers {
		u, err := us.Create(context.Background(), users.NewUser{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	s := NewSessions(db, nil, time.Hour, nil)
	s.writer.slots = 1 // deterministic batches
	return s, newGate(s.writer), ids
}

// Logins arriving while a session INSERT is in flight are written together
// in the next one, and every token works.
func TestSessionWriterGroupsConcurrentLogins(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		s, g, ids := writerFixture(t, db, 5)
		ctx := context.Background()
		const n = 40
		tokens := make([]string, n+1)
		errs := make([]error, n+1)
		var wg sync.WaitGroup
		wg.Go(func() { tokens[0], _, errs[0] = s.Issue(ctx, ids[0], Origin{Method: MethodEmail}) })
		<-g.entered
		for i := 1; i <= n; i++ {
			wg.Go(func() { tokens[i], _, errs[i] = s.Issue(ctx, ids[i%len(ids)], Origin{Method: MethodEmail}) })
		}
		queued(t, s.writer, n)
		close(g.open)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("Issue %d: %v", i, err)
			}
			if _, err := s.Check(ctx, tokens[i]); err != nil {
				t.Fatalf("token %d: %v", i, err)
			}
		}
		if got := g.inserts.Load(); got != 2 {
			t.Errorf("%d INSERTs for %d sessions, want 2 (the first alone, the rest together)", got, n+1)
		}
		var rows int64
		if err := db.Model(&Session{}).Count(&rows).Error; err != nil || rows != n+1 {
			t.Fatalf("%d session rows (%v), want %d", rows, err, n+1)
		}
	})
}

// IssueForWallet writes a session only if its user owns the wallet at that
// moment, decided by the INSERT itself, and rows of both kinds share one
// batch: the owner's session is written, a session for the wallet's former
// owner or for a wallet nobody owns is not (ErrNotOwner), a plain one is.
func TestSessionWriterChecksTheWalletOwner(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		s, g, ids := writerFixture(t, db, 3)
		ctx := context.Background()
		us := users.NewStore(db, nil, nil)
		wallet := func(b byte) []byte { a := make([]byte, 20); a[19] = b; return a }
		if _, err := us.AddWallet(ctx, users.Wallet{Address: wallet(1), UserID: ids[0], ChainID: 1, Type: users.WalletEOA}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, _, err := s.Issue(ctx, ids[2], Origin{Method: MethodEmail}); err != nil {
				t.Errorf("first Issue: %v", err)
			}
		})
		<-g.entered
		type call struct {
			user   string
			wallet []byte
			want   error
		}
		calls := []call{
			{ids[0], wallet(1), nil},         // the owner
			{ids[1], wallet(1), ErrNotOwner}, // not the owner
			{ids[0], wallet(2), ErrNotOwner}, // nobody's wallet
			{ids[1], nil, nil},               // Issue: no condition
			{ids[0], wallet(1), nil},
		}
		toks := make([]string, len(calls))
		errs := make([]error, len(calls))
		for i, c := range calls {
			wg.Go(func() {
				if c.wallet == nil {
					toks[i], _, errs[i] = s.Issue(ctx, c.user, Origin{Method: MethodEmail})
				} else {
					toks[i], _, errs[i] = s.IssueForWallet(ctx, c.user, c.wallet, Origin{Method: MethodWallet})
				}
			})
		}
		queued(t, s.writer, len(calls))
		close(g.open)
		wg.Wait()
		if got := g.inserts.Load(); got != 2 {
			t.Errorf("%d INSERTs, want 2 (the first alone, the rest together)", got)
		}
		for i, c := range calls {
			if !errors.Is(errs[i], c.want) || (c.want == nil) != (errs[i] == nil) {
				t.Errorf("call %d (%+v): error %v", i, c, errs[i])
				continue
			}
			sess, err := s.Check(ctx, toks[i])
			switch {
			case c.want == nil && (err != nil || sess.UserID != c.user):
				t.Errorf("call %d: token checks as %+v, %v; want user %s", i, sess, err, c.user)
			case c.want != nil && toks[i] != "":
				t.Errorf("call %d: refused, yet a token was returned", i)
			}
		}
		var rows int64
		if err := db.Model(&Session{}).Count(&rows).Error; err != nil || rows != 4 {
			t.Fatalf("%d session rows (%v), want 4", rows, err)
		}
		if _, _, err := s.IssueForWallet(ctx, ids[0], nil, Origin{Method: MethodWallet}); !errors.Is(err, ErrNotOwner) {
			t.Fatalf("IssueForWallet without a wallet = %v, want ErrNotOwner", err)
		}
	})
}

// A row that cannot be written (its user is gone) fails only its own login.
func TestSessionWriterBadRowFailsAlone(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		s, g, ids := writerFixture(t, db, 1)
		ctx := context.Background()
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, _, err := s.Issue(ctx, ids[0], Origin{Method: MethodEmail}); err != nil {
				t.Errorf("first Issue: %v", err)
			}
		})
		<-g.entered
		const good = 6
		errs := make([]error, good+1)
		for i := range good {
			wg.Go(func() { _, _, errs[i] = s.Issue(ctx, ids[0], Origin{Method: MethodEmail}) })
		}
		wg.Go(func() {
			_, _, errs[good] = s.Issue(ctx, "0190aaaa-0000-7000-8000-000000000000", Origin{Method: MethodEmail})
		})
		queued(t, s.writer, good+1)
		close(g.open)
		wg.Wait()
		for i := range good {
			if errs[i] != nil {
				t.Errorf("good login %d failed with the bad one: %v", i, errs[i])
			}
		}
		if errs[good] == nil {
			t.Error("a session for a user that does not exist was written")
		}
	})
}

// A caller whose deadline passes while its row waits gets its deadline's
// error at once, not when the batch is done: both the caller whose row is
// in the batch the database holds, and one queued behind it.
func TestSessionWriterCallerDeadline(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		s, g, ids := writerFixture(t, db, 1)
		defer close(g.open)
		issue := func(d time.Duration) (time.Duration, error) {
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			began := time.Now()
			_, _, err := s.Issue(ctx, ids[0], Origin{Method: MethodEmail})
			return time.Since(began), err
		}
		type result struct {
			err error
			d   time.Duration
		}
		first := make(chan result, 1)
		go func() { d, err := issue(200 * time.Millisecond); first <- result{err, d} }()
		<-g.entered // the first row's INSERT is held
		d, err := issue(50 * time.Millisecond)
		if !errors.Is(err, context.DeadlineExceeded) || d > 5*time.Second {
			t.Errorf("queued caller: %v after %v, want DeadlineExceeded at its deadline", err, d)
		}
		select {
		case r := <-first:
			if !errors.Is(r.err, context.DeadlineExceeded) {
				t.Errorf("held caller: %v, want DeadlineExceeded", r.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the caller whose INSERT the database holds waited past its deadline")
		}
	})
}

// A caller that gave up while its row waited leaves no session behind, and
// past maxQueue waiting rows a login is refused at once with 503.
func TestSessionWriterDropsAbandonedRowsAndBoundsTheQueue(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		s, g, ids := writerFixture(t, db, 1)
		s.writer.maxQueue = 2
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, _, err := s.Issue(context.Background(), ids[0], Origin{Method: MethodEmail}); err != nil {
				t.Errorf("first Issue: %v", err)
			}
		})
		<-g.entered
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, _, err := s.Issue(ctx, ids[0], Origin{Method: MethodEmail}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("abandoned Issue = %v, want DeadlineExceeded", err)
		}
		held, cancelHeld := context.WithCancel(context.Background())
		wg.Go(func() { _, _, _ = s.Issue(held, ids[0], Origin{Method: MethodEmail}) })
		queued(t, s.writer, 2) // the abandoned row and this one
		_, _, err := s.Issue(context.Background(), ids[0], Origin{Method: MethodEmail})
		if status := api.Status(err); !errors.Is(err, errSessionQueueFull) || status != 503 {
			t.Fatalf("Issue with the queue full = %v (%d), want 503", err, status)
		}
		cancelHeld()
		close(g.open)
		wg.Wait()
		deadline := time.Now().Add(10 * time.Second)
		for {
			s.writer.mu.Lock()
			idle := s.writer.running == 0
			s.writer.mu.Unlock()
			if idle {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the writer did not go idle")
			}
			time.Sleep(time.Millisecond)
		}
		var rows int64
		if err := db.Model(&Session{}).Count(&rows).Error; err != nil || rows != 1 {
			t.Fatalf("%d session rows (%v), want 1: abandoned rows are not written", rows, err)
		}
	})
}

// With an activity log, each login's login.succeeded event is written by
// the session writer with its session, in the same statement (PostgreSQL)
// or transaction (SQLite): one per session written, none for a session
// refused (ErrNotOwner) or that could not be written (its user is gone,
// which sends the batch back row by row), with the login's method, client
// and time.
func TestSessionWriterWritesEachLoginEventWithItsSession(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		s, g, ids := writerFixture(t, db, 3)
		log := activity.New(db, nil)
		s.UseActivity(log)
		ctx := context.Background()
		us := users.NewStore(db, nil, nil)
		wallet := func(b byte) []byte { a := make([]byte, 20); a[19] = b; return a }
		if _, err := us.AddWallet(ctx, users.Wallet{Address: wallet(1), UserID: ids[0], ChainID: 1, Type: users.WalletEOA}); err != nil {
			t.Fatal(err)
		}
		origin := func(m string) Origin { return Origin{Method: m, UserAgent: "writer-test/1\x00", IP: "192.0.2.7"} }
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, _, err := s.Issue(ctx, ids[2], origin(MethodEmail)); err != nil {
				t.Errorf("first Issue: %v", err)
			}
		})
		<-g.entered
		type call struct {
			user   string
			wallet []byte
			ok     bool
		}
		calls := []call{
			{ids[0], wallet(1), true},
			{ids[1], wallet(1), false}, // not the owner
			{ids[0], wallet(2), false}, // nobody's wallet
			{ids[1], nil, true},
			{ids[0], wallet(1), true},
			{"0190aaaa-0000-7000-8000-000000000000", nil, false}, // no such user: the batch fails, then row by row
		}
		errs := make([]error, len(calls))
		for i, c := range calls {
			wg.Go(func() {
				if c.wallet == nil {
					_, _, errs[i] = s.Issue(ctx, c.user, origin(MethodEmail))
				} else {
					_, _, errs[i] = s.IssueForWallet(ctx, c.user, c.wallet, origin(MethodWallet))
				}
			})
		}
		queued(t, s.writer, len(calls))
		close(g.open)
		wg.Wait()
		for i, c := range calls {
			if c.ok != (errs[i] == nil) {
				t.Errorf("call %d (%+v): error %v", i, c, errs[i])
			}
		}
		want := map[string][]string{ids[0]: {MethodWallet, MethodWallet}, ids[1]: {MethodEmail}, ids[2]: {MethodEmail}}
		var total int64
		if err := db.Table("activity_events").Count(&total).Error; err != nil || total != 4 {
			t.Errorf("%d events (%v), want 4: one per session written", total, err)
		}
		for id, methods := range want {
			p, err := log.List(ctx, id, 10, "")
			if err != nil {
				t.Fatal(err)
			}
			var sessions []Session
			if err := db.Where("user_id = ?", id).Find(&sessions).Error; err != nil {
				t.Fatal(err)
			}
			if len(p.Events) != len(methods) || len(sessions) != len(methods) {
				t.Fatalf("user %s: %d events, %d sessions, want %d of each", id, len(p.Events), len(sessions), len(methods))
			}
			at := map[string]bool{}
			for _, sess := range sessions {
				at[sess.CreatedAt.UTC().Format(time.RFC3339Nano)] = true
			}
			for _, e := range p.Events {
				if e.Type != activity.LoginSucceeded || e.Method == nil || *e.Method != methods[0] ||
					e.IP == nil || *e.IP != "192.0.2.7" || e.UserAgent == nil || *e.UserAgent != "writer-test/1" {
					t.Errorf("user %s: event %+v, want login.succeeded by %s from 192.0.2.7, writer-test/1", id, e, methods[0])
				}
				if !at[e.At] {
					t.Errorf("user %s: event at %s, no session created then (%v)", id, e.At, at)
				}
			}
		}
	})
}

// The events of logins written together are written together: no
// statement of their own on PostgreSQL, one INSERT per batch on SQLite.
func TestSessionWriterBatchesLoginEvents(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		s, g, ids := writerFixture(t, db, 1)
		s.UseActivity(activity.New(db, nil))
		var eventInserts atomic.Int64
		if err := db.Callback().Create().After("gorm:create").Register("test:count_events", func(tx *gorm.DB) {
			if tx.Statement.Table == "activity_events" {
				eventInserts.Add(1)
			}
		}); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		const n = 20
		errs := make([]error, n+1)
		var wg sync.WaitGroup
		wg.Go(func() { _, _, errs[0] = s.Issue(ctx, ids[0], Origin{Method: MethodEmail}) })
		<-g.entered
		for i := 1; i <= n; i++ {
			wg.Go(func() { _, _, errs[i] = s.Issue(ctx, ids[0], Origin{Method: MethodEmail}) })
		}
		queued(t, s.writer, n)
		close(g.open)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("Issue %d: %v", i, err)
			}
		}
		var events int64
		if err := db.Table("activity_events").Where("user_id = ? AND type = ?", ids[0], activity.LoginSucceeded).Count(&events).Error; err != nil || events != n+1 {
			t.Fatalf("%d login events (%v), want %d", events, err, n+1)
		}
		want := int64(2) // the first batch (alone) and the rest
		if db.Dialect == storage.Postgres {
			want = 0 // in the session INSERT
		}
		if got := eventInserts.Load(); got != want || g.inserts.Load() != 2 {
			t.Errorf("%d event INSERTs for %d session INSERTs, want %d", got, g.inserts.Load(), want)
		}
	})
}
