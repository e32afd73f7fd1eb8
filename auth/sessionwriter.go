package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/walletauth/walletauth/activity"
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
	wallet []byte        // when set, the row is written only if row.UserID owns this wallet
	event  *activity.Row // when set, written if and only if row is, in the same transaction
	done   chan error    // buffered: the writer never blocks on a caller gone
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
// event, when not nil, is the activity event of the login, committed with
// the row (in its statement on PostgreSQL, its transaction on SQLite) and
// only if the row is written.
func (w *sessionWriter) insert(ctx context.Context, row Session, wallet []byte, event *activity.Row) error {
	p := &pendingSession{ctx: ctx, row: row, wallet: wallet, event: event, done: make(chan error, 1)}
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
	if w.db.Dialect == storage.Postgres {
		rows, err := w.execArrays(ctx, batch)
		if err != nil {
			return nil, err
		}
		return scanWritten(rows, len(batch))
	}
	if !hasEvents(batch) {
		rows, err := w.execValues(w.db.WithContext(ctx), batch)
		if err != nil {
			return nil, err
		}
		return scanWritten(rows, len(batch))
	}
	// SQLite has no INSERT inside WITH: the events follow in the same
	// transaction, for the rows written.
	var written map[string]struct{}
	err := w.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		rows, err := w.execValues(tx, batch)
		if err != nil {
			return err
		}
		if written, err = scanWritten(rows, len(batch)); err != nil {
			return err
		}
		var events []activity.Row
		for _, p := range batch {
			if _, ok := written[string(p.row.TokenHash)]; ok && p.event != nil {
				events = append(events, *p.event)
			}
		}
		return activity.Insert(tx, events)
	})
	if err != nil {
		return nil, err
	}
	return written, nil
}

// scanWritten reads the token hashes of the rows an INSERT wrote, and
// closes rows.
func scanWritten(rows *sql.Rows, n int) (map[string]struct{}, error) {
	defer rows.Close()
	written := make(map[string]struct{}, n)
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

func hasEvents(batch []*pendingSession) bool {
	for _, p := range batch {
		if p.event != nil {
			return true
		}
	}
	return false
}

// sessionsInsertArrays is the PostgreSQL INSERT: the batch goes as arrays,
// so the statement text is the same for every batch size; pgx prepares it
// once per connection and PostgreSQL keeps its plan. (A VALUES list of n
// rows is a new statement for every n, planned afresh: ~3 ms of PostgreSQL
// CPU for 60 rows.) The same statement writes the activity events
// (activity.Row's columns; a NULL id: none) of the sessions it wrote, so a
// login costs one statement and shares one commit, event included. The
// wallet's owner is the users package's to tell (users.WalletOwner), the
// events' INSERT the activity package's (activity.InsertSelect).
var sessionsInsertArrays = `WITH v AS (
	SELECT * FROM unnest($1::text[], $2::bytea[], $3::timestamptz[], $4::timestamptz[], $5::bytea[], $6::text[], $7::text[],
		$8::text[], $9::text[], $10::timestamptz[], $11::text[], $12::text[], $13::text[])
		AS v(u, h, c, e, a, m, ua, eid, etype, eat, emethod, eip, eua)
), s AS (
	INSERT INTO sessions (user_id, token_hash, created_at, expires_at, method, user_agent)
	SELECT v.u, v.h, v.c, v.e, v.m, v.ua FROM v
	WHERE v.a IS NULL OR v.u = ` + users.WalletOwner("v.a") + `
	RETURNING token_hash
), ev AS (
	` + activity.InsertSelect(`SELECT v.eid, v.u, v.etype, v.eat, v.emethod, v.eip, v.eua FROM v JOIN s ON s.token_hash = v.h
	WHERE v.eid IS NOT NULL`) + `
)
SELECT token_hash FROM s`

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
		// The events; nil: NULL (no event, or a NULL column).
		eventIDs     = make([]*string, n)
		eventTypes   = make([]*string, n)
		eventAt      = make([]*time.Time, n)
		eventMethods = make([]*string, n)
		eventIPs     = make([]*string, n)
		eventAgents  = make([]*string, n)
	)
	for i, p := range batch {
		userIDs[i], hashes[i], created[i], expires[i], wallets[i] = p.row.UserID, p.row.TokenHash, p.row.CreatedAt, p.row.ExpiresAt, p.wallet
		methods[i], agents[i] = p.row.Method, p.row.UserAgent
		if e := p.event; e != nil {
			eventIDs[i], eventTypes[i], eventAt[i] = &e.ID, &e.Type, &e.At
			eventMethods[i], eventIPs[i], eventAgents[i] = e.Method, e.IP, e.UserAgent
		}
	}
	return pool.QueryContext(ctx, sessionsInsertArrays, userIDs, hashes, created, expires, wallets, methods, agents,
		eventIDs, eventTypes, eventAt, eventMethods, eventIPs, eventAgents)
}

// execValues is the SQLite INSERT in db (a transaction or not), the batch
// as a VALUES list (its columns are named column1…).
func (w *sessionWriter) execValues(db *gorm.DB, batch []*pendingSession) (*sql.Rows, error) {
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
	return db.Raw(q.String(), args...).Rows()
}
