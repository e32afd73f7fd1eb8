package mail_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/walletauth/walletauth/internal/clocktest"
	"github.com/walletauth/walletauth/mail"
	"github.com/walletauth/walletauth/mail/mailtest"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/storage/storagetest"
)

const from = "walletauth <no-reply@example.com>"

type fixture struct {
	db     *storage.DB
	clock  *clocktest.Clock
	out    *mail.Outbox
	smtp   *mailtest.Server
	sender *mail.Sender
	tmpl   *mail.Templates
}

func newFixture(t *testing.T, db *storage.DB) *fixture {
	t.Helper()
	clock := clocktest.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	srv := mailtest.Start(t)
	out := mail.NewOutbox(db, clock.Now, time.Hour, "example.com")
	tr, err := mail.NewSMTP(mail.SMTPConfig{URL: srv.URL(), From: from, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := mail.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{db: db, clock: clock, out: out, smtp: srv, tmpl: tmpl,
		sender: mail.NewSender(out, tr, nil, mail.SenderOptions{MinBackoff: time.Minute, Lease: 2 * time.Minute})}
}

func (f *fixture) enqueue(t *testing.T, kind, lang, to, code string) string {
	t.Helper()
	m, err := f.tmpl.Render(kind, lang, mail.Data{Code: code, Email: to, Minutes: 10})
	if err != nil {
		t.Fatal(err)
	}
	var id string
	err = f.db.Transaction(func(tx *gorm.DB) error {
		var err error
		id, err = f.out.Enqueue(context.Background(), tx, m)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *fixture) runOnce(t *testing.T) int {
	t.Helper()
	n, err := f.sender.RunOnce(context.Background())
	if err != nil {
		t.Logf("RunOnce: %v", err)
	}
	return n
}

func (f *fixture) row(t *testing.T, id string) mail.Row {
	t.Helper()
	r, err := f.out.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDeliversMIMEMailInTheUsersLanguage(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(t, db)
		id := f.enqueue(t, mail.KindLoginCode, "de-AT", "ärger@example.org", "042917")
		if n := f.runOnce(t); n != 1 {
			t.Fatalf("claimed %d, want 1", n)
		}
		got := f.smtp.Wait(1, 5*time.Second)
		if got[0].From != "no-reply@example.com" || len(got[0].To) != 1 || got[0].To[0] != "ärger@example.org" {
			t.Errorf("envelope from %q to %q", got[0].From, got[0].To)
		}
		p := mailtest.Parse(t, got[0].Data)
		if len(p.Order) != 2 || p.Order[0] != "text/plain" || p.Order[1] != "text/html" {
			t.Fatalf("parts %v, want text/plain then text/html", p.Order)
		}
		text := p.Parts["text/plain"]
		if mailtest.Code(text) != "042917" || !strings.Contains(text, "Anmeldecode") {
			t.Errorf("text/plain part is not the German sign-in mail with the code:\n%s", text)
		}
		if !strings.Contains(p.Parts["text/html"], "042917") || !strings.Contains(p.Parts["text/html"], `lang="de"`) {
			t.Errorf("html part:\n%s", p.Parts["text/html"])
		}
		if s := p.Subject(); !strings.Contains(s, "042917") {
			t.Errorf("subject %q", s)
		}
		if mid := p.Header.Get("Message-Id"); !strings.HasSuffix(mid, "@example.com>") {
			t.Errorf("Message-Id %q", mid)
		}
		r := f.row(t, id)
		if r.Status != mail.StatusSent || r.Attempts != 1 || r.DoneAt == nil {
			t.Errorf("row after delivery: %+v", r)
		}
		if n := f.runOnce(t); n != 0 {
			t.Errorf("a sent mail was claimed again")
		}
	})
}

func TestEnglishWhenTheLanguageHasNoTranslation(t *testing.T) {
	tmpl, err := mail.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	for tag, want := range map[string]string{"pt-BR": "en", "": "en", "de": "de", "DE-ch": "de", "en-GB": "en"} {
		if got := tmpl.Language(tag); got != want {
			t.Errorf("Language(%q) = %q, want %q", tag, got, want)
		}
	}
	m, err := tmpl.Render(mail.KindPasswordReset, "pt-BR", mail.Data{Code: "123456", Email: "a@example.com", Minutes: 10})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Text, "reset your password") || mailtest.Code(m.Text) != "123456" {
		t.Errorf("text:\n%s", m.Text)
	}
}

func TestOperatorTemplatesReplaceAndAdd(t *testing.T) {
	dir := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("en/login_code.txt", `{{define "subject"}}ACME code {{.Code}}{{end}}{{define "text"}}ACME: {{.Code}}{{end}}`)
	for _, k := range []string{"login_code", "password_reset", "verify_email"} {
		write("es/"+k+".txt", `{{define "subject"}}Código {{.Code}}{{end}}{{define "text"}}Su código: {{.Code}}{{end}}`)
	}
	tmpl, err := mail.LoadTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tmpl.Render(mail.KindLoginCode, "en", mail.Data{Code: "111111", Email: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "ACME code 111111" || m.Text != "ACME: 111111" || !strings.Contains(m.HTML, "111111") {
		t.Errorf("replaced template: %+v", m)
	}
	m, err = tmpl.Render(mail.KindVerifyEmail, "es-MX", mail.Data{Code: "222222", Email: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Text != "Su código: 222222" || m.HTML != "" {
		t.Errorf("added language: %+v", m)
	}

	write("fr/login_code.txt", `{{define "subject"}}x{{end}}{{define "text"}}y{{end}}`) // fr lacks two kinds
	if _, err := mail.LoadTemplates(dir); err == nil || !strings.Contains(err.Error(), "fr") {
		t.Errorf("a language missing kinds: %v", err)
	}
	bad := t.TempDir()
	dir = bad
	write("en/login_code.txt", `{{define "subject"}}{{.Code}{{end}}`)
	if _, err := mail.LoadTemplates(bad); err == nil {
		t.Error("a template that does not parse was accepted")
	}
	if _, err := mail.LoadTemplates(filepath.Join(bad, "missing")); err == nil {
		t.Error("a missing folder was accepted")
	}
}

// A server answering 451 (try later): the mail is retried after the
// backoff and arrives once.
func TestTemporaryRefusalIsRetriedAndArrivesOnce(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(t, db)
		f.smtp.Refuse(451, 451)
		id := f.enqueue(t, mail.KindVerifyEmail, "en", "bob@example.com", "314159")
		f.runOnce(t)
		r := f.row(t, id)
		if r.Status != mail.StatusPending || r.Attempts != 1 || r.LastError == nil || !strings.Contains(*r.LastError, "451") {
			t.Fatalf("after a 451: %+v", r)
		}
		if !r.NextAttemptAt.Equal(f.clock.Now().Add(time.Minute)) {
			t.Errorf("next attempt %v, want now + 1m", r.NextAttemptAt)
		}
		if n := f.runOnce(t); n != 0 {
			t.Errorf("retried before the backoff passed")
		}
		f.clock.Advance(time.Minute)
		f.runOnce(t) // second 451: the backoff doubles
		if r := f.row(t, id); r.Attempts != 2 || !r.NextAttemptAt.Equal(f.clock.Now().Add(2*time.Minute)) {
			t.Errorf("after the second 451: attempts %d next %v", r.Attempts, r.NextAttemptAt)
		}
		f.clock.Advance(2 * time.Minute)
		f.runOnce(t)
		f.smtp.Wait(1, 5*time.Second)
		f.clock.Advance(time.Hour)
		f.runOnce(t)
		if got := f.smtp.Messages(); len(got) != 1 {
			t.Errorf("%d messages arrived, want 1", len(got))
		}
		if r := f.row(t, id); r.Status != mail.StatusSent || r.Attempts != 3 {
			t.Errorf("row: %+v", r)
		}
	})
}

// The SMTP server is down, then up: the mail arrives once.
func TestServerDownThenUpArrivesOnce(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(t, db)
		f.smtp.Down()
		id := f.enqueue(t, mail.KindLoginCode, "en", "carol@example.com", "271828")
		f.runOnce(t)
		if r := f.row(t, id); r.Status != mail.StatusPending || r.LastError == nil {
			t.Fatalf("with the server down: %+v", r)
		}
		f.smtp.Up()
		f.clock.Advance(time.Minute)
		f.runOnce(t)
		got := f.smtp.Wait(1, 5*time.Second)
		if mailtest.Code(mailtest.Parse(t, got[0].Data).Parts["text/plain"]) != "271828" {
			t.Error("the mail that arrived has not the code")
		}
		f.clock.Advance(time.Hour)
		f.runOnce(t)
		if n := len(f.smtp.Messages()); n != 1 {
			t.Errorf("%d messages, want 1", n)
		}
	})
}

// A 5xx is permanent: no retry, recorded as failed.
func TestPermanentRefusalGivesUp(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(t, db)
		f.smtp.Refuse(550)
		id := f.enqueue(t, mail.KindLoginCode, "en", "dave@example.com", "161803")
		f.runOnce(t)
		r := f.row(t, id)
		if r.Status != mail.StatusFailed || r.LastError == nil || !strings.Contains(*r.LastError, "550") || r.DoneAt == nil {
			t.Fatalf("after a 550: %+v", r)
		}
		f.clock.Advance(time.Hour)
		if n := f.runOnce(t); n != 0 || len(f.smtp.Messages()) != 0 {
			t.Error("a refused mail was tried again")
		}
	})
}

