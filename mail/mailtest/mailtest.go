// Package mailtest runs a real SMTP server in process, on 127.0.0.1, for
// tests (github.com/emersion/go-smtp): it speaks the protocol over TCP,
// keeps what it received, can refuse mail with a given reply code, and can
// be stopped and started again on the same port (a server that is down,
// then up). It also reads the codes of mails queued in an outbox.
package mailtest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	walletmail "github.com/walletauth/walletauth/mail"
	"github.com/walletauth/walletauth/storage"
)

// Received is one mail the server accepted.
type Received struct {
	From string
	To   []string
	Data []byte // the message as sent (RFC 5322)
	TLS  bool   // it came over TLS (STARTTLS or implicit)
}

// Options configure StartWith.
type Options struct {
	// TLS, when set, is the server's TLS configuration: STARTTLS is
	// offered, or with Implicit every connection is TLS from the start
	// (smtps).
	TLS      *tls.Config
	Implicit bool
	// Users, when set, are the accounts (username → password) of AUTH
	// PLAIN, which is then required before MAIL.
	Users map[string]string
}

// Server is an SMTP server for tests.
type Server struct {
	tb   testing.TB
	addr string
	opt  Options

	mu       sync.Mutex
	srv      *smtp.Server
	ln       net.Listener
	got      []Received
	refuse   []int // reply codes for the next DATA commands, one each
	arrived  chan struct{}
	sessions int
}

// Start starts a server on a free port of 127.0.0.1, stopped at the end of
// the test.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return StartWith(tb, Options{})
}

// StartWith is Start with TLS options.
func StartWith(tb testing.TB, opt Options) *Server {
	tb.Helper()
	s := &Server{tb: tb, addr: "127.0.0.1:0", arrived: make(chan struct{}, 1000), opt: opt}
	s.Up()
	tb.Cleanup(s.Down)
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return s.addr }

// URL is the smtp:// URL of the server (smtps:// with implicit TLS).
func (s *Server) URL() string {
	if s.opt.Implicit {
		return "smtps://" + s.addr
	}
	return "smtp://" + s.addr
}

// Up (re)starts the server on its port.
func (s *Server) Up() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return
	}
	var (
		ln  net.Listener
		err error
	)
	for i := 0; i < 50; i++ { // the port of a stopped server may linger briefly
		if ln, err = (&net.ListenConfig{}).Listen(context.Background(), "tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.tb.Fatalf("mailtest: listen: %v", err)
	}
	s.addr = ln.Addr().String()
	if s.opt.TLS != nil && s.opt.Implicit {
		ln = tls.NewListener(ln, s.opt.TLS)
	}
	srv := smtp.NewServer(backend{s})
	if s.opt.TLS != nil && !s.opt.Implicit {
		srv.TLSConfig = s.opt.TLS // STARTTLS offered
	}
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.AllowInsecureAuth = true
	s.srv, s.ln = srv, ln
	go func() { _ = srv.Serve(ln) }()
}

// Down stops the server: connections are refused until Up.
func (s *Server) Down() {
	s.mu.Lock()
	srv, ln := s.srv, s.ln
	s.srv, s.ln = nil, nil
	s.mu.Unlock()
	if srv != nil {
		// The listener too: Close alone misses one Serve has not taken yet.
		_ = ln.Close()
		_ = srv.Close()
	}
}

// Refuse makes the next len(codes) messages be refused at DATA with these
// reply codes (451: try later; 550: refused for good).
func (s *Server) Refuse(codes ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = append(s.refuse, codes...)
}

// Messages returns what was accepted so far.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.got...)
}

// Wait waits until n messages have been accepted in all, at most d.
func (s *Server) Wait(n int, d time.Duration) []Received {
	s.tb.Helper()
	deadline := time.After(d)
	for {
		if got := s.Messages(); len(got) >= n {
			return got
		}
		select {
		case <-s.arrived:
		case <-deadline:
			s.tb.Fatalf("mailtest: %d messages arrived within %v, want %d", len(s.Messages()), d, n)
		}
	}
}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	b.s.mu.Lock()
	b.s.sessions++
	b.s.mu.Unlock()
	x := &session{s: b.s, conn: c, authed: b.s.opt.Users == nil}
	if b.s.opt.Users != nil {
		return authSession{x}, nil
	}
	return x, nil
}

