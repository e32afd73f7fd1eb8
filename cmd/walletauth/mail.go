package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/walletauth/walletauth/config"
	"github.com/walletauth/walletauth/internal/every"
	walletmail "github.com/walletauth/walletauth/mail"
	"github.com/walletauth/walletauth/storage"
)

// newOutbox is the outbox of cfg's database.
func newOutbox(cfg config.Config, db *storage.DB, now func() time.Time) *walletmail.Outbox {
	domain := "walletauth.invalid"
	if a, err := mail.ParseAddress(cfg.MailFrom); err == nil {
		if _, d, ok := strings.Cut(a.Address, "@"); ok {
			domain = d
		}
	}
	return walletmail.NewOutbox(db, now, cfg.MailGiveUpAfter, domain)
}

// wireMail builds the outbox, the templates and, with WALLETAUTH_SMTP_URL,
// the sender (run until ctx ends). It returns the sender's wake-up (a no-op
// when mail is off).
func (a *app) wireMail(ctx context.Context) (*walletmail.Outbox, *walletmail.Templates, func(), error) {
	cfg := a.cfg
	tmpl, err := walletmail.LoadTemplates(cfg.MailTemplates)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%sMAIL_TEMPLATES: %w", config.Prefix, err)
	}
	out := newOutbox(cfg, a.db, a.now)
	if cfg.SMTPURL == "" {
		a.log.Warn("mail is off: WALLETAUTH_SMTP_URL is not set, so nothing is sent; mails stay in the outbox (`walletauth mail list` shows them)")
		go a.pruneUnsentMail(ctx, out, time.Hour)
		return out, tmpl, func() {}, nil
	}
	tr, err := walletmail.NewSMTP(walletmail.SMTPConfig{URL: cfg.SMTPURL, From: cfg.MailFrom, Timeout: cfg.SMTPTimeout})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%sSMTP_URL: %w", config.Prefix, err)
	}
	sender := walletmail.NewSender(out, tr, a.log, walletmail.SenderOptions{Retention: cfg.MailRetention})
	go sender.Run(ctx)
	a.log.Info("mail is on", "smtp", redactSMTP(cfg.SMTPURL), "from", cfg.MailFrom)
	return out, tmpl, sender.Notify, nil
}

// pruneUnsentMail deletes, every period until ctx ends, the mails queued
// more than WALLETAUTH_MAIL_RETENTION ago: with mail off nothing sends or
// prunes them otherwise.
func (a *app) pruneUnsentMail(ctx context.Context, out *walletmail.Outbox, period time.Duration) {
	every.Period(ctx, period, func(ctx context.Context) {
		if n, err := out.PruneQueuedBefore(ctx, a.cfg.MailRetention); err != nil && ctx.Err() == nil {
			a.log.Warn("mail: pruning the outbox", "error", err)
		} else if n > 0 {
			a.log.Info("mail: pruned the outbox", "deleted", n)
		}
	})
}

// redactSMTP is the SMTP URL without its password, for the log.
func redactSMTP(raw string) string {
	u, err := walletmail.ParseSMTPURL(raw)
	if err != nil {
		return "(invalid)"
	}
	return u.Redacted()
}

const mailUsage = `usage: walletauth mail <command> [flags]

commands:
  list [-n N] [--json]  the newest mails of the outbox: status, recipient, subject
                        (which states the code) and, with --json, the whole text

Without WALLETAUTH_SMTP_URL nothing is sent: this is how a developer reads the
codes locally. The database is the configured one (WALLETAUTH_DATABASE_URL).
`

var mailListHelp = help{
	usage:   "walletauth mail list [-n N] [--json]",
	summary: "List the newest mails of the outbox (the codes are in the subjects and texts). Without WALLETAUTH_SMTP_URL nothing is sent, and this is how a developer reads the codes locally.",
	vars:    []string{"DATABASE_URL"},
	note:    "Every other WALLETAUTH_* setting is checked too (see walletauth serve -h).",
}

// mailCmd runs "walletauth mail …".
func mailCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, mailUsage)
		if len(args) == 0 {
			return fmt.Errorf("mail: no command given")
		}
		return nil
	}
	if args[0] != "list" {
		fmt.Fprint(stderr, mailUsage)
		return fmt.Errorf("mail: unknown command %q", args[0])
	}
	fs := newFlagSet("mail list")
	n := fs.Int("n", 20, "how many mails, newest first (0: all)")
	asJSON := fs.Bool("json", false, "print a JSON array with the whole mails")
	pos, err := parseFlags(fs, args[1:], mailListHelp, stdout, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("mail list: unexpected argument %q", pos[0])
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	db, err := openDatabase(ctx, cfg, storage.Options{MaxOpenConns: 2})
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	rows, err := newOutbox(cfg, db, time.Now).List(ctx, *n)
	if err != nil {
		return err
	}
	if *asJSON {
		type view struct {
			ID        string  `json:"id"`
			CreatedAt string  `json:"created_at"`
			Status    string  `json:"status"`
			Attempts  int64   `json:"attempts"`
			Kind      string  `json:"kind"`
			To        string  `json:"to"`
			Subject   string  `json:"subject"`
			Text      string  `json:"text"`
			LastError *string `json:"last_error"`
		}
		vs := make([]view, len(rows))
		for i, r := range rows {
			vs[i] = view{ID: r.ID, CreatedAt: r.CreatedAt.UTC().Format(time.RFC3339), Status: r.Status, Attempts: r.Attempts,
				Kind: r.Kind, To: r.ToAddr, Subject: r.Subject, Text: r.TextBody, LastError: r.LastError}
		}
		return json.NewEncoder(stdout).Encode(vs)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CREATED_AT\tSTATUS\tATTEMPTS\tKIND\tTO\tSUBJECT")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", r.CreatedAt.UTC().Format(time.RFC3339), r.Status, r.Attempts, r.Kind, r.ToAddr, r.Subject)
	}
	return tw.Flush()
}