// A mail that cannot be delivered within the give-up time is given up.
func TestGivesUpAfterTheBoundedTime(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(t, db)
		f.smtp.Down()
		id := f.enqueue(t, mail.KindLoginCode, "en", "erin@example.com", "141421")
		for i := 0; i < 20 && f.row(t, id).Status == mail.StatusPending; i++ {
			f.runOnce(t)
			f.clock.Advance(10 * time.Minute)
		}
		r := f.row(t, id)
		if r.Status != mail.StatusFailed || r.LastError == nil || !strings.Contains(*r.LastError, "gave up after 1h") {
			t.Fatalf("row: %+v", r)
		}
		if r.Attempts < 3 {
			t.Errorf("given up after %d attempts", r.Attempts)
		}
	})
}

// The row is the caller's transaction's: a rollback queues nothing.
func TestRolledBackRequestQueuesNothing(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(t, db)
		boom := errors.New("boom")
		err := db.Transaction(func(tx *gorm.DB) error {
			if _, err := f.out.Enqueue(context.Background(), tx, mail.Message{Kind: "x", To: "a@example.com", Subject: "s", Text: "t"}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if rs, err := f.out.List(context.Background(), 0); err != nil || len(rs) != 0 {
			t.Errorf("outbox after rollback: %v %v", rs, err)
		}
	})
}

// A sender that died mid-send (a claim never recorded) leaves the mail to
// the next sender once the lease has passed: a restart loses nothing.
func TestClaimOfADeadSenderIsTakenOverAfterTheLease(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(t, db)
		f.smtp.Down()
		id := f.enqueue(t, mail.KindLoginCode, "en", "frank@example.com", "173205")
		// The "dead" sender: its transport never returns before its
		// context ends, so its attempt is recorded only as a retry.
		hang := mail.NewSender(f.out, hangTransport{}, nil, mail.SenderOptions{Lease: 2 * time.Minute})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _, _ = hang.RunOnce(ctx) }()
		deadline := time.Now().Add(5 * time.Second)
		for f.row(t, id).LockedUntil == nil && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		f.smtp.Up()
		if n := f.runOnce(t); n != 0 {
			t.Fatal("a leased mail was claimed by another sender")
		}
		cancel()
		<-done
		f.clock.Advance(3 * time.Minute)
		f.runOnce(t)
		f.smtp.Wait(1, 5*time.Second)
		if r := f.row(t, id); r.Status != mail.StatusSent {
			t.Errorf("row: %+v", r)
		}
	})
}