// authSession is a session that offers AUTH PLAIN.
type authSession struct{ *session }

func (a authSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (a authSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if want, ok := a.s.opt.Users[user]; !ok || want != pass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		a.authed = true
		return nil
	}), nil
}

type session struct {
	s      *Server
	conn   *smtp.Conn
	authed bool
	from   string
	to     []string
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }
func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if !x.authed {
		return smtp.ErrAuthRequired
	}
	x.from = from
	return nil
}
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	if len(x.s.refuse) > 0 {
		code := x.s.refuse[0]
		x.s.refuse = x.s.refuse[1:]
		enh := smtp.EnhancedCode{code / 100, 0, 0}
		return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: fmt.Sprintf("mailtest refuses with %d", code)}
	}
	_, isTLS := x.conn.TLSConnectionState()
	if !isTLS {
		_, isTLS = x.conn.Conn().(*tls.Conn)
	}
	x.s.got = append(x.s.got, Received{From: x.from, To: append([]string(nil), x.to...), Data: b, TLS: isTLS})
	select {
	case x.s.arrived <- struct{}{}:
	default:
	}
	return nil
}

// Parsed is a received message taken apart.
type Parsed struct {
	Header mail.Header
	Parts  map[string]string // content type (text/plain, text/html) → decoded body
	Order  []string          // the parts' content types in order
}

// Parse takes a multipart/alternative (or single-part) message apart.
func Parse(tb testing.TB, data []byte) Parsed {
	tb.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		tb.Fatalf("mailtest: parse message: %v", err)
	}
	p := Parsed{Header: m.Header, Parts: map[string]string{}}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		tb.Fatalf("mailtest: Content-Type %q: %v", m.Header.Get("Content-Type"), err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		body, err := decode(m.Header.Get("Content-Transfer-Encoding"), m.Body)
		if err != nil {
			tb.Fatal(err)
		}
		p.Parts[mt] = body
		p.Order = append(p.Order, mt)
		return p
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatalf("mailtest: part: %v", err)
		}
		ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		body, err := decode(part.Header.Get("Content-Transfer-Encoding"), part)
		if err != nil {
			tb.Fatal(err)
		}
		p.Parts[ct] = body
		p.Order = append(p.Order, ct)
	}
	return p
}

func decode(cte string, r io.Reader) (string, error) {
	rd := r
	switch strings.ToLower(cte) {
	case "quoted-printable":
		rd = newQP(r)
	case "base64":
		rd = newB64(r)
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		return "", fmt.Errorf("mailtest: decode %s: %w", cte, err)
	}
	return string(b), nil
}

// Subject is the decoded Subject header.
func (p Parsed) Subject() string {
	s, err := new(mime.WordDecoder).DecodeHeader(p.Header.Get("Subject"))
	if err != nil {
		return p.Header.Get("Subject")
	}
	return s
}

var sixDigits = regexp.MustCompile(`\b\d{6}\b`)

// Code is the first six-digit number of s ("" when none).
func Code(s string) string { return sixDigits.FindString(s) }

// LastCode is the code stated by the newest mail of out to the address to
// (matched as accounts match emails), read from the outbox as `walletauth
// mail list` shows it; it fails the test when there is no such mail or it
// states no code.
func LastCode(tb testing.TB, out *walletmail.Outbox, to string) string {
	tb.Helper()
	rows, err := out.List(context.Background(), 0)
	if err != nil {
		tb.Fatalf("mailtest: list the outbox: %v", err)
	}
	key := storage.EmailKey(strings.TrimSpace(to))
	for _, r := range rows {
		if storage.EmailKey(strings.TrimSpace(r.ToAddr)) == key {
			code := Code(r.TextBody)
			if code == "" {
				tb.Fatalf("mailtest: the mail to %s states no six-digit code:\n%s", to, r.TextBody)
			}
			return code
		}
	}
	tb.Fatalf("mailtest: no mail to %s in the outbox", to)
	return ""
}

func newQP(r io.Reader) io.Reader  { return quotedprintable.NewReader(r) }
func newB64(r io.Reader) io.Reader { return base64.NewDecoder(base64.StdEncoding, r) }

// SelfSigned makes a certificate for 127.0.0.1 and returns the server's TLS
// configuration and a client one that trusts it (and only it).
func SelfSigned(tb testing.TB) (server, client *tls.Config) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mailtest"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client
}
