package mail

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Transport delivers one mail. A *PermanentError means the server refused
// it for good (5xx): it is not retried. Any other error is temporary.
type Transport interface {
	Send(ctx context.Context, r Row) error
}

// PermanentError is a refusal that retrying cannot cure (an SMTP 5xx).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// SenderOptions tune a Sender. Zero values take the defaults.
type SenderOptions struct {
	Poll       time.Duration // how often the outbox is looked at (default 2s)
	Batch      int           // mails claimed at once (default 10)
	Lease      time.Duration // how long a claimed mail is reserved (default 2m; longer than a send can take)
	MinBackoff time.Duration // wait after the first failure (default 5s), doubled each time
	MaxBackoff time.Duration // at most (default 10m)
	Retention  time.Duration // sent and given-up mails are deleted after it (default 24h)
}

func (o *SenderOptions) defaults() {
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.Batch <= 0 {
		o.Batch = 10
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 5 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Minute
	}
	if o.Retention <= 0 {
		o.Retention = 24 * time.Hour
	}
}

// Sender delivers the outbox through a Transport. Several senders, on one
// instance or many, may run over one database: each mail is claimed by one
// of them at a time.
type Sender struct {
	out  *Outbox
	tr   Transport
	log  *slog.Logger
	opt  SenderOptions
	wake chan struct{}
}

// NewSender returns a sender of out's mails over tr.
func NewSender(out *Outbox, tr Transport, log *slog.Logger, opt SenderOptions) *Sender {
	opt.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sender{out: out, tr: tr, log: log, opt: opt, wake: make(chan struct{}, 1)}
}

// Notify makes Run look at the outbox now (after an Enqueue committed)
// instead of at its next poll.
func (s *Sender) Notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run delivers mail until ctx ends. Pending mail left by a previous run (a
// restart, a crash mid-send) is picked up once its lease passes.
func (s *Sender) Run(ctx context.Context) {
	t := time.NewTicker(s.opt.Poll)
	defer t.Stop()
	lastPrune := time.Time{}
	for {
		for {
			n, err := s.RunOnce(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("mail: sending the outbox", "error", err)
			}
			if err != nil || n < s.opt.Batch {
				break
			}
		}
		if now := s.out.now(); now.Sub(lastPrune) >= time.Hour {
			lastPrune = now
			if n, err := s.out.Prune(ctx, s.opt.Retention); err != nil && ctx.Err() == nil {
				s.log.Warn("mail: pruning the outbox", "error", err)
			} else if n > 0 {
				s.log.Info("mail: pruned the outbox", "deleted", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// RunOnce claims the mails due now and tries each once; it returns how many
// it claimed.
func (s *Sender) RunOnce(ctx context.Context) (int, error) {
	rows, err := s.out.claim(ctx, s.opt.Batch, s.opt.Lease)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, r := range rows {
		if err := s.deliver(ctx, r); err != nil {
			errs = append(errs, err)
		}
	}
	return len(rows), errors.Join(errs...)
}

// deliver tries one claimed mail and records the outcome.
func (s *Sender) deliver(ctx context.Context, r Row) error {
	sctx, cancel := context.WithTimeout(ctx, s.opt.Lease/2)
	err := s.tr.Send(sctx, r)
	cancel()
	// Recorded even when ctx ended meanwhile: a delivered mail must be
	// marked sent, or another sender would send it again.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer rcancel()
	if err == nil {
		s.log.Info("mail: sent", "id", r.ID, "kind", r.Kind, "attempt", r.Attempts)
		return s.out.markSent(rctx, r.ID)
	}
	var perm *PermanentError
	now := s.out.now()
	switch {
	case errors.As(err, &perm):
		s.log.Warn("mail: refused for good, given up", "id", r.ID, "kind", r.Kind, "attempt", r.Attempts, "error", err)
		return s.out.markFailed(rctx, r.ID, err.Error())
	case !now.Before(r.GiveUpAt):
		s.log.Warn("mail: not delivered in time, given up", "id", r.ID, "kind", r.Kind, "attempt", r.Attempts, "error", err)
		return s.out.markFailed(rctx, r.ID, "gave up after "+r.GiveUpAt.Sub(r.CreatedAt).String()+": "+err.Error())
	}
	next := now.Add(s.backoff(r.Attempts))
	s.log.Warn("mail: attempt failed, will retry", "id", r.ID, "kind", r.Kind, "attempt", r.Attempts, "retry_at", next, "error", err)
	return s.out.markRetry(rctx, r.ID, next, err.Error())
}

// backoff is the wait after the attempt-th failure: MinBackoff doubled per
// earlier failure, at most MaxBackoff.
func (s *Sender) backoff(attempt int64) time.Duration {
	d := s.opt.MinBackoff
	for i := int64(1); i < attempt && d < s.opt.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, s.opt.MaxBackoff)
}