type hangTransport struct{}

func (hangTransport) Send(ctx context.Context, _ mail.Row) error {
	<-ctx.Done()
	return ctx.Err()
}

// Two senders over one database (two instances) deliver each mail once:
// on PostgreSQL they claim with FOR UPDATE SKIP LOCKED.
func TestTwoSendersDeliverEachMailOnce(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(t, db)
		const n = 40
		for i := 0; i < n; i++ {
			f.enqueue(t, mail.KindLoginCode, "en", "many@example.com", "100000")
		}
		tr, err := mail.NewSMTP(mail.SMTPConfig{URL: f.smtp.URL(), From: from})
		if err != nil {
			t.Fatal(err)
		}
		senders := []*mail.Sender{
			mail.NewSender(f.out, tr, nil, mail.SenderOptions{Batch: 3}),
			mail.NewSender(f.out, tr, nil, mail.SenderOptions{Batch: 3}),
		}
		var wg sync.WaitGroup
		for _, s := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					k, err := s.RunOnce(context.Background())
					if err != nil {
						t.Error(err)
						return
					}
					if k == 0 {
						return
					}
				}
			}()
		}
		wg.Wait()
		got := f.smtp.Messages()
		if len(got) != n {
			t.Fatalf("%d messages arrived, want %d", len(got), n)
		}
		seen := map[string]bool{}
		for _, m := range got {
			id := mailtest.Parse(t, m.Data).Header.Get("Message-Id")
			if seen[id] {
				t.Errorf("%s arrived twice", id)
			}
			seen[id] = true
		}
	})
}

