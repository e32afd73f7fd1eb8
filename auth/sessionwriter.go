package auth

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/walletauth/walletauth/storage"
)

// sessionWriter inserts the sessions of concurrent logins together (group
// commit): a writer goroutine inserts every session queued by then in one
// multi-row INSERT and one commit, and logins arriving meanwhile go in the
// next. A lone login is written at once, without
// waiting; under load a sign-in costs a fraction of a round trip and of a
// commit instead of one each. A caller returns only after its row is
// committed, so durability is what it was.
type sessionWriter struct {
	db       *storage.DB
	slots    int           // batches in flight at most (1; tests may set it)
	maxBatch int           // rows per INSERT at most
	timeout  time.Duration // one batch's deadline

	mu      sync.Mutex
	queue   []*pendingSession
	running int
}

type pendingSession struct {
	row  Session
	done chan error // buffered: the writer never blocks on a caller gone
}

func newSessionWriter(db *storage.DB) *sessionWriter {
	// One batch at a time: the next one fills while it is on the wire, so
	// batches grow with the load. Two in flight measured ~35 % more
	// PostgreSQL CPU per sign-in (more, smaller commits) for no throughput.
	return &sessionWriter{db: db, slots: 1, maxBatch: 200, timeout: 10 * time.Second}
}

// insert commits row, or returns ctx's error when ctx ends first (the row
// may still be committed later; its token was never shown, so it is dead).
func (w *sessionWriter) insert(ctx context.Context, row Session) error {
	p := &pendingSession{row: row, done: make(chan error, 1)}
	w.mu.Lock()
	w.queue = append(w.queue, p)
	if w.running < w.slots {
		w.running++
		// On a goroutine of its own, so that no caller waits past its
		// deadline for a batch (its own or others') the database holds.
		go w.drain()
	}
	w.mu.Unlock()
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("auth: create session: %w", ctx.Err())
	}
}

// drain writes batches from the queue while holding a slot, until the
// queue is empty.
func (w *sessionWriter) drain() {
	for {
		w.mu.Lock()
		n := min(len(w.queue), w.maxBatch)
		if n == 0 {
			w.running--
			w.mu.Unlock()
			return
		}
		batch := w.queue[:n:n]
		w.queue = w.queue[n:]
		w.mu.Unlock()
		w.write(batch)
	}
}

// write inserts batch in one statement. When that fails and the batch has
// several rows, each row is tried alone, so a row that cannot be inserted
// (its user deleted meanwhile) fails only its own login.
func (w *sessionWriter) write(batch []*pendingSession) {
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	err := w.exec(ctx, batch)
	if err == nil || len(batch) == 1 {
		if err != nil {
			err = fmt.Errorf("auth: create session: %w", err)
		}
		for _, p := range batch {
			p.done <- err
		}
		return
	}
	for _, p := range batch {
		if err := w.exec(ctx, []*pendingSession{p}); err != nil {
			p.done <- fmt.Errorf("auth: create session: %w", err)
			continue
		}
		p.done <- nil
	}
}

// exec runs one multi-row INSERT: plain SQL, as gorm's Create of a slice
// spent more CPU on reflection than the database spent on the rows.
func (w *sessionWriter) exec(ctx context.Context, batch []*pendingSession) error {
	var q strings.Builder
	q.WriteString("INSERT INTO sessions (user_id, token_hash, created_at, expires_at) VALUES ")
	args := make([]any, 0, 4*len(batch))
	for i, p := range batch {
		if i > 0 {
			q.WriteString(", ")
		}
		// user_id first: gorm expands a []byte right after "(?" as a list.
		q.WriteString("(?, ?, ?, ?)")
		args = append(args, p.row.UserID, p.row.TokenHash, p.row.CreatedAt, p.row.ExpiresAt)
	}
	return w.db.WithContext(ctx).Exec(q.String(), args...).Error
}
