package auth

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/storage"
)

// sessionWriter inserts the sessions of concurrent logins together (group
// commit): a writer goroutine inserts every session queued by then in one
// multi-row INSERT and one commit, and logins arriving meanwhile go in the
// next. A lone login is written at once, without waiting; under load a
// sign-in costs a fraction of a round trip and of a commit instead of one
// each. A caller returns only after its row is committed, so durability is
// what it was; it waits at most until its own deadline.
type sessionWriter struct {
	db       *storage.DB
	slots    int           // batches in flight at most (1; tests may set it)
	maxBatch int           // rows per INSERT at most
	maxQueue int           // rows waiting at most; more are refused (503)
	timeout  time.Duration // deadline of a row whose caller has none

	mu      sync.Mutex
	queue   []*pendingSession
	running int
}

type pendingSession struct {
	ctx  context.Context // the caller's: its deadline bounds the write
	row  Session
	done chan error // buffered: the writer never blocks on a caller gone
}

// errSessionQueueFull refuses a login while too many wait for the database.
var errSessionQueueFull = api.ErrUnavailable.WithMessage("too many logins are waiting for the database; retry later")

func newSessionWriter(db *storage.DB) *sessionWriter {
	// One batch at a time: the next one fills while it is on the wire, so
	// batches grow with the load. Two in flight measured ~35 % more
	// PostgreSQL CPU per sign-in (more, smaller commits) for no throughput.
	return &sessionWriter{db: db, slots: 1, maxBatch: 200, maxQueue: 10_000, timeout: 30 * time.Second}
}

// insert commits row, or returns ctx's error when ctx ends first (the row
// is then not written if it has not been yet; if it has, its token was
// never shown, so it is dead).
func (w *sessionWriter) insert(ctx context.Context, row Session) error {
	p := &pendingSession{ctx: ctx, row: row, done: make(chan error, 1)}
	w.mu.Lock()
	if len(w.queue) >= w.maxQueue {
		w.mu.Unlock()
		return errSessionQueueFull
	}
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
// queue is empty. Rows whose callers have given up are dropped unwritten.
func (w *sessionWriter) drain() {
	for {
		w.mu.Lock()
		var batch []*pendingSession
		for len(w.queue) > 0 && len(batch) < w.maxBatch {
			p := w.queue[0]
			w.queue[0] = nil
			w.queue = w.queue[1:]
			if p.ctx.Err() != nil {
				p.done <- p.ctx.Err()
				continue
			}
			batch = append(batch, p)
		}
		if len(batch) == 0 {
			w.running--
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		w.write(batch)
	}
}

// deadline is when a write of batch must give up: the latest of its
// callers' deadlines (a caller without one counts as now + w.timeout).
func (w *sessionWriter) deadline(batch []*pendingSession) time.Time {
	var last time.Time
	for _, p := range batch {
		d, ok := p.ctx.Deadline()
		if !ok {
			d = time.Now().Add(w.timeout)
		}
		if d.After(last) {
			last = d
		}
	}
	return last
}

// write inserts batch in one statement. When that fails and the batch has
// several rows, each row is tried alone, within its own caller's deadline,
// so a row that cannot be inserted (its user deleted meanwhile) fails only
// its own login. A panic fails the batch instead of the process.
func (w *sessionWriter) write(batch []*pendingSession) {
	answered := 0
	defer func() {
		if r := recover(); r != nil {
			for _, p := range batch[answered:] {
				p.done <- fmt.Errorf("auth: create session: panic: %v", r)
			}
		}
	}()
	ctx, cancel := context.WithDeadline(context.Background(), w.deadline(batch))
	err := w.exec(ctx, batch)
	cancel()
	if err == nil || len(batch) == 1 {
		if err != nil {
			err = fmt.Errorf("auth: create session: %w", err)
		}
		for _, p := range batch {
			p.done <- err
			answered++
		}
		return
	}
	for _, p := range batch {
		if p.ctx.Err() != nil {
			p.done <- p.ctx.Err()
			answered++
			continue
		}
		ctx, cancel := context.WithDeadline(context.Background(), w.deadline([]*pendingSession{p}))
		err := w.exec(ctx, []*pendingSession{p})
		cancel()
		if err != nil {
			err = fmt.Errorf("auth: create session: %w", err)
		}
		p.done <- err
		answered++
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