func TestPruneDeletesOldSentMail(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(t, db)
		old := f.enqueue(t, mail.KindLoginCode, "en", "g@example.com", "123123")
		f.runOnce(t)
		f.smtp.Wait(1, 5*time.Second)
		f.clock.Advance(2 * time.Hour)
		fresh := f.enqueue(t, mail.KindLoginCode, "en", "h@example.com", "321321")
		f.smtp.Down()
		f.runOnce(t) // pending: never pruned
		f.clock.Advance(23 * time.Hour)
		n, err := f.out.Prune(context.Background(), 24*time.Hour)
		if err != nil || n != 1 {
			t.Fatalf("pruned %d, %v; want 1", n, err)
		}
		if _, err := f.out.Get(context.Background(), old); err == nil {
			t.Error("the old sent mail is still there")
		}
		if r := f.row(t, fresh); r.Status != mail.StatusPending {
			t.Errorf("fresh: %+v", r)
		}
	})
}

func TestSMTPURLs(t *testing.T) {
	for _, u := range []string{"smtp://mail.example.com:2525", "smtps://u:p@mail.example.com", "smtp://mail.example.com"} {
		if _, err := mail.NewSMTP(mail.SMTPConfig{URL: u, From: from}); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"http://x", "smtp://", "smtp://h:99999", "smtp://h/path", "::"} {
		if _, err := mail.NewSMTP(mail.SMTPConfig{URL: u, From: from}); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	if _, err := mail.NewSMTP(mail.SMTPConfig{URL: "smtp://h:25", From: "not an address"}); err == nil {
		t.Error("a bad From accepted")
	}
}

// With mail off nothing is sent: PruneQueuedBefore removes old unsent mail.
func TestPruneQueuedBeforeDeletesUnsentMail(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(t, db)
		old := f.enqueue(t, mail.KindLoginCode, "en", "i@example.com", "111222")
		f.clock.Advance(23 * time.Hour)
		fresh := f.enqueue(t, mail.KindLoginCode, "en", "j@example.com", "222333")
		f.clock.Advance(time.Hour)
		n, err := f.out.PruneQueuedBefore(context.Background(), 24*time.Hour)
		if err != nil || n != 1 {
			t.Fatalf("pruned %d, %v; want 1", n, err)
		}
		if _, err := f.out.Get(context.Background(), old); err == nil {
			t.Error("the old unsent mail is still there")
		}
		f.row(t, fresh)
	})
}

