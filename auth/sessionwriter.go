package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/users"
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

	beforeExec func(rows int) // tests: called before each INSERT

	mu      sync.Mutex
	queue   []*pendingSession
	running int
}

type pendingSession struct {
	ctx    context.Context // the caller's: its deadline bounds the write
	row    Session
	wallet []byte     // when set, the row is written only if row.UserID owns this wallet
	done   chan error // buffered: the writer never blocks on a caller gone
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
// never shown, so it is dead). With wallet set, the row is written only if
// row.UserID owns that wallet as of the INSERT's snapshot (checked by the
// INSERT itself, with no round trip before it): ErrNotOwner otherwise.
func (w *sessionWriter) insert(ctx context.Context, row Session, wallet []byte) error {
	p := &pendingSession{ctx: ctx, row: row, wallet: wallet, done: make(chan error, 1)}
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
	written, err := w.exec(ctx, batch)
	cancel()
	if err == nil || len(batch) == 1 {
		for _, p := range batch {
			p.done <- rowResult(p, written, err)
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
		written, err := w.exec(ctx, []*pendingSession{p})
		cancel()
		p.done <- rowResult(p, written, err)
		answered++
	}
}

// rowResult is what the caller of p is told after an INSERT that wrote the
// rows whose token hashes are in written, or failed with err.
func rowResult(p *pendingSession, written map[string]struct{}, err error) error {
	if err != nil && p.wallet != nil && storage.ForeignKeyViolation(err) {
		return ErrNotOwner // the user was deleted meanwhile (its wallets with it)
	}
	if err != nil {
		return fmt.Errorf("auth: create session: %w", err)
	}
	if _, ok := written[string(p.row.TokenHash)]; !ok {
		if p.wallet != nil {
			return ErrNotOwner
		}
		return errors.New("auth: create session: the row was not written")
	}
	return nil
}

// exec runs one INSERT of the batch and returns the token hashes of the
// rows it wrote: all of them but those whose wallet is not their user's.
// The owner is read by a scalar subquery, which PostgreSQL runs as one
// primary-key probe per row (an EXISTS under OR may be planned as a hash of
// the whole wallets table).
func (w *sessionWriter) exec(ctx context.Context, batch []*pendingSession) (map[string]struct{}, error) {
	if w.beforeExec != nil {
		w.beforeExec(len(batch))
	}
	var (
		rows *sql.Rows
		err  error
	)
	if w.db.Dialect == storage.Postgres {
		rows, err = w.execArrays(ctx, batch)
	} else {
		rows, err = w.execValues(ctx, batch)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	written := make(map[string]struct{}, len(batch))
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		written[string(h)] = struct{}{}
	}
	// A failed statement or commit shows here, after the last row.
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return written, nil
}

// sessionsInsertArrays is the PostgreSQL INSERT: the batch goes as five
// (and two more) arrays, so the statement text is the same for every batch size; pgx
// prepares it once per connection and PostgreSQL keeps its plan. (A VALUES
// list of n rows is a new statement for every n, planned afresh: ~3 ms of
// PostgreSQL CPU for 60 rows.)
// The wallet's owner is the users package's to tell (users.WalletOwner).
var sessionsInsertArrays = `INSERT INTO sessions (user_id, token_hash, created_at, expires_at, method, user_agent)
SELECT v.u, v.h, v.c, v.e, v.m, v.ua
FROM unnest($1::text[], $2::bytea[], $3::timestamptz[], $4::timestamptz[], $5::bytea[], $6::text[], $7::text[]) AS v(u, h, c, e, a, m, ua)
WHERE v.a IS NULL OR v.u = ` + users.WalletOwner("v.a") + `
RETURNING token_hash`

// execArrays runs sessionsInsertArrays on the pool gorm uses, through
// database/sql: gorm would spread each array into a list of parameters.
// So gorm's callbacks (statement counts in tests, any plugin) do not see
// this statement on PostgreSQL; tests hook the writer (beforeExec).
func (w *sessionWriter) execArrays(ctx context.Context, batch []*pendingSession) (*sql.Rows, error) {
	pool, err := w.db.DB.DB()
	if err != nil {
		return nil, err
	}
	n := len(batch)
	var (
		userIDs = make([]string, n)
		hashes  = make([][]byte, n)
		created = make([]time.Time, n)
		expires = make([]*time.Time, n)
		wallets = make([][]byte, n) // nil: NULL, no condition
		methods = make([]*string, n)
		agents  = make([]*string, n)
	)
	for i, p := range batch {
		userIDs[i], hashes[i], created[i], expires[i], wallets[i] = p.row.UserID, p.row.TokenHash, p.row.CreatedAt, p.row.ExpiresAt, p.wallet
		methods[i], agents[i] = p.row.Method, p.row.UserAgent
	}
	return pool.QueryContext(ctx, sessionsInsertArrays, userIDs, hashes, created, expires, wallets, methods, agents)
}

// execValues is the SQLite INSERT, the batch as a VALUES list (its columns
// are named column1…).
func (w *sessionWriter) execValues(ctx context.Context, batch []*pendingSession) (*sql.Rows, error) {
	const row = "(?, ?, ?, ?, ?, ?, ?)"
	var q strings.Builder
	q.Grow(300 + len(batch)*(len(row)+2))
	q.WriteString("INSERT INTO sessions (user_id, token_hash, created_at, expires_at, method, user_agent) SELECT v.column1, v.column2, v.column3, v.column4, v.column6, v.column7 FROM (VALUES ")
	args := make([]any, 0, 7*len(batch))
	for i, p := range batch {
		if i > 0 {
			q.WriteString(", ")
		}
		// user_id first: gorm expands a []byte right after "(?" as a list.
		q.WriteString(row)
		var wallet any // untyped nil: NULL
		if p.wallet != nil {
			wallet = p.wallet
		}
		args = append(args, p.row.UserID, p.row.TokenHash, p.row.CreatedAt, p.row.ExpiresAt, wallet, p.row.Method, p.row.UserAgent)
	}
	q.WriteString(") AS v WHERE v.column5 IS NULL OR v.column1 = " + users.WalletOwner("v.column5") + " RETURNING token_hash")
	return w.db.WithContext(ctx).Raw(q.String(), args...).Rows()
}