// STARTTLS is used when the server offers it; smtps:// is TLS from the
// first byte; the server's certificate is verified.
func TestTLS(t *testing.T) {
	serverTLS, clientTLS := mailtest.SelfSigned(t)
	for _, implicit := range []bool{false, true} {
		t.Run(map[bool]string{false: "starttls", true: "smtps"}[implicit], func(t *testing.T) {
			db := storagetest.OpenSQLite(t)
			srv := mailtest.StartWith(t, mailtest.Options{TLS: serverTLS, Implicit: implicit})
			clock := clocktest.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
			out := mail.NewOutbox(db, clock.Now, time.Hour, "example.com")
			tmpl, err := mail.LoadTemplates("")
			if err != nil {
				t.Fatal(err)
			}
			f := &fixture{db: db, clock: clock, out: out, smtp: srv, tmpl: tmpl}

			// A client that does not trust the certificate does not send.
			untrusting, err := mail.NewSMTP(mail.SMTPConfig{URL: srv.URL(), From: from, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			f.sender = mail.NewSender(out, untrusting, nil, mail.SenderOptions{MinBackoff: time.Minute})
			id := f.enqueue(t, mail.KindLoginCode, "en", "tls@example.com", "654321")
			f.runOnce(t)
			if r := f.row(t, id); r.Status != mail.StatusPending || len(srv.Messages()) != 0 {
				t.Fatalf("sent to a server whose certificate is not trusted: %+v", r)
			}

			tr, err := mail.NewSMTP(mail.SMTPConfig{URL: srv.URL(), From: from, Timeout: 5 * time.Second, TLSConfig: clientTLS})
			if err != nil {
				t.Fatal(err)
			}
			f.sender = mail.NewSender(out, tr, nil, mail.SenderOptions{MinBackoff: time.Minute})
			clock.Advance(time.Minute)
			f.runOnce(t)
			got := srv.Wait(1, 5*time.Second)
			if !got[0].TLS {
				t.Error("the mail did not come over TLS")
			}
		})
	}
}

// The URL's credentials log in (AUTH PLAIN over STARTTLS); wrong ones are
// retried, not given up: the settings, not the mail, are at fault.
func TestSMTPAuth(t *testing.T) {
	serverTLS, clientTLS := mailtest.SelfSigned(t)
	db := storagetest.OpenSQLite(t)
	srv := mailtest.StartWith(t, mailtest.Options{TLS: serverTLS, Users: map[string]string{"walletauth": "s3cret/pass"}})
	clock := clocktest.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	out := mail.NewOutbox(db, clock.Now, time.Hour, "example.com")
	tmpl, err := mail.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, clock: clock, out: out, smtp: srv, tmpl: tmpl}
	sender := func(userinfo string) *mail.Sender {
		tr, err := mail.NewSMTP(mail.SMTPConfig{URL: "smtp://" + userinfo + "@" + srv.Addr(), From: from, Timeout: 5 * time.Second, TLSConfig: clientTLS})
		if err != nil {
			t.Fatal(err)
		}
		return mail.NewSender(out, tr, nil, mail.SenderOptions{MinBackoff: time.Minute})
	}
	id := f.enqueue(t, mail.KindLoginCode, "en", "auth@example.com", "555111")
	f.sender = sender("walletauth:wrong")
	f.runOnce(t)
	if r := f.row(t, id); r.Status != mail.StatusPending || r.LastError == nil || !strings.Contains(*r.LastError, "535") {
		t.Fatalf("after a refused login: %+v", r)
	}
	f.sender = sender("walletauth:s3cret%2Fpass")
	clock.Advance(time.Minute)
	f.runOnce(t)
	if got := srv.Wait(1, 5*time.Second); !got[0].TLS {
		t.Error("not over TLS")
	}
}
